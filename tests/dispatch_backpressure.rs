//! The dispatch queue's limit and policy (docs/architecture.md,
//! "Reliability"): a `Dispatch::Queued` application stops polling while
//! pushes and calls keep arriving. Pushes beyond the queue's limit are
//! dropped and reported through `ErrorRecorder` (never silently); calls made
//! while it is full fail at once with 20011 and send nothing, each callback
//! exactly once, queued (so on the polling thread, in order); once the
//! application polls again, everything queued runs and new calls succeed.
#![cfg(feature = "gate")]

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use rtm_client::{blocking, Dispatch, PushEvent, RtmClient, RtmOptions};

use common::{PID, WAIT};

const UID: i64 = 1;
const LIMIT: usize = 1_000;
const PUSHES: i64 = 3_000;
const CALLS: usize = 250;

/// The number of dropped events the client's 20011 `ErrorRecorder` reports
/// ("N events dropped: ..."), summed.
fn drop_reports(client: &RtmClient) -> Arc<AtomicU64> {
    let reported = Arc::new(AtomicU64::new(0));
    let r = reported.clone();
    client.on_error_recorder(move |e| {
        if e.code == 20011 {
            let n: u64 = e.ex.split(' ').next().and_then(|n| n.parse().ok()).unwrap();
            r.fetch_add(n, Ordering::SeqCst);
        }
    });
    reported
}

/// A `Dispatch::Queued` client logged in as [`UID`] on `gate`, its dispatch queue
/// limited to `limit` and full of pushes: the application stopped polling.
fn full_queued_client(gate: &rtm_client::gate::Gate, limit: usize) -> RtmClient {
    full_queued_client_with(gate, limit, |_| {})
}

/// [`full_queued_client`], with `on_push` handling its pushes: ten of them, from
/// uid 7, mids 1 to 10, of which `limit` are queued and the rest dropped.
fn full_queued_client_with(
    gate: &rtm_client::gate::Gate,
    limit: usize,
    on_push: impl Fn(&rtm_client::PushMessage) + Send + Sync + 'static,
) -> RtmClient {
    full_queued_client_of(common::options(gate), gate, limit, on_push)
}

/// [`full_queued_client_with`] made with `options` (its `dispatch` set to `Queued`).
fn full_queued_client_of(
    options: RtmOptions,
    gate: &rtm_client::gate::Gate,
    limit: usize,
    on_push: impl Fn(&rtm_client::PushMessage) + Send + Sync + 'static,
) -> RtmClient {
    let client = RtmClient::new(RtmOptions {
        dispatch: Dispatch::Queued,
        ..options
    })
    .unwrap();
    client.processor().on(PushEvent::RecvMessage, on_push);
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(
        UID,
        "token",
        move |ok, code| tx.send((ok, code)).unwrap(),
        0,
    );
    poll_until(&client, "logged in", || !rx.is_empty());
    assert_eq!(rx.recv().unwrap(), (true, 0));
    client.set_dispatch_limit_for_tests(limit);
    for mid in 1..=10 {
        gate.inject_message(PID, 1, 7, UID, mid, 51, b"x", "")
            .unwrap();
    }
    blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb)).unwrap();
    assert_eq!(client.dispatch_queue_len_for_tests(), limit, "full");
    client
}

