//! Faults caused with the local gate's controls (docs/gate.md, "Test
//! controls on the handle"), each test named after what it proves: every
//! callback runs exactly once whatever the link does, and the session
//! recovers by itself (docs/architecture.md, "The session").
#![cfg(feature = "gate")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::Receiver;
use rtm_client::gate::Gate;
use rtm_client::{blocking, error_code, RtmClient, RtmOptions};

/// Callbacks counted per quest, and every result code on a channel.
struct Calls {
    counts: Arc<Vec<AtomicU32>>,
    codes: Receiver<i32>,
}

impl Calls {
    /// Sends `n` messages from `client` to uid 1002, each with `timeout` ms.
    fn send(client: &RtmClient, n: usize, timeout: u64) -> Calls {
        let counts: Arc<Vec<AtomicU32>> = Arc::new((0..n).map(|_| AtomicU32::new(0)).collect());
        let (tx, codes) = crossbeam_channel::unbounded();
        for i in 0..n {
            let (counts, tx) = (counts.clone(), tx.clone());
            client.send_message(1002, 30, "m", "", 0, timeout, move |e, _| {
                counts[i].fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(e.map_or(0, |e| e.error.code));
            });
        }
        Calls { counts, codes }
    }

    /// Waits for every callback; returns the codes, in completion order.
    fn wait_all(&self) -> Vec<i32> {
        let deadline = Instant::now() + WAIT * 3;
        (0..self.counts.len())
            .map(|i| {
                self.codes
                    .recv_deadline(deadline)
                    .unwrap_or_else(|_| panic!("only {i} of {} callbacks ran", self.counts.len()))
            })
            .collect()
    }

    /// Every callback ran exactly once, so far.
    fn assert_each_once(&self) {
        let wrong: Vec<(usize, u32)> = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.load(Ordering::SeqCst)))
            .filter(|&(_, c)| c != 1)
            .take(10)
            .collect();
        assert!(
            wrong.is_empty(),
            "(quest, callbacks) not run once: {wrong:?}"
        );
        assert!(self.codes.try_recv().is_err(), "a callback ran twice");
    }
}

/// Waits for the relogin that succeeds; returns its attempt number. An attempt whose `auth` reached a
/// paused gate times out (20003, after the login's 1 s timeout), or loses its
/// link when the resumed gate closes connections silent for three ping
/// intervals (20002), and is retried: those are the only failures allowed,
/// with `also` (a test's own, such as 20012 for a gate that is restarting).
fn successful_relogin(ev: &mut Events, also: i32) -> u32 {
    ev.wait("the successful relogin", |e| match *e {
        Ev::Relogin {
            ok: true,
            again,
            code,
            n,
            ..
        } => {
            assert_eq!((again, code), (false, 0));
            Some(n)
        }
        Ev::Relogin {
            ok: false,
            again,
            code,
            ..
        } => {
            assert!(again, "the series stopped with {code}");
            assert!(
                code == error_code::FPNN_EC_CORE_TIMEOUT
                    || code == error_code::FPNN_EC_CORE_CONNECTION_CLOSED
                    || code == also,
                "a relogin failed with {code}"
            );
            None
        }
        _ => None,
    })
}

/// A client of `gate` logged in as uid 1001 with this login timeout (ms),
/// and its events.
fn logged_in(gate: &Gate, timeout: u64) -> (RtmClient, Events) {
    let client = RtmClient::new(options(gate)).unwrap();
    let ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", timeout), (true, 0));
    (client, ev)
}

fn send_ok(client: &RtmClient) {
    blocking(|cb| client.send_message(1002, 30, "after", "", 0, 0, cb))
        .expect("a send on the recovered session");
}

#[test]
fn a_link_dropped_mid_frame_with_10000_quests_in_flight_completes_each_once_then_relogs_in() {
    const N: usize = 10_000;
    let gate = gate();
    let (client, mut ev) = logged_in(&gate, 1_000);
    // Nothing is answered: all N stay in flight until the link drops.
    gate.pause(Duration::from_secs(60));
    let calls = Calls::send(&client, N, 60_000);
    // A whole push then half of the next frame, in one write: once the push
    // is delivered the client holds the half frame, and the drop cuts it.
    // Mids of their own: the fences of tests/common count up from 1, and the
    // client's duplicate filter would drop a fence with a mid seen here.
    let mut bytes = push_frame(FENCE_FROM, 1001, 1 << 40);
    let next = push_frame(FENCE_FROM, 1001, (1 << 40) + 1);
    bytes.extend_from_slice(&next[..next.len() / 2]);
    assert_eq!(gate.send_raw(PID, 1001, &bytes), 1);
    ev.push(FENCE_FROM, 1 << 40);
    assert_eq!(gate.drop_user(PID, 1001), 1);
    // The quests of the dead link are gone with it; the relogin needs answers.
    gate.resume();
    let codes = calls.wait_all();
    assert!(
        codes
            .iter()
            .all(|&c| c == error_code::FPNN_EC_CORE_CONNECTION_CLOSED
                || c == error_code::FPNN_EC_CORE_INVALID_CONNECTION),
        "codes other than 20002/20012: {:?}",
        codes
            .iter()
            .filter(|&&c| c != 20002 && c != 20012)
            .take(10)
            .collect::<Vec<_>>()
    );
    successful_relogin(&mut ev, 0);
    ev.fence(&gate, 1001);
    send_ok(&client);
    calls.assert_each_once();
    assert!(
        ev.pushes().iter().all(|(_, m)| m.mid != (1 << 40) + 1),
        "the cut frame was delivered"
    );
}

