//! WebSocket framing against an FPNN server: the 126-byte quirk, 16- and
//! 64-bit lengths, fragments, pings, the size limit, and garbage.
#![cfg(feature = "gate")]

mod support;

use std::time::Duration;

use rtm_client::error_code;
use rtm_client::fpnn::packet::{self, Kind, Packet};
use rtm_client::fpnn::{CloseReason, ConnectOptions};
use rtm_client::ws::frame::{encode_frame, Opcode};
use rtm_client::ws::Incoming;
use support::*;

const LONG: Duration = Duration::from_secs(30);

/// The payload that makes an answer packet exactly `len` bytes.
fn answer_payload(len: usize) -> rmpv::Value {
    payload_of_len(len - packet::header_len(Kind::Answer))
}

/// The payload that makes a twoway quest named `method` exactly `len` bytes.
fn quest_payload(method: &str, len: usize) -> rmpv::Value {
    payload_of_len(len - packet::header_len(Kind::Twoway) - method.len())
}

/// One answer of `len` bytes, sent as the server chooses, must reach the
/// callback whole.
fn server_sends_answer_of(len: usize, quirk: bool) {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    s.quirk = quirk;
    let rx = send(&client.conn, "get", &empty(), LONG);
    let (p, _) = s.quest();
    let payload = answer_payload(len);
    let mut bytes = Vec::new();
    packet::encode_answer(&mut bytes, p.seq, 0, &encode(&payload));
    assert_eq!(bytes.len(), len);
    s.send_message(&bytes);
    assert_eq!(
        result(&rx).expect("answer"),
        payload,
        "{len}-byte answer, quirk {quirk}"
    );
    // The stream is still in step: a second, small answer arrives too.
    let rx = send(&client.conn, "again", &empty(), LONG);
    let (p, _) = s.quest();
    s.answer(p.seq, &map1("ok", 1));
    assert!(result(&rx).is_ok());
    assert!(client.conn.is_open());
}

#[test]
fn server_126_byte_messages_are_read_with_the_fpnn_quirk() {
    server_sends_answer_of(126, true);
}

#[test]
fn server_126_byte_messages_are_read_when_framed_by_the_rfc() {
    server_sends_answer_of(126, false);
}

#[test]
fn server_126_byte_quest_with_the_quirk_is_read() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let method = "push";
    let payload = quest_payload(method, 126);
    let mut bytes = Vec::new();
    packet::encode_quest(&mut bytes, true, 77, method, &encode(&payload));
    assert_eq!(bytes.len(), 126);
    let mut frame = Vec::new();
    encode_frame(&mut frame, Opcode::Binary, true, &bytes, None, true);
    assert_eq!(&frame[..6], &[0x82, 126, b'F', b'P', b'N', b'N']);
    s.send_raw(&frame);
    let (q, r) = client.quest();
    assert_eq!((q.method.as_str(), &q.payload), (method, &payload));
    drop(r);
    let p = s.packet();
    assert_eq!(
        (p.kind, p.seq, p.payload.as_slice()),
        (Kind::Answer, 77, packet::EMPTY_MAP)
    );
}

#[test]
fn server_messages_of_125_127_65535_and_65536_bytes_are_read() {
    for len in [125, 127, 65_535, 65_536, 200_000] {
        server_sends_answer_of(len, true);
    }
}

/// The client writes a quest of exactly `len` bytes; the server must see one
/// masked binary frame with the RFC 6455 length encoding `head`.
fn client_sends_quest_of(server: &TestServer, len: usize, head: &[u8]) {
    let (client, mut s) = server.connect();
    let payload = quest_payload("put", len);
    let rx = send(&client.conn, "put", &payload, LONG);
    let (p, v) = s.quest();
    assert_eq!((p.method.as_str(), &v), ("put", &payload));
    let raw = s.raw_received();
    assert_eq!(
        &raw[..head.len()],
        head,
        "frame header of a {len}-byte client message"
    );
    let mask_end = head.len() + 4;
    assert_eq!(raw.len(), mask_end + len, "one frame, nothing else");
    assert_ne!(&raw[mask_end..mask_end + 4], b"FPNN", "payload is masked");
    s.answer(p.seq, &empty());
    assert!(result(&rx).is_ok());
}

