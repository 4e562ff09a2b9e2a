//! Server pushes: routing, acknowledgement, the duplicate filter,
//! excludedUids, unknown and malformed pushes, binary bodies, kickoutroom
//! and ping (docs/protocol.md section 7, docs/porting.md).
#![cfg(feature = "gate")]

mod common;

use std::time::{Duration, Instant};

use common::raw::{RawConn, RawServer};
use common::*;
use rmpv::Value;
use rtm_client::fpnn::packet::Kind;
use rtm_client::gate::Gate;
use rtm_client::{blocking, error_code, PushEvent, RtmClient, RtmError, RtmOptions, SendError};

const ME: i64 = 1001;
const PEER: i64 = 2002;

/// The event docs/protocol.md section 7 routes a push to, written out by hand.
fn expected_event(method: &str, mtype: u8) -> PushEvent {
    use PushEvent::*;
    let row = match method {
        "pushmsg" => [RecvMessage, RecvFile, RecvChat, RecvAudio, RecvCmd],
        "pushgroupmsg" => [
            RecvGroupMessage,
            RecvGroupFile,
            RecvGroupChat,
            RecvGroupAudio,
            RecvGroupCmd,
        ],
        "pushroommsg" => [
            RecvRoomMessage,
            RecvRoomFile,
            RecvRoomChat,
            RecvRoomAudio,
            RecvRoomCmd,
        ],
        "pushbroadcastmsg" => [
            RecvBroadcastMessage,
            RecvBroadcastFile,
            RecvBroadcastChat,
            RecvBroadcastAudio,
            RecvBroadcastCmd,
        ],
        m => panic!("{m}"),
    };
    match mtype {
        40..=50 => row[1],
        30 => row[2],
        31 => row[3],
        32 => row[4],
        _ => row[0],
    }
}

fn me_online(gate: &Gate) -> (RtmClient, Events) {
    let client = RtmClient::new(options(gate)).unwrap();
    let ev = Events::attach(&client);
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    (client, ev)
}

fn quest(gate: &Gate, method: &str, payload: Value) {
    one_connection(gate, ME);
    assert_eq!(gate.send_quest(PID, ME, method, payload, true), 1);
}

/// The gate's `send_quest` hook refuses a method name an FPNN header cannot hold (empty,
/// or over 255 bytes): it sends nothing (returns 0) instead of panicking or writing a
/// broken packet, and the connection goes on working.
#[test]
fn send_quest_refuses_a_method_name_a_header_cannot_hold() {
    let gate = gate();
    let (_client, mut ev) = me_online(&gate);
    let payload = || push_payload("pushmsg", PEER, ME, 30, 1, "x".into(), "");
    for method in [String::new(), "m".repeat(256)] {
        assert_eq!(gate.send_quest(PID, ME, &method, payload(), true), 0);
    }
    quest(&gate, &"m".repeat(255), Value::Map(vec![]));
    quest(&gate, "pushmsg", payload());
    ev.fence(&gate, ME);
    assert_eq!(ev.pushes().len(), 1);
    assert_eq!(gate.connections_of(PID, ME), 1);
}