#[test]
fn a_half_open_link_is_detected_by_the_ping_watchdog_and_recovered() {
    let gate = Gate::builder()
        .ping_interval(Duration::from_millis(200))
        .start()
        .unwrap();
    let client = RtmClient::new(RtmOptions {
        max_ping_interval_seconds: 1,
        ..options(&gate)
    })
    .unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 1_000), (true, 0));
    ev.wait("a ping", |e| matches!(e, Ev::Ping { .. }).then_some(()));
    // Silent in both directions until resumed: no answers, no pings.
    gate.pause(Duration::from_secs(60));
    let calls = Calls::send(&client, 100, 60_000);
    let (err, _) = ev.error();
    assert_eq!(err.code, error_code::FPNN_EC_CORE_TIMEOUT, "{err}");
    // The quests of the dead link fail once each; none waits for its own 60 s.
    let codes = calls.wait_all();
    assert!(codes.iter().all(|&c| c != 0), "{codes:?}");
    gate.resume();
    successful_relogin(&mut ev, 0);
    ev.fence(&gate, 1001);
    send_ok(&client);
    calls.assert_each_once();
    assert_eq!(ev.count(|e| matches!(e, Ev::Closed { .. })), 0);
}

#[test]
fn refused_connections_are_retried_on_the_regressive_schedule_without_a_tight_loop() {
    const DIVISOR: u32 = 20;
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    // 0, 0, 0, 100, 200, 300, 400, 400... ms (the default schedule / 20).
    client.scale_relogin_waits_for_tests(DIVISOR);
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    gate.refuse_connections(true);
    let base = gate.connection_attempts();
    let dropped = Instant::now();
    assert_eq!(gate.drop_user(PID, 1001), 1);
    // When each attempt was first seen (polled every millisecond).
    let mut seen: Vec<Instant> = Vec::new();
    wait_until("seven refused attempts", || {
        let n = (gate.connection_attempts() - base) as usize;
        while seen.len() < n {
            seen.push(Instant::now());
        }
        n >= 7
    });
    // Attempts 4 to 7 wait 100 + 200 + 300 + 400 ms after the one before,
    // so the 7th is at least 1 s after the drop (seeing it can only be
    // later); a tight loop would have made them in a few milliseconds.
    let spread = seen[6] - dropped;
    assert!(
        spread >= Duration::from_millis(1000),
        "7 attempts within {spread:?} of the drop"
    );
    gate.refuse_connections(false);
    let n = successful_relogin(&mut ev, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
    // One TCP connection per attempt, no more.
    assert_eq!(gate.connection_attempts() - base, u64::from(n));
    assert!(n >= 8, "relogged in at attempt {n}");
    ev.fence(&gate, 1001);
    send_ok(&client);
}

#[test]
fn a_gate_restarted_on_the_same_port_is_relogged_into() {
    let gate = gate();
    let (client, mut ev) = logged_in(&gate, 0);
    gate.pause(Duration::from_secs(60));
    let calls = Calls::send(&client, 1000, 60_000);
    let port = gate.port();
    gate.restart().expect("restart on the same port");
    assert_eq!(gate.port(), port);
    let codes = calls.wait_all();
    assert!(codes.iter().all(|&c| c != 0), "answered by a paused gate");
    // An attempt made between the old listener and the new may be refused.
    successful_relogin(&mut ev, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
    ev.fence(&gate, 1001);
    send_ok(&client);
    calls.assert_each_once();
}

#[test]
fn an_answer_delayed_past_its_timeout_is_dropped_and_the_link_stays_up() {
    let gate = gate();
    let (client, mut ev) = logged_in(&gate, 0);
    gate.set_answer_delay(Duration::from_millis(600));
    let late = Calls::send(&client, 1, 200);
    assert_eq!(late.wait_all(), [error_code::FPNN_EC_CORE_TIMEOUT]);
    // Sent after the first timed out, answered after it (same delay): once
    // this answer is in, the late one has been read and dropped.
    let next = Calls::send(&client, 1, 10_000);
    assert_eq!(next.wait_all(), [0]);
    gate.set_answer_delay(Duration::ZERO);
    send_ok(&client);
    late.assert_each_once();
    next.assert_each_once();
    ev.drain();
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Relogin { .. } | Ev::Closed { .. })),
        0,
        "the link did not stay up: {:#?}",
        ev.seen
    );
    assert_eq!(gate.auth_requests().len(), 1);
}

