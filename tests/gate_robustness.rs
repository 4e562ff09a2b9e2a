//! The local gate survives whatever a connection sends (docs/gate.md,
//! "Robustness"): the offending connection is closed, the others carry on.
//! Also the `rtm-gate` program: its first line, and a clean exit on SIGTERM.
#![cfg(feature = "gate")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use rtm_client::fpnn::packet;
use rtm_client::gate::Gate;
use rtm_client::ws::frame::{encode_frame, Opcode};
use rtm_client::ws::handshake::client_request;
use rtm_client::{blocking, RtmClient};

/// A raw TCP connection that has done the WebSocket upgrade.
fn upgraded(gate: &Gate) -> TcpStream {
    let mut s = TcpStream::connect(gate.endpoint()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let req = client_request(
        &gate.endpoint(),
        "/service/websocket",
        "dGhlIHNhbXBsZSBub25jZQ==",
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

/// The gate closes the connection: reading ends (EOF or reset) within WAIT.
fn closed_by_gate(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + WAIT;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("the gate kept the connection open")
            }
            Err(_) => return,
            Ok(_) if Instant::now() < deadline => continue,
            Ok(_) => panic!("the gate kept the connection open"),
        }
    }
}

fn masked(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(
        &mut out,
        Opcode::Binary,
        true,
        payload,
        Some([1, 2, 3, 4]),
        false,
    );
    out
}

/// A logged-in client can still send and read after whatever came before.
fn gate_still_serves(gate: &Gate) {
    let options = options(gate);
    let a = online(options.clone(), 1);
    let b = online(options, 2);
    let sent = blocking(|cb| a.send_message(2, 30, "still up", "", 0, 0, cb)).unwrap();
    let h = blocking(|cb| b.get_p2p_message(1, true, 10, None, None, None, None, 0, cb)).unwrap();
    assert_eq!(h.msgs[0].mid, sent.mid);
    a.destroy();
    b.destroy();
}

#[test]
fn garbage_instead_of_a_handshake_closes_only_that_connection() {
    let gate = gate();
    let mut s = TcpStream::connect(gate.endpoint()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&[0xff; 600]).unwrap();
    s.write_all(b"\r\n\r\n").unwrap();
    closed_by_gate(s);
    gate_still_serves(&gate);
}

#[test]
fn lower_case_upgrade_headers_get_http_500_like_fpnn() {
    let gate = gate();
    let mut s = TcpStream::connect(gate.endpoint()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let req = client_request(&gate.endpoint(), "/service/websocket", "k")
        .replace("Upgrade: websocket", "upgrade: websocket");
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer:?}");
    gate_still_serves(&gate);
}

#[test]
fn malformed_frames_and_packets_close_only_that_connection() {
    let gate = gate();
    let bad_inputs: Vec<Vec<u8>> = vec![
        // An unmasked client frame.
        {
            let mut v = Vec::new();
            encode_frame(&mut v, Opcode::Binary, true, b"FPNN", None, false);
            v
        },
        // Reserved bits and an unknown opcode.
        vec![0xf2, 0x80, 0, 0, 0, 0],
        vec![0x83, 0x80, 0, 0, 0, 0],
        // Not an FPNN packet.
        masked(b"hello, gate"),
        // A packet whose declared length disagrees with the message.
        {
            let mut p = Vec::new();
            packet::encode_quest(&mut p, true, 1, "auth", packet::EMPTY_MAP);
            p.push(0);
            masked(&p)
        },
        // A payload that is not msgpack (a map cut short).
        {
            let mut p = Vec::new();
            packet::encode_quest(&mut p, true, 1, "auth", &[0x82, 0xa3, b'p']);
            masked(&p)
        },
        // Payloads nested deeper than the decoder allows (1,024 levels as rmpv counts
        // them: two per array, three for a str): the shortest (512 bytes, one over the
        // short payloads' bound) and a longer one (decoded whole either way).
        {
            let mut p = Vec::new();
            let mut deep = [0x91].repeat(511);
            deep.push(0xa0);
            packet::encode_quest(&mut p, true, 1, "sendmsg", &deep);
            masked(&p)
        },
        {
            let mut p = Vec::new();
            let mut deep = [0x91].repeat(999);
            deep.push(0xa0);
            packet::encode_quest(&mut p, true, 1, "sendmsg", &deep);
            masked(&p)
        },
        // A text message.
        {
            let mut v = Vec::new();
            encode_frame(&mut v, Opcode::Text, true, b"hi", Some([9, 9, 9, 9]), false);
            v
        },
    ];
    for bad in bad_inputs {
        let mut s = upgraded(&gate);
        s.write_all(&bad).unwrap();
        closed_by_gate(s);
    }
    gate_still_serves(&gate);
}

#[test]
fn a_packet_over_the_limit_closes_the_connection_before_its_payload_is_read() {
    let gate = Gate::builder().max_packet(1024).start().unwrap();
    let mut s = upgraded(&gate);
    // Only a header announcing 1 GiB: the gate must not wait for (or allocate) it.
    let mut head = vec![0x82, 0x80 | 127];
    head.extend_from_slice(&(1u64 << 30).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    s.write_all(&head).unwrap();
    closed_by_gate(s);
    gate_still_serves(&gate);
}

#[test]
fn random_bytes_after_the_handshake_never_stop_the_gate() {
    let gate = gate();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..40 {
        let mut s = upgraded(&gate);
        let len = 1 + (round * 37) % 300;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        closed_by_gate(s);
    }
    gate_still_serves(&gate);
}

#[test]
fn the_rtm_gate_program_prints_its_address_first_and_exits_0_on_sigterm() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rtm-gate"))
        .args(["--port", "0", "--token", "7:secret", "--ping-interval", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("rtm-gate listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("first line was {first:?}"));
    let port: u16 = addr.parse().unwrap();
    assert_ne!(port, 0, "the real port is printed");
    // The --token rule holds: the right token logs in, another does not.
    let client = RtmClient::new(rtm_client::RtmOptions {
        endpoint: Some(format!("127.0.0.1:{port}")),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(login(&client, 7, "secret", 0), (true, 0));
    assert_eq!(login(&client, 7, "wrong", 0), (false, 0));
    client.destroy();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "rtm-gate did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_rtm_gate_program_refuses_bad_options_with_exit_code_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtm-gate"))
        .args(["--port", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
}
