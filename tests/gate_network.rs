//! The local gate's network side (docs/gate.md, "Writing" and "JSON
//! payloads"): a client that stops reading delays no one else and is closed
//! once its queue is full; JSON quests are answered in JSON; a gate without
//! TCP_NODELAY still serves.
#![cfg(feature = "gate")]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rmpv::Value;
use rtm_client::fpnn::packet::{self, Kind, Packet};
use rtm_client::gate::Gate;
use rtm_client::ws::frame::{encode_frame, FrameParser, Opcode, Role};
use rtm_client::ws::{handshake, Incoming, MaskRng, WsError, WsReader};

/// A bare FPNN-over-WebSocket client built from the crate's public `ws` and
/// `fpnn::packet` modules.
struct RawClient {
    stream: TcpStream,
    reader: WsReader<TcpStream>,
    rng: MaskRng,
    seq: u32,
}

impl RawClient {
    fn connect(gate: &Gate) -> RawClient {
        let mut stream = TcpStream::connect(gate.endpoint()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let leftover =
            handshake::client_handshake(&mut stream, &gate.endpoint(), "/service/websocket")
                .unwrap();
        let parser = FrameParser::new(Role::Client, 1 << 26, true);
        RawClient {
            reader: WsReader::new(stream.try_clone().unwrap(), &leftover, parser),
            stream,
            rng: MaskRng::new(),
            seq: 0,
        }
    }

    fn frame(&mut self, opcode: Opcode, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, opcode, true, bytes, Some(self.rng.mask()), false);
        out
    }

    /// Sends a twoway quest whose payload bytes are `body` (msgpack, or
    /// JSON text with `json`); returns its seq.
    fn send(&mut self, method: &str, body: &[u8], json: bool) -> u32 {
        self.seq += 1;
        let mut p = Vec::new();
        packet::encode_quest(&mut p, true, self.seq, method, body);
        if json {
            p[5] = packet::FLAG_JSON;
        }
        let f = self.frame(Opcode::Binary, &p);
        self.stream.write_all(&f).unwrap();
        self.seq
    }

    fn quest(&mut self, method: &str, payload: &Value) -> u32 {
        let mut body = Vec::new();
        packet::encode_payload(payload, &mut body);
        self.send(method, &body, false)
    }

    /// The next packet, and whether its payload was JSON.
    fn read(&mut self) -> (Packet, bool) {
        loop {
            match self.reader.read().expect("read from the gate") {
                Incoming::Binary(mut d) => {
                    let json = d.len() > 5 && d[5] == packet::FLAG_JSON;
                    if json {
                        d[5] = packet::FLAG_MSGPACK;
                    }
                    return (Packet::decode(&d, 1 << 26).expect("packet"), json);
                }
                Incoming::Close(_) => panic!("the gate sent a close frame"),
                _ => continue,
            }
        }
    }

    /// Reads until the answer to `seq`, skipping quests.
    fn answer(&mut self, seq: u32) -> (Packet, bool) {
        loop {
            let (p, json) = self.read();
            if p.kind == Kind::Answer && p.seq == seq {
                return (p, json);
            }
        }
    }

    fn login(&mut self, uid: i64) {
        let seq = self.quest(
            "auth",
            &map(vec![
                ("pid", Value::from(PID)),
                ("uid", Value::from(uid)),
                ("token", Value::from("t")),
                ("version", Value::from("raw")),
            ]),
        );
        let (a, _) = self.answer(seq);
        assert_eq!(a.status, 0);
    }