/// Polls until `done`, failing after [`WAIT`].
fn poll_until(client: &RtmClient, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        if client.dispatch_pending() == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[test]
fn a_queued_application_that_stops_polling_keeps_memory_bounded_and_loses_nothing_silently() {
    let gate = common::gate();
    let client = RtmClient::new(RtmOptions {
        dispatch: Dispatch::Queued,
        ..common::options(&gate)
    })
    .unwrap();
    client.set_dispatch_limit_for_tests(LIMIT);
    let delivered = Arc::new(AtomicU64::new(0));
    for e in PushEvent::ALL {
        let d = delivered.clone();
        client.processor().on(e, move |_| {
            d.fetch_add(1, Ordering::SeqCst);
        });
    }
    let reported = drop_reports(&client);
    let login = Arc::new(Mutex::new(None));
    let l = login.clone();
    client.login(
        UID,
        "token",
        move |ok, code| *l.lock() = Some((ok, code)),
        0,
    );
    poll_until(&client, "logged in", || login.lock().is_some());
    assert_eq!(*login.lock(), Some((true, 0)));

    // The application stops polling; pushes keep coming.
    for mid in 1..=PUSHES {
        gate.inject_message(PID, 1, 7, UID, mid, 51, b"x", "")
            .unwrap();
    }
    // A blocking call's answer bypasses the queue, and comes after every
    // push sent before it on the connection: all of them have been handled.
    let fence = blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb));
    assert!(fence.is_ok(), "{fence:?}");
    assert_eq!(
        client.dispatch_queue_len_for_tests(),
        LIMIT,
        "full, not over"
    );

    // Calls while full fail at once with 20011, each exactly once.
    let calls: Arc<Vec<AtomicUsize>> = Arc::new((0..CALLS).map(|_| AtomicUsize::new(0)).collect());
    let codes = Arc::new(Mutex::new(Vec::new()));
    for n in 0..CALLS {
        let (calls, codes) = (calls.clone(), codes.clone());
        client.get_p2p_unread_message_num(&[7], None, None, 0, move |e, _| {
            calls[n].fetch_add(1, Ordering::SeqCst);
            codes.lock().push(e.map(|e| e.code));
        });
    }
    // Nothing was sent for them, and nothing ran off the polling thread:
    // the queue holds the limit plus exactly their callbacks.
    assert_eq!(client.dispatch_queue_len_for_tests(), LIMIT + CALLS);
    assert!(codes.lock().is_empty());

    // Polling again runs the rest, then reports the dropped pushes.
    poll_until(&client, "everything ran", || {
        codes.lock().len() == CALLS
            && delivered.load(Ordering::SeqCst) + reported.load(Ordering::SeqCst) == PUSHES as u64
    });
    assert!(calls.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    assert!(codes.lock().iter().all(|c| *c == Some(20011)));
    assert_eq!(delivered.load(Ordering::SeqCst), LIMIT as u64);
    assert_eq!(
        reported.load(Ordering::SeqCst),
        PUSHES as u64 - LIMIT as u64
    );

    // With room again, calls go through.
    let ok = Arc::new(Mutex::new(None));
    let o = ok.clone();
    client.get_p2p_unread_message_num(&[7], None, None, 0, move |e, _| {
        *o.lock() = Some(e.map(|e| e.code))
    });
    poll_until(&client, "a call answered", || ok.lock().is_some());
    assert_eq!(*ok.lock(), Some(None));
    client.destroy();
}

/// File sends (src/api/files.rs) check the queue like every other call.
mod file_sends {
    use super::{full_queued_client, poll_until};
    use rtm_client::gate::Gate;
    use rtm_client::RtmFile;

    const LIMIT: usize = 4;

    /// While the queue is full, the file sends fail at once with 20011 and send nothing, as
    /// every other call does (they asked for a token and uploaded the whole file).
    #[test]
    fn a_file_send_made_while_the_queue_is_full_fails_with_20011_and_sends_nothing() {
        let gate = Gate::builder().record_quests(true).start().expect("gate");
        let client = full_queued_client(&gate, LIMIT);
        gate.clear_quest_log();

        let (tx, rx) = crossbeam_channel::unbounded();
        let t = tx.clone();
        client.send_message(7, 51, "text", "", 0, 0, move |e, _| {
            t.send(("send_message", e.map(|e| e.error.code))).unwrap()
        });
        client.send_file(
            50,
            7,
            &RtmFile::new("a.bin", vec![7u8; 4096]),
            0,
            0,
            move |e, _| tx.send(("send_file", e.map(|e| e.error.code))).unwrap(),
        );
        let mut got = Vec::new();
        poll_until(&client, "both calls are called back", || {
            got.extend(rx.try_iter());
            got.len() == 2
        });
        assert_eq!(
            got,
            [("send_message", Some(20011)), ("send_file", Some(20011))],
            "quests the gate read meanwhile: {:?}",
            gate.quest_log()
                .iter()
                .map(|(m, _)| m.clone())
                .collect::<Vec<_>>()
        );
        client.destroy();
    }
}

