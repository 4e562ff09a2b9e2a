//! The file API through the client against the local gate and its file proxy:
//! `file_token`, and the three file sends (token, proxy connect, signed upload),
//! their pushes and stored bytes, and every way they fail with exactly one callback.
#![cfg(feature = "gate")]

mod msg_common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

use msg_common::*;
use rtm_client::fpnn::{ConnectOptions, Connection, Quest, Responder};
use rtm_client::gate::Gate;
use rtm_client::{
    blocking, error_code, mtype, Dispatch, PushEvent, RtmClient, RtmFile, RtmOptions, SendAnswer,
    SendError,
};

type Outcome = (Option<SendError>, Option<SendAnswer>);

/// A (gate, A, B) world where A and B share group GID and room RID.
fn two_users(gate: &Gate) -> (RtmClient, RtmClient) {
    let a = logged_in(gate, A);
    let b = logged_in(gate, B);
    group(&a, GID, &[B]);
    enter(&a, RID);
    enter(&b, RID);
    (a, b)
}

fn send_file(
    client: &RtmClient,
    to: To,
    file_mtype: u8,
    file: &RtmFile,
    mid: i64,
    timeout: u64,
    cb: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
) {
    match to {
        To::P2p(uid) => client.send_file(file_mtype, uid, file, mid, timeout, cb),
        To::Group(gid) => client.send_group_file(file_mtype, gid, file, mid, timeout, cb),
        To::Room(rid) => client.send_room_file(file_mtype, rid, file, mid, timeout, cb),
    }
}

/// Starts a send (as `blocking` does: `start(|cb| client.send_file(..., cb))`) and
/// returns the channel its callback reports on.
fn start(
    send: impl FnOnce(Box<dyn FnOnce(Option<SendError>, Option<SendAnswer>) + Send>),
) -> mpsc::Receiver<Outcome> {
    let (tx, rx) = mpsc::channel();
    send(Box::new(move |e, d| {
        let _ = tx.send((e, d));
    }));
    rx
}

/// The one outcome of a send: waits for the callback, then destroys the client (which
/// waits for any callback a send still owes) and checks that no second callback came.
fn only_outcome(client: &RtmClient, rx: &mpsc::Receiver<Outcome>) -> Outcome {
    let first = rx.recv_timeout(WAIT).expect("the callback ran");
    client.destroy();
    assert!(rx.try_recv().is_err(), "a second callback ran");
    first
}

fn client_with_proxy(gate: &Gate, file_endpoint: &str) -> RtmClient {
    let c = RtmClient::new(RtmOptions {
        endpoint: Some(gate.endpoint()),
        pid: PID,
        file_endpoint: Some(file_endpoint.into()),
        ..Default::default()
    })
    .unwrap();
    login(&c, A);
    c
}

/// A listener that accepts and never answers (not even the WebSocket handshake).
fn silent_proxy() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = l.local_addr().unwrap().to_string();
    (l, ep)
}

/// A plain HTTP GET of `url` (`http://host:port/path`), read to the end (the proxy
/// closes after its answer): the status line and the body, whose length is checked
/// against `Content-Length`.
fn http_get(url: &str) -> (String, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n");
    let end = end.unwrap_or_else(|| panic!("no HTTP head in {out:?}"));
    let head = String::from_utf8(out[..end].to_vec()).unwrap();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse::<usize>().ok());
    let body = out[end + 4..].to_vec();
    assert_eq!(len, Some(body.len()), "{head}");
    (head.lines().next().unwrap_or_default().to_owned(), body)
}

