//! The session's life after a loss: automatic relogin with the regressive
//! schedule, the ping watchdog, kickout, and relogins that must stop
//! (docs/architecture.md, "The session").
#![cfg(feature = "gate")]

mod common;

use std::time::{Duration, Instant};

use common::raw::RawServer;
use common::*;
use rtm_client::gate::Gate;
use rtm_client::{error_code, RtmClient, RtmOptions};

/// The default schedule, 0, 0, 0, 2000, 4000, 6000, 8000, 8000, ... ms,
/// before attempt `n` (1-based).
fn schedule_ms(n: u32) -> u64 {
    if n <= 3 {
        0
    } else {
        (2000 * u64::from(n - 3)).min(8000)
    }
}

#[test]
fn a_dropped_connection_is_relogged_in_once_with_retried_count_1() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    assert_eq!(gate.drop_user(PID, 1001), 1);
    let (ok, again, code, n, _) = ev.relogin();
    assert_eq!((ok, again, code, n), (true, false, 0, 1));
    one_connection(&gate, 1001);
    assert_eq!(gate.auth_requests().len(), 2);
    // The session is usable again, and a second drop starts a new series at 1.
    ev.fence(&gate, 1001);
    assert_eq!(gate.drop_user(PID, 1001), 1);
    let (ok, again, code, n, _) = ev.relogin();
    assert_eq!((ok, again, code, n), (true, false, 0, 1));
    ev.fence(&gate, 1001);
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Closed { .. })),
        0,
        "{:#?}",
        ev.seen
    );
}

#[test]
fn refused_relogins_follow_the_regressive_schedule_until_one_succeeds() {
    const DIVISOR: u32 = 20;
    const REFUSED: u32 = 5;
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    // The real waits (2 s, 4 s, ...) scaled down; the exact schedule is
    // unit-tested in src/client/machine_tests.rs with time passed in.
    client.scale_relogin_waits_for_tests(DIVISOR);
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));

    gate.refuse_connections(true);
    let dropped_at = Instant::now();
    assert_eq!(gate.drop_user(PID, 1001), 1);
    let mut series = Vec::new();
    loop {
        let r = ev.relogin();
        series.push(r);
        if series.len() as u32 == REFUSED {
            gate.refuse_connections(false);
        }
        if r.0 {
            break;
        }
    }

    // (false, true, code, 1..) while refused, then (true, false, 0, n). The
    // test thread lifts the refusal after event 5; the attempt after it may
    // still be refused if this thread ran late, so n is at least 6.
    let n = series.len() as u32;
    assert!(n > REFUSED, "{series:?}");
    for (i, &(ok, again, code, k, _)) in series.iter().enumerate() {
        let expect_n = i as u32 + 1;
        if expect_n < n {
            assert_eq!(
                (ok, again, code, k),
                (
                    false,
                    true,
                    error_code::FPNN_EC_CORE_INVALID_CONNECTION,
                    expect_n
                )
            );
        } else {
            assert_eq!((ok, again, code, k), (true, false, 0, n));
        }
    }

    // Lower bounds only. Cumulative: the handler of event k runs after
    // attempt k, which starts after all k scheduled waits since the drop.
    let scaled = |k: u32| Duration::from_millis(schedule_ms(k) / u64::from(DIVISOR));
    let mut total = Duration::ZERO;
    let mut gaps = Vec::new();
    for k in 1..=n {
        total += scaled(k);
        let at = series[k as usize - 1].4;
        assert!(
            at - dropped_at >= total,
            "event {k} came {:?} after the drop, before the scheduled {total:?}",
            at - dropped_at
        );
        if k > 1 {
            // Between consecutive events: attempt k waits scaled(k) after
            // event k-1 was emitted. The earlier handler can run a little
            // after its emission (the dispatcher thread's wake-up), which
            // the allowance absorbs; the cumulative bound above has none.
            let gap = at - series[k as usize - 2].4;
            gaps.push(gap);
            let allowance = Duration::from_millis(10);
            assert!(
                gap + allowance >= scaled(k),
                "wait before attempt {k} was {gap:?}, scheduled {:?}",
                scaled(k)
            );
        }
    }
    eprintln!("relogin waits between attempts 2..={n} (divisor {DIVISOR}): {gaps:?}");
    one_connection(&gate, 1001);
}