#[test]
fn a_kickout_with_quests_pending_completes_each_once_and_ends_the_session() {
    let gate = gate();
    let (client, mut ev) = logged_in(&gate, 0);
    gate.pause(Duration::from_secs(60));
    let calls = Calls::send(&client, 1000, 60_000);
    assert_eq!(gate.kickout(PID, 1001), 1);
    let codes = calls.wait_all();
    assert!(codes.iter().all(|&c| c != 0), "answered by a paused gate");
    assert_eq!(ev.closed(), 0);
    gate.resume();
    // Kicked out: no relogin, and the client sends nothing more by itself.
    wait_until("the gate sees the user gone", || {
        gate.connections_of(PID, 1001) == 0
    });
    calls.assert_each_once();
    ev.drain();
    assert_eq!(ev.count(|e| matches!(e, Ev::Relogin { .. })), 0);
    assert_eq!(gate.auth_requests().len(), 1);
}

#[test]
fn a_hundred_clients_dropped_at_once_all_relog_in() {
    const N: i64 = 100;
    let gate = gate();
    let (tx, rx) = crossbeam_channel::unbounded();
    let clients: Vec<RtmClient> = (0..N)
        .map(|i| {
            let c = RtmClient::new(options(&gate)).unwrap();
            let tx = tx.clone();
            c.on_relogin_completed(move |ok, _, code, _| {
                if ok {
                    let _ = tx.send(i);
                } else {
                    assert_eq!(code, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
                }
            });
            assert_eq!(login(&c, 2000 + i, "t", 0), (true, 0));
            c
        })
        .collect();
    assert_eq!(gate.drop_all(), N as usize);
    let deadline = Instant::now() + WAIT * 3;
    let mut back = vec![false; N as usize];
    for _ in 0..N {
        let i = rx.recv_deadline(deadline).expect("every client relogs in");
        assert!(!back[i as usize], "client {i} relogged in twice");
        back[i as usize] = true;
    }
    for (i, c) in clients.iter().enumerate() {
        blocking(|cb| c.send_message(1, 30, "back", "", 0, 0, cb))
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(gate.connections_of(PID, 2000 + i as i64), 1);
    }
}

/// An `auth` that arrives while the gate is paused (which ignores it, as every quest it
/// reads then) is in `auth_requests()` all the same, as it is in the quest log.
#[test]
fn an_auth_read_while_paused_is_logged() {
    let gate = gate();
    gate.pause(Duration::from_secs(60));
    let client = RtmClient::new(options(&gate)).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(1001, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    wait_until("the paused gate logs the auth", || {
        gate.auth_requests().len() == 1
    });
    assert!(rx.is_empty(), "answered by a paused gate");
    client.destroy();
    let (ok, code) = rx.recv_timeout(WAIT).unwrap();
    assert!(!ok && code != 0, "({ok}, {code})");
}

/// `restart()` returns once the old connections' logouts are recorded: a message sent
/// right after it is after the user's last logout, so it counts as unread by the
/// counters' default mtime (docs/gate.md, "Unread"). The logouts used to be recorded
/// by the old connections' threads after `restart()` had returned, usually after such
/// a message.
#[test]
fn a_message_sent_right_after_a_restart_is_after_the_last_logout() {
    let gate = gate();
    let (client, mut ev) = logged_in(&gate, 0);
    client.scale_relogin_waits_for_tests(50);
    gate.restart().expect("restart on the same port");
    let mtime = gate
        .inject_message(PID, 1, 1002, 1001, 77, 30, b"after the restart", "")
        .expect("inject");
    successful_relogin(&mut ev, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
    let unread = blocking(|cb| client.get_p2p_unread_message_num(&[1002], None, None, 0, cb))
        .expect("getp2punread");
    assert_eq!(
        unread.p2p.get(&1002).copied(),
        Some(1),
        "the message stamped {mtime} is not unread: {unread:?}"
    );
}

/// A panic in a test hook's closure (here `rewrite_answers`) ends that connection as a
/// read error would: the gate closes it and records its logout, the send in flight fails
/// with 20002 at once, and the client relogs in. The connection used to stay open with no
/// reader (the send unanswered until its timeout) and registered.
#[test]
fn a_panicking_rewrite_hook_closes_its_connection_and_the_client_relogs_in() {
    let gate = gate();
    let (client, mut ev) = logged_in(&gate, 0);
    client.scale_relogin_waits_for_tests(50);
    let once = std::sync::atomic::AtomicBool::new(true);
    gate.rewrite_answers(Some(Box::new(move |method, _, _| {
        if method == "sendmsg" && once.swap(false, Ordering::SeqCst) {
            panic!("a test hook's bug (expected by this test)");
        }
        None
    })));
    let calls = Calls::send(&client, 1, 600_000);
    assert_eq!(
        calls.wait_all(),
        [error_code::FPNN_EC_CORE_CONNECTION_CLOSED]
    );
    successful_relogin(&mut ev, 0);
    assert_eq!(gate.connections_of(PID, 1001), 1);
    send_ok(&client);
    calls.assert_each_once();
}

/// The session timer thread serves every client's watchdog and relogin
/// waits. When the watchdog ends a session (automatic relogin off), the close
/// waits for the connection's threads, and with `Dispatch::Inline` for a
/// handler the reader is running: that close is performed off the timer
/// thread, so another client's watchdog still fires meanwhile.
#[test]
fn a_watchdog_close_waiting_for_a_slow_inline_handler_holds_no_other_clients_timers() {
    let quick_pings = || {
        Gate::builder()
            .ping_interval(Duration::from_millis(200))
            .start()
            .unwrap()
    };
    let (g1, g2) = (quick_pings(), quick_pings());
    // A: its reader blocks in a push handler until the test is done.
    let a = RtmClient::new(RtmOptions {
        dispatch: rtm_client::Dispatch::Inline,
        auto_reconnect: false,
        max_ping_interval_seconds: 1,
        ..options(&g1)
    })
    .unwrap();
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (release, release_rx) = crossbeam_channel::bounded::<()>(1);
    a.processor().on(rtm_client::PushEvent::RecvChat, move |_| {
        let _ = entered_tx.send(());
        let _ = release_rx.recv_timeout(3 * WAIT);
    });
    assert_eq!(login(&a, 1001, "t", 0), (true, 0));
    g1.inject_message(PID, 1, 2002, 1001, 77, 30, b"hold", "")
        .unwrap();
    entered.recv_timeout(WAIT).unwrap();
    // No ping read for 1 s: A's watchdog ends the session, whose close shuts
    // the socket and then waits for the reader, busy in the handler.
    wait_until("A's watchdog closed its connection", || {
        g1.connection_count() == 0
    });

    // B, on another gate, then loses its pings: its watchdog must fire.
    let b = RtmClient::new(RtmOptions {
        max_ping_interval_seconds: 1,
        ..options(&g2)
    })
    .unwrap();
    let mut ev = Events::attach(&b);
    assert_eq!(login(&b, 1001, "t", 0), (true, 0));
    g2.pause(Duration::from_secs(60));
    let (err, _) = ev.error();
    assert_eq!(err.code, error_code::FPNN_EC_CORE_TIMEOUT, "{err}");
    release.send(()).unwrap();
    g2.resume();
    b.destroy();
    a.destroy();
}

/// `max_ping_interval_seconds: 0` means the default, 60 s (docs/porting.md),
/// not a watchdog of 0 or 1 s (which dropped every session). Z (0) logs in
/// before C (1 s), on a gate that sends no pings. Every client's watchdog
/// is a wake-up on one timer thread, taken in deadline order
/// (src/client/timers.rs), and the tick ends the session at once: so once
/// C's watchdog has ended C's session, Z's would have ended Z's before, were
/// its bound 1 s or less. No timing is assumed beyond Z's 60 s being longer
/// than the test.
#[test]
fn a_max_ping_interval_of_0_means_the_default_not_a_shorter_watchdog() {
    let gate = Gate::builder()
        .ping_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    let client = |max_ping_interval_seconds| {
        RtmClient::new(RtmOptions {
            max_ping_interval_seconds,
            auto_reconnect: false,
            ..options(&gate)
        })
        .unwrap()
    };
    let z = client(0);
    let mut zev = Events::attach(&z);
    assert_eq!(login(&z, 1001, "t", 0), (true, 0));
    let c = client(1);
    let mut cev = Events::attach(&c);
    assert_eq!(login(&c, 1002, "t", 0), (true, 0));
    let code = cev.wait("C's watchdog ends its session", |e| match e {
        Ev::Closed { code, .. } => Some(*code),
        _ => None,
    });
    assert_eq!(code, error_code::FPNN_EC_CORE_UNKNOWN_ERROR);
    // Z's session goes on: a call is answered, and nothing was reported.
    blocking(|cb| z.send_message(1002, 30, "still here", "", 0, 0, cb)).expect("Z's session ended");
    assert_eq!(gate.connections_of(PID, 1001), 1);
    zev.drain();
    assert_eq!(
        zev.count(|e| matches!(e, Ev::Closed { .. } | Ev::Error { .. })),
        0,
        "{:?}",
        zev.seen
    );
    z.destroy();
    c.destroy();
}