#[test]
fn client_126_byte_messages_use_rfc_framing() {
    let server = TestServer::start();
    client_sends_quest_of(&server, 126, &[0x82, 0x80 | 126, 0, 126]);
}

#[test]
fn client_messages_of_65535_and_65536_bytes_use_16_and_64_bit_lengths() {
    let server = TestServer::start();
    client_sends_quest_of(&server, 65_535, &[0x82, 0x80 | 126, 0xff, 0xff]);
    client_sends_quest_of(&server, 65_536, &[0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    client_sends_quest_of(&server, 125, &[0x82, 0x80 | 125]);
}

#[test]
fn fragmented_server_messages_are_reassembled() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    for (len, n) in [(40, 1), (40, 2), (126, 3), (300, 7), (50, 50), (70_000, 5)] {
        let rx = send(&client.conn, "frag", &empty(), LONG);
        let (p, _) = s.quest();
        let payload = answer_payload(len);
        let mut bytes = Vec::new();
        packet::encode_answer(&mut bytes, p.seq, 0, &encode(&payload));
        s.send_fragmented(&bytes, n);
        assert_eq!(
            result(&rx).expect("answer"),
            payload,
            "{len} bytes in {n} frames"
        );
    }
    assert!(client.conn.is_open());
}

#[test]
fn a_ping_between_fragments_is_answered_and_the_message_still_arrives() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "frag", &empty(), LONG);
    let (p, _) = s.quest();
    let mut bytes = Vec::new();
    packet::encode_answer(&mut bytes, p.seq, 0, &encode(&map1("k", "v")));
    let (a, b) = bytes.split_at(7);
    s.send_frame(Opcode::Binary, false, a, false);
    s.send_frame(Opcode::Ping, true, b"mid", false);
    s.send_frame(Opcode::Continuation, true, b, false);
    assert_eq!(s.incoming(), Incoming::Pong(b"mid".to_vec()));
    assert_eq!(get(&result(&rx).unwrap(), "k").as_str(), Some("v"));
}

#[test]
fn server_ping_is_answered_with_a_pong_carrying_its_bytes() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    s.send_frame(Opcode::Ping, true, b"", false);
    assert_eq!(s.incoming(), Incoming::Pong(Vec::new()));
    s.send_frame(Opcode::Ping, true, b"hello", false);
    assert_eq!(s.incoming(), Incoming::Pong(b"hello".to_vec()));
    // Pongs the server sends are ignored.
    s.send_frame(Opcode::Pong, true, b"x", false);
    let rx = send(&client.conn, "after", &empty(), LONG);
    let (p, _) = s.quest();
    s.answer(p.seq, &empty());
    assert!(result(&rx).is_ok());
}

/// A connection with max_packet_size 1024 and one pending quest.
fn limited() -> (
    TestServer,
    Client,
    ServerConn,
    crossbeam_channel::Receiver<Result<rmpv::Value, rtm_client::RtmError>>,
) {
    let server = TestServer::start();
    let mut options = server.options();
    options.max_packet_size = 1024;
    let (client, mut s) = server.connect_with(options);
    let rx = send(&client.conn, "q", &empty(), LONG);
    s.quest();
    (server, client, s, rx)
}

fn assert_closed_over_limit(
    client: &Client,
    rx: &crossbeam_channel::Receiver<Result<rmpv::Value, rtm_client::RtmError>>,
) {
    let e = result(rx).unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_CONNECTION_CLOSED);
    assert!(e.ex.contains("limit"), "error says why: {}", e.ex);
    match client.closed() {
        CloseReason::Error(text) => assert!(text.contains("limit of 1024"), "{text}"),
        r => panic!("expected an error close, got {r:?}"),
    }
}

