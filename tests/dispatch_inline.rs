//! `Dispatch::Inline` (docs/architecture.md, "Threads"): an answer's
//! callback, or a push's handlers, run on the connection's reader thread
//! when nothing of the client is queued or running; otherwise they wait
//! their turn on the dispatcher thread, so the client's callbacks keep
//! their order and never overlap. Calls refused at once are still not
//! called back inside the call, `blocking()` inside such a callback fails at
//! once instead of stalling the reader, a callback may destroy its own
//! client or log in again, and a push handler may close it.
#![cfg(feature = "gate")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use crossbeam_channel::Sender;
use rtm_client::gate::Gate;
use rtm_client::{blocking, error_code, Dispatch, PushEvent, RtmClient, RtmOptions, SendError};

const ME: i64 = 1001;
const PEER: i64 = 2002;

fn inline_client(gate: &Gate) -> RtmClient {
    let client = online(
        RtmOptions {
            dispatch: Dispatch::Inline,
            ..options(gate)
        },
        ME,
    );
    settle(&client);
    client
}

/// Waits until the dispatcher thread is done with `client` (its login callback, or the
/// callbacks a test queued): the moment it lets go is not observable, so probes go out
/// until one's answer runs on the reader. Nothing else is queued for the client after
/// that, since the tests register no handlers.
fn settle(client: &RtmClient) {
    wait_until("a probe's callback runs on the reader thread", || {
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.send_message(PEER, 30, "probe", "", 0, 0, move |e, _| {
            tx.send((e.is_none(), thread_name())).unwrap()
        });
        let (ok, on) = rx
            .recv_timeout(WAIT)
            .expect("the probe was not called back");
        assert!(ok, "the probe failed");
        on == "rtm-reader"
    });
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

/// Sends message `i` of `n`; its callback records where it ran and sends
/// the next, as a callback-driven JavaScript application does.
fn chain(
    client: RtmClient,
    i: usize,
    n: usize,
    ran: Log<(usize, String, bool)>,
    busy: Arc<AtomicBool>,
    done: Sender<()>,
) {
    if i == n {
        done.send(()).unwrap();
        return;
    }
    let c = client.clone();
    client.send_message(PEER, 30, "hi", "", 0, 0, move |e, d| {
        let overlapped = busy.swap(true, Ordering::SeqCst);
        ran.push((i, thread_name(), e.is_none() && d.is_some() && !overlapped));
        busy.store(false, Ordering::SeqCst);
        chain(c, i + 1, n, ran, busy, done);
    });
}

#[test]
fn answers_run_on_the_reader_thread_once_each_in_send_order() {
    let gate = gate();
    let client = inline_client(&gate);
    const N: usize = 200;
    let ran: Log<(usize, String, bool)> = Log::default();
    let (tx, rx) = crossbeam_channel::bounded(1);
    chain(
        client.clone(),
        0,
        N,
        ran.clone(),
        Arc::new(AtomicBool::new(false)),
        tx,
    );
    rx.recv_timeout(WAIT).expect("the chain did not finish");
    let ran = ran.get();
    assert_eq!(ran.len(), N);
    for (k, (i, thread, ok)) in ran.iter().enumerate() {
        assert_eq!(*i, k, "out of order");
        assert!(*ok, "message {i}: an error, or two callbacks at once");
        assert_eq!(thread, "rtm-reader", "message {i}");
    }
    client.destroy();
}

#[test]
fn an_answer_waits_behind_a_queued_callback_and_runs_after_it_on_the_dispatcher() {
    let gate = gate();
    let client = inline_client(&gate);
    let ran: Log<(&'static str, String)> = Log::default();
    // A times out (the gate holds every answer) and its callback holds the
    // dispatcher thread until released.
    gate.pause(Duration::from_secs(60));
    let (release, held) = crossbeam_channel::bounded::<()>(1);
    let (started_tx, started) = crossbeam_channel::bounded(1);
    let r = ran.clone();
    client.send_message(PEER, 30, "a", "", 0, 50, move |e, _| {
        r.push(("a", thread_name()));
        assert_eq!(e.unwrap().error.code, error_code::FPNN_EC_CORE_TIMEOUT);
        started_tx.send(()).unwrap();
        held.recv_timeout(WAIT).unwrap();
    });
    started.recv_timeout(WAIT).expect("A did not time out");
    // B is answered while A still runs: it is queued behind A.
    gate.resume();
    let (b_done, b_ran) = crossbeam_channel::bounded(1);
    let r = ran.clone();
    client.send_message(PEER, 30, "b", "", 0, 0, move |e, _| {
        r.push(("b", thread_name()));
        b_done.send(e.is_none()).unwrap();
    });
    wait_until("B's answer is queued behind A", || {
        client.dispatch_queue_len_for_tests() == 1
    });
    assert_eq!(ran.len(), 1, "B ran while A was running");
    release.send(()).unwrap();
    assert_eq!(b_ran.recv_timeout(WAIT), Ok(true));
    // Once the dispatcher has let go, answers run on the reader again.
    settle(&client);
    let (c_done, c_ran) = crossbeam_channel::bounded(1);
    let r = ran.clone();
    client.send_message(PEER, 30, "c", "", 0, 0, move |e, _| {
        r.push(("c", thread_name()));
        c_done.send(e.is_none()).unwrap();
    });
    assert_eq!(c_ran.recv_timeout(WAIT), Ok(true));
    assert_eq!(
        ran.get(),
        vec![
            ("a", "rtm-dispatch".to_owned()),
            ("b", "rtm-dispatch".to_owned()),
            ("c", "rtm-reader".to_owned()),
        ]
    );
    client.destroy();
}

#[test]
fn inside_an_inline_callback_blocking_fails_at_once_and_a_refused_call_is_called_back_later() {
    let gate = gate();
    let client = inline_client(&gate);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let c = client.clone();
    client.send_message(PEER, 30, "hi", "", 0, 0, move |e, _| {
        assert!(e.is_none());
        let on = thread_name();
        // With the default timeout, waiting here would stall the reader
        // for 20 s and end in 20003.
        let waited = blocking(|cb| c.send_message(PEER, 30, "again", "", 0, 0, cb));
        // An empty message is refused without being sent; its callback is
        // not called inside the call.
        let returned = Arc::new(AtomicBool::new(false));
        let (refused_tx, refused) = crossbeam_channel::bounded(1);
        let r = returned.clone();
        c.send_message(PEER, 30, "", "", 0, 0, move |e: Option<SendError>, _| {
            refused_tx
                .send((
                    r.load(Ordering::SeqCst),
                    e.map(|e| e.error.code),
                    thread_name(),
                ))
                .unwrap();
        });
        returned.store(true, Ordering::SeqCst);
        tx.send((on, waited.map_err(|e| e.error.code), refused))
            .unwrap();
    });
    let (on, waited, refused) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(on, "rtm-reader");
    assert_eq!(waited.unwrap_err(), error_code::FPNN_EC_CORE_FORBIDDEN);
    assert_eq!(
        refused.recv_timeout(WAIT).unwrap(),
        (
            true,
            Some(error_code::RTM_EC_EMPTY_PARAMETER),
            "rtm-reader".to_owned()
        )
    );
    // Outside a callback, blocking works as ever.
    assert!(blocking(|cb| client.send_message(PEER, 30, "hi", "", 0, 0, cb)).is_ok());
    client.destroy();
}

#[test]
fn an_inline_callback_may_destroy_its_client_and_every_other_call_completes_once() {
    let gate = gate();
    let client = inline_client(&gate);
    // Calls the gate will not answer, pending when the client is destroyed.
    let others: Log<i32> = Log::default();
    let (destroyed_tx, destroyed) = crossbeam_channel::bounded(1);
    let c = client.clone();
    client.send_message(PEER, 30, "first", "", 0, 0, move |e, _| {
        assert!(e.is_none());
        let on = thread_name();
        c.destroy();
        destroyed_tx.send(on).unwrap();
    });
    assert_eq!(destroyed.recv_timeout(WAIT).unwrap(), "rtm-reader");
    // After destroy, calls still complete, once, with an error.
    for _ in 0..10 {
        let o = others.clone();
        client.send_message(PEER, 30, "late", "", 0, 0, move |e, _| {
            o.push(e.map_or(0, |e| e.error.code))
        });
    }
    wait_until("every late call is called back", || others.len() == 10);
    assert!(
        others.get().iter().all(|&code| code != 0),
        "{:?}",
        others.get()
    );
    wait_until("the gate sees the connection closed", || {
        gate.connections_of(PID, ME) == 0
    });
    assert_eq!(others.len(), 10, "a late call was called back twice");
}

/// A callback running on the reader may log in again: the login ends the session and
/// waits for its connection's threads (so that the old session's callbacks come before
/// the new login's), but not for the reader it runs on, and the new session starts.
#[test]
fn an_inline_callback_may_log_in_again() {
    let gate = gate();
    let client = inline_client(&gate);
    let (tx, rx) = crossbeam_channel::bounded(2);
    let c = client.clone();
    client.send_message(PEER, 30, "first", "", 0, 0, move |e, _| {
        assert!(e.is_none());
        let tx2 = tx.clone();
        c.login(
            PEER,
            "t",
            move |ok, code| tx2.send(format!("{ok} {code}")).unwrap(),
            0,
        );
        tx.send(thread_name()).unwrap();
    });
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "rtm-reader");
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "true 0");
    wait_until("the old connection is gone", || {
        gate.connections_of(PID, ME) == 0
    });
    assert_eq!(gate.connections_of(PID, PEER), 1);
    client.destroy();
}