/// `login` checks the queue like every other call.
mod login {
    use super::{full_queued_client, poll_until, UID};
    use crate::common::*;
    use rtm_client::blocking;

    const LIMIT: usize = 4;

    /// While the queue is full, `login` fails at once with `(false, 20011)` and sends
    /// nothing, as every other call does (docs/reliability.md); the session it would have
    /// replaced goes on. It used to open a new connection and log in, its callback queued
    /// past the limit, and the new session's pushes dropped.
    #[test]
    fn a_login_made_while_the_queue_is_full_fails_with_20011_and_leaves_the_session_alone() {
        let gate = gate();
        let client = full_queued_client(&gate, LIMIT);

        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(
            UID + 1,
            "token",
            move |ok, code| tx.send((ok, code)).unwrap(),
            0,
        );
        // Refused at once: its callback is queued, behind what waits there.
        assert_eq!(client.dispatch_queue_len_for_tests(), LIMIT + 1);
        poll_until(&client, "the login is called back", || !rx.is_empty());
        assert_eq!(rx.recv().unwrap(), (false, 20011));
        assert_eq!(gate.auth_requests().len(), 1, "a second auth was sent");
        assert_eq!(gate.connection_count(), 1);
        assert_eq!(gate.connections_of(PID, UID), 1);

        // With room again, the session is the one it was, and a login goes through.
        blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb)).unwrap();
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(
            UID + 1,
            "token",
            move |ok, code| tx.send((ok, code)).unwrap(),
            0,
        );
        poll_until(&client, "the second login is called back", || {
            !rx.is_empty()
        });
        assert_eq!(rx.recv().unwrap(), (true, 0));
        client.destroy();
    }
}

/// Dropped events in `Dispatch::Threads` mode.
mod threads_mode {
    use super::UID;
    use crate::common::*;
    use rtm_client::{blocking, PushEvent};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const LIMIT: usize = 4;
    const PUSHES: i64 = 20;

    /// In `Dispatch::Threads` mode events dropped while the queue was full are reported once
    /// the dispatcher thread has made room, also when no later event comes (only a later
    /// event reported them).
    #[test]
    fn events_dropped_in_threads_mode_are_reported_once_the_queue_has_room() {
        let gate = gate();
        let client = online(options(&gate), UID);
        client.set_dispatch_limit_for_tests(LIMIT);
        let delivered = Arc::new(AtomicU64::new(0));
        let d = delivered.clone();
        client.processor().on(PushEvent::RecvMessage, move |_| {
            d.fetch_add(1, Ordering::SeqCst);
        });
        let reported = super::drop_reports(&client);

        // A callback holds the dispatcher thread while pushes arrive.
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (release, release_rx) = crossbeam_channel::bounded::<()>(1);
        client.get_p2p_unread_message_num(&[7], None, None, 0, move |_, _| {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(WAIT);
        });
        started.recv_timeout(WAIT).unwrap();
        for mid in 1..=PUSHES {
            gate.inject_message(PID, 1, 7, UID, mid, 51, b"x", "")
                .unwrap();
        }
        // Its answer bypasses the queue and follows every push: all were handled.
        blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb)).unwrap();
        assert_eq!(client.dispatch_queue_len_for_tests(), LIMIT, "full");
        release.send(()).unwrap();

        // Room again: the queue drains, calls go through and are answered.
        wait_until("the queued pushes ran", || {
            delivered.load(Ordering::SeqCst) == LIMIT as u64
        });
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.get_p2p_unread_message_num(&[7], None, None, 0, move |e, _| {
            tx.send(e.map(|e| e.code)).unwrap()
        });
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), None);
        assert_eq!(delivered.load(Ordering::SeqCst), LIMIT as u64);
        wait_until(
            "the dropped pushes to be reported through ErrorRecorder",
            || reported.load(Ordering::SeqCst) == (PUSHES as u64 - LIMIT as u64),
        );
        client.destroy();
    }
}