#[test]
fn a_relogin_whose_auth_times_out_keeps_retrying() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 500), (true, 0));
    gate.pause(Duration::from_secs(60));
    assert_eq!(gate.drop_user(PID, 1001), 1);
    // The relogin's auth goes unanswered (the JavaScript SDK would stop here).
    let (ok, again, code, n, _) = ev.relogin();
    assert_eq!(
        (ok, again, code, n),
        (false, true, error_code::FPNN_EC_CORE_TIMEOUT, 1)
    );
    gate.resume();
    let mut last = n;
    loop {
        let (ok, again, code, n, _) = ev.relogin();
        assert_eq!(n, last + 1);
        last = n;
        if ok {
            assert_eq!((again, code), (false, 0));
            break;
        }
        assert_eq!((again, code), (true, error_code::FPNN_EC_CORE_TIMEOUT));
    }
    one_connection(&gate, 1001);
}

#[test]
fn a_token_rejected_on_relogin_ends_the_session_with_200027() {
    let a = Gate::builder().token(1001, "t").start().unwrap();
    let port = a.port();
    let client = RtmClient::new(options(&a)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    // The gate comes back on the same port, no longer accepting the token.
    a.shutdown();
    let b = start_on_port(Gate::builder().token(1001, "other"), port);

    let (ok, again, code, n) = ev.wait("the rejected relogin", |e| match *e {
        Ev::Relogin {
            ok, again, code, n, ..
        } if !again => Some((ok, again, code, n)),
        Ev::Relogin {
            ok: false,
            again: true,
            code,
            ..
        } => {
            assert_eq!(code, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
            None
        }
        _ => None,
    });
    assert_eq!(
        (ok, again, code),
        (false, false, error_code::RTM_EC_INVALID_AUTH_TOEKN)
    );
    assert_eq!(
        n as usize,
        ev.count(|e| matches!(e, Ev::Relogin { .. })),
        "retried_count counts every attempt"
    );
    assert_eq!(ev.closed(), error_code::RTM_EC_INVALID_AUTH_TOEKN);
    assert_eq!(
        b.auth_requests().len(),
        1,
        "one rejected auth, then no more attempts"
    );

    // Fence: a fresh login with the right token is the next auth B sees.
    assert_eq!(login(&client, 1001, "other", 0), (true, 0));
    assert_eq!(b.auth_requests().len(), 2);
    ev.fence(&b, 1001);
    assert_eq!(ev.count(|e| matches!(e, Ev::Relogin { .. })), n as usize);
    assert_eq!(ev.count(|e| matches!(e, Ev::Closed { .. })), 1);
}

#[test]
fn kickout_ends_the_session_with_0_and_no_relogin() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    assert_eq!(gate.kickout(PID, 1001), 1);
    ev.wait("kickout", |e| matches!(e, Ev::Kickout).then_some(()));
    assert_eq!(ev.closed(), 0);
    wait_until("the client closed its connection", || {
        gate.connection_count() == 0
    });
    assert_eq!(gate.connections_of(PID, 1001), 0);

    // Synchronisation point: a new login is the next auth the gate sees,
    // so no relogin attempt happened in between.
    assert_eq!(gate.auth_requests().len(), 1);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    assert_eq!(gate.auth_requests().len(), 2);
    ev.fence(&gate, 1001);
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Relogin { .. })),
        0,
        "{:#?}",
        ev.seen
    );
    assert_eq!(ev.count(|e| matches!(e, Ev::Closed { .. })), 1);
}

#[test]
fn a_lost_connection_without_auto_reconnect_ends_the_session_with_20001() {
    let gate = gate();
    let client = RtmClient::new(RtmOptions {
        auto_reconnect: false,
        ..options(&gate)
    })
    .unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    gate.drop_user(PID, 1001);
    assert_eq!(ev.closed(), error_code::FPNN_EC_CORE_UNKNOWN_ERROR);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    assert_eq!(gate.auth_requests().len(), 2);
    ev.fence(&gate, 1001);
    assert_eq!(ev.count(|e| matches!(e, Ev::Relogin { .. })), 0);

    // start_auto_reconnect turns relogin on for the current session.
    client.start_auto_reconnect();
    gate.drop_user(PID, 1001);
    let (ok, again, code, n, _) = ev.relogin();
    assert_eq!((ok, again, code, n), (true, false, 0, 1));
}