#[test]
fn files_reach_the_receivers_as_urls_of_the_stored_bytes() {
    let gate = gate();
    let (a, b) = two_users(&gate);
    let pushes = Pushes::listen(&b);
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let file = RtmFile::new("holiday.photo.png", data.clone());
    for (i, (to, event, method)) in [
        (To::P2p(B), PushEvent::RecvFile, "sendfile"),
        (To::Group(GID), PushEvent::RecvGroupFile, "sendgroupfile"),
        (To::Room(RID), PushEvent::RecvRoomFile, "sendroomfile"),
    ]
    .into_iter()
    .enumerate()
    {
        let mid = BIG_MID + i as i64;
        let sent = blocking(|cb| send_file(&a, to, mtype::FILE_IMAGE, &file, mid, 0, cb))
            .unwrap_or_else(|e| panic!("{to:?}: {e}"));
        assert_eq!(sent.mid, mid);
        assert!(sent.payload.mtime > 0);
        let seen = pushes.wait_mid(mid);
        assert_eq!((seen.event, seen.msg.from, seen.msg.mtype), (event, A, 40));
        assert_eq!(seen.msg.mtime, sent.payload.mtime);
        let url = seen.msg.msg.clone().expect("a text body");
        assert!(url.starts_with("http://"), "{url}");
        assert_eq!(gate.file(&url).as_deref(), Some(&data[..]), "{method}");
        // The URL is served over HTTP by the proxy.
        assert_eq!(http_get(&url), ("HTTP/1.1 200 OK".into(), data.clone()));
        let attrs: serde_json::Value = serde_json::from_str(&seen.msg.attrs).unwrap();
        assert_eq!(attrs["rtm"]["ext"], "png");
        assert_eq!(attrs["rtm"]["sign"].as_str().map(str::len), Some(32));

        // On the wire: filetoken {cmd, to|gid|rid} without mtype, then the upload.
        let token_req = gate.received("filetoken").pop().unwrap();
        assert_eq!(
            keys(&token_req),
            ["cmd", to_key(to)].map(String::from).to_vec()
        );
        let upload = gate.received(method).pop().unwrap();
        let mut k = keys(&upload);
        k.sort();
        let mut want = [
            "pid", "from", "mid", "endpoint", "token", "attrs", "file", "mtype",
        ]
        .map(String::from)
        .to_vec();
        want.push(to_key(to).into());
        want.sort();
        assert_eq!(k, want);
    }
    // A resend with the same mid is answered as the first send and pushed once.
    let again = blocking(|cb| a.send_file(mtype::FILE_FILE, B, &file, BIG_MID, 0, cb)).unwrap();
    settle(&a);
    sentinel(&gate, B, &[&pushes]);
    assert_eq!(pushes.with_mid(BIG_MID).len(), 1);
    assert!(again.payload.mtime > 0);
}

fn to_key(to: To) -> &'static str {
    match to {
        To::P2p(_) => "to",
        To::Group(_) => "gid",
        To::Room(_) => "rid",
    }
}

