//! Each quest times out at its own deadline, and a quest whose answer races
//! its timeout completes exactly once.
#![cfg(feature = "gate")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtm_client::error_code;
use rtm_client::fpnn::ConnectOptions;
use support::*;

/// Bound on the median lateness of a run of short timeouts. What these tests prove is
/// that each quest has its own deadline: the JavaScript SDK checks once a second, so a
/// run of quests each sent as the previous one timed out would be about a second late
/// each. The median, not the worst, is bounded: one quest delayed by a busy 2-core
/// machine's scheduler must not fail the test, and half of them would have to be. The
/// measured lateness is printed (median about 0.2 ms unloaded).
const MEDIAN_SLACK: Duration = Duration::from_millis(250);

#[test]
fn a_20ms_timeout_fires_no_earlier_than_20ms_and_soon_after() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let timeout = Duration::from_millis(20);
    let mut late = Vec::new();
    for _ in 0..25 {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let start = Instant::now();
        client
            .conn
            .send_quest("never", &empty(), timeout, move |r| {
                let _ = tx.send((Instant::now(), r));
            });
        let (fired, r) = rx.recv_timeout(WAIT).expect("timeout fired");
        assert_eq!(r.unwrap_err().code, error_code::FPNN_EC_CORE_TIMEOUT);
        let elapsed = fired - start;
        assert!(elapsed >= timeout, "fired early: {elapsed:?}");
        late.push(elapsed - timeout);
        s.quest();
    }
    late.sort();
    println!(
        "20 ms timeout lateness over {} quests: min {:?}, median {:?}, max {:?}",
        late.len(),
        late[0],
        late[late.len() / 2],
        late[late.len() - 1]
    );
    assert!(
        late[late.len() / 2] < MEDIAN_SLACK,
        "median lateness {:?}: not a deadline of its own",
        late[late.len() / 2]
    );
    assert!(client.conn.is_open(), "timeouts leave the connection open");
}

#[test]
fn timeouts_fire_in_deadline_order_whatever_the_send_order() {
    let server = TestServer::start();
    let (client, _s) = server.connect();
    let (tx, rx) = crossbeam_channel::unbounded();
    let start = Instant::now();
    for ms in [60u64, 20, 40, 10, 30] {
        let tx = tx.clone();
        client
            .conn
            .send_quest("never", &empty(), Duration::from_millis(ms), move |r| {
                let _ = tx.send((ms, Instant::now(), r.unwrap_err().code));
            });
    }
    let mut order = Vec::new();
    for _ in 0..5 {
        let (ms, at, code) = rx.recv_timeout(WAIT).expect("timeout fired");
        assert_eq!(code, error_code::FPNN_EC_CORE_TIMEOUT);
        let elapsed = at - start;
        assert!(
            elapsed >= Duration::from_millis(ms),
            "{ms} ms quest fired at {elapsed:?}"
        );
        order.push(ms);
    }
    assert_eq!(order, vec![10, 20, 30, 40, 60]);
}

#[test]
fn a_late_answer_is_dropped_and_the_connection_stays_open() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "slow", &empty(), Duration::from_millis(5));
    let (p, _) = s.quest();
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_CORE_TIMEOUT
    );
    s.answer(p.seq, &empty());
    // The next quest gets its own answer, not the late one.
    let rx = send(&client.conn, "next", &empty(), Duration::from_secs(30));
    let (p2, _) = s.quest();
    assert_ne!(p2.seq, p.seq);
    s.answer(p2.seq, &map1("mine", true));
    assert_eq!(get(&result(&rx).unwrap(), "mine"), &rmpv::Value::from(true));
}

#[test]
fn an_answer_racing_its_timeout_completes_the_callback_exactly_once() {
    const N: usize = 2000;
    const BATCH: usize = 20;
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    // The server answers every quest as soon as it reads it.
    let answerer = std::thread::spawn(move || {
        for _ in 0..N {
            let (p, _) = s.quest();
            s.answer(p.seq, &empty());
        }
        s
    });
    let counters = Counters::new(N);
    let answers = Arc::new(AtomicUsize::new(0));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    // Small batches, so the server never falls far behind and each answer
    // arrives about one round trip after its quest: timeouts from 0 to
    // ~5 ms then sit on both sides of it.
    for batch in 0..N / BATCH {
        for k in 0..BATCH {
            let i = batch * BATCH + k;
            let timeout = Duration::from_micros(k as u64 * 250);
            let (c, a, t, done) = (
                counters.0.clone(),
                answers.clone(),
                timeouts.clone(),
                done_tx.clone(),
            );
            client.conn.send_quest("race", &empty(), timeout, move |r| {
                c[i].fetch_add(1, Ordering::SeqCst);
                match r {
                    Ok(_) => a.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        assert_eq!(e.code, error_code::FPNN_EC_CORE_TIMEOUT);
                        t.fetch_add(1, Ordering::SeqCst)
                    }
                };
                let _ = done.send(i);
            });
        }
        for _ in 0..BATCH {
            done_rx
                .recv_timeout(WAIT)
                .expect("every race callback runs");
        }
    }
    let _s = answerer.join().expect("server thread");
    assert_eq!(client.conn.pending(), 0);
    // Closing must not find any of them again.
    client.conn.close();
    assert!(counters.all_exactly_once());
    assert_eq!(counters.total(), N);
    assert!(done_rx.try_recv().is_err(), "no callback ran twice");
    let (a, t) = (
        answers.load(Ordering::SeqCst),
        timeouts.load(Ordering::SeqCst),
    );
    println!("answer/timeout race over {N} quests: {a} answered, {t} timed out");
    assert_eq!(a + t, N);
}