#[test]
fn close_during_the_relogin_waits_stops_the_series() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    gate.refuse_connections(true);
    gate.drop_user(PID, 1001);
    // Attempts 1 to 3 go at once; the 4th waits 2 s, during which we close.
    for k in 1..=3 {
        let (ok, again, _, n, _) = ev.relogin();
        assert_eq!((ok, again, n), (false, true, k));
    }
    client.close();
    assert_eq!(ev.closed(), 0);
    gate.refuse_connections(false);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    assert_eq!(
        gate.auth_requests().len(),
        2,
        "only the two logins reached the gate"
    );
    ev.fence(&gate, 1001);
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Relogin { .. })),
        3,
        "{:#?}",
        ev.seen
    );
}

#[test]
fn ping_starvation_is_detected_and_relogged_in_after_the_pause() {
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
    assert_eq!(login(&client, 1001, "t", 500), (true, 0));
    for _ in 0..2 {
        ev.wait("a ping", |e| matches!(e, Ev::Ping { .. }).then_some(()));
    }
    let paused_at = Instant::now();
    gate.pause(Duration::from_millis(1500));
    let (err, detected_at) = ev.error();
    assert_eq!(err.code, error_code::FPNN_EC_CORE_TIMEOUT, "{err}");
    let last_ping = ev
        .seen
        .iter()
        .rev()
        .find_map(|e| match *e {
            Ev::Ping { at } => Some(at),
            _ => None,
        })
        .unwrap();
    let latency = detected_at - last_ping;
    eprintln!(
        "ping starvation detected {latency:?} after the last ping ({:?} after the pause began)",
        detected_at - paused_at
    );
    assert!(
        latency <= Duration::from_secs(2),
        "detected {latency:?} after the last ping"
    );

    // Auths sent during the pause are never answered (20003 after 500 ms);
    // the series succeeds once the gate answers again.
    let (ok, again, code, n, at) = ev.wait("the successful relogin", |e| match *e {
        Ev::Relogin {
            ok: true,
            again,
            code,
            n,
            at,
        } => Some((true, again, code, n, at)),
        Ev::Relogin {
            ok: false,
            again,
            code,
            ..
        } => {
            assert_eq!((again, code), (true, error_code::FPNN_EC_CORE_TIMEOUT));
            None
        }
        _ => None,
    });
    assert_eq!((ok, again, code), (true, false, 0));
    assert!(
        at - paused_at >= Duration::from_millis(1500),
        "relogged in during the pause"
    );
    assert_eq!(n as usize, ev.count(|e| matches!(e, Ev::Relogin { .. })));
    ev.fence(&gate, 1001);
}

/// The worker must not lose a close that races with the auth answer: the
/// scripted server answers `auth` and drops the connection at once, many
/// times; every time the client must notice and log in again.
#[test]
fn a_connection_lost_right_after_the_auth_answer_is_relogged_in() {
    let srv = RawServer::bind();
    let client = RtmClient::new(srv.options()).unwrap();
    let mut ev = Events::attach(&client);
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(1001, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    let mut conn = srv.accept();
    conn.accept_auth(&[]);
    conn.kill();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (true, 0));
    for round in 1..=30 {
        // Accepting proves the client noticed the previous loss.
        let mut conn = srv.accept();
        conn.accept_auth(&[]);
        conn.kill();
        let (ok, again, code, n, _) = ev.relogin();
        assert_eq!((ok, again, code, n), (true, false, 0, 1), "round {round}");
    }
    let mut conn = srv.accept();
    conn.accept_auth(&[]);
    assert!(ev.relogin().0);
}

#[test]
fn huge_option_values_do_not_stop_the_session_thread() {
    let gate = gate();
    let client = RtmClient::new(rtm_client::RtmOptions {
        max_ping_interval_seconds: u64::MAX,
        regressive_strategy: rtm_client::RegressiveStrategy {
            start_connect_failed_count: 1,
            max_interval_seconds: u64::MAX,
            linear_regressive_count: 1,
        },
        ..options(&gate)
    })
    .unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    one_connection(&gate, 1001);
    gate.drop_user(PID, 1001);
    // Attempt 1 waits 0 ms: the session thread is alive and relogs in.
    let (ok, again, code, n, _) = ev.relogin();
    assert_eq!((ok, again, code, n), (true, false, 0, 1));
    client.destroy();
}
