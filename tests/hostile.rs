//! Hostile server input: the local gate answers every method with mutated
//! payloads (wrong types in every field, missing fields, truncated or random
//! msgpack, absurd declared lengths), pushes malformed messages, and writes
//! broken frames and packets (docs/security.md, "Input from the network").
//! The client never panics, every callback runs exactly once, malformed input
//! is reported through the callback or ErrorRecorder, and the session either
//! keeps working or closes and logs in again. Every random choice comes from
//! a fixed seed, so a failure replays.
#![cfg(feature = "gate")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use common::*;
use crossbeam_channel::Sender;
use parking_lot::Mutex;
use rmpv::Value;
use rtm_client::fpnn::packet;
use rtm_client::gate::Gate;
use rtm_client::ws::frame::{encode_frame, Opcode};
use rtm_client::{error_code, RtmClient, RtmError, SendError};

/// Panics on the SDK's and the gate's threads.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The SDK's threads and the gate's (`rtm-*`), not the tests'
            // own assertions.
            let thread = std::thread::current();
            if thread.name().is_some_and(|n| n.starts_with("rtm")) {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// SplitMix64: a small seeded generator, so every run sends the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A value of every msgpack type, for "wrong type in this field".
fn wrong_values() -> Vec<Value> {
    vec![
        Value::Nil,
        Value::Boolean(true),
        Value::from(-1),
        Value::from(u64::MAX),
        Value::F64(1.5e300),
        Value::from("not what you expected"),
        Value::Binary(vec![0xff, 0x00]),
        Value::Array(vec![Value::Nil, Value::from("x")]),
        Value::Map(vec![(Value::from(1), Value::from(2))]),
        Value::Ext(5, vec![1, 2, 3]),
    ]
}

/// Every variant of `v` with one field (at depth 1 or 2: a map's values, an
/// array's first element) replaced by a wrong value or removed.
fn field_mutations(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for w in wrong_values() {
        out.push(w);
    }
    match v {
        Value::Map(pairs) => {
            for i in 0..pairs.len() {
                let mut removed = pairs.clone();
                removed.remove(i);
                out.push(Value::Map(removed));
                for w in wrong_values() {
                    let mut m = pairs.clone();
                    m[i].1 = w;
                    out.push(Value::Map(m));
                }
                for inner in field_mutations_shallow(&pairs[i].1) {
                    let mut m = pairs.clone();
                    m[i].1 = inner;
                    out.push(Value::Map(m));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for w in wrong_values() {
                let mut a = items.clone();
                a[0] = w;
                out.push(Value::Array(a));
            }
        }
        _ => {}
    }
    out
}

/// Depth 2: the first element of an array, each value of a map.
fn field_mutations_shallow(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let wrong = [
        Value::Nil,
        Value::from("x"),
        Value::from(-7),
        Value::Map(vec![]),
    ];
    match v {
        Value::Array(items) if !items.is_empty() => {
            for w in &wrong {
                let mut a = items.clone();
                a[0] = w.clone();
                out.push(Value::Array(a));
            }
            for inner in field_mutations_shallow(&items[0]).into_iter().take(8) {
                let mut a = items.clone();
                a[0] = inner;
                out.push(Value::Array(a));
            }
        }
        Value::Map(pairs) => {
            for i in 0..pairs.len() {
                for w in &wrong {
                    let mut m = pairs.clone();
                    m[i].1 = w.clone();
                    out.push(Value::Map(m));
                }
            }
        }
        _ => {}
    }
    out
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    packet::encode_payload(v, &mut out);
    out
}

/// Raw payloads that are not a valid msgpack value of their own length:
/// truncations, absurd declared lengths, trailing bytes, random bytes.
fn byte_mutations(real: &[u8], rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = vec![
        Vec::new(),
        vec![0xc1],                         // never used
        vec![0xdf, 0xff, 0xff, 0xff, 0xff], // map32 of 4 G entries
        vec![0xdd, 0xff, 0xff, 0xff, 0xff], // array32 of 4 G items
        vec![0xdb, 0xff, 0xff, 0xff, 0xff], // str32 of 4 GB
        vec![0xc6, 0x7f, 0xff, 0xff, 0xff], // bin32 of 2 GB
        [0x91].repeat(5000),                // nested 5000 deep
        vec![0xa2, 0xff, 0xfe],             // a string that is not UTF-8
    ];
    for cut in [1, real.len() / 2, real.len().saturating_sub(1)] {
        if cut < real.len() {
            out.push(real[..cut].to_vec());
        }
    }
    let mut trailing = real.to_vec();
    trailing.push(0xc0);
    out.push(trailing);
    for _ in 0..4 {
        let n = 1 + rng.below(64);
        out.push(rng.bytes(n));
        // The real answer with a few bytes flipped.
        let mut flipped = real.to_vec();
        for _ in 0..3 {
            if !flipped.is_empty() {
                let i = rng.below(flipped.len());
                flipped[i] ^= rng.next() as u8 | 1;
            }
        }
        out.push(flipped);
    }
    out
}

type Done = Sender<i32>;

/// The "code" of a callback that got both an error and a result, or
/// neither (a gate may well answer with code -1).
const WRONG: i32 = i32::MIN;

fn code<T>(done: Done) -> impl FnOnce(Option<RtmError>, Option<T>) + Send + 'static {
    move |e, r| {
        let c = match (e, r) {
            (Some(e), None) => e.code,
            (None, Some(_)) => 0,
            _ => WRONG, // both or neither
        };
        let _ = done.send(c);
    }
}

fn send_code(done: Done) -> impl FnOnce(Option<SendError>, Option<rtm_client::SendAnswer>) {
    move |e, r| {
        let c = match (e, r) {
            (Some(e), None) => e.error.code,
            (None, Some(_)) => 0,
            _ => WRONG,
        };
        let _ = done.send(c);
    }
}

const G: i64 = 77;
const R: i64 = 88;
const PEER: i64 = 1002;
const ME: i64 = 1001;
const MID: i64 = 4242;

type CallFn = dyn Fn(&RtmClient, Done) + Send + Sync;
type Call = (&'static str, Box<CallFn>);

/// Every API call that reads or writes something, with valid arguments for
/// the state [`setup`] makes.
fn calls() -> Vec<Call> {
    let t = 5_000;
    let list: Vec<Call> = vec![
        (
            "send_message",
            Box::new(move |c: &RtmClient, d| c.send_message(PEER, 30, "m", "", 0, t, send_code(d))),
        ),
        (
            "send_group_message",
            Box::new(move |c: &RtmClient, d| {
                c.send_group_message(G, 30, "m", "", 0, t, send_code(d))
            }),
        ),
        (
            "send_room_message",
            Box::new(move |c: &RtmClient, d| {
                c.send_room_message(R, 30, "m", "", 0, t, send_code(d))
            }),
        ),
        (
            "get_unread_message",
            Box::new(move |c: &RtmClient, d| c.get_unread_message(false, t, code(d))),
        ),
        (
            "get_p2p_unread_message_num",
            Box::new(move |c: &RtmClient, d| {
                c.get_p2p_unread_message_num(&[PEER], None, None, t, code(d))
            }),
        ),
        (
            "get_group_unread_message_num",
            Box::new(move |c: &RtmClient, d| {
                c.get_group_unread_message_num(&[G], None, None, t, code(d))
            }),
        ),
        (
            "get_group_message",
            Box::new(move |c: &RtmClient, d| {
                c.get_group_message(G, true, 10, None, None, None, None, t, code(d))
            }),
        ),
        (
            "get_room_message",
            Box::new(move |c: &RtmClient, d| {
                c.get_room_message(R, true, 10, None, None, None, None, t, code(d))
            }),
        ),
        (
            "get_broadcast_message",
            Box::new(move |c: &RtmClient, d| {
                c.get_broadcast_message(true, 10, None, None, None, None, t, code(d))
            }),
        ),
        (
            "get_p2p_message",
            Box::new(move |c: &RtmClient, d| {
                c.get_p2p_message(PEER, true, 10, None, None, None, None, t, code(d))
            }),
        ),
        (
            "get_message",
            Box::new(move |c: &RtmClient, d| c.get_message(ME, MID, PEER, 1, t, code(d))),
        ),
        (
            "get_session",
            Box::new(move |c: &RtmClient, d| c.get_session(t, code(d))),
        ),
        (
            "get_p2p_conversation_list",
            Box::new(move |c: &RtmClient, d| c.get_p2p_conversation_list(None, None, t, code(d))),
        ),
        (
            "get_group_conversation_list",
            Box::new(move |c: &RtmClient, d| c.get_group_conversation_list(None, None, t, code(d))),
        ),
        (
            "get_unread_conversation_list",
            Box::new(move |c: &RtmClient, d| {
                c.get_unread_conversation_list(None, None, None, t, code(d))
            }),
        ),
        (
            "get_friends",
            Box::new(move |c: &RtmClient, d| c.get_friends(t, code(d))),
        ),
        (
            "get_blacks",
            Box::new(move |c: &RtmClient, d| c.get_blacks(t, code(d))),
        ),
        (
            "add_friends",
            Box::new(move |c: &RtmClient, d| c.add_friends(&[1003], t, code(d))),
        ),
        (
            "get_group_members",
            Box::new(move |c: &RtmClient, d| c.get_group_members(G, None, t, code(d))),
        ),
        (
            "get_group_count",
            Box::new(move |c: &RtmClient, d| c.get_group_count(G, None, t, code(d))),
        ),
        (
            "get_user_groups",
            Box::new(move |c: &RtmClient, d| c.get_user_groups(t, code(d))),
        ),
        (
            "get_group_info",
            Box::new(move |c: &RtmClient, d| c.get_group_info(G, t, code(d))),
        ),
        (
            "get_group_open_info",
            Box::new(move |c: &RtmClient, d| c.get_group_open_info(G, t, code(d))),
        ),
        (
            "get_groups_open_info",
            Box::new(move |c: &RtmClient, d| c.get_groups_open_info(&[G], t, code(d))),
        ),
        (
            "get_user_rooms",
            Box::new(move |c: &RtmClient, d| c.get_user_rooms(t, code(d))),
        ),
        (
            "get_room_info",
            Box::new(move |c: &RtmClient, d| c.get_room_info(R, t, code(d))),
        ),
        (
            "get_room_open_info",
            Box::new(move |c: &RtmClient, d| c.get_room_open_info(R, t, code(d))),
        ),
        (
            "get_rooms_open_info",
            Box::new(move |c: &RtmClient, d| c.get_rooms_open_info(&[R], t, code(d))),
        ),
        (
            "get_room_members",
            Box::new(move |c: &RtmClient, d| c.get_room_members(R, t, code(d))),
        ),
        (
            "get_room_count",
            Box::new(move |c: &RtmClient, d| c.get_room_count(&[R], t, code(d))),
        ),
        (
            "get_attrs",
            Box::new(move |c: &RtmClient, d| c.get_attrs(t, code(d))),
        ),
        (
            "get_device_push_option",
            Box::new(move |c: &RtmClient, d| c.get_device_push_option(t, code(d))),
        ),
        (
            "get_online_users",
            Box::new(move |c: &RtmClient, d| c.get_online_users(&[ME, PEER], t, code(d))),
        ),
        (
            "get_user_info",
            Box::new(move |c: &RtmClient, d| c.get_user_info(t, code(d))),
        ),
        (
            "get_user_open_info",
            Box::new(move |c: &RtmClient, d| c.get_user_open_info(&[ME], t, code(d))),
        ),
        (
            "data_get",
            Box::new(move |c: &RtmClient, d| c.data_get("k", t, code(d))),
        ),
        (
            "translate",
            Box::new(move |c: &RtmClient, d| {
                c.translate("hello", None, "fr", None, None, t, code(d))
            }),
        ),
        (
            "profanity",
            Box::new(move |c: &RtmClient, d| c.profanity("hello", Some(true), t, code(d))),
        ),
        (
            "text_check",
            Box::new(move |c: &RtmClient, d| c.text_check("hello", None, t, code(d))),
        ),
        (
            "speech2_text",
            Box::new(move |c: &RtmClient, d| {
                c.speech2_text("aGVsbG8=", 2, "en", None, None, t, code(d))
            }),
        ),
    ];
    // Rooms belong to a connection: after a relogin the client is out of
    // the room, so the room calls enter it first.
    list.into_iter()
        .map(|(name, f)| -> Call {
            if !name.contains("room") {
                return (name, f);
            }
            let f: Arc<CallFn> = Arc::from(f);
            (
                name,
                Box::new(move |c: &RtmClient, d| {
                    let f = f.clone();
                    in_room(c, move |c| f(c, d))
                }),
            )
        })
        .collect()
}

/// Enters the room (a relogin leaves it: rooms belong to a connection), then
/// makes `call`.
fn in_room(c: &RtmClient, call: impl FnOnce(&RtmClient) + Send + 'static) {
    let client = c.clone();
    c.enter_room(R, 0, move |e, _| {
        assert!(e.is_none(), "enter_room: {e:?}");
        call(&client)
    });
}

/// Gives every call above something to find.
fn setup(client: &RtmClient, peer: &RtmClient) {
    let ok = |r: Result<(), RtmError>, what: &str| r.unwrap_or_else(|e| panic!("{what}: {e}"));
    ok(
        rtm_client::blocking(|cb| client.add_group_members(G, &[PEER], 0, cb)),
        "group",
    );
    ok(
        rtm_client::blocking(|cb| client.enter_room(R, 0, cb)),
        "room",
    );
    ok(
        rtm_client::blocking(|cb| client.set_group_info(G, Some("go"), Some("gp"), 0, cb)),
        "group info",
    );
    ok(
        rtm_client::blocking(|cb| client.set_room_info(R, Some("ro"), Some("rp"), 0, cb)),
        "room info",
    );
    ok(
        rtm_client::blocking(|cb| client.set_user_info(Some("uo"), Some("up"), 0, cb)),
        "user info",
    );
    ok(
        rtm_client::blocking(|cb| client.data_set("k", "v", 0, cb)),
        "data",
    );
    ok(
        rtm_client::blocking(|cb| client.add_blacks(&[1004], 0, cb)),
        "blacks",
    );
    rtm_client::blocking(|cb| client.send_message(PEER, 30, "stored", "", MID, 0, cb)).unwrap();
    rtm_client::blocking(|cb| client.send_group_message(G, 30, "g", "", 0, 0, cb)).unwrap();
    rtm_client::blocking(|cb| client.send_room_message(R, 30, "r", "", 0, 0, cb)).unwrap();
    rtm_client::blocking(|cb| peer.send_message(ME, 30, "unread", "", 0, 0, cb)).unwrap();
}

/// Waits until the session works: a fence push arrives. A fence sent on a
/// link that then dies is lost, and that loss always ends in a relogin, so
/// each relogin sends a new fence (a case may cost two links: the client can
/// close one on garbage and log in again before the gate cuts the next).
fn alive(ev: &mut Events, gate: &Gate) {
    static NEXT: AtomicUsize = AtomicUsize::new(1 << 20);
    loop {
        let mid = NEXT.fetch_add(1, Ordering::Relaxed) as i64;
        one_connection(gate, ME);
        gate.send_quest(
            PID,
            ME,
            "pushmsg",
            p2p_push(FENCE_FROM, ME, 80, mid, "f", ""),
            true,
        );
        let fenced = ev.wait("the fence or a relogin", |e| match e {
            Ev::Push { m, .. } if m.from == FENCE_FROM && m.mid == mid => Some(true),
            Ev::Relogin { ok: true, .. } => Some(false),
            Ev::Closed { code, .. } => panic!("the session ended with {code}"),
            _ => None,
        });
        if fenced {
            return;
        }
    }
}

#[test]
fn every_answer_with_wrong_types_or_bad_msgpack_completes_its_call_once_without_a_panic() {
    count_panics();
    let gate = Gate::start().unwrap();
    let client = RtmClient::new(options(&gate)).unwrap();
    client.scale_relogin_waits_for_tests(50);
    let peer = online(options(&gate), PEER);
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    setup(&client, &peer);
    let mut rng = Rng(0x5eed_0001);
    let mut codes: HashMap<i32, usize> = HashMap::new();
    let mut total = 0;
    for (name, call) in calls() {
        // The real answer first, recorded on its way out.
        let real: Arc<Mutex<Option<(String, Value)>>> = Arc::default();
        let r = real.clone();
        gate.rewrite_answers(Some(Box::new(move |m: &str, v: &Value, _| {
            if m != "auth" {
                *r.lock() = Some((m.to_owned(), v.clone()));
            }
            None
        })));
        let (tx, rx) = crossbeam_channel::unbounded();
        call(&client, tx);
        let c = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{name}: no callback"));
        assert_eq!(c, 0, "{name} fails with valid arguments");
        let (method, answer) = real
            .lock()
            .take()
            .unwrap_or_else(|| panic!("{name}: no answer seen"));

        // (status, payload): the answer mutated, then error answers
        // (status 1, `{code, ex}`) mutated the same way.
        let mut payloads: Vec<(u8, Vec<u8>)> = Vec::new();
        let error = map(vec![("code", 200033.into()), ("ex", "refused".into())]);
        for (status, real) in [(0, &answer), (1, &error)] {
            let mut these: Vec<Vec<u8>> = field_mutations(real).iter().map(encode).collect();
            these.extend(byte_mutations(&encode(real), &mut rng));
            payloads.extend(these.into_iter().map(|p| (status, p)));
        }
        for (status, payload) in payloads {
            let m = method.clone();
            let p = payload.clone();
            gate.rewrite_answers(Some(Box::new(move |method: &str, _: &Value, _| {
                (method == m).then(|| (status, p.clone()))
            })));
            let (tx, rx) = crossbeam_channel::unbounded();
            call(&client, tx);
            let c = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
                panic!("{name}: no callback for status {status}, payload {payload:02x?}")
            });
            assert_ne!(
                c, WRONG,
                "{name}: both or neither of error and result, status {status}, payload {payload:02x?}"
            );
            gate.rewrite_answers(None);
            alive(&mut ev, &gate);
            assert!(rx.try_recv().is_err(), "{name}: a second callback");
            *codes.entry(c).or_default() += 1;
            total += 1;
        }
    }
    eprintln!("{total} hostile answers; result codes: {codes:?}");
    assert!(
        codes.contains_key(&error_code::FPNN_EC_PROTO_TYPE_CONVERT),
        "{codes:?}"
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

/// A frame (FPNN framing) holding one quest packet with a raw payload (of
/// any length, empty included: written here, not by the crate's encoder).
fn quest_frame(method: &str, twoway: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = b"FPNN".to_vec();
    p.extend_from_slice(&[1, 0x80, u8::from(twoway), method.len() as u8]);
    p.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    if twoway {
        p.extend_from_slice(&1u32.to_le_bytes());
    }
    p.extend_from_slice(method.as_bytes());
    p.extend_from_slice(payload);
    let mut f = Vec::new();
    encode_frame(&mut f, Opcode::Binary, true, &p, None, true);
    f
}

#[test]
fn malformed_pushes_are_reported_and_never_delivered_or_panicked_on() {
    count_panics();
    let gate = Gate::start().unwrap();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    let mut rng = Rng(0x5eed_0002);
    let mut sent = 0;
    for method in ["pushmsg", "pushgroupmsg", "pushroommsg", "pushbroadcastmsg"] {
        let good = push_payload(method, 5, 6, 30, 9, Value::from("hi"), "");
        let mut payloads: Vec<Vec<u8>> = field_mutations(&good).iter().map(encode).collect();
        payloads.extend(byte_mutations(&encode(&good), &mut rng));
        for payload in payloads {
            for twoway in [false, true] {
                one_connection(&gate, ME);
                let frame = quest_frame(method, twoway, &payload);
                // The link may be going (closed on the previous push) or
                // gone: then the push is lost with it, and alive() waits
                // for the relogin.
                sent += gate.send_raw(PID, ME, &frame);
                alive(&mut ev, &gate);
            }
        }
        alive(&mut ev, &gate);
    }
    // The session's own quests with junk too.
    for method in ["ping", "kickoutroom", "unknownmethod", ""] {
        for payload in byte_mutations(&encode(&Value::Map(vec![])), &mut rng) {
            one_connection(&gate, ME);
            gate.send_raw(PID, ME, &quest_frame(method, true, &payload));
            sent += 1;
            alive(&mut ev, &gate);
        }
    }
    ev.drain();
    let errors = ev.count(|e| {
        matches!(e, Ev::Error { err, .. } if err.code == error_code::FPNN_EC_PROTO_TYPE_CONVERT)
    });
    eprintln!("{sent} hostile pushes, {errors} reported malformed");
    assert!(errors > 0, "no malformed push was reported");
    // Pushes that parsed are delivered with what they said; none from a
    // mutated sender id that is not an integer.
    assert!(ev
        .pushes()
        .iter()
        .all(|(_, m)| m.mtype == 30 || m.mtype == 80 || m.from != 5));
    assert_eq!(ev.count(|e| matches!(e, Ev::Closed { .. })), 0);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

/// A well-formed answer-less frame, then variants of it: cut, lengths that
/// lie, wrong opcodes and flags, random bytes.
fn frame_mutations(rng: &mut Rng) -> Vec<(Vec<u8>, bool)> {
    let good = quest_frame("pushmsg", false, &encode(&p2p_push(5, ME, 30, 1, "x", "")));
    let mut out: Vec<(Vec<u8>, bool)> = Vec::new();
    // (bytes, whether the gate must then cut the link: the client would
    // otherwise rightly wait for the rest of a frame).
    for cut in [1, 2, 3, good.len() / 2, good.len() - 1] {
        out.push((good[..cut].to_vec(), true));
    }
    // Frame headers announcing more than any packet may be (64-bit lengths).
    for len in [u64::MAX, 1 << 40, 9 * 1024 * 1024] {
        let mut h = vec![0x82, 127];
        h.extend_from_slice(&len.to_be_bytes());
        out.push((h, true));
    }
    // FPNN packet headers that lie about their lengths.
    let mut body = Vec::new();
    packet::encode_quest(&mut body, false, 0, "pushmsg", &encode(&Value::Map(vec![])));
    for (at, v) in [
        (6usize, 0xffu8),
        (8, 0xff),
        (11, 0x7f),
        (0, b'X'),
        (4, 9),
        (5, 0x20),
    ] {
        let mut p = body.clone();
        if at < p.len() {
            p[at] = v;
        }
        let mut f = Vec::new();
        encode_frame(&mut f, Opcode::Binary, true, &p, None, true);
        out.push((f, false));
    }
    for op in [Opcode::Text, Opcode::Continuation, Opcode::Close] {
        let mut f = Vec::new();
        encode_frame(&mut f, op, true, &body, None, true);
        out.push((f, false));
    }
    let mut reserved = good.clone();
    reserved[0] |= 0x70;
    out.push((reserved, false));
    let mut masked = good.clone();
    masked[1] |= 0x80;
    out.push((masked, true));
    for _ in 0..40 {
        let n = 1 + rng.below(200);
        out.push((rng.bytes(n), true));
        let mut flipped = good.clone();
        let i = rng.below(flipped.len());
        flipped[i] ^= rng.next() as u8 | 1;
        out.push((flipped, true));
    }
    out
}

#[test]
fn broken_frames_and_packets_keep_the_session_or_close_the_link_and_relog_in() {
    count_panics();
    let gate = Gate::start().unwrap();
    let client = RtmClient::new(options(&gate)).unwrap();
    client.scale_relogin_waits_for_tests(50);
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    let mut rng = Rng(0x5eed_0003);
    let cases = frame_mutations(&mut rng);
    let before = gate.auth_requests().len();
    for (i, (bytes, cut)) in cases.iter().enumerate() {
        // Shown only when the test fails: which case it was on.
        eprintln!("case {i}: cut {cut}, {bytes:02x?}");
        one_connection(&gate, ME);
        gate.send_raw(PID, ME, bytes);
        if *cut {
            gate.drop_user(PID, ME);
        }
        alive(&mut ev, &gate);
        // A quest still gets its answer on whatever link is up. The fence can
        // come through on a link the gate is still dropping (its writer sends
        // what is queued before it closes), so a quest made just then finds the
        // client reconnecting (20012) or loses its link (20002): legitimate,
        // and retried after the next fence, a bounded number of times.
        let mut r = rtm_client::blocking(|cb| client.get_user_info(0, cb));
        for _ in 0..3 {
            match &r {
                Err(e) if e.code == 20012 || e.code == 20002 => {
                    alive(&mut ev, &gate);
                    r = rtm_client::blocking(|cb| client.get_user_info(0, cb));
                }
                _ => break,
            }
        }
        if r.is_err() {
            ev.drain();
            panic!(
                "after case {i}: {r:?}; events: {:#?}",
                ev.seen.iter().rev().take(12).collect::<Vec<_>>()
            );
        }
    }
    let relogins = gate.auth_requests().len() - before;
    eprintln!(
        "{} broken frames and packets, {relogins} relogins",
        cases.len()
    );
    assert!(relogins > 0);
    assert_eq!(ev.count(|e| matches!(e, Ev::Closed { .. })), 0);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}
