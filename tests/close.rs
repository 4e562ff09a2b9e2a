//! However a connection ends, every pending quest completes exactly once
//! with 20002 and the close handler runs exactly once.
#![cfg(feature = "gate")]

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;
use rtm_client::error_code;
use rtm_client::fpnn::packet;
use rtm_client::fpnn::{CloseReason, ConnectOptions};
use rtm_client::ws::frame::{encode_frame, Opcode};
use rtm_client::ws::Incoming;
use support::*;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn server_closing_mid_frame_fails_pending_quests_with_20002() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "q", &empty(), LONG);
    let (p, _) = s.quest();
    let mut bytes = Vec::new();
    packet::encode_answer(&mut bytes, p.seq, 0, &encode(&payload_of_len(300)));
    let mut frame = Vec::new();
    encode_frame(&mut frame, Opcode::Binary, true, &bytes, None, true);
    s.send_raw(&frame[..100]);
    s.close_tcp();
    match client.closed() {
        CloseReason::Error(text) => assert!(text.contains("mid-frame"), "{text}"),
        r => panic!("expected an error close, got {r:?}"),
    }
    let e = result(&rx).unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_CONNECTION_CLOSED);
    assert!(e.ex.contains("mid-frame"), "{}", e.ex);
}

#[test]
fn server_closing_inside_a_frame_header_is_also_mid_frame() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    s.send_raw(&[0x82]);
    s.close_tcp();
    match client.closed() {
        CloseReason::Error(text) => assert!(text.contains("mid-frame"), "{text}"),
        r => panic!("expected an error close, got {r:?}"),
    }
}

#[test]
fn server_closing_between_frames_is_a_peer_close() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "q", &empty(), LONG);
    s.quest();
    s.close_tcp();
    assert_eq!(client.closed(), CloseReason::Peer);
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_CORE_CONNECTION_CLOSED
    );
}

/// 1000 quests the server has read and will never answer.
fn thousand_pending(
    client: &Client,
    s: &mut ServerConn,
) -> (Counters, crossbeam_channel::Receiver<i32>) {
    let counters = Counters::new(1000);
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..1000 {
        let c = counters.0.clone();
        let tx = tx.clone();
        client.conn.send_quest("q", &map1("i", i), LONG, move |r| {
            c[i].fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(r.map(|_| 0).unwrap_or_else(|e| e.code));
        });
    }
    assert_eq!(client.conn.pending(), 1000);
    for i in 0..1000u32 {
        assert_eq!(s.quest().0.seq, i + 1);
    }
    (counters, rx)
}

fn all_failed_with_20002(counters: &Counters, rx: &crossbeam_channel::Receiver<i32>) {
    for _ in 0..1000 {
        let code = rx.recv_timeout(WAIT).expect("every callback runs");
        assert_eq!(code, error_code::FPNN_EC_CORE_CONNECTION_CLOSED);
    }
    assert!(counters.all_exactly_once());
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_thousand_pending_quests_complete_once_each_on_local_close() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (counters, rx) = thousand_pending(&client, &mut s);
    client.conn.close();
    // Documented: the callbacks have run on this thread when close returns.
    assert_eq!(counters.total(), 1000);
    all_failed_with_20002(&counters, &rx);
    assert_eq!(client.closed(), CloseReason::Local);
    assert_eq!(client.conn.pending(), 0);
    client.conn.close();
    assert_eq!(client.close_count.load(Ordering::SeqCst), 1);
    assert_eq!(s.ending(), Ending::CloseFrame(Some(1000)));
    s.eof();
    assert!(counters.all_exactly_once());
}

#[test]
fn a_thousand_pending_quests_complete_once_each_when_the_server_closes() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (counters, rx) = thousand_pending(&client, &mut s);
    s.close_tcp();
    all_failed_with_20002(&counters, &rx);
    assert_eq!(client.closed(), CloseReason::Peer);
    client.conn.close();
    assert_eq!(client.close_count.load(Ordering::SeqCst), 1);
    assert!(counters.all_exactly_once());
}

#[test]
fn dropping_the_last_handle_closes_the_connection() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "q", &empty(), LONG);
    s.quest();
    let Client {
        conn,
        closes,
        close_count,
        ..
    } = client;
    let clone = conn.clone();
    drop(conn);
    assert!(clone.is_open(), "a clone keeps the connection open");
    drop(clone);
    assert_eq!(closes.recv_timeout(WAIT).unwrap(), CloseReason::Local);
    assert_eq!(close_count.load(Ordering::SeqCst), 1);
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_CORE_CONNECTION_CLOSED
    );
    assert_eq!(s.ending(), Ending::CloseFrame(Some(1000)));
}

