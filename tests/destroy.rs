//! `destroy` and dropping the last handle: every pending callback completes
//! before it returns, nothing runs after, and the client's threads end.
//!
//! These tests count the process's `rtm-*` threads, so they live in their
//! own test binary and run one at a time.
#![cfg(feature = "gate")]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use parking_lot::Mutex;
use rtm_client::{error_code, Dispatch, PushEvent, RtmClient, RtmOptions};

const ME: i64 = 1001;

static SERIAL: Mutex<()> = Mutex::new(());

fn no_client_threads_left() {
    wait_until("every rtm-* thread of the client has ended", || {
        client_threads().is_empty()
    });
}

/// What ran after `destroy` returned.
#[derive(Clone, Default)]
struct AfterDestroy {
    returned: Arc<AtomicBool>,
    violations: Arc<AtomicUsize>,
}

impl AfterDestroy {
    fn check(&self) {
        if self.returned.load(Ordering::SeqCst) {
            self.violations.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn destroy_with_1000_pending(dispatch: Dispatch) {
    let _serial = SERIAL.lock();
    // The test before may still be ending its threads (the process-wide
    // dispatcher ends once it sees no client left): bounded, so a thread that
    // never ends still fails here.
    no_client_threads_left();
    let gate = Arc::new(gate());
    let client = RtmClient::new(RtmOptions {
        dispatch,
        ..options(&gate)
    })
    .unwrap();
    let after = AfterDestroy::default();
    let a = after.clone();
    client.on_session_closed(move |_| a.check());
    let a = after.clone();
    client.on_error_recorder(move |_| a.check());
    let a = after.clone();
    client.on_relogin_completed(move |_, _, _, _| a.check());
    let pushes = Arc::new(AtomicUsize::new(0));
    let (a, p) = (after.clone(), pushes.clone());
    client.processor().on(PushEvent::RecvMessage, move |_| {
        a.check();
        p.fetch_add(1, Ordering::SeqCst);
    });
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(ME, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    if dispatch == Dispatch::Queued {
        wait_until("the login callback", || {
            client.dispatch_pending();
            !rx.is_empty()
        });
    }
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (true, 0));
    assert!(!client_threads().is_empty());

    // Nothing will be answered; pushes keep coming while we destroy.
    gate.pause(Duration::from_secs(60));
    let results: Arc<Mutex<Vec<(i64, i32)>>> = Arc::default();
    let mut mids = Vec::new();
    for i in 0..1000 {
        let (r, a) = (results.clone(), after.clone());
        let mid = 5000 + i;
        mids.push(mid);
        client.send_message(2002, 30, "pending", "", mid, 0, move |e, d| {
            a.check();
            assert!(d.is_none());
            let e = e.expect("an error");
            r.lock().push((e.mid, e.error.code));
        });
    }
    // A thread keeps the gate pushing until the guard drops (even on panic).
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let pusher = {
        let (stop, gate) = (stop.0.clone(), gate.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                gate.send_quest(
                    PID,
                    ME,
                    "pushmsg",
                    p2p_push(2002, ME, 80, 0, "noise", ""),
                    true,
                );
                n += 1;
            }
            n
        })
    };
    wait_until("a push ran", || {
        client.dispatch_pending();
        pushes.load(Ordering::SeqCst) > 0
    });
    client.destroy();
    after.returned.store(true, Ordering::SeqCst);
    let done = results.lock().clone();
    assert_eq!(
        done.len(),
        1000,
        "every callback ran before destroy returned"
    );
    assert!(done
        .iter()
        .all(|&(_, code)| code == error_code::FPNN_EC_CORE_CONNECTION_CLOSED));
    let got: HashSet<i64> = done.iter().map(|&(mid, _)| mid).collect();
    assert_eq!(
        got,
        mids.iter().copied().collect(),
        "each callback exactly once, with its mid"
    );
    // The threads are the fence: once they are gone nothing can run.
    no_client_threads_left();
    drop(stop);
    let pusher = pusher.join().unwrap();
    assert!(pusher > 0);
    assert_eq!(client.dispatch_pending(), 0, "nothing left to dispatch");
    assert_eq!(
        after.violations.load(Ordering::SeqCst),
        0,
        "user code ran after destroy returned"
    );
    assert_eq!(results.lock().len(), 1000);
    gate.resume();
}

/// `destroy` racing a `close` or a kickout on another thread, which take the connection
/// out of the session and close it after the session lock, still returns only once
/// every pending call's callback has run (it waits for that close to end).
#[test]
fn destroy_racing_a_close_or_a_kickout_runs_every_pending_callback_before_returning() {
    let _serial = SERIAL.lock();
    let gate = Arc::new(gate());
    for round in 0..60 {
        let client = RtmClient::new(options(&gate)).unwrap();
        assert_eq!(login(&client, ME, "t", 0), (true, 0));
        gate.pause(Duration::from_secs(60));
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = ran.clone();
            client.get_online_users(&[1, 2], 0, move |_, _| {
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let kick = round % 2 == 1;
        let other = {
            let (client, barrier, gate) = (client.clone(), barrier.clone(), gate.clone());
            std::thread::spawn(move || {
                barrier.wait();
                if kick {
                    gate.kickout(PID, ME);
                } else {
                    client.close();
                }
            })
        };
        barrier.wait();
        client.destroy();
        let what = if kick { "a kickout" } else { "a close" };
        assert_eq!(
            ran.load(Ordering::SeqCst),
            100,
            "round {round}, racing {what}: every callback ran before destroy returned"
        );
        other.join().unwrap();
        gate.resume();
    }
    no_client_threads_left();
}

#[test]
fn destroy_with_1000_pending_calls_completes_each_once_with_20002_before_returning() {
    destroy_with_1000_pending(Dispatch::Threads);
}

#[test]
fn destroy_in_queued_mode_completes_pending_calls_on_the_destroying_thread() {
    destroy_with_1000_pending(Dispatch::Queued);
}

#[test]
fn destroy_in_inline_mode_completes_each_pending_call_once_before_returning() {
    destroy_with_1000_pending(Dispatch::Inline);
}

#[test]
fn dropping_the_last_handle_ends_the_session_and_every_thread() {
    let _serial = SERIAL.lock();
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let clone = client.clone();
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    // A thread takes its name once it runs: until then it shows its parent's
    // (the writer, spawned by the reader, briefly reads "rtm-reader").
    wait_until("the client's threads are up and named", || {
        let names = client_threads();
        ["rtm-dispatch", "rtm-reader", "rtm-session", "rtm-writer"]
            .iter()
            .all(|expected| names.iter().any(|n| n == expected))
    });
    drop(client);
    assert_eq!(
        gate.connections_of(PID, ME),
        1,
        "a clone keeps the client alive"
    );
    drop(clone);
    no_client_threads_left();
    wait_until("the gate saw the connection close", || {
        gate.connection_count() == 0
    });
}

#[test]
fn a_callback_registered_after_destroy_still_runs_once_and_its_thread_ends() {
    let _serial = SERIAL.lock();
    let gate = gate();
    let client = online(options(&gate), ME);
    client.destroy();
    no_client_threads_left();
    let (tx, rx) = crossbeam_channel::unbounded();
    client.enter_room(1, 0, move |e, _| tx.send(e.map(|e| e.code)).unwrap());
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        Some(error_code::FPNN_EC_CORE_INVALID_CONNECTION)
    );
    no_client_threads_left();
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_handler_holding_a_weak_client_does_not_keep_it_alive() {
    // Its client's threads would count in the other tests' thread checks.
    let _serial = SERIAL.lock();
    let gate = gate();
    let before = client_threads().len();
    let client = online(options(&gate), 1001);
    let weak = client.downgrade();
    client.on_session_closed(move |_| {
        if let Some(c) = weak.upgrade() {
            c.close();
        }
    });
    assert!(client.downgrade().upgrade().is_some());
    let probe = client.downgrade();
    drop(client);
    assert!(
        probe.upgrade().is_none(),
        "the last strong handle destroyed the client"
    );
    wait_until("the client's threads end", || {
        client_threads().len() <= before
    });
}
