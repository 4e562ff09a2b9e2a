//! Shared helpers of the message API tests (tests/messages_*.rs): a started
//! gate that records every quest, logged-in clients, push collectors, and
//! bounded waits on conditions (never a fixed sleep standing in for one).

#![allow(dead_code)]

use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "../shared/mod.rs"]
mod shared;
#[allow(unused_imports)] // not every test binary uses every helper
pub use shared::{map, wait_until, WAIT};

use rmpv::Value;
use rtm_client::gate::Gate;
use rtm_client::{blocking, Dispatch, PushEvent, PushMessage, RtmClient, RtmOptions};

/// The project of every test. Ids are 64-bit on purpose: above 2^32 and
/// above 2^53 (where JavaScript numbers stop being exact).
pub const PID: i64 = (1 << 40) + 17;
/// Above 2^53.
pub const A: i64 = (1 << 53) + 1001;
/// Above 2^32 (below 2^53).
pub const B: i64 = (1 << 32) + 1002;
/// Above 2^53.
pub const C: i64 = (1 << 60) + 1003;
/// Group ids: above 2^53 and above 2^32.
pub const GID: i64 = (1 << 53) + 5001;
pub const GID2: i64 = (1 << 33) + 5002;
/// Room ids: above 2^53 and above 2^32.
pub const RID: i64 = (1 << 54) + 7001;
pub const RID2: i64 = (1 << 34) + 7002;
/// An explicit mid above 2^53 (generated mids are milliseconds * 1000 + a
/// counter, about 1.7e15, below 2^53).
pub const BIG_MID: i64 = (1 << 62) + 123_456_789;
/// The uid the sentinel pushes claim to come from.
pub const SENTINEL_FROM: i64 = (1 << 61) + 9;

/// A gate on a free port that records every quest it reads
/// ([`Gate::quest_log`], [`Gate::received`]).
pub fn gate() -> Gate {
    Gate::builder()
        .record_quests(true)
        .start()
        .expect("start the gate")
}

pub fn client_with(gate: &Gate, dispatch: Dispatch) -> RtmClient {
    RtmClient::new(RtmOptions {
        endpoint: Some(gate.endpoint()),
        pid: PID,
        dispatch,
        ..Default::default()
    })
    .expect("client options")
}

/// Logs `client` in as `uid`; panics unless the gate accepts within [`WAIT`].
/// Works in both dispatch modes (it runs `dispatch_pending` while waiting).
pub fn login(client: &RtmClient, uid: i64) {
    let (tx, rx) = mpsc::channel();
    client.login(
        uid,
        "token",
        move |ok, code| {
            let _ = tx.send((ok, code));
        },
        5_000,
    );
    let deadline = Instant::now() + WAIT;
    loop {
        client.dispatch_pending();
        match rx.recv_timeout(Duration::from_millis(2)) {
            Ok(r) => {
                assert_eq!(r, (true, 0), "login of uid {uid}");
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(e) => panic!("login of uid {uid}: no callback ({e})"),
        }
    }
}

/// A client (`Dispatch::Threads`) logged in as `uid`.
pub fn logged_in(gate: &Gate, uid: i64) -> RtmClient {
    let c = client_with(gate, Dispatch::Threads);
    login(&c, uid);
    c
}

/// `v` as msgpack bytes.
pub fn msgpack(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rtm_client::fpnn::packet::encode_payload(v, &mut out);
    out
}

/// Makes the gate answer every later `method` quest with status 0 and the
/// raw msgpack `payload` (which may be what [`msgpack`] cannot write, e.g. a
/// str that is not UTF-8) in place of its own answer.
pub fn answer_with(gate: &Gate, method: &'static str, payload: Vec<u8>) {
    gate.rewrite_answers(Some(Box::new(move |m: &str, _: &Value, _| {
        (m == method).then(|| (0, payload.clone()))
    })));
}

/// An `{info: {id: oinfo}}` answer (the multi-id open-info methods') with
/// an odd `oinfo` of each kind: `{"5": str a,0xff (not UTF-8), "6": nil,
/// "7": "ok", "8": bin "b", "9": 1}`. Read as [`ODD_OPEN_INFOS`].
pub fn odd_open_infos() -> Vec<u8> {
    let mut b = vec![0x81, 0xa4];
    b.extend_from_slice(b"info");
    b.push(0x85);
    b.extend_from_slice(&[0xa1, b'5', 0xa2, b'a', 0xff]);
    b.extend_from_slice(&[0xa1, b'6', 0xc0]);
    b.extend_from_slice(&[0xa1, b'7', 0xa2, b'o', b'k']);
    b.extend_from_slice(&[0xa1, b'8', 0xc4, 0x01, b'b']);
    b.extend_from_slice(&[0xa1, b'9', 0x01]);
    b
}

/// [`odd_open_infos`] as read (docs/Users.md): text from str or bin with
/// invalid UTF-8 replaced, nil as `""`; the entry whose `oinfo` is a number
/// skipped.
pub const ODD_OPEN_INFOS: [(i64, &str); 4] = [(5, "a\u{fffd}"), (6, ""), (7, "ok"), (8, "b")];

/// [`ODD_OPEN_INFOS`] as the open-info answers' `info` map.
pub fn odd_open_infos_read() -> std::collections::HashMap<i64, String> {
    ODD_OPEN_INFOS.map(|(k, v)| (k, v.to_owned())).into()
}

/// Closes the client and waits until the gate has seen `uid` go offline
/// (its logout time recorded): anything sent afterwards is after the logout,
/// even within its millisecond.
pub fn go_offline(gate: &Gate, client: &RtmClient, uid: i64) {
    client.close();
    wait_until("the gate sees the user offline", || {
        gate.connections_of(PID, uid) == 0
    });
}

/// Wall-clock milliseconds since the epoch (the gate's clock).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after the epoch")
        .as_millis() as i64
}

