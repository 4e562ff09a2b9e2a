//! Answers reach the right callback, seqs are numbered as FPNN expects, and
//! callbacks may use the connection they belong to.
#![cfg(feature = "gate")]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::bounded;
use rmpv::Value;
use rtm_client::error_code;
use rtm_client::fpnn::packet::Kind;
use rtm_client::fpnn::CloseReason;
use support::*;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn answers_are_matched_by_seq_when_they_arrive_out_of_order() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rxs: Vec<_> = (0..5)
        .map(|i| send(&client.conn, "echo", &map1("i", i), LONG))
        .collect();
    let quests: Vec<_> = (0..5).map(|_| s.quest()).collect();
    // Answer in the order 3, 0, 4, 1, 2, each echoing its quest's "i".
    for k in [3usize, 0, 4, 1, 2] {
        let (p, v) = &quests[k];
        s.answer(p.seq, &map1("echo", get(v, "i").clone()));
    }
    for (i, rx) in rxs.iter().enumerate() {
        let v = result(rx).expect("answer");
        assert_eq!(get(&v, "echo").as_u64(), Some(i as u64));
    }
    assert_eq!(client.conn.pending(), 0);
    assert!(client.conn.is_open());
}

#[test]
fn seq_starts_at_one_and_increments_per_twoway_quest() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let _a = send(&client.conn, "a", &empty(), LONG);
    client.conn.send_oneway("o", &empty()).unwrap();
    let _b = send(&client.conn, "b", &empty(), LONG);
    let _c = send(&client.conn, "c", &empty(), LONG);
    let got: Vec<_> = (0..4)
        .map(|_| s.packet())
        .map(|p| (p.kind, p.method, p.seq))
        .collect();
    assert_eq!(
        got,
        vec![
            (Kind::Twoway, "a".to_owned(), 1),
            (Kind::Oneway, "o".to_owned(), 0),
            (Kind::Twoway, "b".to_owned(), 2),
            (Kind::Twoway, "c".to_owned(), 3),
        ]
    );
    // A new connection starts again at 1.
    let (client2, mut s2) = server.connect();
    let _d = send(&client2.conn, "d", &empty(), LONG);
    assert_eq!(s2.quest().0.seq, 1);
}

#[test]
fn error_answer_reaches_the_callback_and_the_connection_stays_open() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "nope", &empty(), LONG);
    let (p, _) = s.quest();
    s.error(p.seq, 20004, "unknown method");
    let e = result(&rx).unwrap_err();
    assert_eq!((e.code, e.ex.as_str()), (20004, "unknown method"));
    let rx = send(&client.conn, "yes", &empty(), LONG);
    let (p, _) = s.quest();
    s.answer(p.seq, &map1("ok", true));
    assert_eq!(get(&result(&rx).unwrap(), "ok"), &Value::from(true));
}

/// An error answer whose `code` is 0 (`FPNN_EC_OK`) is malformed, as one
/// without an integer `code` is: the callback gets 20001 with the payload as
/// text, never an error that reads as success.
#[test]
fn an_error_answer_with_code_0_or_without_an_integer_code_becomes_20001() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "nope", &empty(), LONG);
    let (p, _) = s.quest();
    s.error(p.seq, 0, "zero");
    let e = result(&rx).unwrap_err();
    assert_eq!(e.code, 20001, "{e}");
    assert!(e.ex.contains("zero"), "{e}");
    let rx = send(&client.conn, "nope", &empty(), LONG);
    let (p, _) = s.quest();
    s.answer_bytes(p.seq, 1, &encode(&map1("ex", "no code")));
    let e = result(&rx).unwrap_err();
    assert_eq!(e.code, 20001, "{e}");
    assert!(client.conn.is_open());
}

/// `ex` may arrive as msgpack bin (docs/protocol.md: strings may arrive as
/// bin), or as a str that is not UTF-8: the callback gets its text either way
/// (invalid bytes replaced), not an empty string.
#[test]
fn an_error_answer_whose_ex_is_bin_or_not_utf8_reaches_the_callback_with_its_text() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "nope", &empty(), LONG);
    let (p, _) = s.quest();
    let bin = Value::Map(vec![
        (Value::from("code"), Value::from(20004)),
        (Value::from("ex"), Value::Binary(b"unknown method".to_vec())),
    ]);
    s.answer_bytes(p.seq, 1, &encode(&bin));
    let e = result(&rx).unwrap_err();
    assert_eq!((e.code, e.ex.as_str()), (20004, "unknown method"));
    let rx = send(&client.conn, "nope", &empty(), LONG);
    let (p, _) = s.quest();
    // {"code": 20004, "ex": str "h\xff"}
    let bad_str = [
        0x82, 0xa4, b'c', b'o', b'd', b'e', 0xcd, 0x4e, 0x24, 0xa2, b'e', b'x', 0xa2, b'h', 0xff,
    ];
    s.answer_bytes(p.seq, 1, &bad_str);
    let e = result(&rx).unwrap_err();
    assert_eq!((e.code, e.ex.as_str()), (20004, "h\u{fffd}"));
    assert!(client.conn.is_open());
}

#[test]
fn an_answer_with_a_bad_payload_fails_its_quest_with_20006() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "q", &empty(), LONG);
    let (p, _) = s.quest();
    s.answer_bytes(p.seq, 0, &[0x82, 0xa1]);
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_CORE_DECODING
    );
    assert!(client.conn.is_open());
}

