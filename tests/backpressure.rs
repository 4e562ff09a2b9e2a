//! The writer's queue is bounded: against a peer that stops reading, a
//! caller that keeps sending gets 20011 (`FPNN_EC_CORE_WORK_QUEUE_FULL`)
//! through the callback at once, nothing more is queued, and a callback
//! that sends again from inside such a failure does not deadlock.
#![cfg(feature = "gate")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtm_client::error_code;
use rtm_client::fpnn::ConnectOptions;
use support::*;

const LIMIT: usize = 256 * 1024;
const QUEST: usize = 16 * 1024;

/// Most bytes the kernel may buffer for one loopback connection (the
/// client's send buffer and the server's receive buffer, autotuned up to
/// their maxima), 16 MiB when unknown.
fn kernel_buffers() -> usize {
    let max = |f: &str| {
        std::fs::read_to_string(f)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
    };
    match (
        max("/proc/sys/net/ipv4/tcp_wmem"),
        max("/proc/sys/net/ipv4/tcp_rmem"),
    ) {
        (Some(w), Some(r)) => w + r,
        _ => 16 << 20,
    }
}

/// Sends `count` quests of `QUEST` bytes: returns how many were accepted
/// (the others failed with 20011 before `send_quest` returned).
fn send_many(client: &Client, count: usize) -> usize {
    let big = payload_of_len(QUEST);
    let mut accepted = 0;
    for _ in 0..count {
        let rx = send(&client.conn, "big", &big, Duration::from_secs(60));
        match rx.try_recv() {
            Ok(r) => assert_eq!(
                r.unwrap_err().code,
                error_code::FPNN_EC_CORE_WORK_QUEUE_FULL
            ),
            Err(_) => accepted += 1,
        }
    }
    accepted
}

/// Sends quests until one is refused (at most 64 MiB' worth): returns how
/// many were accepted.
fn fill(client: &Client) -> usize {
    let big = payload_of_len(QUEST);
    for i in 0..(64 << 20) / QUEST {
        let rx = send(&client.conn, "big", &big, Duration::from_secs(60));
        // A refused quest completes before send_quest returns.
        if let Ok(Err(e)) = rx.try_recv() {
            assert_eq!(e.code, error_code::FPNN_EC_CORE_WORK_QUEUE_FULL);
            return i;
        }
    }
    panic!("64 MiB of quests were queued against a peer that does not read");
}

fn stalled_client(server: &TestServer) -> (Client, ServerConn) {
    server.connect_with(ConnectOptions {
        write_queue_limit: LIMIT,
        ..server.options()
    })
}

#[test]
fn quests_past_the_limit_fail_at_once_with_20011_and_nothing_more_is_queued() {
    for server in [TestServer::start(), TestServer::start_tls()] {
        let (client, _s) = stalled_client(&server); // the server never reads
                                                    // Twice what the queue and the kernel can hold: without a limit,
                                                    // every one would be accepted.
        let count = 2 * (LIMIT + kernel_buffers()) / QUEST;
        let accepted = send_many(&client, count);
        assert!(accepted > 0);
        assert!(
            accepted * QUEST <= LIMIT + kernel_buffers() + QUEST,
            "{accepted} quests of {QUEST} bytes accepted: more than the queue and the kernel hold"
        );
        assert_eq!(
            client.conn.pending(),
            accepted,
            "every accepted quest waits for its answer"
        );
        let big = payload_of_len(QUEST);
        // Oneway quests are refused the same way.
        let e = (0..count)
            .find_map(|_| client.conn.send_oneway("big", &big).err())
            .expect("a oneway quest refused");
        assert_eq!(e.code, error_code::FPNN_EC_CORE_WORK_QUEUE_FULL);
        // The accepted quests still complete exactly once (20002 here).
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        client
            .conn
            .send_quest("after", &empty(), Duration::from_secs(60), move |r| {
                assert!(r.is_err());
                d.fetch_add(1, Ordering::SeqCst);
            });
        client.conn.close_and_join();
        assert_eq!(client.conn.pending(), 0);
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_callback_refused_with_20011_may_send_again_without_deadlock() {
    let server = TestServer::start();
    let (client, _s) = stalled_client(&server);
    fill(&client);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let conn = client.conn.clone();
    let big = payload_of_len(QUEST);
    client
        .conn
        .send_quest("big", &big, Duration::from_secs(60), move |r| {
            assert_eq!(
                r.unwrap_err().code,
                error_code::FPNN_EC_CORE_WORK_QUEUE_FULL
            );
            // From inside the failed quest's callback: refused again, at
            // once, on this thread.
            let again = send(
                &conn,
                "big",
                &payload_of_len(QUEST),
                Duration::from_secs(60),
            );
            let _ = tx.send(again.try_recv());
        });
    let again = rx.recv_timeout(WAIT).expect("the inner call returned");
    assert_eq!(
        again.expect("completed at once").unwrap_err().code,
        error_code::FPNN_EC_CORE_WORK_QUEUE_FULL
    );
}

#[test]
fn a_queue_that_drains_takes_quests_again() {
    let server = TestServer::start();
    let (client, mut s) = stalled_client(&server);
    let accepted = fill(&client);
    // The server reads (and answers) everything: the queue empties.
    for _ in 0..accepted {
        let (p, _) = s.quest();
        s.answer(p.seq, &empty());
    }
    wait_until("every quest answered", || client.conn.pending() == 0);
    let rx = send(&client.conn, "small", &empty(), Duration::from_secs(60));
    let (p, _) = s.quest();
    assert_eq!(p.method, "small");
    s.answer(p.seq, &empty());
    assert!(result(&rx).is_ok());
}