#[test]
fn a_duration_max_timeout_means_no_timeout() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "forever", &empty(), Duration::MAX);
    // A short quest sent after it times out first; the long one still waits.
    let short = send(&client.conn, "short", &empty(), Duration::from_millis(5));
    assert_eq!(
        result(&short).unwrap_err().code,
        error_code::FPNN_EC_CORE_TIMEOUT
    );
    assert_eq!(client.conn.pending(), 1);
    let (p, _) = s.quest();
    assert_eq!(p.method, "forever");
    s.answer(p.seq, &empty());
    assert!(result(&rx).is_ok());
}

#[test]
fn a_timeout_fires_on_time_while_the_writer_is_blocked_on_a_peer_that_does_not_read() {
    let server = TestServer::start();
    // The server side never reads again. A write queue large enough that
    // the quests below are queued (not refused with 20011), so the writer
    // blocks on them.
    let (client, _s) = server.connect_with(ConnectOptions {
        write_queue_limit: 64 << 20,
        ..server.options()
    });
    // Enough bytes to fill both sockets' buffers, so the writer blocks.
    let big = payload_of_len(4 * 1024 * 1024);
    for _ in 0..4 {
        client
            .conn
            .send_quest("big", &big, Duration::from_secs(60), |_| {});
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let start = Instant::now();
    let timeout = Duration::from_millis(50);
    client
        .conn
        .send_quest("small", &empty(), timeout, move |r| {
            let _ = tx.send((Instant::now(), r));
        });
    let (fired, r) = rx.recv_timeout(WAIT).expect("timeout fired");
    assert_eq!(r.unwrap_err().code, error_code::FPNN_EC_CORE_TIMEOUT);
    let elapsed = fired - start;
    // It fired at all: the writer stays blocked on the peer, which never reads, so
    // a timer run by the writer would not have fired within the wait above.
    assert!(elapsed >= timeout, "fired early: {elapsed:?}");
}

#[test]
fn a_timeout_says_which_method_ran_out_and_after_how_long() {
    let server = TestServer::start();
    let (client, _s) = server.connect();
    let (tx, rx) = crossbeam_channel::bounded(1);
    client
        .conn
        .send_quest("sendmsg", &empty(), Duration::from_millis(30), move |r| {
            let _ = tx.send(r);
        });
    let e = rx.recv_timeout(WAIT).expect("timeout fired").unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_TIMEOUT);
    assert_eq!(e.ex, "sendmsg timed out after 30 ms");
}

/// A quest made by a plain connection's quest handler (on the reader
/// thread, inside its read's write batch) gets its deadline at the call, so
/// a handler that waits for that quest's callback is released by its
/// timeout. (Only `RtmClient`'s connections defer deadlines to the end of a
/// batch, `Connection::defer_deadlines`; there a call made in a callback
/// times out counted from the callback's end, tests/dispatch_inline.rs.)
#[test]
fn a_quest_handler_waiting_for_its_own_quest_gets_its_timeout() {
    let server = TestServer::start();
    let timeout = Duration::from_millis(50);
    let conn: Arc<std::sync::OnceLock<rtm_client::fpnn::Connection>> = Arc::default();
    let (tx, rx) = crossbeam_channel::unbounded();
    let handler = {
        let conn = conn.clone();
        move |_: rtm_client::fpnn::Quest, _: rtm_client::fpnn::Responder| {
            let Some(conn) = conn.get() else { return };
            let (done, wait) = crossbeam_channel::bounded(1);
            conn.send_quest("never", &empty(), timeout, move |r| {
                let _ = done.send(r.err().map(|e| e.code));
            });
            // Bounded, so that the test fails rather than hangs without the timeout.
            let _ = tx.send(wait.recv_timeout(WAIT));
        }
    };
    let (client, mut s) = server.connect_handler(handler);
    assert!(conn.set(client.conn.clone()).is_ok());
    s.send_oneway("go", &empty());
    let got = rx.recv_timeout(2 * WAIT).expect("the handler returned");
    assert_eq!(
        got,
        Ok(Some(error_code::FPNN_EC_CORE_TIMEOUT)),
        "the handler's quest did not time out while the handler waited"
    );
    client.conn.close();
}