#[test]
fn every_push_route_and_mtype_arrives_on_its_event() {
    let gate = gate();
    let (_client, mut ev) = me_online(&gate);
    let methods = ["pushmsg", "pushgroupmsg", "pushroommsg", "pushbroadcastmsg"];
    let mtypes = [
        80u8, 30, 31, 32, 40, 41, 42, 45, 50, 0, 29, 33, 39, 51, 127, 255,
    ];
    let mut expected = Vec::new();
    let mut mid = 100;
    for method in methods {
        for mtype in mtypes {
            mid += 1;
            let target = 700 + mid;
            let msg = format!("{method} {mtype}");
            quest(
                &gate,
                method,
                push_payload(method, PEER, target, mtype, mid, msg.as_str().into(), "at"),
            );
            expected.push((
                expected_event(method, mtype),
                method,
                target,
                mtype,
                mid,
                msg,
            ));
        }
    }
    ev.fence(&gate, ME);
    let got = ev.pushes();
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for ((event, m), (want, method, target, mtype, mid, msg)) in got.iter().zip(&expected) {
        assert_eq!(*event, *want, "{method} mtype {mtype}");
        assert_eq!((m.from, m.mtype, m.mid), (PEER, *mtype, *mid));
        assert_eq!(m.msg.as_deref(), Some(msg.as_str()));
        assert_eq!(m.binary, msg.as_bytes());
        assert_eq!((m.attrs.as_str(), m.mtime), ("at", 1_700_000_000_000));
        let (gid, rid) = match *method {
            "pushgroupmsg" => (Some(*target), None),
            "pushroommsg" => (None, Some(*target)),
            _ => (None, None),
        };
        assert_eq!((m.gid, m.rid), (gid, rid), "{method}");
    }
    // Every one of the 20 events fired at least once.
    for e in PushEvent::ALL {
        assert!(got.iter().any(|(g, _)| *g == e), "{e} never fired");
    }
}

#[test]
fn messages_sent_by_another_client_arrive_on_their_events() {
    let gate = gate();
    let (_me, mut ev) = me_online(&gate);
    let peer = online(options(&gate), PEER);
    let ok = |r: Result<(), RtmError>| r.unwrap();
    ok(blocking(|cb| peer.add_group_members(55, &[ME], 0, cb)));
    ok(blocking(|cb| peer.enter_room(66, 0, cb)));
    ok(blocking(|cb| ev.client().enter_room(66, 0, cb)));

    let send = |r: Result<rtm_client::SendAnswer, SendError>| r.unwrap().mid;
    let a = send(blocking(|cb| {
        peer.send_message(ME, 30, "chat", "a1", 0, 0, cb)
    }));
    let b = send(blocking(|cb| {
        peer.send_group_message(55, 31, "audio", "a2", 0, 0, cb)
    }));
    let c = send(blocking(|cb| {
        peer.send_room_message(66, 42, "video", "a3", 0, 0, cb)
    }));
    let d = send(blocking(|cb| {
        peer.send_message(ME, 90, "custom", "a4", 0, 0, cb)
    }));

    let (e, m) = ev.push(PEER, a);
    assert_eq!(
        (e, m.msg.as_deref(), m.attrs.as_str(), m.mtype),
        (PushEvent::RecvChat, Some("chat"), "a1", 30)
    );
    let (e, m) = ev.push(PEER, b);
    assert_eq!(
        (e, m.gid, m.msg.as_deref()),
        (PushEvent::RecvGroupAudio, Some(55), Some("audio"))
    );
    let (e, m) = ev.push(PEER, c);
    assert_eq!(
        (e, m.rid, m.msg.as_deref()),
        (PushEvent::RecvRoomFile, Some(66), Some("video"))
    );
    let (e, m) = ev.push(PEER, d);
    assert_eq!(
        (e, m.msg.as_deref()),
        (PushEvent::RecvMessage, Some("custom"))
    );
    assert!(m.mtime > 0);

    gate.broadcast(PID, 1, 32, "cmd", "");
    let (e, m) = ev.wait("the broadcast", |e| match e {
        Ev::Push { event, m, .. } if m.from == 1 => Some((*event, m.clone())),
        _ => None,
    });
    assert_eq!(
        (e, m.msg.as_deref()),
        (PushEvent::RecvBroadcastCmd, Some("cmd"))
    );
}

/// Logs `client` in as [`ME`] on the raw server, which accepts the auth.
fn login_raw(client: &RtmClient, srv: &RawServer) -> RawConn {
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(ME, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    let mut conn = srv.accept();
    conn.accept_auth(&[]);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (true, 0));
    conn
}