/// A push's handlers run on the reader too, in the order the pushes came,
/// when nothing of the client is queued or running; `blocking()` inside
/// one fails at once as in an answer's callback; and one may close its
/// client: the session's `SessionClosed` comes after it, and nothing of the
/// session after that.
#[test]
fn push_handlers_run_on_the_reader_and_one_may_close_its_client() {
    let gate = gate();
    let client = inline_client(&gate);
    let ran: Log<(i64, String)> = Log::default();
    let (blocked_tx, blocked) = crossbeam_channel::bounded(1);
    let (r, c) = (ran.clone(), client.clone());
    client.processor().on(PushEvent::RecvMessage, move |m| {
        r.push((m.mid, thread_name()));
        match m.mid {
            2 => {
                let res = blocking(|cb| c.send_message(PEER, 30, "x", "", 0, 0, cb));
                blocked_tx.send(res.err().map(|e| e.error.code)).unwrap();
            }
            3 => c.close(),
            _ => {}
        }
    });
    let r = ran.clone();
    client.on_session_closed(move |code| r.push((-1 - i64::from(code), thread_name())));
    // One write: the reader normally reads all four at once and answers
    // them before it runs their handlers, so push 4's runs too, before the
    // `SessionClosed` of handler 3's close. Should push 4 come in a read of
    // its own, after the close, the fence stops it.
    let frames: Vec<u8> = (1..=4).flat_map(|mid| push_frame(PEER, ME, mid)).collect();
    assert_eq!(gate.send_raw(PID, ME, &frames), 1);
    assert_eq!(
        blocked.recv_timeout(WAIT),
        Ok(Some(error_code::FPNN_EC_CORE_FORBIDDEN))
    );
    wait_until("SessionClosed", || {
        ran.get().iter().any(|(mid, _)| *mid < 0)
    });
    let mut expected: Vec<(i64, String)> = (1..=4).map(|m| (m, "rtm-reader".into())).collect();
    expected.push((-1, "rtm-dispatch".into()));
    let mut got = ran.get();
    if got.len() == 4 {
        expected.remove(3);
    }
    assert_eq!(got, expected);
    client.destroy();
    got = ran.get();
    assert_eq!(
        got.len(),
        expected.len(),
        "something came after SessionClosed"
    );
}

