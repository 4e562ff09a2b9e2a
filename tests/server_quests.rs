//! Quests the server sends: twoway ones are answered exactly once unless
//! declined, oneway ones never.
#![cfg(feature = "gate")]

mod support;

use rmpv::Value;
use rtm_client::error_code;
use rtm_client::fpnn::packet::{self, Kind};
use rtm_client::fpnn::{Quest, Responder};
use support::*;

/// A handler that drops the responder for every method but "decline" and
/// "answer-oneway" (which tries to answer a oneway quest).
fn handler(q: Quest, r: Responder) {
    match q.method.as_str() {
        "decline" => r.decline(),
        "answer-oneway" => {
            assert!(!r.is_twoway());
            r.answer(&map1("should", "not be sent"));
        }
        "error" => r.error(123, "refused"),
        "echo" => r.answer(&q.payload),
        _ => drop(r),
    }
}

fn expect_answer(s: &mut ServerConn, seq: u32) -> packet::Packet {
    let p = s.packet();
    assert_eq!((p.kind, p.seq), (Kind::Answer, seq), "{p:?}");
    p
}

#[test]
fn twoway_quest_is_answered_with_status_0_and_an_empty_map_when_the_responder_is_dropped() {
    let server = TestServer::start();
    let (_client, mut s) = server.connect_handler(handler);
    let seq = s.send_twoway("push", &map1("x", 1));
    let p = expect_answer(&mut s, seq);
    assert_eq!((p.status, p.payload.as_slice()), (0, packet::EMPTY_MAP));
    // Byte for byte the worked example of docs/protocol.md section 3.
    let raw = s.raw_received();
    let mut body = raw[6..].to_vec();
    rtm_client::ws::frame::apply_mask(&mut body, [raw[2], raw[3], raw[4], raw[5]]);
    let mut expected = vec![
        0x46, 0x50, 0x4E, 0x4E, 0x01, 0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00,
    ];
    expected.extend_from_slice(&seq.to_le_bytes());
    expected.push(0x80);
    assert_eq!(&raw[..2], &[0x82, 0x80 | 17]);
    assert_eq!(body, expected);
}

#[test]
fn declined_twoway_quest_is_not_answered() {
    let server = TestServer::start();
    let (_client, mut s) = server.connect_handler(handler);
    s.send_twoway("decline", &empty());
    let marker = s.send_twoway("marker", &empty());
    // Quests are handled in order, so an answer to the declined one would
    // come before the marker's.
    expect_answer(&mut s, marker);
}

#[test]
fn oneway_quest_is_never_answered() {
    let server = TestServer::start();
    let (client, mut s) = server.connect_handler(handler);
    s.send_oneway("push", &empty());
    s.send_oneway("answer-oneway", &empty());
    s.send_oneway("error", &empty());
    let marker = s.send_twoway("marker", &empty());
    expect_answer(&mut s, marker);
    assert!(client.conn.is_open());
}

#[test]
fn responder_answer_and_error_reach_the_server() {
    let server = TestServer::start();
    let (_client, mut s) = server.connect_handler(handler);
    let payload = map1(
        "list",
        Value::Array(vec![Value::from(1), Value::from("two")]),
    );
    let seq = s.send_twoway("echo", &payload);
    let p = expect_answer(&mut s, seq);
    assert_eq!(p.status, 0);
    assert_eq!(packet::decode_payload(&p.payload).unwrap(), payload);
    let seq = s.send_twoway("error", &empty());
    let p = expect_answer(&mut s, seq);
    assert_eq!(p.status, 1);
    let v = packet::decode_payload(&p.payload).unwrap();
    assert_eq!(get(&v, "code").as_i64(), Some(123));
    assert_eq!(get(&v, "ex").as_str(), Some("refused"));
}

#[test]
fn a_server_quest_with_a_bad_payload_gets_a_20006_error_answer() {
    let server = TestServer::start();
    let (client, mut s) = server.connect_handler(handler);
    let mut q = Vec::new();
    packet::encode_quest(&mut q, true, 9, "push", &[0x92, 0x01]);
    s.send_message(&q);
    let p = expect_answer(&mut s, 9);
    assert_eq!(p.status, 1);
    let v = packet::decode_payload(&p.payload).unwrap();
    assert_eq!(
        get(&v, "code").as_i64(),
        Some(i64::from(error_code::FPNN_EC_CORE_DECODING))
    );
    assert!(client.conn.is_open());
}

#[test]
fn a_responder_kept_past_the_handler_answers_later() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let seq = s.send_twoway("later", &map1("n", 5));
    let (q, r) = client.quest();
    assert_eq!((q.method.as_str(), q.twoway), ("later", true));
    // Meanwhile the connection keeps working.
    let rx = send(
        &client.conn,
        "mine",
        &empty(),
        std::time::Duration::from_secs(30),
    );
    let (p, _) = s.quest();
    s.answer(p.seq, &empty());
    assert!(result(&rx).is_ok());
    r.answer(&map1("done", true));
    let p = expect_answer(&mut s, seq);
    assert_eq!(
        get(&packet::decode_payload(&p.payload).unwrap(), "done"),
        &Value::from(true)
    );
}

#[test]
fn a_responder_used_after_close_sends_nothing_and_does_not_panic() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    s.send_twoway("later", &empty());
    let (_q, r) = client.quest();
    client.conn.close();
    r.answer(&empty());
    assert_eq!(s.ending(), Ending::CloseFrame(Some(1000)));
}

#[test]
fn an_answer_over_the_packet_limit_becomes_an_error_answer() {
    let server = TestServer::start();
    let options = rtm_client::fpnn::ConnectOptions {
        max_packet_size: 1024,
        ..server.options()
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (_client, mut s) = server.connect_handler_with(options, move |q: Quest, r: Responder| {
        let _ = q;
        r.answer(&payload_of_len(4096));
        let _ = tx.send(());
    });
    let seq = s.send_twoway("big", &empty());
    rx.recv_timeout(WAIT).unwrap();
    let (p, v) = s.packet_value();
    assert_eq!((p.seq, p.status), (seq, 1));
    assert_eq!(
        v.as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_str() == Some("code"))
            .map(|(_, c)| c.as_i64()),
        Some(Some(i64::from(
            rtm_client::error_code::FPNN_EC_PROTO_UNKNOWN_ERROR
        )))
    );
}