#[test]
fn file_token_answers_the_proxy_endpoint_and_refuses_what_a_send_would() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let t1 = blocking(|cb| a.file_token("sendfile", None, Some(B), None, None, 0, cb)).unwrap();
    let t2 =
        blocking(|cb| a.file_token("sendfile", Some(&[B, C]), Some(B), None, None, 0, cb)).unwrap();
    assert!(!t1.token.is_empty() && t1.token != t2.token);
    assert_eq!(t1.endpoint, gate.file_endpoint());
    let e = blocking(|cb| a.file_token("sendgroupfile", None, None, None, Some(GID), 0, cb))
        .unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_NOT_GROUP_MEMBER);
    let e = blocking(|cb| a.file_token("sendroomfile", None, None, Some(RID), None, 0, cb))
        .unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_NOT_IN_ROOM);
    // Refused by the gate: the key the cmd needs is missing.
    let e =
        blocking(|cb| a.file_token("sendfile", None, None, Some(RID), None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    // Refused by the client, without sending.
    let before = gate.received("filetoken").len();
    let e = blocking(|cb| a.file_token("sendfiles", None, Some(B), None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    assert_eq!(gate.received("filetoken").len(), before);
}

#[test]
fn a_forged_sign_or_token_is_refused_by_the_proxy() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let t = blocking(|cb| a.file_token("sendfile", None, Some(B), None, None, 0, cb)).unwrap();
    let proxy = Connection::connect(
        &gate.file_endpoint(),
        false,
        &ConnectOptions::default(),
        |_: Quest, _: Responder| {},
        |_| {},
    )
    .unwrap();
    let ask = |token: &str, attrs: &str| {
        let p = map(vec![
            ("pid", PID.into()),
            ("from", A.into()),
            ("mid", 1.into()),
            ("endpoint", t.endpoint.as_str().into()),
            ("token", token.into()),
            ("attrs", attrs.into()),
            ("file", rmpv::Value::Binary(b"abc".to_vec())),
            ("to", B.into()),
            ("mtype", 50.into()),
        ]);
        let (tx, rx) = mpsc::channel();
        proxy.send_quest("sendfile", &p, WAIT, move |r| {
            let _ = tx.send(r);
        });
        rx.recv_timeout(WAIT).unwrap()
    };
    let code = |r: Result<rmpv::Value, rtm_client::RtmError>| r.unwrap_err().code;
    // The sign of other bytes.
    let forged = r#"{"rtm":{"sign":"8afebc9b146a01a266ad140d3315fbd5","ext":null}}"#;
    assert_eq!(
        code(ask(&t.token, forged)),
        error_code::RTM_EC_INVALID_FILE_OR_SIGN_OR_TOKEN
    );
    assert_eq!(
        code(ask("not-a-token", forged)),
        error_code::RTM_EC_INVALID_FILE_OR_SIGN_OR_TOKEN
    );
    assert_eq!(
        code(ask(&t.token, r#"{"rtm":{}}"#)),
        error_code::RTM_EC_ATTRS_WITHOUT_SIGN_OR_EXT
    );
    // The gate's methods are not the proxy's.
    let (tx, rx) = mpsc::channel();
    proxy.send_quest("filetoken", &map(vec![]), WAIT, move |r| {
        let _ = tx.send(r);
    });
    assert_eq!(
        code(rx.recv_timeout(WAIT).unwrap()),
        error_code::FPNN_EC_CORE_UNKNOWN_METHOD
    );
}

#[test]
fn invalid_arguments_complete_with_200033_and_the_mid_without_sending() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let file = RtmFile::new("a.txt", b"x".to_vec());
    for bad in [0, 30, 39, 51, 255] {
        let e = blocking(|cb| a.send_file(bad, B, &file, BIG_MID, 0, cb)).unwrap_err();
        assert_eq!(
            (e.mid, e.error.code),
            (BIG_MID, error_code::RTM_EC_EMPTY_PARAMETER),
            "mtype {bad}"
        );
    }
    let empty = RtmFile::new("a.txt", Vec::new());
    let e = blocking(|cb| a.send_group_file(50, GID, &empty, 0, 0, cb)).unwrap_err();
    assert_eq!(e.error.code, error_code::RTM_EC_EMPTY_PARAMETER);
    assert_ne!(e.mid, 0, "a mid is generated for 0");
    settle(&a);
    assert!(gate.received("filetoken").is_empty());

    let offline = client_with(&gate, Dispatch::Threads);
    let e = blocking(|cb| offline.send_file(50, B, &file, 0, 0, cb)).unwrap_err();
    assert_eq!(e.error.code, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
}

#[test]
fn a_token_refused_by_the_gate_completes_once_with_its_code() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let file = RtmFile::new("a.txt", b"x".to_vec());
    // The longest timeout there is: no overflow, the gate's answer still ends it.
    let rx = start(|cb| a.send_group_file(50, GID, &file, 0, u64::MAX, cb));
    let (e, d) = only_outcome(&a, &rx);
    assert!(d.is_none());
    assert_eq!(e.unwrap().error.code, error_code::RTM_EC_NOT_GROUP_MEMBER);
}

#[test]
fn an_unreachable_proxy_completes_once_with_20012() {
    let gate = gate();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let a = client_with_proxy(&gate, &closed);
    let file = RtmFile::new("a.txt", b"x".to_vec());
    let rx = start(|cb| a.send_file(50, B, &file, 7, 0, cb));
    let (e, _) = only_outcome(&a, &rx);
    let e = e.expect("an error");
    assert_eq!(
        (e.mid, e.error.code),
        (7, error_code::FPNN_EC_CORE_INVALID_CONNECTION),
        "{e}"
    );
}

#[test]
fn a_silent_proxy_completes_once_with_20003_within_the_timeout() {
    let gate = gate();
    let (_silent, ep) = silent_proxy();
    let a = client_with_proxy(&gate, &ep);
    let file = RtmFile::new("a.txt", b"x".to_vec());
    let rx = start(|cb| a.send_file(50, B, &file, 0, 300, cb));
    let (e, _) = only_outcome(&a, &rx);
    assert_eq!(e.unwrap().error.code, error_code::FPNN_EC_CORE_TIMEOUT);
}

#[test]
fn destroy_or_close_during_the_upload_completes_once_with_20002() {
    let gate = gate();
    let file = RtmFile::new("a.txt", b"x".to_vec());
    #[derive(Debug, Clone, Copy)]
    enum End {
        Destroy,
        Close,
        LostLink,
    }
    for end in [End::Destroy, End::Close, End::LostLink] {
        // The gate drops the last round's connection of A on its own thread: the
        // LostLink round must find only its own.
        wait_until("the last round's connection is gone", || {
            gate.connections_of(PID, A) == 0
        });
        let (silent, ep) = silent_proxy();
        let a = client_with_proxy(&gate, &ep);
        let rx = start(|cb| a.send_file(50, B, &file, 0, 0, cb));
        // The flow is connecting to the proxy once the proxy has a connection.
        silent.set_nonblocking(true).unwrap();
        let mut held = None;
        wait_until("the proxy gets a connection", || {
            held = silent.accept().ok();
            held.is_some()
        });
        let (e, _) = match end {
            End::Destroy => {
                a.destroy();
                // destroy() waits for the send's callback: it has run when destroy returns.
                let first = rx
                    .try_recv()
                    .expect("the callback ran before destroy returned");
                assert!(rx.try_recv().is_err());
                first
            }
            End::Close => {
                a.close();
                only_outcome(&a, &rx)
            }
            End::LostLink => {
                assert_eq!(gate.drop_user(PID, A), 1);
                only_outcome(&a, &rx)
            }
        };
        // Well before the send's own 120 s timeout.
        assert_eq!(
            e.unwrap().error.code,
            error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
            "{end:?}"
        );
    }
}

#[test]
fn a_file_over_the_proxys_limit_is_200031() {
    let gate = Gate::builder().max_file_size(1000).start().unwrap();
    let a = logged_in(&gate, A);
    let small = RtmFile::new("a.bin", vec![1; 1000]);
    blocking(|cb| a.send_file(50, B, &small, 0, 0, cb)).expect("at the limit");
    let large = RtmFile::new("a.bin", vec![1; 1001]);
    let e = blocking(|cb| a.send_file(50, B, &large, 0, 0, cb)).unwrap_err();
    assert_eq!(e.error.code, error_code::RTM_EC_LARGE_FILE_OR_ATTRS);
}

#[test]
fn blocking_works_on_the_thread_that_dispatches_in_queued_mode() {
    let gate = gate();
    let a = client_with(&gate, Dispatch::Queued);
    login(&a, A);
    let file = RtmFile::new("notes", b"queued".to_vec());
    let sent = blocking(|cb| a.send_file(50, B, &file, 0, 0, cb)).unwrap();
    assert!(sent.payload.mtime > 0);
    let b = logged_in(&gate, B);
    let h =
        blocking(|cb| b.get_p2p_message(A, true, 1, None, None, None, Some(&[50]), 0, cb)).unwrap();
    let url = h.msgs[0].msg.clone().unwrap();
    assert_eq!(gate.file(&url).as_deref(), Some(&b"queued"[..]));
    assert!(
        h.msgs[0].attrs.contains(r#""ext":null"#),
        "{}",
        h.msgs[0].attrs
    );
}

#[test]
fn the_proxy_answers_404_for_a_file_it_does_not_hold_and_the_gate_port_serves_none() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let file = RtmFile::new("a.txt", b"served".to_vec());
    blocking(|cb| a.send_file(50, B, &file, 0, 0, cb)).unwrap();
    let url = |ep: &str, n: &str| format!("http://{ep}/file/{n}");
    let proxy = gate.file_endpoint();
    assert_eq!(
        gate.file(&url(&proxy, "1")).as_deref(),
        Some(&b"served"[..])
    );
    assert_eq!(
        http_get(&url(&proxy, "1")),
        ("HTTP/1.1 200 OK".into(), b"served".to_vec())
    );
    for n in ["2", "0", "x", "1/2", ""] {
        assert_eq!(
            http_get(&url(&proxy, n)),
            ("HTTP/1.1 404 Not Found".into(), Vec::new()),
            "{n:?}"
        );
    }
    // The gate's own port is WebSocket only: it drops the request without an answer.
    let mut s = TcpStream::connect(gate.endpoint()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET /file/1 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
}

/// `file_store_limit` bounds what the proxy keeps: past it the oldest file is dropped,
/// and its URL answers 404 where the newer ones are still served.
#[test]
fn the_proxy_drops_its_oldest_files_past_the_store_limit() {
    let gate = Gate::builder().file_store_limit(10).start().unwrap();
    let a = logged_in(&gate, A);
    let mut urls = Vec::new();
    for body in [b"first", b"secnd", b"third"] {
        let file = RtmFile::new("a.txt", body.to_vec());
        blocking(|cb| a.send_file(50, B, &file, 0, 0, cb)).unwrap();
        let h = blocking(|cb| a.get_p2p_message(B, true, 1, None, None, None, Some(&[50]), 0, cb))
            .unwrap();
        urls.push(h.msgs[0].msg.clone().unwrap());
    }
    assert_eq!(gate.file(&urls[0]), None);
    assert_eq!(
        http_get(&urls[0]),
        ("HTTP/1.1 404 Not Found".into(), Vec::new())
    );
    for (url, body) in urls[1..].iter().zip([b"secnd", b"third"]) {
        assert_eq!(gate.file(url).as_deref(), Some(&body[..]));
        assert_eq!(http_get(url), ("HTTP/1.1 200 OK".into(), body.to_vec()));
    }
}

#[test]
fn the_rtm_gate_program_prints_the_file_proxy_on_its_second_line() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rtm-gate"))
        .args(["--port", "0", "--file-port", "0", "--ping-interval", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut line = || lines.next().unwrap().unwrap();
    let (first, second) = (line(), line());
    let gate_ep = first
        .strip_prefix("rtm-gate listening on ")
        .unwrap_or_else(|| panic!("first line was {first:?}"))
        .to_owned();
    let proxy_ep = second
        .strip_prefix("rtm-gate file proxy on ")
        .unwrap_or_else(|| panic!("second line was {second:?}"))
        .to_owned();
    let client = RtmClient::new(RtmOptions {
        endpoint: Some(gate_ep),
        ..Default::default()
    })
    .unwrap();
    login(&client, A);
    let t = blocking(|cb| client.file_token("sendfile", None, Some(B), None, None, 0, cb));
    assert_eq!(t.unwrap().endpoint, proxy_ep);
    let file = RtmFile::new("a.txt", b"through the program".to_vec());
    blocking(|cb| client.send_file(50, B, &file, 0, 0, cb)).expect("sent through the program");
    client.destroy();
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_gate_on_an_ipv6_address_leads_to_its_proxy_through_the_token_endpoint() {
    let Ok(gate) = Gate::builder().host("::1").start() else {
        eprintln!("no IPv6 loopback here: nothing to check");
        return;
    };
    assert!(
        gate.file_endpoint().starts_with("[::1]:"),
        "{}",
        gate.file_endpoint()
    );
    let a = logged_in(&gate, A);
    let file = RtmFile::new("v6.txt", b"over IPv6".to_vec());
    blocking(|cb| a.send_file(50, B, &file, 0, 0, cb)).expect("sent over IPv6");
    let b = logged_in(&gate, B);
    let h =
        blocking(|cb| b.get_p2p_message(A, true, 1, None, None, None, Some(&[50]), 0, cb)).unwrap();
    let url = h.msgs[0].msg.clone().unwrap();
    assert!(url.starts_with("http://[::1]:"), "{url}");
    assert_eq!(gate.file(&url).as_deref(), Some(&b"over IPv6"[..]));
    assert_eq!(
        http_get(&url),
        ("HTTP/1.1 200 OK".into(), b"over IPv6".to_vec())
    );
}

#[test]
fn destroy_from_the_sends_own_callback_does_not_wait_for_itself() {
    let gate = gate();
    for dispatch in [Dispatch::Threads, Dispatch::Queued] {
        let a = client_with(&gate, dispatch);
        login(&a, A);
        let file = RtmFile::new("a.txt", b"x".to_vec());
        let (tx, rx) = mpsc::channel();
        let me = a.clone();
        // Refused at the token (not a member): the callback destroys the client.
        a.send_group_file(50, GID, &file, 0, 0, move |e, _| {
            me.destroy();
            let _ = tx.send(e.map(|e| e.error.code));
        });
        let deadline = std::time::Instant::now() + WAIT;
        let code = loop {
            a.dispatch_pending();
            if let Ok(code) = rx.try_recv() {
                break code;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{dispatch:?}: no callback"
            );
            std::thread::yield_now();
        };
        assert_eq!(
            code,
            Some(error_code::RTM_EC_NOT_GROUP_MEMBER),
            "{dispatch:?}"
        );
    }
}

#[test]
fn a_restarted_gate_keeps_its_file_proxy_port_and_files() {
    let gate = gate();
    let before = gate.file_endpoint();
    let a = logged_in(&gate, A);
    let file = RtmFile::new("kept.txt", b"kept".to_vec());
    blocking(|cb| a.send_file(50, B, &file, 0, 0, cb)).unwrap();
    a.destroy();
    gate.restart().unwrap();
    assert_eq!(gate.file_endpoint(), before);
    let b = logged_in(&gate, B);
    let h =
        blocking(|cb| b.get_p2p_message(A, true, 1, None, None, None, Some(&[50]), 0, cb)).unwrap();
    let url = h.msgs[0].msg.clone().unwrap();
    assert_eq!(gate.file(&url).as_deref(), Some(&b"kept"[..]));
    let back = RtmFile::new("back.txt", b"back".to_vec());
    blocking(|cb| b.send_file(50, A, &back, 0, 0, cb)).expect("the proxy listens again");
}

/// A file resend is checked twice: `filetoken` (which has no mid) refuses a target the
/// sender may no longer send to, before the upload's resend rule could answer it. So a
/// room file resent after leaving the room (as a relogin does) is 200040 until the room
/// is entered again, and a p2p file resent after the receiver blocked the sender is
/// 200021, unlike a message resend (docs/Files.md, "Resending a file").
#[test]
fn a_file_resend_needs_the_target_again_because_the_token_checks_it() {
    let gate = gate();
    let (a, b) = two_users(&gate);
    let file = RtmFile::new("notes.txt", b"minutes".to_vec());
    let first = blocking(|cb| b.send_room_file(mtype::FILE_FILE, RID, &file, 0, 0, cb)).unwrap();
    blocking(|cb| b.leave_room(RID, 0, cb)).unwrap();
    let e = blocking(|cb| b.send_room_file(mtype::FILE_FILE, RID, &file, first.mid, 0, cb))
        .expect_err("filetoken refuses a room one is not in");
    assert_eq!(
        (e.mid, e.error.code),
        (first.mid, error_code::RTM_EC_NOT_IN_ROOM)
    );
    enter(&b, RID);
    let again = blocking(|cb| b.send_room_file(mtype::FILE_FILE, RID, &file, first.mid, 0, cb))
        .expect("a resend from inside the room");
    assert_eq!(again, first, "answered as the first send");
    let h = blocking(|cb| a.get_room_message(RID, false, 20, None, None, None, Some(&[50]), 0, cb))
        .unwrap();
    assert_eq!(h.msgs.len(), 1, "stored once");

    let first = blocking(|cb| b.send_file(mtype::FILE_FILE, A, &file, 0, 0, cb)).unwrap();
    blocking(|cb| a.add_blacks(&[B], 0, cb)).unwrap();
    let e = blocking(|cb| b.send_file(mtype::FILE_FILE, A, &file, first.mid, 0, cb))
        .expect_err("filetoken refuses a receiver who blocked the sender");
    assert_eq!(
        (e.mid, e.error.code),
        (first.mid, error_code::RTM_EC_PERMISSION_DENIED)
    );
}