#[test]
fn an_answer_callback_may_send_another_quest() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (tx, rx) = bounded(1);
    let c = client.conn.clone();
    client.conn.send_quest("first", &empty(), LONG, move |r| {
        assert!(r.is_ok());
        c.send_quest("second", &empty(), LONG, move |r| {
            let _ = tx.send(r);
        });
    });
    let (p, _) = s.quest();
    assert_eq!(p.method, "first");
    s.answer(p.seq, &empty());
    let (p, _) = s.quest();
    assert_eq!((p.method.as_str(), p.seq), ("second", 2));
    s.answer(p.seq, &map1("n", 2));
    let v = rx.recv_timeout(WAIT).expect("second callback").unwrap();
    assert_eq!(get(&v, "n").as_u64(), Some(2));
}

#[test]
fn a_timeout_callback_may_send_another_quest() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (tx, rx) = bounded(1);
    let c = client.conn.clone();
    client
        .conn
        .send_quest("slow", &empty(), Duration::from_millis(10), move |r| {
            assert_eq!(r.unwrap_err().code, error_code::FPNN_EC_CORE_TIMEOUT);
            c.send_quest("retry", &empty(), LONG, move |r| {
                let _ = tx.send(r);
            });
        });
    assert_eq!(s.quest().0.method, "slow");
    let (p, _) = s.quest();
    assert_eq!(p.method, "retry");
    s.answer(p.seq, &empty());
    assert!(rx.recv_timeout(WAIT).expect("retry callback").is_ok());
}

#[test]
fn an_answer_callback_may_close_the_connection() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (tx, rx) = bounded(1);
    let c = client.conn.clone();
    client.conn.send_quest("closer", &empty(), LONG, move |r| {
        assert!(r.is_ok());
        c.close();
        let _ = tx.send(c.is_open());
    });
    let other = send(&client.conn, "other", &empty(), LONG);
    let (p, _) = s.quest();
    s.answer(p.seq, &empty());
    assert!(
        !rx.recv_timeout(WAIT).expect("closing callback ran"),
        "still open"
    );
    let e = result(&other).unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_CONNECTION_CLOSED);
    assert_eq!(client.closed(), CloseReason::Local);
    assert_eq!(s.ending(), Ending::CloseFrame(Some(1000)));
}

#[test]
fn a_callback_failed_by_a_closed_connection_may_send_again() {
    // The callback runs inside send_quest (the connection is closed); sending
    // from it must not deadlock on the request table.
    let server = TestServer::start();
    let (client, _s) = server.connect();
    client.conn.close();
    let conn = client.conn.clone();
    let (tx, rx) = bounded(1);
    std::thread::spawn(move || {
        let c = conn.clone();
        conn.send_quest("a", &empty(), LONG, move |r| {
            let first = r.unwrap_err().code;
            let _ = c.pending();
            c.send_quest("b", &empty(), LONG, move |r| {
                let _ = tx.send((first, r.unwrap_err().code));
            });
        });
    });
    let codes = rx
        .recv_timeout(WAIT)
        .expect("re-entrant send from a failed quest's callback deadlocked");
    assert_eq!(
        codes,
        (
            error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
            error_code::FPNN_EC_CORE_CONNECTION_CLOSED
        )
    );
}

#[test]
fn callbacks_completed_by_close_may_send_and_see_20002() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let (tx, rx) = bounded(4);
    for _ in 0..2 {
        let c = client.conn.clone();
        let tx = tx.clone();
        client.conn.send_quest("q", &empty(), LONG, move |r| {
            assert_eq!(
                r.unwrap_err().code,
                error_code::FPNN_EC_CORE_CONNECTION_CLOSED
            );
            let tx = tx.clone();
            c.send_quest("again", &empty(), LONG, move |r| {
                let _ = tx.send(r.unwrap_err().code);
            });
        });
    }
    s.quest();
    s.quest();
    s.close_tcp();
    for _ in 0..2 {
        assert_eq!(
            rx.recv_timeout(WAIT).expect("callback"),
            error_code::FPNN_EC_CORE_CONNECTION_CLOSED
        );
    }
    assert_eq!(client.closed(), CloseReason::Peer);
    assert_eq!(client.close_count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_quest_over_the_packet_limit_fails_at_once_and_the_connection_stays_open() {
    let server = TestServer::start();
    let mut options = server.options();
    options.max_packet_size = 1024;
    let (client, mut s) = server.connect_with(options);
    let rx = send(&client.conn, "big", &payload_of_len(2000), LONG);
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_PROTO_UNKNOWN_ERROR
    );
    let rx = send(&client.conn, "small", &empty(), LONG);
    let (p, _) = s.quest();
    assert_eq!((p.method.as_str(), p.seq), ("small", 1));
    s.answer(p.seq, &empty());
    assert!(result(&rx).is_ok());
}

#[test]
fn a_panicking_answer_callback_does_not_stop_later_answers() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    client
        .conn
        .send_quest("boom", &Value::Map(vec![]), LONG, |_| panic!("user bug"));
    let (p, _) = s.quest();
    s.answer(p.seq, &Value::Map(vec![]));
    let rx = send(&client.conn, "next", &Value::Map(vec![]), LONG);
    let (p, _) = s.quest();
    s.answer(p.seq, &Value::from("still here"));
    let got = rx
        .recv_timeout(WAIT)
        .expect("the reader survived the panic");
    assert_eq!(got.unwrap(), Value::from("still here"));
    assert!(client.conn.is_open());
}