#[test]
fn a_message_over_max_packet_size_closes_with_a_clear_error() {
    let (_server, client, mut s, rx) = limited();
    let mut bytes = Vec::new();
    packet::encode_answer(&mut bytes, 1, 0, &encode(&answer_payload(2000)));
    s.send_message(&bytes);
    assert_closed_over_limit(&client, &rx);
    s.eof();
}

#[test]
fn a_fragmented_message_over_max_packet_size_closes_with_a_clear_error() {
    let (_server, client, mut s, rx) = limited();
    let mut bytes = Vec::new();
    packet::encode_answer(&mut bytes, 1, 0, &encode(&answer_payload(2000)));
    s.send_fragmented(&bytes, 4);
    assert_closed_over_limit(&client, &rx);
    s.eof();
}

#[test]
fn a_frame_header_announcing_too_much_closes_before_the_payload_arrives() {
    let (_server, client, mut s, rx) = limited();
    // Only the header of a 1 GiB frame: the client must not wait for it.
    s.send_raw(&[0x82, 127, 0, 0, 0, 0, 0x40, 0, 0, 0]);
    assert_closed_over_limit(&client, &rx);
}

/// Sends `garbage` after the handshake; the connection must close with an
/// error, fail its pending quest, and call on_close exactly once.
fn garbage_closes(name: &str, garbage: &[u8]) {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "q", &empty(), LONG);
    s.quest();
    s.send_raw(garbage);
    match client.closed() {
        CloseReason::Error(_) => {}
        r => panic!("{name}: expected an error close, got {r:?}"),
    }
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
        "{name}"
    );
    let late = send(&client.conn, "late", &empty(), LONG);
    assert_eq!(
        result(&late).unwrap_err().code,
        error_code::FPNN_EC_CORE_CONNECTION_CLOSED
    );
}

fn frame(op: Opcode, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, op, fin, payload, mask, false);
    out
}

#[test]
fn garbage_after_the_handshake_closes_the_connection_with_an_error() {
    let mut bad_len = Vec::new();
    packet::encode_answer(&mut bad_len, 1, 0, packet::EMPTY_MAP);
    bad_len[8] = 5;
    let empty_payload = Packet {
        kind: Kind::Answer,
        seq: 1,
        method: String::new(),
        status: 0,
        payload: Vec::new(),
    }
    .encode();
    let mut json = Vec::new();
    packet::encode_answer(&mut json, 1, 0, b"{}");
    json[5] = packet::FLAG_JSON;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved bits and unknown opcode", vec![0xff; 16]),
        ("http text", b"HTTP/1.1 200 OK\r\n\r\n".to_vec()),
        (
            "masked server frame",
            frame(Opcode::Binary, true, b"FPNN", Some([1, 2, 3, 4])),
        ),
        ("text message", frame(Opcode::Text, true, b"hello", None)),
        (
            "binary that is not FPNN",
            frame(Opcode::Binary, true, b"hello", None),
        ),
        (
            "packet length mismatch",
            frame(Opcode::Binary, true, &bad_len, None),
        ),
        (
            "packet with empty payload",
            frame(Opcode::Binary, true, &empty_payload, None),
        ),
        ("json packet", frame(Opcode::Binary, true, &json, None)),
        (
            "continuation with no message",
            frame(Opcode::Continuation, true, b"x", None),
        ),
        ("fragmented ping", frame(Opcode::Ping, false, b"x", None)),
        (
            "oversized ping",
            [vec![0x89, 126, 0, 200], vec![0; 200]].concat(),
        ),
        (
            "one-byte close body",
            frame(Opcode::Close, true, b"x", None),
        ),
        (
            "close with forbidden code",
            frame(Opcode::Close, true, &1005u16.to_be_bytes(), None),
        ),
        (
            "64-bit length with top bit",
            vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "new message inside a fragmented one",
            [
                frame(Opcode::Binary, false, b"FP", None),
                frame(Opcode::Binary, true, b"NN", None),
            ]
            .concat(),
        ),
        // (A quest with an empty or non-UTF-8 method name is whole and only
        // unknown: it is answered with 20004 and the connection stays open,
        // tests/pushes.rs.)
    ];
    for (name, bytes) in cases {
        garbage_closes(name, &bytes);
    }
}