/// The next packet, which must be the successful answer to `seq` (the raw
/// server sends no pings, so nothing else comes in between).
fn answer_of(conn: &mut RawConn, seq: u32) -> Value {
    let p = conn.read();
    assert_eq!((p.kind, p.seq, p.status), (Kind::Answer, seq, 0), "{p:?}");
    RawConn::payload(&p)
}

#[test]
fn pushes_are_acknowledged_with_an_empty_answer_before_their_handlers_run() {
    let srv = RawServer::bind();
    let client = RtmClient::new(srv.options()).unwrap();
    let errors = Log::default();
    let e = errors.clone();
    client.on_error_recorder(move |err| e.push(err.code));
    // The handler blocks the dispatcher until the test has seen the answer.
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
    let (ran_tx, ran_rx) = crossbeam_channel::unbounded();
    client.processor().on(PushEvent::RecvChat, move |m| {
        release_rx.recv_timeout(WAIT).expect("released");
        ran_tx.send(m.mid).unwrap();
    });
    let mut conn = login_raw(&client, &srv);

    let seq = conn.quest("pushmsg", &p2p_push(PEER, ME, 30, 1, "hi", ""), true);
    assert_eq!(answer_of(&mut conn, seq), Value::Map(vec![]));
    release_tx.send(()).unwrap();
    assert_eq!(ran_rx.recv_timeout(WAIT).unwrap(), 1);

    // Group, room and broadcast pushes, ping and unknown methods: `{}` too.
    for (method, payload) in [
        (
            "pushgroupmsg",
            push_payload("pushgroupmsg", PEER, 5, 80, 2, "g".into(), ""),
        ),
        (
            "pushroommsg",
            push_payload("pushroommsg", PEER, 6, 80, 3, "r".into(), ""),
        ),
        (
            "pushbroadcastmsg",
            push_payload("pushbroadcastmsg", PEER, 0, 80, 4, "b".into(), ""),
        ),
        ("ping", map(vec![])),
        ("whatever", map(vec![])),
    ] {
        let seq = conn.quest(method, &payload, true);
        assert_eq!(answer_of(&mut conn, seq), Value::Map(vec![]), "{method}");
    }
    // A oneway push is not answered: the next packet answers the ping after it.
    conn.quest("pushmsg", &p2p_push(PEER, ME, 80, 5, "oneway", ""), false);
    let seq = conn.quest("ping", &map(vec![]), true);
    answer_of(&mut conn, seq);
    // The same with kickoutroom, which RTM does not answer.
    conn.quest("kickoutroom", &map(vec![("rid", 9.into())]), true);
    let seq = conn.quest("ping", &map(vec![]), true);
    answer_of(&mut conn, seq);
    wait_until("the unknown method is reported", || errors.len() == 1);
    assert_eq!(errors.get(), [error_code::FPNN_EC_CORE_UNKNOWN_METHOD]);
}

/// With `Dispatch::Inline` a push's handlers run on the reader thread, yet
/// its answer still goes out before they run (docs/protocol.md, "Answer
/// first"): the reader writes the answers of what one read brought, then
/// runs the handlers. A push whose handler runs on the dispatcher thread
/// (the queue was busy) proves nothing here, so pushes go out until one's
/// handler runs on the reader.
#[test]
fn with_inline_dispatch_a_push_is_answered_before_its_handler_runs_on_the_reader() {
    let srv = RawServer::bind();
    let client = RtmClient::new(RtmOptions {
        dispatch: rtm_client::Dispatch::Inline,
        ..srv.options()
    })
    .unwrap();
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
    let (ran_tx, ran_rx) = crossbeam_channel::unbounded();
    client.processor().on(PushEvent::RecvChat, move |m| {
        // Without the answer first, this waits out WAIT and the test's read
        // of the answer fails.
        let released = release_rx.recv_timeout(WAIT).is_ok();
        let on = std::thread::current().name().unwrap_or("").to_owned();
        ran_tx.send((m.mid, released, on)).unwrap();
    });
    let mut conn = login_raw(&client, &srv);

    let deadline = Instant::now() + WAIT;
    for mid in 1.. {
        let seq = conn.quest("pushmsg", &p2p_push(PEER, ME, 30, mid, "hi", ""), true);
        assert_eq!(answer_of(&mut conn, seq), Value::Map(vec![]));
        release_tx.send(()).unwrap();
        let (ran, released, on) = ran_rx.recv_timeout(WAIT).unwrap();
        assert_eq!((ran, released), (mid, true));
        if on == "rtm-reader" {
            break;
        }
        assert!(Instant::now() < deadline, "no handler ran on the reader");
    }
    client.destroy();
}