#[test]
fn close_and_join_waits_for_the_threads_even_from_a_callback() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let c = client.conn.clone();
    client.conn.send_quest("q", &empty(), LONG, move |_| {
        assert!(c.is_own_thread());
        c.close_and_join();
        let _ = tx.send(c.is_open());
    });
    let (p, _) = s.quest();
    s.answer(p.seq, &empty());
    assert!(
        !rx.recv_timeout(WAIT).expect("callback returned"),
        "still open"
    );
    assert_eq!(client.closed(), CloseReason::Local);
    client.conn.close_and_join();
    assert!(!client.conn.is_own_thread());
}

#[test]
fn sending_after_close_fails_with_20002_on_the_calling_thread() {
    let server = TestServer::start();
    let (client, _s) = server.connect();
    client.conn.close();
    let me = std::thread::current().id();
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r2 = ran.clone();
    client.conn.send_quest("q", &empty(), LONG, move |r| {
        assert_eq!(std::thread::current().id(), me);
        assert_eq!(
            r.unwrap_err().code,
            error_code::FPNN_EC_CORE_CONNECTION_CLOSED
        );
        r2.store(true, Ordering::SeqCst);
    });
    assert!(
        ran.load(Ordering::SeqCst),
        "callback ran before send_quest returned"
    );
    let e = client.conn.send_oneway("o", &empty()).unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_CONNECTION_CLOSED);
}

/// Quests that `close()` failed with 20002 never reach the server: the
/// frames still queued are dropped (a frame partly written is finished
/// first), and what goes out in the close's linger is the answers to the
/// server's quests and the close frame. The server reads nothing until the
/// close, so most of 16 MiB of quests wait in the outbox (the kernel's
/// buffers take a few MiB), then it reads all that comes.
#[test]
fn quests_failed_by_close_are_not_written_in_its_linger() {
    const N: i64 = 256;
    for server in [TestServer::start(), TestServer::start_tls()] {
        let (client, mut s) = with_room_for_sixteen_mib(&server);
        // A quest from the server, answered once the client's quests are queued.
        let sq = s.send_twoway("sq", &empty());
        let (_, responder) = client.quest();
        let pad = Value::Binary(vec![7; 64 * 1024]);
        let rxs: Vec<_> = (0..N)
            .map(|i| {
                let payload = Value::Map(vec![
                    (Value::from("i"), Value::from(i)),
                    (Value::from("pad"), pad.clone()),
                ]);
                send(&client.conn, "q", &payload, LONG)
            })
            .collect();
        responder.answer(&map1("ok", true));
        client.conn.close();
        for rx in &rxs {
            let code = result(rx).unwrap_err().code;
            assert_eq!(code, error_code::FPNN_EC_CORE_CONNECTION_CLOSED);
        }
        assert_eq!(client.closed(), CloseReason::Local);
        // Everything the client writes from now on.
        let mut seen = Vec::new();
        let mut answered = false;
        loop {
            match s.incoming() {
                Incoming::Binary(b) => {
                    let p = packet::Packet::decode(&b, 1 << 24).expect("a whole packet");
                    if p.kind == packet::Kind::Answer {
                        assert_eq!(p.seq, sq);
                        answered = true;
                        continue;
                    }
                    assert!(!answered, "a quest after the answer queued behind it");
                    let v = packet::decode_payload(&p.payload).unwrap();
                    seen.push(get(&v, "i").as_i64().unwrap());
                }
                Incoming::Close(c) => {
                    assert_eq!(c.map(|(code, _)| code), Some(1000));
                    break;
                }
                _ => {}
            }
        }
        assert!(answered, "the answer to the server's quest was dropped");
        // In order, none missing in between, and not the last ones.
        assert_eq!(seen, (0..seen.len() as i64).collect::<Vec<_>>());
        assert!(
            (seen.len() as i64) < N,
            "all {N} quests failed by close() were written in its linger"
        );
    }
}

/// A client of `server` whose write queue takes the 16 MiB of quests
/// [`sixteen_mib_of_quests`] makes.
fn with_room_for_sixteen_mib(server: &TestServer) -> (Client, ServerConn) {
    server.connect_with(ConnectOptions {
        write_queue_limit: 64 << 20,
        ..server.options()
    })
}

/// 256 quests of 64 KiB each on `conn` (made with a write queue limit above
/// 16 MiB), most of which wait in the outbox of a server that reads nothing.
fn sixteen_mib_of_quests(
    conn: &rtm_client::fpnn::Connection,
) -> Vec<crossbeam_channel::Receiver<Result<Value, rtm_client::RtmError>>> {
    let pad = Value::Binary(vec![7; 64 * 1024]);
    (0..256)
        .map(|_| send(conn, "q", &map1("pad", pad.clone()), LONG))
        .collect()
}