/// A call made in a callback gets its deadline when the callback's write
/// batch ends and the call is sent (docs/porting.md, "Timeouts"): a callback
/// that works for three timeouts after the call does not eat into its time,
/// and the call still times out, one timeout after the callback returned.
#[test]
fn a_call_made_in_a_callback_times_out_counted_from_the_callbacks_end() {
    let gate = Arc::new(gate());
    let client = inline_client(&gate);
    let timeout = Duration::from_millis(50);
    let (tx, rx) = crossbeam_channel::unbounded();
    let callback = {
        let (client, gate, tx) = (client.clone(), gate.clone(), tx.clone());
        move |e: Option<SendError>, _| {
            assert!(e.is_none(), "the first send failed");
            // The gate drops what it reads from now on: the call below is
            // never answered.
            gate.pause(Duration::from_secs(3600));
            let fired = tx.clone();
            let ms = timeout.as_millis() as u64;
            client.send_message(PEER, 30, "never answered", "", 0, ms, move |e, _| {
                let code = e.map(|e| e.error.code);
                let _ = fired.send(("fired", std::time::Instant::now(), code));
            });
            // The slow part of the callback: what is being tested, not a wait.
            std::thread::sleep(3 * timeout);
            let _ = tx.send(("callback returned", std::time::Instant::now(), None));
        }
    };
    client.send_message(PEER, 30, "first", "", 0, 0, callback);
    let (what, returned, _) = rx.recv_timeout(WAIT).expect("the callback ran");
    assert_eq!(what, "callback returned");
    let (what, fired, code) = rx.recv_timeout(WAIT).expect("the call timed out");
    assert_eq!(
        (what, code),
        ("fired", Some(error_code::FPNN_EC_CORE_TIMEOUT))
    );
    assert!(
        fired >= returned + timeout,
        "timed out {:?} after the callback returned: counted from before its end",
        fired - returned
    );
    client.destroy();
}