#[test]
fn a_repeated_push_within_five_seconds_is_delivered_once_even_across_a_reconnect() {
    let gate = gate();
    let (_client, mut ev) = me_online(&gate);
    let start = Instant::now();
    let push = || p2p_push(PEER, ME, 30, 4242, "once", "");
    quest(&gate, "pushmsg", push());
    quest(&gate, "pushmsg", push());
    ev.fence(&gate, ME);
    assert_eq!(ev.pushes().len(), 1);

    gate.drop_user(PID, ME);
    assert!(ev.relogin().0);
    quest(&gate, "pushmsg", push());
    ev.fence(&gate, ME);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the test ran past the filter's window"
    );
    assert_eq!(
        ev.pushes().len(),
        1,
        "the filter survives the reconnect: {:#?}",
        ev.pushes()
    );
}

#[test]
fn the_duplicate_key_is_kind_mid_sender_and_target() {
    let gate = gate();
    let (_client, mut ev) = me_online(&gate);
    let sends = [
        ("pushmsg", PEER, 0, 7),
        ("pushmsg", PEER + 1, 0, 7),  // another sender
        ("pushgroupmsg", PEER, 5, 7), // another kind
        ("pushgroupmsg", PEER, 6, 7), // another group
        ("pushroommsg", PEER, 5, 7),  // another kind, same target number
        ("pushbroadcastmsg", PEER, 0, 7),
        ("pushmsg", PEER, 0, 8), // another mid
    ];
    for (method, from, target, mid) in sends {
        quest(
            &gate,
            method,
            push_payload(method, from, target, 80, mid, "x".into(), ""),
        );
        quest(
            &gate,
            method,
            push_payload(method, from, target, 80, mid, "x".into(), ""),
        );
    }
    ev.fence(&gate, ME);
    assert_eq!(ev.pushes().len(), sends.len(), "{:#?}", ev.pushes());
}

#[test]
fn pushes_with_mid_0_are_never_dropped_as_duplicates() {
    let gate = gate();
    let (_client, mut ev) = me_online(&gate);
    for _ in 0..3 {
        quest(&gate, "pushmsg", p2p_push(PEER, ME, 30, 0, "zero", ""));
        quest(
            &gate,
            "pushgroupmsg",
            push_payload("pushgroupmsg", PEER, 5, 30, 0, "zero".into(), ""),
        );
    }
    ev.fence(&gate, ME);
    assert_eq!(ev.pushes().len(), 6);
}