/// The lifecycle events (`SessionClosed`, `ReloginCompleted`, a kickout) are never
/// dropped by the limit, only pushes (and whatever else arrives per network message) are
/// (docs/reliability.md, "Backpressure in the dispatch queue"): an application that
/// stopped polling under a push flood still learns, once it polls again, that its session
/// ended, after everything of that session queued before, the report of the dropped
/// pushes included, and nothing of the session after it.
mod lifecycle {
    use super::{full_queued_client_of, poll_until, UID};
    use crate::common::*;
    use parking_lot::Mutex;
    use rtm_client::{blocking, RegressiveStrategy, RtmClient, RtmOptions};
    use std::sync::Arc;

    const LIMIT: usize = 4;
    /// How many of `full_queued_client_with`'s ten pushes were dropped.
    const DROPPED: u64 = 10 - LIMIT as u64;

    /// What ran on the polling thread, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ran {
        Push(i64),
        /// An `ErrorRecorder` 20011: this many events dropped.
        Dropped(u64),
        /// Another `ErrorRecorder`.
        Error(i32),
        Relogin(bool, bool),
        Kickout,
        Closed(i32),
    }

    /// A full `Dispatch::Queued` client whose pushes, events and kickouts are logged.
    fn logged_client(gate: &rtm_client::gate::Gate) -> (RtmClient, Arc<Mutex<Vec<Ran>>>) {
        logged_client_of(options(gate), gate)
    }

    /// [`logged_client`] made with `options`.
    fn logged_client_of(
        options: RtmOptions,
        gate: &rtm_client::gate::Gate,
    ) -> (RtmClient, Arc<Mutex<Vec<Ran>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let client = full_queued_client_of(options, gate, LIMIT, move |m| {
            l.lock().push(Ran::Push(m.mid))
        });
        let l = log.clone();
        client.on_error_recorder(move |e| {
            l.lock().push(if e.code == 20011 {
                Ran::Dropped(e.ex.split(' ').next().and_then(|n| n.parse().ok()).unwrap())
            } else {
                Ran::Error(e.code)
            })
        });
        let l = log.clone();
        client.on_relogin_completed(move |ok, again, _, _| l.lock().push(Ran::Relogin(ok, again)));
        let l = log.clone();
        client
            .processor()
            .on_kickout(move || l.lock().push(Ran::Kickout));
        let l = log.clone();
        client.on_session_closed(move |code| l.lock().push(Ran::Closed(code)));
        (client, log)
    }

    /// Polls until `SessionClosed` ran and returns what ran (nothing more comes: the
    /// queue is empty after it).
    fn poll_to_the_end(client: &RtmClient, log: &Mutex<Vec<Ran>>) -> Vec<Ran> {
        poll_until(client, "SessionClosed ran", || {
            log.lock().iter().any(|r| matches!(r, Ran::Closed(_)))
        });
        client.dispatch_pending();
        assert_eq!(client.dispatch_queue_len_for_tests(), 0);
        log.lock().clone()
    }

    /// The pushes queued before the queue filled, in order.
    fn queued_pushes() -> Vec<Ran> {
        (1..=LIMIT as i64).map(Ran::Push).collect()
    }

    /// `close()` while the queue is full: `SessionClosed(0)` is queued past the limit,
    /// after the queued pushes and the report of the dropped ones. It used to be dropped
    /// itself (counted in that report, which came after everything).
    #[test]
    fn a_session_closed_while_the_queue_is_full_is_delivered_last() {
        let gate = gate();
        let (client, log) = logged_client(&gate);
        client.close();
        // Queued before `close()` returned, past the limit: the report and the event.
        assert_eq!(client.dispatch_queue_len_for_tests(), LIMIT + 2);
        let mut want = queued_pushes();
        want.extend([Ran::Dropped(DROPPED), Ran::Closed(0)]);
        assert_eq!(poll_to_the_end(&client, &log), want);
        client.destroy();
    }

    /// A relogin and then a kickout while the queue is full: `ReloginCompleted`, the
    /// kickout handler and `SessionClosed(0)` are all delivered, in that order, after the
    /// queued pushes, and every dropped event is reported before `SessionClosed`.
    #[test]
    fn relogin_completed_and_a_kickout_while_the_queue_is_full_are_delivered_in_order() {
        let gate = gate();
        let (client, log) = logged_client(&gate);
        // A call inside `blocking()` bypasses the queue: it goes through once the session
        // is online again, and fails once it has ended.
        let call = || blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb));
        // The connection drops; the client logs in again (the first attempt at once).
        gate.restart().unwrap();
        wait_until("the client to lose its connection", || call().is_err());
        wait_until("the client to log in again", || call().is_ok());
        // Its kickout handler is queued before the session ends.
        assert_eq!(gate.kickout(PID, UID), 1);
        wait_until("the kickout to end the session", || call().is_err());
        // Returns once the kickout's ending (its `SessionClosed`) is queued.
        client.close();
        let ran = poll_to_the_end(&client, &log);
        let (pushes, rest) = ran.split_at(LIMIT);
        assert_eq!(pushes, queued_pushes());
        let lifecycle: Vec<_> = rest
            .iter()
            .filter(|r| !matches!(r, Ran::Dropped(_) | Ran::Error(_)))
            .cloned()
            .collect();
        // Attempts made before the gate listened again fail, and the series goes on.
        let (failed, last) = lifecycle.split_at(lifecycle.len().saturating_sub(3));
        assert!(
            failed.iter().all(|r| *r == Ran::Relogin(false, true)),
            "{ran:?}"
        );
        assert_eq!(
            last,
            [Ran::Relogin(true, false), Ran::Kickout, Ran::Closed(0)],
            "{ran:?}"
        );
        let reported: u64 = rest
            .iter()
            .map(|r| match r {
                Ran::Dropped(n) => *n,
                _ => 0,
            })
            .sum();
        assert!(reported >= DROPPED, "{ran:?}");
        assert_eq!(ran.last(), Some(&Ran::Closed(0)), "nothing after it");
        client.destroy();
    }

    /// Every handler of a kept `ReloginCompleted` runs: with two handlers, the second
    /// one's job is queued with the first's, though the first one's queuing marked a
    /// successful relogin as waiting in the full queue.
    #[test]
    fn every_relogin_completed_handler_runs_while_the_queue_is_full() {
        let gate = gate();
        let (client, log) = logged_client(&gate);
        let l = log.clone();
        client.on_relogin_completed(move |ok, again, _, _| l.lock().push(Ran::Relogin(ok, again)));
        let call = || blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb));
        assert_eq!(gate.drop_user(PID, UID), 1);
        wait_until("the client to log in again", || {
            gate.connections_of(PID, UID) == 1 && call().is_ok()
        });
        client.close();
        let ran = poll_to_the_end(&client, &log);
        let relogins = ran
            .iter()
            .filter(|r| **r == Ran::Relogin(true, false))
            .count();
        assert_eq!(relogins, 2, "{ran:?}");
        client.destroy();
    }

    /// With `max_interval_seconds: 0` nothing paces the relogin attempts: against a gate
    /// that refuses connections they come as fast as it refuses them. While the queue is
    /// full, the `ReloginCompleted` of each failed attempt that will be retried is dropped
    /// and counted, as a push is, so the queue does not grow with the attempts; the one
    /// that ends the series is kept (and comes after the report of those dropped).
    #[test]
    fn failed_relogin_attempts_do_not_grow_a_full_queue() {
        let gate = gate();
        let (client, log) = logged_client_of(
            RtmOptions {
                regressive_strategy: RegressiveStrategy {
                    max_interval_seconds: 0,
                    ..Default::default()
                },
                ..options(&gate)
            },
            &gate,
        );
        gate.refuse_connections(true);
        let before = gate.connection_attempts();
        assert_eq!(gate.drop_user(PID, UID), 1);
        // Each attempt is made after the one before failed and emitted its event.
        wait_until("twenty refused attempts", || {
            gate.connection_attempts() >= before + 20
        });
        assert_eq!(
            client.dispatch_queue_len_for_tests(),
            LIMIT,
            "the failed attempts' events are dropped"
        );
        gate.refuse_connections(false);
        let call = || blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb));
        wait_until("the client to log in again", || call().is_ok());
        client.close();
        let ran = poll_to_the_end(&client, &log);
        let (pushes, rest) = ran.split_at(LIMIT);
        assert_eq!(pushes, queued_pushes());
        let reported: u64 = rest
            .iter()
            .map(|r| match r {
                Ran::Dropped(n) => *n,
                _ => 0,
            })
            .sum();
        // The pushes dropped, the connection's loss (an `ErrorRecorder`) and at least
        // nineteen failed attempts.
        assert!(reported >= DROPPED + 19, "{ran:?}");
        let lifecycle: Vec<_> = rest
            .iter()
            .filter(|r| !matches!(r, Ran::Dropped(_) | Ran::Error(_)))
            .cloned()
            .collect();
        assert_eq!(
            lifecycle,
            [Ran::Relogin(true, false), Ran::Closed(0)],
            "{ran:?}"
        );
        client.destroy();
    }
}

