//! Opening a connection: the upgrade request FPNN servers accept, the
//! connect timeout, refused ports, and TLS.
#![cfg(feature = "gate")]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use rtm_client::error_code;
use rtm_client::fpnn::{CloseReason, ConnectOptions, Connection, Quest, Responder};
use rtm_client::RtmError;
use support::*;

fn try_connect(
    endpoint: &str,
    tls: bool,
    options: &ConnectOptions,
) -> Result<Connection, RtmError> {
    Connection::connect(endpoint, tls, options, |_: Quest, _: Responder| {}, |_| {})
}

/// Runs a connect on another thread so a hang fails the test instead of
/// stalling it. Returns the result and how long it took.
fn timed_connect(
    endpoint: String,
    tls: bool,
    options: ConnectOptions,
) -> (Result<Connection, RtmError>, Duration) {
    let limit = options.connect_timeout + WAIT;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let start = Instant::now();
        let r = try_connect(&endpoint, tls, &options);
        let _ = tx.send((r, start.elapsed()));
    });
    rx.recv_timeout(limit)
        .expect("connect did not return in time")
}

#[test]
fn handshake_headers_are_spelled_exactly() {
    let server = TestServer::start();
    let (_client, s) = server.connect();
    let head = s
        .request
        .strip_suffix("\r\n\r\n")
        .expect("request ends with a blank line");
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("GET /service/websocket HTTP/1.1"));
    let mut headers: Vec<(&str, &str)> = lines.map(|l| l.split_once(": ").expect(l)).collect();
    headers.sort();
    let key = headers
        .iter()
        .find(|(n, _)| *n == "Sec-WebSocket-Key")
        .expect("key")
        .1;
    assert_eq!(key.len(), 24, "base64 of 16 bytes: {key}");
    assert!(key.ends_with("=="));
    let port = server.port().to_string();
    let host = format!("127.0.0.1:{port}");
    let mut expected = vec![
        ("Connection", "Upgrade"),
        ("Host", host.as_str()),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
        ("Upgrade", "websocket"),
    ];
    expected.sort();
    assert_eq!(headers, expected);
}

#[test]
fn the_path_option_is_the_request_path() {
    let server = TestServer::start();
    let mut options = server.options();
    options.path = "/service/other".to_owned();
    let (_client, s) = server.connect_with(options);
    assert!(
        s.request.starts_with("GET /service/other HTTP/1.1\r\n"),
        "{}",
        s.request
    );
}

#[test]
fn connect_timeout_covers_a_server_that_never_answers_the_handshake() {
    // Accept the TCP connection and say nothing.
    let (endpoint, hold_rx) = silent_server();
    for tls in [false, true] {
        let timeout = Duration::from_millis(300);
        let options = ConnectOptions {
            connect_timeout: timeout,
            ..ConnectOptions::default()
        };
        let endpoint = if tls {
            endpoint.replace("127.0.0.1", "localhost")
        } else {
            endpoint.clone()
        };
        let (r, took) = timed_connect(endpoint, tls, options);
        let e = r.expect_err("connect must fail");
        println!("tls {tls}: silent server connect timeout of {timeout:?} took {took:?}");
        assert_eq!(e.code, error_code::FPNN_EC_CORE_TIMEOUT, "{e}");
        assert!(
            took >= timeout - Duration::from_millis(5),
            "gave up early: {took:?}"
        );
        // Late is bounded by `timed_connect`'s limit (timeout + WAIT, far
        // below the default 30 s a connect that ignored the option would
        // take), not by a tighter figure that a loaded machine could miss.
    }
    drop(hold_rx);
}

#[test]
fn connect_timeout_covers_a_server_that_trickles_its_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        // An answer whose head never ends, one byte at a time.
        let bytes = b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ";
        for b in bytes.iter().chain(std::iter::repeat(&b'a')) {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let timeout = Duration::from_millis(300);
    let options = ConnectOptions {
        connect_timeout: timeout,
        ..ConnectOptions::default()
    };
    let (r, took) = timed_connect(endpoint, false, options);
    let e = r.expect_err("connect must fail");
    println!("trickling server: connect timeout of {timeout:?} took {took:?}");
    assert_eq!(e.code, error_code::FPNN_EC_CORE_TIMEOUT, "{e}");
    // A timeout per read would never fire (a byte comes every 20 ms), so
    // returning within `timed_connect`'s limit shows the timeout covers the
    // whole handshake; no tighter bound, which a loaded machine could miss.
    assert!(
        took >= timeout - Duration::from_millis(5),
        "gave up early: {took:?}"
    );
}