#[test]
fn excluded_uids_drop_the_push_for_the_logged_in_uid_as_string_or_number() {
    let gate = gate();
    let (_client, mut ev) = me_online(&gate);
    let cases = [
        (r#"{"excludedUids":["1001"]}"#, false),
        (r#"{"excludedUids":[1001]}"#, false),
        (r#"{"excludedUids":[2002,"3003",1001],"x":1}"#, false),
        (r#"{"excludedUids":[2002,"3003"]}"#, true),
        (r#"{"excludedUids":[]}"#, true),
        (r#"{"other":[1001]}"#, true),
        (r#"not json 1001"#, true),
        ("", true),
    ];
    for (i, (attrs, _)) in cases.iter().enumerate() {
        let mid = 10 + i as i64;
        quest(&gate, "pushmsg", p2p_push(PEER, ME, 30, mid, "x", attrs));
        quest(
            &gate,
            "pushroommsg",
            push_payload("pushroommsg", PEER, 3, 80, mid, "x".into(), attrs),
        );
    }
    ev.fence(&gate, ME);
    let got: Vec<String> = ev.pushes().into_iter().map(|(_, m)| m.attrs).collect();
    let want: Vec<String> = cases
        .iter()
        .filter(|c| c.1)
        .flat_map(|c| [c.0.to_owned(), c.0.to_owned()])
        .collect();
    assert_eq!(got, want);
}

#[test]
fn an_unknown_push_method_is_reported_and_the_connection_stays_usable() {
    let gate = gate();
    let (client, mut ev) = me_online(&gate);
    quest(&gate, "pushsomethingnew", map(vec![("from", 1.into())]));
    let (err, _) = ev.error();
    assert_eq!(err.code, error_code::FPNN_EC_CORE_UNKNOWN_METHOD);
    assert!(err.ex.contains("pushsomethingnew"), "{err}");
    ev.fence(&gate, ME);
    blocking(|cb| client.enter_room(1, 0, cb)).unwrap();
    assert_eq!(gate.connections_of(PID, ME), 1);
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Relogin { .. } | Ev::Closed { .. })),
        0
    );
}

#[test]
fn a_malformed_push_is_reported_and_skipped() {
    let gate = gate();
    let (_client, mut ev) = me_online(&gate);
    // A group push without its gid, a push without from, a payload that is no map.
    quest(
        &gate,
        "pushgroupmsg",
        push_payload("pushmsg", PEER, 5, 80, 1, "x".into(), ""),
    );
    quest(
        &gate,
        "pushmsg",
        map(vec![("mtype", 30.into()), ("mid", 2.into())]),
    );
    quest(&gate, "pushroommsg", Value::from(3));
    for _ in 0..3 {
        let (err, _) = ev.error();
        assert_eq!(err.code, error_code::FPNN_EC_PROTO_TYPE_CONVERT, "{err}");
    }
    ev.fence(&gate, ME);
    assert!(ev.pushes().is_empty());
}

#[test]
fn a_binary_body_gives_no_text_and_its_bytes() {
    let gate = gate();
    let (_client, mut ev) = me_online(&gate);
    let bytes = vec![0xff, 0xfe, 0x00, 0x80, b'a'];
    gate.inject_message(PID, 1, PEER, ME, 31, 40, &bytes, "bin")
        .unwrap();
    let (e, m) = ev.push(PEER, 31);
    assert_eq!(
        (e, m.msg, m.binary, m.attrs.as_str()),
        (PushEvent::RecvFile, None, bytes.clone(), "bin")
    );

    // Bytes that are valid UTF-8 are given as text too.
    gate.inject_message(PID, 1, PEER, ME, 32, 80, "héllo".as_bytes(), "")
        .unwrap();
    let (_, m) = ev.push(PEER, 32);
    assert_eq!(
        (m.msg.as_deref(), m.binary.as_slice()),
        (Some("héllo"), "héllo".as_bytes())
    );

    // The same through a hand-built group push with a msgpack bin body.
    quest(
        &gate,
        "pushgroupmsg",
        push_payload(
            "pushgroupmsg",
            PEER,
            8,
            30,
            33,
            Value::Binary(bytes.clone()),
            "",
        ),
    );
    let (e, m) = ev.push(PEER, 33);
    assert_eq!(
        (e, m.msg, m.binary),
        (PushEvent::RecvGroupChat, None, bytes)
    );
}

#[test]
fn kickout_room_calls_the_handler_with_the_rid_and_keeps_the_session() {
    let gate = gate();
    let (client, mut ev) = me_online(&gate);
    blocking(|cb| client.enter_room(77, 0, cb)).unwrap();
    gate.kickout_room(PID, ME, 77);
    let rid = ev.wait("kickoutroom", |e| match *e {
        Ev::KickoutRoom(rid) => Some(rid),
        _ => None,
    });
    assert_eq!(rid, 77);
    let e = blocking(|cb| client.send_room_message(77, 30, "x", "", 0, 0, cb)).unwrap_err();
    assert_eq!(e.error.code, error_code::RTM_EC_NOT_IN_ROOM);
    ev.fence(&gate, ME);
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Closed { .. } | Ev::Kickout)),
        0
    );
}

#[test]
fn the_gates_pings_fire_on_ping() {
    let gate = Gate::builder()
        .ping_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    let (_client, mut ev) = me_online(&gate);
    for _ in 0..3 {
        ev.wait("a ping", |e| matches!(e, Ev::Ping { .. }).then_some(()));
    }
    assert_eq!(gate.connections_of(PID, ME), 1);
}

#[test]
fn several_handlers_of_one_event_run_in_registration_order_despite_a_panicking_one() {
    let gate = gate();
    let (client, mut ev) = me_online(&gate);
    let (tx, rx) = crossbeam_channel::unbounded();
    for name in ["first", "panics", "third"] {
        let tx = tx.clone();
        client.processor().on(PushEvent::RecvChat, move |m| {
            assert_ne!(name, "panics", "this handler panics on purpose");
            tx.send((name, m.mid)).unwrap();
        });
    }
    quest(&gate, "pushmsg", p2p_push(PEER, ME, 30, 77, "hi", ""));
    ev.fence(&gate, ME);
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got, [("first", 77), ("third", 77)]);
    // Events::attach's own handler, registered before these, saw it too.
    assert_eq!(ev.pushes().len(), 1);
}