/// Waits until the wall clock is strictly past millisecond `t`, so that the
/// next message the gate stamps has an mtime greater than `t`.
pub fn wait_past_ms(t: i64) {
    wait_until(&format!("the clock passes {t} ms"), || now_ms() > t);
}

/// Makes `client` a member of `gid` together with `uids` (the caller is
/// added by the gate).
pub fn group(client: &RtmClient, gid: i64, uids: &[i64]) {
    blocking(|cb| client.add_group_members(gid, uids, 0, cb)).expect("addgroupmembers");
}

pub fn enter(client: &RtmClient, rid: i64) {
    blocking(|cb| client.enter_room(rid, 0, cb)).expect("enterroom");
}

/// A (gate, A, B) world where A and B share group GID and room RID.
pub fn two_users() -> (Gate, RtmClient, RtmClient) {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    group(&a, GID, &[B]);
    enter(&a, RID);
    enter(&b, RID);
    (gate, a, b)
}

/// A round trip on the client's connection: the gate reads a connection's
/// quests in order and delivers a quest's pushes before it reads the next
/// one, so when this returns every push caused by the client's earlier
/// quests has been written to its receivers.
pub fn settle(client: &RtmClient) {
    blocking(|cb| client.get_unread_message(false, 0, cb)).expect("getunread as a barrier");
}

/// The kind of a send, as the `type` of getmsg/delmsg and `inject_message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    P2p(i64),
    Group(i64),
    Room(i64),
}

impl To {
    pub fn kind(self) -> u8 {
        match self {
            To::P2p(_) => 1,
            To::Group(_) => 2,
            To::Room(_) => 3,
        }
    }

    pub fn xid(self) -> i64 {
        match self {
            To::P2p(x) | To::Group(x) | To::Room(x) => x,
        }
    }

    /// The chat (mtype 30) push event of this kind.
    pub fn chat_event(self) -> PushEvent {
        match self {
            To::P2p(_) => PushEvent::RecvChat,
            To::Group(_) => PushEvent::RecvGroupChat,
            To::Room(_) => PushEvent::RecvRoomChat,
        }
    }
}

/// Sends through the matching send method and waits for the callback.
pub fn send(
    client: &RtmClient,
    to: To,
    mtype: u8,
    msg: &str,
    mid: i64,
) -> Result<rtm_client::SendAnswer, rtm_client::SendError> {
    blocking(|cb| match to {
        To::P2p(uid) => client.send_message(uid, mtype, msg, "", mid, 0, cb),
        To::Group(gid) => client.send_group_message(gid, mtype, msg, "", mid, 0, cb),
        To::Room(rid) => client.send_room_message(rid, mtype, msg, "", mid, 0, cb),
    })
}