    /// Whether the gate has closed the connection (the read ends), within WAIT.
    fn closed_by_gate(&mut self) -> bool {
        loop {
            match self.reader.read() {
                Ok(_) => continue,
                Err(WsError::Io(e)) => {
                    return !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
                Err(_) => return true,
            }
        }
    }
}

fn sendmsg(to: i64, mid: i64, msg: &str) -> Value {
    map(vec![
        ("to", Value::from(to)),
        ("mid", Value::from(mid)),
        ("mtype", Value::from(30)),
        ("msg", Value::from(msg)),
        ("attrs", Value::from("")),
    ])
}

/// The most bytes the kernel can hold between the gate's socket and a client
/// that does not read: the largest send buffer plus the largest receive buffer.
fn kernel_buffers() -> usize {
    let max = |path: &str| -> Option<usize> {
        std::fs::read_to_string(path)
            .ok()?
            .split_whitespace()
            .nth(2)?
            .parse()
            .ok()
    };
    max("/proc/sys/net/ipv4/tcp_wmem").unwrap_or(32 << 20)
        + max("/proc/sys/net/ipv4/tcp_rmem").unwrap_or(32 << 20)
}

#[test]
fn a_client_that_stops_reading_delays_no_one_elses_answers_pushes_or_pings_and_is_closed() {
    let absorb = kernel_buffers();
    let limit = absorb + (8 << 20);
    let gate = Gate::builder()
        .ping_interval(Duration::from_secs(1))
        .write_queue_limit(limit)
        .start()
        .unwrap();
    let mut stuck = RawClient::connect(&gate);
    stuck.login(1);
    // The stuck client keeps talking (unsolicited pongs), so only its
    // not reading can get it closed.
    let stop = Arc::new(AtomicBool::new(false));
    let keepalive = {
        let mut s = stuck.stream.try_clone().unwrap();
        let pong = stuck.frame(Opcode::Pong, b"");
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) && s.write_all(&pong).is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // More than the kernel can hold: the stuck connection's writer is now
    // blocked with bytes still queued.
    let mut chunk = Vec::new();
    encode_frame(
        &mut chunk,
        Opcode::Binary,
        true,
        &vec![7u8; 1 << 20],
        None,
        false,
    );
    let mut queued = 0;
    while queued < absorb + (2 << 20) {
        assert_eq!(gate.send_raw(PID, 1, &chunk), 1);
        queued += chunk.len();
    }

    // Another client gets its answers, pushes and pings meanwhile, even
    // for a message whose push goes to the stuck client.
    let mut other = RawClient::connect(&gate);
    other.login(2);
    let seq = other.quest("sendmsg", &sendmsg(1, 11, "to the stuck one"));
    let (answer, _) = other.answer(seq);
    assert_eq!(answer.status, 0);
    gate.inject_message(PID, 1, 3, 2, 12, 30, b"for the reader", "")
        .unwrap();
    let (mut pushed, mut pinged) = (false, false);
    while !(pushed && pinged) {
        let (p, _) = other.read();
        pushed |= p.method == "pushmsg";
        pinged |= p.method == "ping";
    }
    assert_eq!(
        gate.connections_of(PID, 1),
        1,
        "the stuck client was closed before the others were served"
    );

    // Once its queue is over the limit, the stuck client is closed.
    let mut more = 0;
    // The batch a writer has taken is not counted, so twice the limit is enough.
    while gate.connections_of(PID, 1) == 1 && more < 2 * (limit + absorb) {
        gate.send_raw(PID, 1, &chunk);
        more += chunk.len();
    }
    wait_until("the stuck connection is closed", || {
        gate.connections_of(PID, 1) == 0
    });
    stop.store(true, Ordering::SeqCst);
    keepalive.join().unwrap();
    let seq = other.quest("sendmsg", &sendmsg(1, 13, "after"));
    assert_eq!(other.answer(seq).0.status, 0);
}

#[test]
fn a_json_quest_is_answered_in_json_and_routed_like_msgpack() {
    let gate = Gate::start().unwrap();
    let mut reader = RawClient::connect(&gate);
    reader.login(2);
    let mut json = RawClient::connect(&gate);
    let seq = json.send(
        "auth",
        br#"{"pid":1,"uid":1,"token":"t","version":"json"}"#,
        true,
    );
    let (a, is_json) = json.answer(seq);
    assert!(is_json, "the answer to a JSON quest is JSON");
    assert_eq!(a.status, 0);
    let v: serde_json::Value = serde_json::from_slice(&a.payload).unwrap();
    assert_eq!(v["ok"], true);

    let seq = json.send(
        "sendmsg",
        br#"{"to":2,"mid":77,"mtype":30,"msg":"hello in json","attrs":""}"#,
        true,
    );
    let (a, is_json) = json.answer(seq);
    assert!(is_json);
    assert_eq!(a.status, 0);
    let v: serde_json::Value = serde_json::from_slice(&a.payload).unwrap();
    assert!(v["mtime"].as_i64().unwrap() > 0, "{v}");

    // The msgpack client gets the message as a msgpack push.
    let push = loop {
        let (p, is_json) = reader.read();
        if p.method == "pushmsg" {
            assert!(!is_json);
            break packet::decode_payload(&p.payload).unwrap();
        }
    };
    assert_eq!(field(&push, "mid"), Some(&Value::from(77)));
    assert_eq!(field(&push, "msg"), Some(&Value::from("hello in json")));

    // An error is a JSON answer too; bad JSON closes the connection like bad msgpack.
    let seq = json.send("sendmsg", br#"{"mid":78}"#, true);
    let (a, is_json) = json.answer(seq);
    assert!(is_json);
    assert_eq!(a.status, 1);
    let v: serde_json::Value = serde_json::from_slice(&a.payload).unwrap();
    assert!(
        v["code"].as_i64().unwrap() > 0 && v["ex"].is_string(),
        "{v}"
    );
    json.send("sendmsg", b"{not json", true);
    assert!(json.closed_by_gate());
}

#[test]
fn a_gate_without_nodelay_serves_like_one_with_it() {
    let gate = Gate::builder().nodelay(false).start().unwrap();
    let mut c = RawClient::connect(&gate);
    c.login(1);
    for mid in 1..=20 {
        let seq = c.quest("sendmsg", &sendmsg(2, mid, "x"));
        assert_eq!(c.answer(seq).0.status, 0);
    }
}

#[test]
fn answers_to_quests_read_before_a_bad_packet_are_sent_before_the_close() {
    let gate = Gate::start().unwrap();
    let mut c = RawClient::connect(&gate);
    c.login(1);
    // One write: a good quest, then a frame that is no FPNN packet.
    c.seq += 1;
    let mut body = Vec::new();
    packet::encode_payload(&sendmsg(2, 5, "last words"), &mut body);
    let mut p = Vec::new();
    packet::encode_quest(&mut p, true, c.seq, "sendmsg", &body);
    let mut out = c.frame(Opcode::Binary, &p);
    out.extend(c.frame(Opcode::Binary, b"not a packet"));
    c.stream.write_all(&out).unwrap();
    let (a, _) = c.answer(c.seq);
    assert_eq!(a.status, 0);
    assert!(c.closed_by_gate());
}

#[test]
fn the_rtm_gate_program_takes_no_nodelay_and_serves() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rtm-gate"))
        .args(["--port", "0", "--ping-interval", "0", "--no-nodelay"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let endpoint = first
        .trim()
        .strip_prefix("rtm-gate listening on ")
        .map(str::to_owned);
    let served = endpoint.as_ref().map(|e| {
        let mut s = TcpStream::connect(e).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        handshake::client_handshake(&mut s, e, "/service/websocket").is_ok()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(endpoint.is_some(), "first line was {first:?}");
    assert_eq!(served, Some(true));
}

/// A JSON payload is held to the same decoded-tree bound as a msgpack one
/// (`packet::decode_payload_within`: at most `max_packet` bytes of `rmpv::Value`
/// nodes): a payload of many tiny values that the msgpack path refuses (closing
/// the connection) must not be decoded whole on the JSON path, where each
/// 2-byte `0,` becomes a `serde_json::Value` and then an `rmpv::Value` (dozens
/// of times its size: an 8 MiB packet costs hundreds of MiB).
#[test]
fn a_json_payload_of_many_tiny_values_is_refused_as_its_msgpack_form_is() {
    let max_packet = 64 << 10;
    let gate = Gate::builder().max_packet(max_packet).start().unwrap();
    // 20,000 values: far over 64 KiB of decoded nodes.
    let n: usize = 20_000;
    // The msgpack form: array 32 of n zeros (about 20 KB): refused, connection closed.
    let mut mp = vec![0xdc, (n >> 8) as u8, n as u8];
    mp.extend(std::iter::repeat(0u8).take(n));
    let mut c = RawClient::connect(&gate);
    c.login(1);
    c.send("sendmsg", &mp, false);
    assert!(c.closed_by_gate(), "the msgpack form is refused");
    // The JSON form (about 40 KB, within the packet limit too).
    let json = format!("[{}0]", "0,".repeat(n - 1));
    assert!(json.len() < max_packet);
    let mut c = RawClient::connect(&gate);
    c.login(1);
    c.send("sendmsg", json.as_bytes(), true);
    assert!(
        c.closed_by_gate(),
        "the JSON form was decoded whole (and answered) past the bound"
    );
}

/// The `auth` log (`Gate::auth_requests`, always on, also in the `rtm-gate` program) is
/// "bounded, for a long-running rtm-gate" (src/gate/server.rs) by its number of entries
/// only: 10,000 payloads of up to `--max-packet` each, kept until a restart, failed and
/// repeated `auth`s included. One connection that never logs in can so make the gate
/// hold 10,000 x 8 MiB. Here 300 `auth`s of 60 KiB keep about 18 MiB: the log must be
/// bounded in bytes too (16 MiB here, for any bound of the order of the write queue).
#[test]
fn the_auth_log_is_bounded_in_bytes_not_only_in_entries() {
    let max_packet = 64 << 10;
    let gate = Gate::builder().max_packet(max_packet).start().unwrap();
    let big = "x".repeat(60 << 10);
    let payload = map(vec![
        ("pid", Value::from(PID)),
        ("uid", Value::from(1)),
        ("token", Value::from("t")),
        ("version", Value::from("v")),
        ("attrs", Value::from(big.as_str())),
    ]);
    let mut c = RawClient::connect(&gate);
    let mut last = 0;
    for _ in 0..300 {
        last = c.quest("auth", &payload);
    }
    c.answer(last);
    let kept: usize = gate
        .auth_requests()
        .iter()
        .filter_map(|v| field(v, "attrs").and_then(Value::as_str).map(str::len))
        .sum();
    assert!(
        kept <= 16 << 20,
        "the auth log keeps {kept} bytes of attrs alone"
    );
}