/// A server quest whose method name is not UTF-8, or is empty, is one no
/// handler can know: a twoway one gets an error answer (20004, unknown
/// method: docs/protocol.md) so the server does not wait for it, a oneway one
/// nothing, and the connection stays open: the ping after them is answered.
#[test]
fn a_server_quest_whose_method_name_is_not_utf8_is_answered_and_the_connection_stays() {
    use rtm_client::ws::frame::{encode_frame, Opcode};
    let srv = RawServer::bind();
    let client = RtmClient::new(srv.options()).unwrap();
    let (closed_tx, closed_rx) = crossbeam_channel::unbounded();
    client.on_session_closed(move |code| {
        let _ = closed_tx.send(code);
    });
    let mut conn = login_raw(&client, &srv);
    // `packet::encode_quest` takes a `&str`: the header written by hand.
    let quest = |twoway: bool, seq: u32, method: &[u8]| {
        let mut p = b"FPNN".to_vec();
        p.extend_from_slice(&[1, 0x80, u8::from(twoway), method.len() as u8]);
        p.extend_from_slice(&1u32.to_le_bytes());
        if twoway {
            p.extend_from_slice(&seq.to_le_bytes());
        }
        p.extend_from_slice(method);
        p.push(0x80);
        let mut f = Vec::new();
        encode_frame(&mut f, Opcode::Binary, true, &p, None, false);
        f
    };
    conn.write(&quest(false, 0, b"push\xff"));
    for (seq, method) in [(100, &b"\xffpushmsg"[..]), (101, &b""[..])] {
        conn.write(&quest(true, seq, method));
        let p = conn.read();
        assert_eq!((p.kind, p.seq), (Kind::Answer, seq), "{p:?}");
        assert_ne!(p.status, 0, "an error answer");
        let code = RawConn::payload(&p)
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("code")))
            .and_then(|(_, v)| v.as_i64());
        assert_eq!(
            code,
            Some(i64::from(error_code::FPNN_EC_CORE_UNKNOWN_METHOD))
        );
    }
    let seq = conn.quest("ping", &map(vec![]), true);
    assert_eq!(answer_of(&mut conn, seq), Value::Map(vec![]));
    assert!(closed_rx.try_recv().is_err(), "the session ended");
}