/// What a callback of the ring does to the next client ([`ring`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Close,
    Destroy,
    /// A login that replaces the next client's session.
    Login,
}

/// Counts the clients whose callbacks have started; each waits, bounded, until all
/// have, so that every callback runs at the same time when the ending calls are made.
#[derive(Default)]
struct Latch {
    arrived: parking_lot::Mutex<usize>,
    all: parking_lot::Condvar,
}

impl Latch {
    /// Counts this callback in and waits until `n` have come; false after [`WAIT`].
    fn arrive_and_wait(&self, n: usize) -> bool {
        let deadline = std::time::Instant::now() + WAIT;
        let mut arrived = self.arrived.lock();
        *arrived += 1;
        self.all.notify_all();
        while *arrived < n {
            if self.all.wait_until(&mut arrived, deadline).timed_out() {
                return false;
            }
        }
        true
    }
}

thread_local! {
    /// Senders dropped when the thread ends: a test sees a thread end by its
    /// receiver's disconnection.
    static ON_EXIT: std::cell::RefCell<Vec<Sender<()>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A receiver that is disconnected once the calling thread has ended.
fn thread_end() -> crossbeam_channel::Receiver<()> {
    let (tx, rx) = crossbeam_channel::bounded(0);
    ON_EXIT.with(|e| e.borrow_mut().push(tx));
    rx
}

/// How long a ring's ending calls may take before the test counts them as waiting for
/// each other for ever (they take at most the close linger, 1 s, each).
const RING_DEADLINE: Duration = Duration::from_secs(20);

/// A ring of clients, one per mode of `modes`, each logged in with a uid of its own:
/// one callback of each runs at the same time (an answer's, on the reader in `Inline`
/// mode, on the dispatcher thread in `Threads` mode, in `dispatch_pending` in `Queued`
/// mode, which a thread of the test polls), and each ends the session of the next
/// client in the ring with `end` (docs/architecture.md, "Threads": an ending that
/// would wait for a thread waiting for it does not). Every ending call returns within
/// a bounded time, every callback runs once, the sessions closed report
/// `SessionClosed` once (none after a destroy, or a login that replaces the session,
/// whose callback runs once, accepted), and the reader threads those callbacks ran on
/// end afterwards.
fn ring(modes: &[Dispatch], end: End) {
    let gate = gate();
    let n = modes.len();
    let stop = Arc::new(AtomicBool::new(false));
    let mut pollers = Vec::new();
    let mut clients = Vec::new();
    let closed: Log<usize> = Log::default();
    for (i, &mode) in modes.iter().enumerate() {
        let client = RtmClient::new(RtmOptions {
            dispatch: mode,
            ..options(&gate)
        })
        .expect("client");
        if mode == Dispatch::Queued {
            let (c, stop) = (client.clone(), stop.clone());
            pollers.push(std::thread::spawn(move || {
                // A game loop's polling, not a wait for a condition.
                while !stop.load(Ordering::SeqCst) {
                    c.dispatch_pending();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }));
        }
        let c = closed.clone();
        client.on_session_closed(move |_| c.push(i));
        assert_eq!(login(&client, ME + i as i64, "token", 0), (true, 0), "{i}");
        if mode == Dispatch::Inline {
            settle(&client);
        }
        clients.push(client);
    }
    let latch = Arc::new(Latch::default());
    let ran: Log<(usize, String, bool)> = Log::default();
    let logins: Log<(usize, bool, i32)> = Log::default();
    let (returned_tx, returned) = crossbeam_channel::unbounded();
    let (ends_tx, ends) = crossbeam_channel::unbounded();
    for (i, client) in clients.iter().enumerate() {
        let next = (i + 1) % n;
        let target = clients[next].clone();
        let (latch, ran, logins) = (latch.clone(), ran.clone(), logins.clone());
        let (returned_tx, ends_tx) = (returned_tx.clone(), ends_tx.clone());
        client.send_message(PEER, 30, "ring", "", 0, 0, move |e, _| {
            ran.push((i, thread_name(), e.is_none()));
            if thread_name() == "rtm-reader" {
                ends_tx.send((i, thread_end())).unwrap();
            }
            if !latch.arrive_and_wait(n) {
                returned_tx.send((i, false)).unwrap();
                return;
            }
            match end {
                End::Close => target.close(),
                End::Destroy => target.destroy(),
                End::Login => target.login(
                    ME + next as i64,
                    "token",
                    move |ok, code| logins.push((next, ok, code)),
                    0,
                ),
            }
            returned_tx.send((i, true)).unwrap();
        });
    }
    let mut done = Vec::new();
    for _ in 0..n {
        match returned.recv_timeout(RING_DEADLINE) {
            Ok(r) => done.push(r),
            Err(_) => panic!(
                "{modes:?} {end:?}: the ending calls of {:?} returned, the others \
                 did not within {RING_DEADLINE:?}: they wait for each other",
                done
            ),
        }
    }
    done.sort();
    assert_eq!(
        done,
        (0..n).map(|i| (i, true)).collect::<Vec<_>>(),
        "{modes:?} {end:?}: not every callback was in at once"
    );
    let mut got = ran.get();
    got.sort();
    let expected: Vec<(usize, String, bool)> = modes
        .iter()
        .enumerate()
        .map(|(i, mode)| {
            let on = match mode {
                Dispatch::Inline => "rtm-reader",
                Dispatch::Threads => "rtm-dispatch",
                _ => "",
            };
            (i, on.to_owned(), true)
        })
        .collect();
    let got_named: Vec<(usize, String, bool)> = got
        .iter()
        .map(|(i, on, ok)| {
            let on = if modes[*i] == Dispatch::Queued {
                ""
            } else {
                on
            };
            (*i, on.to_owned(), *ok)
        })
        .collect();
    assert_eq!(
        got_named, expected,
        "{modes:?} {end:?}: where the callbacks ran"
    );
    match end {
        End::Close => wait_until("every session closed", || closed.len() == n),
        End::Login => wait_until("every login called back", || logins.len() == n),
        End::Destroy => {}
    }
    // The readers the callbacks ran on end, though an ending call may not have
    // waited for them.
    drop(ends_tx);
    for (i, gone) in ends.iter() {
        assert_eq!(
            gone.recv_timeout(WAIT),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected),
            "{modes:?} {end:?}: the reader of client {i} did not end"
        );
    }
    for client in &clients {
        client.destroy();
    }
    stop.store(true, Ordering::SeqCst);
    for p in pollers {
        p.join().unwrap();
    }
    // Once each, nothing more after the destroys.
    let mut closed = closed.get();
    closed.sort();
    let mut logins = logins.get();
    logins.sort();
    match end {
        End::Close => assert_eq!(closed, (0..n).collect::<Vec<_>>(), "{modes:?}"),
        _ => assert!(closed.is_empty(), "{modes:?} {end:?}: {closed:?}"),
    }
    match end {
        End::Login => assert_eq!(
            logins,
            (0..n).map(|i| (i, true, 0)).collect::<Vec<_>>(),
            "{modes:?}"
        ),
        _ => assert!(logins.is_empty()),
    }
    assert_eq!(ran.len(), n, "{modes:?} {end:?}: a callback ran twice");
}

/// Two `Inline` clients whose callbacks, on their readers at the same time, close,
/// destroy or log in each other, and three that close each other in a ring: no ending
/// waits for a thread that waits for it.
#[test]
fn inline_callbacks_that_end_each_other_at_once_all_return() {
    use Dispatch::Inline;
    ring(&[Inline, Inline], End::Close);
    ring(&[Inline, Inline, Inline], End::Close);
    ring(&[Inline, Inline], End::Destroy);
    ring(&[Inline, Inline], End::Login);
}

/// An `Inline` callback destroys a client whose callback, running at the same time on
/// the dispatcher thread (`Threads`) or in `dispatch_pending` (`Queued`), closes the
/// first client: the destroy does not wait for that running callback, which waits for
/// it, nor the close for the reader.
#[test]
fn an_inline_callback_and_a_dispatched_one_that_end_each_other_at_once_return() {
    use Dispatch::{Inline, Queued, Threads};
    ring(&[Inline, Threads], End::Destroy);
    ring(&[Inline, Queued], End::Destroy);
    ring(&[Inline, Threads], End::Close);
}
