//! The writer's queue is bounded: against a peer that stops reading, a
//! caller that keeps sending gets 20011 (`FPNN_EC_CORE_WORK_QUEUE_FULL`)
//! through the callback at once, nothing more is queued, and a callback
//! that sends again from inside such a failure does not deadlock. Pongs and
//! answers to the server's quests, which are never refused, stay within the
//! limit too.
#![cfg(feature = "gate")]

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtm_client::error_code;
use rtm_client::fpnn::packet::{self, Packet};
use rtm_client::fpnn::{ConnectOptions, Quest, Responder};
use rtm_client::ws::frame::{encode_frame, Opcode};
use rtm_client::ws::{Incoming, WsError};
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
    let conn = client.conn.clone();
    // On a thread of its own, so that a deadlock fails the test (at the
    // deadline below) rather than hang it.
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let big = payload_of_len(QUEST);
        // Sends until a quest is refused and its callback's send, made at once
        // from inside it, is refused too. One refusal alone does not make the
        // second certain: the writer may make room in between (the kernel's
        // buffers grow as they autotune), and then the filling goes on.
        for _ in 0..(64 << 20) / QUEST {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let inner = conn.clone();
            conn.send_quest("big", &big, Duration::from_secs(60), move |r| {
                // An accepted quest fails at the test's end (20002).
                let Err(e) = r else { return };
                if e.code != error_code::FPNN_EC_CORE_WORK_QUEUE_FULL {
                    return;
                }
                // From inside the failed quest's callback.
                let again = send(
                    &inner,
                    "big",
                    &payload_of_len(QUEST),
                    Duration::from_secs(60),
                );
                let _ = tx.send(again.try_recv().ok());
            });
            // A refused quest completes before send_quest returns.
            if let Ok(Some(again)) = rx.try_recv() {
                let _ = done_tx.send(again);
                return;
            }
        }
    });
    let again = done
        .recv_timeout(WAIT)
        .expect("a refused quest's callback sent again, refused at once");
    assert_eq!(
        again.unwrap_err().code,
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

/// What the client may hold for a peer that does not read: the limit, the
/// kernel's buffers, and a margin of 1 MiB.
fn bound() -> usize {
    LIMIT + kernel_buffers() + (1 << 20)
}

/// A server that pings without reading gets at most one pong beyond the
/// write queue limit (the latest ping's, RFC 6455 section 5.5.3) once it
/// reads: the client's reader does not queue a pong per ping.
#[test]
fn pongs_to_a_peer_that_does_not_read_stay_within_the_write_queue_limit() {
    let server = TestServer::start();
    let (_client, mut s) = stalled_client(&server);
    let bound = bound();
    // Twice the bound in pings of 125 bytes (each answered by a 131-byte
    // pong); the server reads nothing meanwhile.
    let mut one = Vec::new();
    encode_frame(&mut one, Opcode::Ping, true, &[0x5a; 125], None, false);
    let chunk = one.repeat(1000);
    for _ in 0..2 * bound / chunk.len() {
        s.send_raw(&chunk);
    }
    // The last ping's pong is the last one sent: read up to it.
    let last = [0xa5u8; 125];
    s.send_frame(Opcode::Ping, true, &last, false);
    let mut got = 0;
    loop {
        match s.incoming() {
            Incoming::Pong(p) => {
                got += p.len() + 6;
                if p == last {
                    break;
                }
            }
            other => panic!("expected a pong, got {other:?}"),
        }
    }
    assert!(
        got <= bound,
        "a peer that did not read got {} MB of pongs once it did: more than the write \
         queue limit ({} KB) plus the kernel's buffers ({} MB) can hold",
        got >> 20,
        LIMIT >> 10,
        kernel_buffers() >> 20
    );
}

/// A server that sends twoway quests without reading their answers is held
/// back: past the write queue limit the client's reader stops reading until
/// its writer has made room, so the server's writes block (TCP pushes back)
/// instead of the client queueing every answer.
#[test]
fn answers_to_a_peer_that_does_not_read_stay_within_the_write_queue_limit() {
    let server = TestServer::start();
    let (client, mut s) = server.connect_handler_with(
        ConnectOptions {
            write_queue_limit: LIMIT,
            ..server.options()
        },
        // Answers each quest with its own payload.
        |q: Quest, r: Responder| r.answer(&q.payload),
    );
    let bound = bound();
    let sent = Arc::new(AtomicUsize::new(0));
    let last_seq = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Twice the bound in quests of about 1 KB, written by another thread
    // (its writes block once the client stops reading), chunk by chunk.
    let writer = {
        let (sent, last_seq, stop) = (sent.clone(), last_seq.clone(), stop.clone());
        let mut out = s.raw_writer();
        let payload = encode(&payload_of_len(1000));
        std::thread::spawn(move || {
            let mut chunk = Vec::new();
            let mut seq = 0u32;
            while !stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < 2 * bound {
                chunk.clear();
                for _ in 0..256 {
                    seq += 1;
                    let mut p = Vec::new();
                    packet::encode_quest(&mut p, true, seq, "echo", &payload);
                    encode_frame(&mut chunk, Opcode::Binary, true, &p, None, false);
                }
                out.write_all(&chunk).expect("test server write failed");
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
                last_seq.store(seq, Ordering::SeqCst);
            }
        })
    };
    // Until the client's reader stops reading for want of room (the server's
    // writes then block for good), or the writer is done: the client read
    // twice the bound, which its answers then show. Not until the writes make
    // no progress for a while: a writer descheduled that long would end the
    // fill before the client had anything to hold back.
    wait_until("the client stops reading, or the writer is done", || {
        client.conn.reads_held_back_for_tests() > 0 || writer.is_finished()
    });
    stop.store(true, Ordering::SeqCst);
    // Now read every answer, up to the last quest's (the writer finishes its
    // chunk as the client reads again).
    let (mut got, mut answered) = (0, 0);
    let mut deadline = Instant::now() + WAIT;
    loop {
        let finished = writer.is_finished();
        match s.incoming_within(Duration::from_millis(100)) {
            Ok(Incoming::Binary(b)) => {
                got += b.len() + 4;
                answered = Packet::decode(&b, usize::MAX).expect("an answer").seq;
                deadline = Instant::now() + WAIT;
            }
            Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {}
            other => panic!("expected an answer, got {other:?}"),
        }
        if finished && answered == last_seq.load(Ordering::SeqCst) {
            break;
        }
        assert!(Instant::now() < deadline, "the answers stopped coming");
    }
    writer.join().unwrap();
    assert!(
        got <= bound,
        "a peer that did not read got {} MB of answers (to {} MB of quests) once it did: \
         more than the write queue limit ({} KB) plus the kernel's buffers ({} MB) can hold",
        got >> 20,
        sent.load(Ordering::SeqCst) >> 20,
        LIMIT >> 10,
        kernel_buffers() >> 20
    );
}