#[test]
fn random_bytes_from_the_server_never_panic_the_client() {
    // A fixed xorshift sequence, so a failure is reproducible.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let server = TestServer::start();
    for round in 0..40 {
        let (client, mut s) = server.connect();
        let rx = send(&client.conn, "q", &empty(), LONG);
        s.quest();
        let len = (next() % 300) as usize + 1;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 {
            // Half the rounds look like a binary frame, to get past the header checks.
            bytes[0] = 0x82;
            bytes[1] &= 0x7f;
        }
        let _ = s.try_send_raw(&bytes);
        // Whatever the bytes did, closing TCP must end the connection.
        s.close_tcp();
        let reason = client.closed();
        assert!(
            matches!(reason, CloseReason::Error(_) | CloseReason::Peer),
            "{reason:?}"
        );
        assert_eq!(
            result(&rx).unwrap_err().code,
            error_code::FPNN_EC_CORE_CONNECTION_CLOSED
        );
    }
}

#[test]
fn a_server_close_frame_is_a_peer_close() {
    let server = TestServer::start();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "q", &empty(), LONG);
    s.quest();
    s.send_frame(Opcode::Close, true, &1000u16.to_be_bytes(), false);
    assert_eq!(client.closed(), CloseReason::Peer);
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_CORE_CONNECTION_CLOSED
    );
    // The connection ends. The engine's answering close frame is best effort
    // (it shuts the socket at once after a peer close; FPNN servers never
    // send close frames), so either ending is accepted here.
    let end = s.ending();
    assert!(
        matches!(end, Ending::Eof | Ending::CloseFrame(Some(1000))),
        "{end:?}"
    );
}

/// After the client's close frame, nothing but the end of TCP follows.
fn assert_nothing_after_close(s: &mut ServerConn) {
    match s.incoming_within(WAIT) {
        Ok(Incoming::Close(c)) => panic!("a second close frame: {c:?}"),
        Ok(other) => panic!("{other:?} after the close frame"),
        Err(_) => {}
    }
}

#[test]
fn a_protocol_error_sends_one_close_frame_with_its_status() {
    // Over the limit: 1009; reserved bits: 1002 (RFC 6455 section 7.4.1).
    for (bytes, status) in [
        (vec![0x82, 127, 0, 0, 0, 0, 0x40, 0, 0, 0], 1009u16),
        (vec![0xc2, 0], 1002),
    ] {
        let (_server, client, mut s, rx) = limited();
        s.send_raw(&bytes);
        assert_eq!(
            result(&rx).unwrap_err().code,
            error_code::FPNN_EC_CORE_CONNECTION_CLOSED
        );
        assert!(matches!(client.closed(), CloseReason::Error(_)));
        assert_eq!(s.ending(), Ending::CloseFrame(Some(status)));
        assert_nothing_after_close(&mut s);
    }
}

/// With `max_packet_size` set to "no limit" (usize::MAX), a frame header
/// announcing 2^63 - 1 bytes is refused from its header (no packet can be
/// that large): the connection closes and its quests fail with 20002. (The
/// reader reserved the whole frame at once: "capacity overflow" panicked it,
/// and the connection never closed.)
#[test]
fn a_huge_frame_length_with_no_packet_limit_closes_the_connection_without_a_panic() {
    let server = TestServer::start();
    let (client, mut s) = server.connect_with(ConnectOptions {
        max_packet_size: usize::MAX,
        ..server.options()
    });
    let rx = send(&client.conn, "q", &empty(), Duration::from_secs(60));
    s.quest();
    s.send_raw(&[0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(client.closed(), CloseReason::Error(_)));
    assert_eq!(s.ending(), Ending::CloseFrame(Some(1009)));
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_CORE_CONNECTION_CLOSED
    );
}
