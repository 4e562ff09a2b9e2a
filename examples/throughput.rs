//! Pipelined throughput of the SDK against a bare single-socket FPNN client,
//! both sending `sendmsg` to the same local gate. A benchmark, not a test.
//!
//! ```text
//! cargo run --release --example throughput [-- MESSAGES]
//! ```

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtm_client::fpnn::packet::{self, Kind, Packet};
use rtm_client::gate::Gate;
use rtm_client::rmpv::Value;
use rtm_client::ws::frame::{encode_frame, FrameParser, Opcode, Role};
use rtm_client::ws::{handshake, Incoming, MaskRng, WsReader};
use rtm_client::{RtmClient, RtmOptions};

fn request(seq_mid: i64) -> Value {
    Value::Map(vec![
        (Value::from("to"), Value::from(2)),
        (Value::from("mid"), Value::from(seq_mid)),
        (Value::from("mtype"), Value::from(30)),
        (Value::from("msg"), Value::from("benchmark message body")),
        (Value::from("attrs"), Value::from("")),
    ])
}

/// One socket, one writer thread, answers read on this thread: the least a
/// pipelined client can do.
fn bare(gate: &Gate, n: usize) -> Duration {
    let mut s = TcpStream::connect(gate.endpoint()).unwrap();
    s.set_nodelay(true).unwrap();
    let leftover =
        handshake::client_handshake(&mut s, &gate.endpoint(), "/service/websocket").unwrap();
    let mut rng = MaskRng::new();
    let frame = |rng: &mut MaskRng, seq: u32, method: &str, v: &Value| {
        let mut body = Vec::new();
        packet::encode_payload(v, &mut body);
        let mut p = Vec::new();
        packet::encode_quest(&mut p, true, seq, method, &body);
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Binary, true, &p, Some(rng.mask()), false);
        out
    };
    let auth = Value::Map(vec![
        (Value::from("pid"), Value::from(1)),
        (Value::from("uid"), Value::from(1)),
        (Value::from("token"), Value::from("t")),
        (Value::from("version"), Value::from("bare")),
    ]);
    s.write_all(&frame(&mut rng, 1, "auth", &auth)).unwrap();
    let mut reader = WsReader::new(
        s.try_clone().unwrap(),
        &leftover,
        FrameParser::new(Role::Client, 1 << 23, true),
    );
    let next_answer = |r: &mut WsReader<TcpStream>| loop {
        if let Incoming::Binary(b) = r.read().unwrap() {
            let p = Packet::decode(&b, 1 << 23).unwrap();
            if p.kind == Kind::Answer {
                return p;
            }
        }
    };
    next_answer(&mut reader);
    let start = Instant::now();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut rng = MaskRng::new();
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend_from_slice(&frame(
                &mut rng,
                i as u32 + 2,
                "sendmsg",
                &request(i as i64 + 1),
            ));
            if batch.len() > 64 * 1024 {
                w.write_all(&batch).unwrap();
                batch.clear();
            }
        }
        w.write_all(&batch).unwrap();
    });
    for _ in 0..n {
        assert_eq!(next_answer(&mut reader).status, 0);
    }
    writer.join().unwrap();
    start.elapsed()
}

fn sdk(gate: &Gate, n: usize) -> Duration {
    let client = RtmClient::new(RtmOptions {
        endpoint: Some(gate.endpoint()),
        pid: 1,
        ..Default::default()
    })
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    client.login(3, "t", move |ok, _| tx.send(ok).unwrap(), 0);
    assert!(rx.recv().unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    for i in 0..n {
        let done = done.clone();
        let tx = tx.clone();
        client.send_message(
            2,
            30,
            "benchmark message body",
            "",
            i as i64 + 1,
            60_000,
            move |err, _| {
                assert!(err.is_none(), "{err:?}");
                if done.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    tx.send(()).unwrap();
                }
            },
        );
    }
    rx.recv().unwrap();
    let t = start.elapsed();
    client.destroy();
    t
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    for round in 1..=2 {
        // A fresh gate per run, so both start from empty storage.
        let b = bare(
            &Gate::builder()
                .ping_interval(Duration::ZERO)
                .start()
                .unwrap(),
            n,
        );
        let s = sdk(
            &Gate::builder()
                .ping_interval(Duration::ZERO)
                .start()
                .unwrap(),
            n,
        );
        println!(
            "round {round}: {n} pipelined sendmsg: bare client {:.0}/s, rtm-client {:.0}/s, ratio {:.2}",
            rate(b),
            rate(s),
            rate(s) / rate(b)
        );
    }
}