/// A connection that keeps being lost right after it logged in again (a gate that drops
/// the link after `auth`, a flapping network) makes one relogin series per connection,
/// each ended by a successful `ReloginCompleted`, and with the default strategy the first
/// attempt of each is made at once. While the queue is full and the application does not
/// poll, those must not pile up past the limit one per connection: only the first waits
/// in the queue (the others, which would tell the application nothing it does not learn
/// from it, are dropped and counted), so the queue stays bounded.
mod flapping {
    use super::{full_queued_client_with, poll_until, UID};
    use crate::common::*;
    use parking_lot::Mutex;
    use rtm_client::blocking;
    use std::sync::Arc;

    const LIMIT: usize = 4;
    const CYCLES: usize = 20;

    #[test]
    fn a_connection_lost_after_each_relogin_does_not_grow_a_full_queue() {
        let gate = gate();
        let client = full_queued_client_with(&gate, LIMIT, |_| {});
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        client.on_relogin_completed(move |ok, again, _, _| l.lock().push((ok, again)));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let c = closed.clone();
        client.on_session_closed(move |code| c.lock().push(code));
        let call = || blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb));
        for _ in 0..CYCLES {
            let before = gate.connection_attempts();
            assert_eq!(gate.drop_user(PID, UID), 1);
            // A new connection, online, and the dropped one gone from the gate.
            wait_until("the client to log in again", || {
                gate.connection_attempts() > before
                    && call().is_ok()
                    && gate.connections_of(PID, UID) == 1
            });
        }
        let len = client.dispatch_queue_len_for_tests();
        // The queued pushes, the first `ReloginCompleted` and the report before it.
        assert!(
            len <= LIMIT + 2,
            "{len} jobs queued for a limit of {LIMIT} after {CYCLES} relogins"
        );
        client.close();
        poll_until(&client, "SessionClosed ran", || !closed.lock().is_empty());
        client.dispatch_pending();
        assert_eq!(*closed.lock(), [0]);
        let got = log.lock().clone();
        assert_eq!(got.first(), Some(&(true, false)), "{got:?}");
        assert!(got.iter().all(|r| *r == (true, false)), "{got:?}");
        client.destroy();
    }
}