#[test]
fn a_duration_max_connect_timeout_means_no_timeout() {
    let server = TestServer::start();
    let mut options = server.options();
    options.connect_timeout = Duration::MAX;
    let (client, mut s) = server.connect_with(options);
    let rx = send(&client.conn, "q", &empty(), Duration::from_secs(30));
    let (p, _) = s.quest();
    s.answer(p.seq, &empty());
    assert!(result(&rx).is_ok());
}

#[test]
fn connecting_to_a_closed_port_fails_with_20012() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = try_connect(
        &format!("127.0.0.1:{port}"),
        false,
        &ConnectOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_INVALID_CONNECTION, "{e}");
}

#[test]
fn an_invalid_endpoint_fails_with_20012() {
    for bad in ["", "no-port", "host:0", "ws://:80"] {
        let e = try_connect(bad, false, &ConnectOptions::default()).unwrap_err();
        assert_eq!(
            e.code,
            error_code::FPNN_EC_CORE_INVALID_CONNECTION,
            "{bad}: {e}"
        );
    }
}

#[test]
fn a_refused_upgrade_fails_with_20012() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    });
    let (r, _) = timed_connect(endpoint, false, ConnectOptions::default());
    assert_eq!(
        r.unwrap_err().code,
        error_code::FPNN_EC_CORE_INVALID_CONNECTION
    );
}

#[test]
fn tls_round_trip() {
    let server = TestServer::start_tls();
    let (client, mut s) = server.connect();
    assert!(client.conn.endpoint().tls);
    // Client quest, server answer.
    let rx = send(
        &client.conn,
        "hello",
        &map1("who", "me"),
        Duration::from_secs(30),
    );
    let (p, v) = s.quest();
    assert_eq!((p.method.as_str(), p.seq), ("hello", 1));
    assert_eq!(get(&v, "who").as_str(), Some("me"));
    s.answer(p.seq, &map1("hi", "you"));
    assert_eq!(get(&result(&rx).unwrap(), "hi").as_str(), Some("you"));
    // Server quest, answered by the dropped responder.
    let seq = s.send_twoway("push", &empty());
    let (q, r) = client.quest();
    assert_eq!(q.method, "push");
    drop(r);
    let p = s.packet();
    assert_eq!((p.seq, p.payload.as_slice()), (seq, &[0x80][..]));
    // Large and quirk-sized answers through TLS records.
    for (len, quirk) in [(126, true), (126, false), (65_536, true), (300_000, true)] {
        s.quirk = quirk;
        let rx = send(&client.conn, "big", &empty(), Duration::from_secs(30));
        let (p, _) = s.quest();
        let payload = payload_of_len(len - 16);
        s.answer(p.seq, &payload);
        assert_eq!(result(&rx).unwrap(), payload, "{len} bytes over TLS");
    }
    // Client quests around and well over the TLS session's 64 KiB buffer.
    for len in [126, 65_536, 300_000] {
        let payload = payload_of_len(len);
        let rx = send(&client.conn, "up", &payload, Duration::from_secs(30));
        let (p, v) = s.quest();
        assert_eq!(v, payload, "{len}-byte payload over TLS");
        s.answer(p.seq, &empty());
        assert!(result(&rx).is_ok());
    }
    // Many quests at once: the writer coalesces them into one large write.
    let rxs: Vec<_> = (0..200)
        .map(|i| {
            send(
                &client.conn,
                "many",
                &payload_of_len(2000 + i),
                Duration::from_secs(30),
            )
        })
        .collect();
    for _ in 0..200 {
        let (p, _) = s.quest();
        s.answer(p.seq, &empty());
    }
    for rx in &rxs {
        assert!(result(rx).is_ok());
    }
    // Closing sends a close frame inside TLS.
    client.conn.close();
    assert_eq!(client.closed(), CloseReason::Local);
    assert_eq!(s.ending(), Ending::CloseFrame(Some(1000)));
}

#[test]
fn tls_server_closing_fails_pending_quests() {
    let server = TestServer::start_tls();
    let (client, mut s) = server.connect();
    let rx = send(&client.conn, "q", &empty(), Duration::from_secs(30));
    s.quest();
    s.close_tcp();
    assert!(matches!(
        client.closed(),
        CloseReason::Peer | CloseReason::Error(_)
    ));
    assert_eq!(
        result(&rx).unwrap_err().code,
        error_code::FPNN_EC_CORE_CONNECTION_CLOSED
    );
}

#[test]
fn tls_with_an_untrusted_certificate_fails_with_20012() {
    let server = TestServer::start_tls();
    let options = ConnectOptions {
        connect_timeout: WAIT,
        ..ConnectOptions::default()
    };
    let (r, _) = timed_connect(server.endpoint(), true, options);
    let e = r.unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_INVALID_CONNECTION, "{e}");
}