/// A oneway quest that `send_oneway` accepted before `close()` has no
/// callback the close could fail: nothing tells its sender it was lost, so it
/// is written in the close's linger, as the answers are, also when it waited
/// in the outbox behind twoway quests the close failed (and dropped).
#[test]
fn a_oneway_quest_accepted_before_close_is_written_in_its_linger() {
    for server in [TestServer::start(), TestServer::start_tls()] {
        let (client, mut s) = with_room_for_sixteen_mib(&server);
        let rxs = sixteen_mib_of_quests(&client.conn);
        client.conn.send_oneway("last", &empty()).unwrap();
        client.conn.close();
        for rx in &rxs {
            let code = result(rx).unwrap_err().code;
            assert_eq!(code, error_code::FPNN_EC_CORE_CONNECTION_CLOSED);
        }
        let mut oneway = false;
        loop {
            match s.incoming() {
                Incoming::Binary(b) => {
                    let p = packet::Packet::decode(&b, 1 << 24).expect("a whole packet");
                    oneway |= p.kind == packet::Kind::Oneway && p.method == "last";
                }
                Incoming::Close(_) => break,
                _ => {}
            }
        }
        assert!(
            oneway,
            "the oneway quest accepted before close() was dropped"
        );
    }
}

/// `close_and_join` (the close `RtmClient` ends a session with) leaves the
/// writer its linger: the answer to the server's quest and the close frame go
/// out although the server only starts reading once the close has begun (most
/// of 16 MiB of quests the close failed were queued ahead of them).
#[test]
fn close_and_join_lets_the_linger_write_the_answers_and_the_close_frame() {
    for server in [TestServer::start(), TestServer::start_tls()] {
        let (client, mut s) = with_room_for_sixteen_mib(&server);
        let sq = s.send_twoway("sq", &empty());
        let (_, responder) = client.quest();
        let rxs = sixteen_mib_of_quests(&client.conn);
        responder.answer(&map1("ok", true));
        let conn = client.conn.clone();
        let closer = std::thread::spawn(move || conn.close_and_join());
        let mut answered = false;
        let ending = loop {
            match s.incoming_within(WAIT) {
                Ok(Incoming::Binary(b)) => {
                    let p = packet::Packet::decode(&b, 1 << 24).expect("a whole packet");
                    answered |= p.kind == packet::Kind::Answer && p.seq == sq;
                }
                Ok(Incoming::Close(c)) => break Some(c.map(|(code, _)| code)),
                Ok(_) => {}
                Err(_) => break None,
            }
        };
        closer.join().unwrap();
        for rx in &rxs {
            let code = result(rx).unwrap_err().code;
            assert_eq!(code, error_code::FPNN_EC_CORE_CONNECTION_CLOSED);
        }
        assert!(answered, "the answer to the server's quest was cut off");
        assert_eq!(ending, Some(Some(1000)), "the close frame was cut off");
    }
}

/// A second `close_and_join` waits for the threads the first is waiting for,
/// or did not wait for (the first here is the reader's own, from a callback):
/// it returns once the reader has ended, not while it still runs the callback.
#[test]
fn a_second_close_and_join_waits_for_the_threads_too() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (in_callback, entered) = crossbeam_channel::bounded(1);
    let (release, released) = crossbeam_channel::bounded::<()>(1);
    let returned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (c, r) = (client.conn.clone(), returned.clone());
    client.conn.send_quest("q", &empty(), LONG, move |_| {
        c.close_and_join();
        in_callback.send(()).unwrap();
        let _ = released.recv_timeout(WAIT);
        r.store(true, Ordering::SeqCst);
    });
    let (p, _) = s.quest();
    s.answer(p.seq, &empty());
    entered.recv_timeout(WAIT).expect("the callback ran");
    let (conn, r) = (client.conn.clone(), returned.clone());
    let second = std::thread::spawn(move || {
        conn.close_and_join();
        r.load(Ordering::SeqCst)
    });
    // Released once the second has returned, or while it waits.
    wait_until("the second close_and_join", || {
        second.is_finished() || client.conn.joining_for_tests() > 0
    });
    release.send(()).unwrap();
    assert!(
        second.join().unwrap(),
        "the second close_and_join returned while the reader still ran"
    );
}

/// `close_and_join` from the writer thread (a quest's timeout callback runs
/// there; the client's `bye` and relogin `auth` answers end the session from
/// it when they time out) must return: the writer is the thread that writes
/// the close frame and then shuts the socket, which is what ends the reader;
/// joining the reader from it must not wait for that.
#[test]
fn close_and_join_from_the_writer_thread_returns() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (tx, returned) = crossbeam_channel::bounded(1);
    let c = client.conn.clone();
    client
        .conn
        .send_quest("q", &empty(), Duration::from_millis(50), move |r| {
            let on = std::thread::current().name().unwrap_or("").to_owned();
            c.close_and_join();
            let _ = tx.send((on, r.map(|_| ()).map_err(|e| e.code)));
        });
    // The server reads the quest and never answers it; it keeps the link open.
    s.quest();
    let (on, r) = returned
        .recv_timeout(WAIT)
        .expect("close_and_join on the writer did not return: it joins the reader, which only ends once the writer shuts the socket");
    assert_eq!(on, "rtm-writer");
    assert_eq!(r, Err(error_code::FPNN_EC_CORE_TIMEOUT));
}