/// A push as one client saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub event: PushEvent,
    pub msg: PushMessage,
    pub thread: ThreadId,
}

/// Collects every push event of one client.
#[derive(Default)]
pub struct Pushes {
    seen: Mutex<Vec<Seen>>,
    cv: Condvar,
}

impl Pushes {
    /// Listens to all 20 push events of `client`.
    pub fn listen(client: &RtmClient) -> Arc<Pushes> {
        let p = Arc::new(Pushes::default());
        for event in PushEvent::ALL {
            let p2 = p.clone();
            client.processor().on(event, move |m| {
                p2.seen.lock().unwrap().push(Seen {
                    event,
                    msg: m.clone(),
                    thread: std::thread::current().id(),
                });
                p2.cv.notify_all();
            });
        }
        p
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `cond` holds for what has arrived; panics after [`WAIT`].
    pub fn wait(&self, what: &str, cond: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + WAIT;
        let mut seen = self.seen.lock().unwrap();
        loop {
            if cond(&seen) {
                return seen.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; got {seen:#?}"
            );
            seen = self.cv.wait_timeout(seen, left).unwrap().0;
        }
    }

    /// Waits for the push with this mid and returns it.
    pub fn wait_mid(&self, mid: i64) -> Seen {
        let all = self.wait(&format!("a push with mid {mid}"), |s| {
            s.iter().any(|x| x.msg.mid == mid)
        });
        all.into_iter().find(|x| x.msg.mid == mid).unwrap()
    }

    /// The pushes with this mid.
    pub fn with_mid(&self, mid: i64) -> Vec<Seen> {
        self.all()
            .into_iter()
            .filter(|x| x.msg.mid == mid)
            .collect()
    }
}

static SENTINELS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

/// Sends a `pushmsg` quest straight from the gate to every connection of
/// `uid` (nothing is stored) and waits until each collector in `listeners`
/// has it. A connection's pushes arrive in order, so afterwards everything
/// the gate wrote to those connections before has been seen: a bounded way to
/// prove that a push did *not* come. Returns the sentinel's mid.
pub fn sentinel(gate: &Gate, uid: i64, listeners: &[&Pushes]) -> i64 {
    let mid = (1 << 58) + SENTINELS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let payload = map(vec![
        ("from", SENTINEL_FROM.into()),
        ("mtype", 30.into()),
        ("mid", mid.into()),
        ("msg", "sentinel".into()),
        ("attrs", "".into()),
        ("mtime", now_ms().into()),
    ]);
    let n = gate.send_quest(PID, uid, "pushmsg", payload, true);
    assert_eq!(n, listeners.len(), "connections of uid {uid}");
    for l in listeners {
        l.wait_mid(mid);
    }
    mid
}

/// The pushes before the sentinel with mid `sentinel`, that did not come from
/// [`SENTINEL_FROM`].
pub fn before_sentinel(p: &Pushes, sentinel: i64) -> Vec<Seen> {
    p.all()
        .into_iter()
        .take_while(|x| x.msg.mid != sentinel)
        .filter(|x| x.msg.from != SENTINEL_FROM)
        .collect()
}

// --- msgpack values ---------------------------------------------------------

/// The keys of a map payload, in order.
pub fn keys(v: &Value) -> Vec<String> {
    v.as_map()
        .unwrap_or_else(|| panic!("not a map: {v}"))
        .iter()
        .map(|(k, _)| k.as_str().expect("str key").to_owned())
        .collect()
}

/// The value of `key` in a map payload.
pub fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_map()
        .unwrap_or_else(|| panic!("not a map: {v}"))
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key:?} in {v}"))
}

pub fn int(v: &Value, key: &str) -> i64 {
    field(v, key)
        .as_i64()
        .unwrap_or_else(|| panic!("{key:?} is not an i64 in {v}"))
}

pub fn int_list(v: &Value, key: &str) -> Vec<i64> {
    field(v, key)
        .as_array()
        .unwrap_or_else(|| panic!("{key:?} is not an array in {v}"))
        .iter()
        .map(|x| x.as_i64().expect("an integer"))
        .collect()
}

/// A msgpack array of ids, as the client puts id lists on the wire.
pub fn id_list(ids: &[i64]) -> Value {
    Value::Array(ids.iter().map(|&i| Value::from(i)).collect())
}
