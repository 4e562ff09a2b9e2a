//! The messages area: the three sends, the stored messages with their ids, mtimes and
//! pushes, resend deduplication, `getmsg` and `delmsg`, and the `broadcast` and `inject`
//! test hooks. History and unread counts read the messages stored here.

use rmpv::Value;

use crate::fpnn::packet;
use crate::value::{MapBuilder, PutValue};

use super::{
    byte, int, need_int, obj, positive, str_or_bin, Args, Ctx, FastMap, Field, GateError,
    GateState, Project, Push, Route, NOT_GROUP_MEMBER, NOT_IN_ROOM, PERMISSION_DENIED,
};

pub(super) const ROUTES: &[Route] = &[
    Route::send("sendmsg", |p, ctx, a| send(Kind::P2p, p, ctx, a)),
    Route::send("sendgroupmsg", |p, ctx, a| send(Kind::Group, p, ctx, a)),
    Route::send("sendroommsg", |p, ctx, a| send(Kind::Room, p, ctx, a)),
    Route::user("getmsg", get_msg),
    Route::user("delmsg", del_msg),
];

/// Where a message goes. Its discriminant is the `type` of `getmsg`/`delmsg` (broadcast is
/// 4, as in the client's duplicate filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    P2p = 1,
    Group = 2,
    Room = 3,
    Broadcast = 4,
}

impl Kind {
    fn from_type(t: i64) -> Option<Kind> {
        match t {
            1 => Some(Kind::P2p),
            2 => Some(Kind::Group),
            3 => Some(Kind::Room),
            _ => None,
        }
    }

    /// The key naming the target in a send quest and in a push.
    pub(super) fn target_key(self) -> Option<&'static str> {
        match self {
            Kind::P2p => Some("to"),
            Kind::Group => Some("gid"),
            Kind::Room => Some("rid"),
            Kind::Broadcast => None,
        }
    }

    /// The key naming the target in a history quest.
    pub(super) fn history_key(self) -> Option<&'static str> {
        match self {
            Kind::P2p => Some("ouid"),
            other => other.target_key(),
        }
    }

    fn push_method(self) -> &'static str {
        match self {
            Kind::P2p => "pushmsg",
            Kind::Group => "pushgroupmsg",
            Kind::Room => "pushroommsg",
            Kind::Broadcast => "pushbroadcastmsg",
        }
    }

    /// The conversation a message between `from` and `target` belongs to; both directions
    /// of a p2p conversation share one.
    pub(super) fn conv(self, from: i64, target: i64) -> Conv {
        match self {
            Kind::P2p => (self, from.min(target), from.max(target)),
            Kind::Broadcast => (self, 0, 0),
            _ => (self, target, 0),
        }
    }
}

pub(super) type Conv = (Kind, i64, i64);
/// (kind, from, target, mid): what identifies a message for resends, `getmsg` and `delmsg`.
pub(super) type MsgKey = (Kind, i64, i64, i64);

#[derive(Debug, Clone)]
pub(super) struct Msg {
    pub(super) id: i64,
    pub(super) from: i64,
    /// The receiver (p2p), gid, rid, or 0 (broadcast).
    pub(super) to: i64,
    pub(super) mtype: u8,
    pub(super) mid: i64,
    /// Body and attrs; both "" once deleted.
    pub(super) content: Content,
    pub(super) mtime: i64,
    pub(super) deleted: bool,
}

/// A message's body and attrs (each a str or bin) as their msgpack, one after the other in
/// one allocation: a send read from its bytes copies them as sent (a str that is not UTF-8
/// is written as bin, as its decoded form encodes, `Field::msgpack`), and its push copies
/// them into the push's payload, so no `Value` is built or dropped for them per message;
/// they are decoded when read (history, `getmsg`).
#[derive(Debug, Clone)]
pub(super) struct Content {
    msgpack: Vec<u8>,
    /// Where the attrs start.
    split: usize,
}

impl Content {
    /// The body and attrs of a send or a test hook.
    pub(super) fn new(body: Field, attrs: Field) -> Content {
        Content::new_in(body, attrs, None)
    }

    /// [`Content::new`] in `spare` when it is given, a buffer a dropped message left
    /// ([`State::spare`]), rather than a new allocation.
    fn new_in(body: Field, attrs: Field, spare: Option<Vec<u8>>) -> Content {
        if let (Some(b), Some(a)) = (body.msgpack(), attrs.msgpack()) {
            // From a quest's bytes: each copied once, into a spare buffer or a new one
            // of the right size.
            let msgpack = match spare {
                Some(mut v) => {
                    v.clear();
                    v.extend_from_slice(b);
                    v.extend_from_slice(a);
                    v
                }
                None => [b, a].concat(),
            };
            return Content {
                msgpack,
                split: b.len(),
            };
        }
        let mut msgpack = spare.unwrap_or_default();
        msgpack.clear();
        body.write_to(&mut msgpack);
        let split = msgpack.len();
        attrs.write_to(&mut msgpack);
        Content { msgpack, split }
    }

    /// [`Content::new`] of two values.
    pub(super) fn of(body: &Value, attrs: &Value) -> Content {
        Content::new(Field::Value(body), Field::Value(attrs))
    }

    /// The body, decoded.
    pub(super) fn body(&self) -> Value {
        self.decode(0)
    }

    /// The attrs, decoded.
    pub(super) fn attrs(&self) -> Value {
        self.decode(self.split)
    }

    /// The body's msgpack.
    fn body_msgpack(&self) -> &[u8] {
        &self.msgpack[..self.split]
    }

    /// The attrs' msgpack.
    fn attrs_msgpack(&self) -> &[u8] {
        &self.msgpack[self.split..]
    }

    fn decode(&self, pos: usize) -> Value {
        // What `new` wrote is one whole value at each position; were it ever not, nil.
        packet::read_value_at(&self.msgpack, pos).unwrap_or(Value::Nil)
    }

    /// Whether the body is not a str or bin, or is empty (a send's is refused then).
    fn body_is_empty(&self) -> bool {
        packet::bytes_value(&self.msgpack, 0).map_or(true, <[u8]>::is_empty)
    }
}

/// Msgpack written as it is into a [`MapBuilder`].
struct Msgpack<'a>(&'a [u8]);

impl PutValue for Msgpack<'_> {
    fn write_to(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0);
    }
}

impl Msg {
    /// A message before the gate stamps its id and mtime.
    pub(super) fn draft(from: i64, to: i64, mid: i64, mtype: u8, content: Content) -> Self {
        Msg {
            id: 0,
            from,
            to,
            mtype,
            mid,
            content,
            mtime: 0,
            deleted: false,
        }
    }
}

/// The messages of one project.
#[derive(Debug)]
pub(super) struct State {
    last_id: i64,
    last_broadcast_mid: i64,
    /// Messages of each conversation in id order (which is also mtime order).
    pub(super) convs: FastMap<Conv, ConvLog>,
    /// The first message with each key, by its position in its conversation
    /// counted from the conversation's first message ever ([`ConvLog::first`]).
    index: FastMap<MsgKey, (Conv, usize)>,
    /// Each conversation keeps at least its newest `limit` messages and at
    /// most twice that; 0: all of them.
    limit: usize,
    /// The content buffers of dropped messages (at most `limit` of them, each of at
    /// most [`SPARE_MAX`] bytes), which the next sends fill instead of allocating: a
    /// conversation at its limit drops as many messages as it stores, so a send then
    /// costs no allocation and no free.
    spare: Vec<Vec<u8>>,
}

/// The largest content buffer [`State::spare`] keeps: a larger one would hold that
/// much for each short message that reused it.
const SPARE_MAX: usize = 512;

impl Default for State {
    fn default() -> Self {
        State {
            last_id: 0,
            last_broadcast_mid: 0,
            convs: FastMap::default(),
            index: FastMap::default(),
            limit: crate::gate::DEFAULT_HISTORY_LIMIT,
            spare: Vec::new(),
        }
    }
}

/// The kept messages of one conversation.
#[derive(Debug, Default)]
pub(super) struct ConvLog {
    /// How many older messages were dropped ([`State::limit`]): the position of
    /// `msgs[0]` among all the conversation's messages.
    first: usize,
    msgs: Vec<Msg>,
}

impl ConvLog {
    /// The kept messages, oldest first.
    pub(super) fn msgs(&self) -> &[Msg] {
        &self.msgs
    }
}

impl State {
    /// A project's messages, keeping `limit` per conversation ([`State::limit`]).
    pub(super) fn with_limit(limit: usize) -> State {
        State {
            limit,
            ..State::default()
        }
    }

    /// See [`State::with_limit`]; conversations now over twice the limit shrink
    /// with their next message.
    pub(super) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        self.spare.truncate(limit);
    }

    /// The messages of one conversation, oldest first.
    pub(super) fn conv(&self, conv: &Conv) -> &[Msg] {
        self.convs.get(conv).map_or(&[][..], ConvLog::msgs)
    }

    pub(super) fn find(&self, key: MsgKey) -> Option<&Msg> {
        let (conv, at) = self.index.get(&key)?;
        let log = self.convs.get(conv)?;
        log.msgs.get(at.checked_sub(log.first)?)
    }

    fn find_mut(&mut self, key: MsgKey) -> Option<&mut Msg> {
        let (conv, at) = self.index.get(&key)?;
        let log = self.convs.get_mut(conv)?;
        log.msgs.get_mut(at.checked_sub(log.first)?)
    }

    /// Appends `msg` to its conversation, indexed under its key unless an
    /// older message has that key; at twice the limit, drops the oldest down
    /// to the limit in one step (so each message is moved at most once per
    /// `limit` sends), with their index entries.
    fn append(&mut self, kind: Kind, msg: Msg) {
        let conv = kind.conv(msg.from, msg.to);
        let log = self.convs.entry(conv).or_default();
        self.index
            .entry((kind, msg.from, msg.to, msg.mid))
            .or_insert((conv, log.first + log.msgs.len()));
        log.msgs.push(msg);
        if self.limit == 0 || log.msgs.len() < self.limit.saturating_mul(2) {
            return;
        }
        let n = log.msgs.len() - self.limit;
        for (i, x) in log.msgs.drain(..n).enumerate() {
            let key = (kind, x.from, x.to, x.mid);
            if self.index.get(&key) == Some(&(conv, log.first + i)) {
                self.index.remove(&key);
            }
            let buf = x.content.msgpack;
            if self.spare.len() < self.limit && buf.capacity() <= SPARE_MAX {
                self.spare.push(buf);
            }
        }
        log.first += n;
    }

    /// [`Content::new`] in a spare buffer when there is one ([`State::spare`]).
    fn content(&mut self, body: Field, attrs: Field) -> Content {
        Content::new_in(body, attrs, self.spare.pop())
    }
}

/// `sendmsg {to}`, `sendgroupmsg {gid}`, `sendroommsg {rid}` (+ `mid, mtype, msg, attrs`).
/// Answered `{mtime}` ([`super::Answer::Mtime`]).
fn send(kind: Kind, p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<i64, GateError> {
    let key = kind.target_key().unwrap_or_default();
    // One walk of the payload for the five keys; each is checked in this order, so the
    // first bad one is named as reading them one by one (`Args::id`, `Args::field`) would.
    let [target, mid, mtype, body, attrs] = a.fields_of([key, "mid", "mtype", "msg", "attrs"])?;
    let msg = Msg::draft(
        ctx.uid,
        need_int(target, key, positive)?,
        need_int(mid, "mid", Some)?,
        need_int(mtype, "mtype", byte)?,
        p.messages
            .content(str_or_bin(body, "msg")?, str_or_bin(attrs, "attrs")?),
    );
    let (mtime, pushes) = p.send(kind, msg, ctx.now)?;
    ctx.pushes = pushes;
    Ok(mtime)
}

/// The key of `getmsg` and `delmsg`: `(kind, from, xid, mid)`.
fn msg_key(a: Args) -> Result<MsgKey, GateError> {
    let (from, mid, xid) = (a.id("from")?, a.req("mid", int)?, a.id("xid")?);
    let kind = a.req("type", |v| int(v).and_then(Kind::from_type))?;
    Ok((kind, from, xid, mid))
}

/// `getmsg {from, mid, xid, type}`: to a participant; `{}` when there is no such message
/// or it was deleted.
fn get_msg(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let key @ (kind, from, xid, _) = msg_key(a)?;
    let uid = ctx.uid;
    if kind == Kind::P2p && uid != from && uid != xid {
        return Err(GateError::new(PERMISSION_DENIED, "not a participant"));
    }
    p.check_access(kind, uid, xid)?;
    Ok(match p.messages.find(key).filter(|x| !x.deleted) {
        Some(x) => obj([
            ("id", x.id.into()),
            ("mtype", x.mtype.into()),
            ("msg", x.content.body()),
            ("attrs", x.content.attrs()),
            ("mtime", x.mtime.into()),
        ]),
        None => obj([]),
    })
}

/// `delmsg {from, mid, xid, type}`: only the sender may (200021, checked first); a message
/// that does not exist (or is already deleted) is answered `{}` so that a retried delete
/// succeeds.
fn del_msg(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let key = msg_key(a)?;
    if ctx.uid != key.1 {
        return Err(GateError::new(
            PERMISSION_DENIED,
            "only the sender may delete a message",
        ));
    }
    if let Some(x) = p.messages.find_mut(key) {
        x.deleted = true;
        x.content = Content::of(&"".into(), &"".into());
    }
    Ok(obj([]))
}

impl Project {
    /// May `uid` send to or read `target`?
    pub(super) fn check_access(&self, kind: Kind, uid: i64, target: i64) -> Result<(), GateError> {
        match kind {
            Kind::Group if !self.groups.is_member(target, uid) => {
                Err(GateError::new(NOT_GROUP_MEMBER, "not a group member"))
            }
            Kind::Room if !self.rooms.is_member(target, uid) => {
                Err(GateError::new(NOT_IN_ROOM, "not in room"))
            }
            _ => Ok(()),
        }
    }

    /// May `from` send to `target`? The access check ([`Project::check_access`]) and, for
    /// p2p, the receiver's blacklist (the friends area, 200021). Every send checks this,
    /// and so does `filetoken` (files.rs) before it grants a token for one.
    pub(super) fn may_send(&self, kind: Kind, from: i64, target: i64) -> Result<(), GateError> {
        self.check_access(kind, from, target)?;
        if kind == Kind::P2p {
            self.friends.check_send(from, target)?;
        }
        Ok(())
    }

    /// A send (quest or hook): the body check, the resend rule, [`Project::may_send`],
    /// then [`Project::store`].
    pub(super) fn send(
        &mut self,
        kind: Kind,
        msg: Msg,
        now: i64,
    ) -> Result<(i64, Vec<Push>), GateError> {
        if msg.content.body_is_empty() {
            return Err(GateError::bad("msg"));
        }
        // A resend is answered before the access check: a client resending after a
        // reconnect (which left its rooms) gets the first answer, as docs/gate.md promises.
        if msg.mid != 0 {
            if let Some(first) = self.messages.find((kind, msg.from, msg.to, msg.mid)) {
                return Ok((first.mtime, Vec::new()));
            }
        }
        self.may_send(kind, msg.from, msg.to)?;
        Ok(self.store(kind, msg, now))
    }

    /// Stamps a new message with its id and mtime, stores it, and returns its mtime and
    /// pushes (never to the sender).
    fn store(&mut self, kind: Kind, mut msg: Msg, now: i64) -> (i64, Vec<Push>) {
        msg.mtime = self.clock(now).max(self.last_mark.saturating_add(1));
        self.last_mtime = msg.mtime;
        self.messages.last_id += 1;
        msg.id = self.messages.last_id;
        let Msg {
            from,
            to,
            mid,
            mtime,
            ..
        } = msg;
        // A p2p message's one receiver is not collected into a `Vec`.
        let many: Vec<i64>;
        let receivers: &[i64] = match kind {
            Kind::P2p => std::slice::from_ref(&to),
            Kind::Group => {
                many = self.groups.members(to).collect();
                &many
            }
            Kind::Room => {
                many = self.rooms.members(to).collect();
                &many
            }
            Kind::Broadcast => {
                many = self.users.keys().copied().collect();
                &many
            }
        };
        let receivers = receivers.iter().copied().filter(|&u| u != from);
        // The push is built only when someone is online to receive it.
        let online = receivers.clone().any(|u| self.conns(u).next().is_some());
        let payload = online.then(|| {
            let p = MapBuilder::new()
                .put("from", from)
                .put("mtype", msg.mtype)
                .put("mid", mid)
                .put("msg", Msgpack(msg.content.body_msgpack()))
                .put("attrs", Msgpack(msg.content.attrs_msgpack()))
                .put("mtime", mtime);
            match kind.target_key() {
                Some(k) => p.put(k, to),
                None => p,
            }
            .build()
            .into_bytes()
        });
        self.messages.append(kind, msg);
        let pushes = match payload {
            Some(payload) => self.push_to(receivers, kind.push_method(), payload),
            None => Vec::new(),
        };
        (mtime, pushes)
    }
}

impl GateState {
    /// Test hook: a broadcast from `from` (str or bin body, not checked for emptiness), kept
    /// in the broadcast history and pushed to every authenticated connection of the pid but
    /// `from`'s. Its mid is generated like a client's (docs/Messages.md): the mtime
    /// followed by three digits, strictly increasing, so duplicate filters never drop it.
    pub fn broadcast(
        &mut self,
        pid: i64,
        from: i64,
        mtype: u8,
        msg: Value,
        attrs: &str,
        now_ms: i64,
    ) -> Vec<Push> {
        let p = self.project(pid);
        // Strictly increasing per pid, like a client's generated mids, so
        // clients' duplicate filters never drop a broadcast.
        let mid = p
            .clock(now_ms)
            .saturating_mul(1000)
            .max(p.messages.last_broadcast_mid.saturating_add(1));
        p.messages.last_broadcast_mid = mid;
        let msg = Msg::draft(from, 0, mid, mtype, Content::of(&msg, &attrs.into()));
        p.store(Kind::Broadcast, msg, now_ms).1
    }

    /// Test hook: a message as if `from` had sent it (str or bin body), whether or not it is
    /// online. `kind`: 1 p2p (`target` is the receiver), 2 group, 3 room. Checked like a send.
    #[allow(clippy::too_many_arguments)]
    pub fn inject(
        &mut self,
        pid: i64,
        kind: u8,
        from: i64,
        target: i64,
        mid: i64,
        mtype: u8,
        msg: Value,
        attrs: &str,
        now_ms: i64,
    ) -> Result<(i64, Vec<Push>), GateError> {
        let kind = Kind::from_type(kind.into()).ok_or_else(|| GateError::bad("kind"))?;
        let p = self.project(pid);
        p.send(
            kind,
            Msg::draft(from, target, mid, mtype, Content::of(&msg, &attrs.into())),
            now_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::testkit::*;
    use super::super::*;

    #[test]
    fn send_errors_and_clock() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        for (method, target, code) in [
            ("sendgroupmsg", 9, NOT_GROUP_MEMBER),
            ("sendroommsg", 9, NOT_IN_ROOM),
        ] {
            assert_eq!(g.send_code(a, method, target, 1), code);
        }
        for body in [
            Value::from(""),
            Value::Binary(vec![]),
            Value::from(5),
            Value::Nil,
        ] {
            assert_eq!(
                g.send(a, "sendmsg", B, 1, 30, body)
                    .answer
                    .unwrap_err()
                    .code,
                EMPTY_PARAMETER
            );
        }
        let full = [
            ("to", B.into()),
            ("mid", 1.into()),
            ("mtype", 30.into()),
            ("msg", "x".into()),
            ("attrs", "".into()),
        ];
        for skip in 0..full.len() {
            let p = o(full
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, kv)| kv.clone()));
            assert_eq!(
                g.err(a, "sendmsg", p),
                EMPTY_PARAMETER,
                "without {}",
                full[skip].0
            );
        }
        let mut bad_mtype = full.to_vec();
        bad_mtype[2].1 = 300.into();
        assert_eq!(g.err(a, "sendmsg", o(bad_mtype)), EMPTY_PARAMETER);
        // mtime = max(now, last mtime): non-decreasing even when the wall clock goes back.
        g.now = 5_000;
        assert_eq!(g.sendp(a, B, 1, 30), 5_000);
        g.now = 4_000;
        assert_eq!(g.sendp(a, B, 2, 30), 5_000);
        g.now = 6_000;
        assert_eq!(g.sendp(b, A, 3, 30), 6_000);
        let h = g.history(a, "getp2pmsg", vec![("target", B.into())]);
        let ids = ids_of(&h);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        // An attrs of either kind is accepted.
        let p = map! {"to": B, "mid": 9, "mtype": 30, "msg": "x", "attrs": Value::Binary(vec![1])};
        assert!(g.q(a, "sendmsg", p).answer.is_ok());
    }

    #[test]
    fn resend_is_answered_with_the_first_mtime() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.group(a, 1, &[B]);
        g.ok(a, "enterroom", map! {"rid": 2});
        g.ok(b, "enterroom", map! {"rid": 2});
        for (method, target, history, seen_as) in [
            ("sendmsg", B, "getp2pmsg", A),
            ("sendgroupmsg", 1, "getgroupmsg", 1),
            ("sendroommsg", 2, "getroommsg", 2),
        ] {
            g.now += 10;
            let first = g.send(a, method, target, 77, 30, "x".into());
            assert_eq!(first.pushes.len(), 1);
            g.now += 10;
            let again = g.send(a, method, target, 77, 30, "x".into());
            assert_eq!(again.answer, first.answer);
            assert!(again.pushes.is_empty());
            let h = g.history(b, history, vec![("target", seen_as.into())]);
            assert_eq!(num(&h, "num"), 1, "{method}");
        }
        // Another sender, target or mid is another message; mid 0 is never a resend.
        let t1 = g.sendp(b, A, 77, 30);
        assert_ne!(t1, 0);
        g.sendp(a, C, 77, 30);
        g.sendp(a, B, 0, 30);
        g.sendp(a, B, 0, 30);
        let h = g.history(a, "getp2pmsg", vec![("target", B.into())]);
        assert_eq!(num(&h, "num"), 4);
        // A resend after leaving the room (as after a reconnect) still gets the first answer.
        g.ok(a, "leaveroom", map! {"rid": 2});
        assert!(g
            .send(a, "sendroommsg", 2, 77, 30, "x".into())
            .answer
            .is_ok());
        assert_eq!(g.send_code(a, "sendroommsg", 2, 78), NOT_IN_ROOM);
    }

    #[test]
    fn pushes_reach_every_connection_but_the_senders() {
        let mut g = Gate::new();
        let (a1, a2) = (g.login(A), g.login(A));
        let (b1, b2) = (g.login(B), g.login(B));
        let c1 = g.login(C);
        let conns = |out: &Outcome| out.pushes.iter().map(|p| p.conn).collect::<Vec<_>>();

        let out = g.send(a1, "sendmsg", B, 5, 31, "hi".into());
        assert_eq!(conns(&out), vec![b1, b2]);
        let p = &out.pushes[0];
        assert_eq!((p.method, p.twoway()), ("pushmsg", true));
        let mtime = num(out.answer.as_ref().unwrap(), "mtime");
        let expect = map! {"from": A, "mtype": 31, "mid": 5, "msg": "hi", "attrs": "{}", "mtime": mtime, "to": B};
        assert_eq!(p.payload_value(), expect);
        // To oneself: stored, pushed nowhere (not even to the sender's other connection).
        assert!(g
            .send(a1, "sendmsg", A, 6, 30, "me".into())
            .pushes
            .is_empty());

        g.group(a1, 9, &[B, C]);
        let out = g.send(b2, "sendgroupmsg", 9, 7, 30, "g".into());
        assert_eq!(conns(&out), vec![a1, a2, c1]);
        assert!(out
            .pushes
            .iter()
            .all(|p| p.method == "pushgroupmsg" && num(&p.payload_value(), "gid") == 9));

        for c in [a2, c1] {
            g.ok(c, "enterroom", map! {"rid": 4});
        }
        let out = g.send(a1, "sendroommsg", 4, 8, 30, "r".into());
        assert_eq!(conns(&out), vec![c1]);
        assert!(out
            .pushes
            .iter()
            .all(|p| p.method == "pushroommsg" && num(&p.payload_value(), "rid") == 4));
        assert_eq!(
            get(out.pushes[0].payload_value().as_map().unwrap(), "to"),
            None
        );
    }

    #[test]
    fn offline_messages_are_stored() {
        let mut g = Gate::new();
        let a = g.login(A);
        let out = g.send(a, "sendmsg", B, 1, 30, "while you were out".into());
        assert!(out.answer.is_ok() && out.pushes.is_empty());
        let b = g.login(B);
        let h = g.history(b, "getp2pmsg", vec![("target", A.into())]);
        let it = &items(&h)[0];
        assert_eq!(
            (it[1].as_i64(), &it[5]),
            (Some(2), &Value::from("while you were out"))
        );
        let h = g.history(a, "getp2pmsg", vec![("target", B.into())]);
        assert_eq!(items(&h)[0][1].as_i64(), Some(1));
    }

    #[test]
    fn a_conversation_keeps_its_newest_messages_between_the_limit_and_twice_it() {
        let mut g = Gate::new();
        g.s.set_history_limit(3);
        let (a, b) = (g.login(A), g.login(B));
        let key = |mid: i64| map! {"from": A, "mid": mid, "xid": B, "type": 1};
        let kept = |g: &mut Gate| {
            let h = g.history(b, "getp2pmsg", vec![("target", A.into())]);
            items(&h)
                .iter()
                .map(|x| x[3].as_i64().unwrap())
                .collect::<Vec<_>>()
        };
        // Five fit (under twice the limit); the sixth drops the three oldest at once.
        for mid in 1..=5 {
            g.sendp(a, B, mid, 30);
        }
        assert_eq!(kept(&mut g), [1, 2, 3, 4, 5]);
        g.sendp(a, B, 6, 30);
        assert_eq!(kept(&mut g), [4, 5, 6]);
        let indexed = |g: &Gate| g.s.projects[&PID].messages.index.len();
        assert_eq!(indexed(&g), 3, "the index keeps only what is kept");
        // What was dropped is gone from getmsg, delmsg and resend detection; what is
        // kept is still found where it now sits.
        assert_eq!(g.ok(b, "getmsg", key(2)), map! {});
        assert_eq!(num(&g.ok(b, "getmsg", key(5)), "mtype"), 30);
        g.ok(a, "delmsg", key(5));
        assert_eq!(g.ok(b, "getmsg", key(5)), map! {});
        assert_eq!(g.ok(b, "getmsg", key(4)).as_map().map(Vec::len), Some(5));
        let resent = g.send(a, "sendmsg", B, 4, 30, "x".into());
        assert!(resent.pushes.is_empty(), "a kept message is a resend");
        g.sendp(a, B, 1, 30);
        assert_eq!(kept(&mut g), [4, 5, 6, 1], "a dropped one is new again");
        // Other conversations are not touched, and 0 keeps everything.
        g.sendp(b, C, 1, 30);
        g.s.set_history_limit(0);
        for mid in 7..=20 {
            g.sendp(a, B, mid, 30);
        }
        let h = g.history(
            b,
            "getp2pmsg",
            vec![("target", A.into()), ("num", 100.into())],
        );
        assert_eq!(num(&h, "num"), 18);
        assert_eq!(num(&g.ok(b, "getmsg", key(4)), "mtype"), 30);
    }

    /// The buffers of dropped messages are refilled by the next sends (`State::spare`):
    /// each message stored in one reads back and is pushed as it was sent, whatever the
    /// length or type of the content the buffer held before, and the spares never
    /// outnumber the limit.
    #[test]
    fn a_dropped_messages_buffer_holds_the_next_message_as_sent() {
        let mut g = Gate::new();
        g.s.set_history_limit(3);
        let (a, b) = (g.login(A), g.login(B));
        let spares = |g: &Gate| g.s.projects[&PID].messages.spare.len();
        let bodies: Vec<Value> = vec![
            "a much longer body than the ones that follow it".into(),
            Value::Binary(vec![0xff, 0, 7]),
            "é".into(),
            "x".into(),
            "😀 and more".into(),
            Value::Binary(vec![1; 600]),
            "y".into(),
            "z".into(),
            "short".into(),
        ];
        for (i, body) in bodies.iter().enumerate() {
            // Read from the decoded payload and from its bytes (the server's path), in turn.
            let p = o([
                ("to", B.into()),
                ("mid", (i as i64 + 1).into()),
                ("mtype", 30.into()),
                ("msg", body.clone()),
                ("attrs", "{}".into()),
            ]);
            let pushes = if i % 2 == 0 {
                let mut bytes = Vec::new();
                packet::encode_payload(&p, &mut bytes);
                let out = g.s.handle_bytes(a, "sendmsg", &bytes, None, g.now);
                assert!(out.answer.is_ok());
                out.pushes
            } else {
                let out = g.q(a, "sendmsg", p);
                assert!(out.answer.is_ok());
                out.pushes
            };
            assert_eq!(field(&pushes[0].payload_value(), "msg"), body);
            assert!(spares(&g) <= 3);
            // The sixth drops three, whose buffers the next sends take.
            match i {
                5 => assert_eq!(spares(&g), 3),
                6 => assert_eq!(spares(&g), 2),
                _ => {}
            }
        }
        let h = g.history(b, "getp2pmsg", vec![("target", A.into())]);
        let kept: Vec<Value> = items(&h).into_iter().map(|x| x[5].clone()).collect();
        // Nine sent with a limit of 3: dropped at the sixth (three) and the ninth (three).
        assert_eq!(kept, bodies[6..]);
        let found = g.ok(b, "getmsg", map! {"from": A, "mid": 9, "xid": B, "type": 1});
        assert_eq!(field(&found, "msg"), &bodies[8]);
        g.s.set_history_limit(1);
        assert!(spares(&g) <= 1);
    }

    #[test]
    fn getmsg_and_delmsg_rules() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.now = 4_242;
        g.sendp(a, B, 11, 33);
        let key = |from: i64, mid: i64, xid: i64, t: i64| {
            map! {"from": from, "mid": mid, "xid": xid, "type": t}
        };
        let found = g.ok(b, "getmsg", key(A, 11, B, 1));
        assert_eq!(num(&found, "mtype"), 33);
        assert_eq!(
            (
                field(&found, "msg"),
                field(&found, "attrs"),
                num(&found, "mtime")
            ),
            (&"m11".into(), &"{}".into(), 4_242)
        );
        assert_eq!(g.ok(a, "getmsg", key(A, 11, B, 1)), found);
        assert_eq!(g.err(c, "getmsg", key(A, 11, B, 1)), PERMISSION_DENIED);
        assert_eq!(g.ok(a, "getmsg", key(A, 12, B, 1)), map! {});
        assert_eq!(g.ok(a, "getmsg", key(B, 11, A, 1)), map! {});
        for t in [0, 4, -1] {
            assert_eq!(g.err(a, "getmsg", key(A, 11, B, t)), EMPTY_PARAMETER);
            assert_eq!(g.err(a, "delmsg", key(A, 11, B, t)), EMPTY_PARAMETER);
        }
        assert_eq!(
            g.err(a, "getmsg", map! {"from": A, "mid": 11, "xid": B}),
            EMPTY_PARAMETER
        );
        // Only the sender deletes; afterwards getmsg says {} and history keeps an empty shell.
        assert_eq!(g.err(b, "delmsg", key(A, 11, B, 1)), PERMISSION_DENIED);
        assert_eq!(g.ok(a, "delmsg", key(A, 11, B, 1)), map! {});
        assert_eq!(g.ok(a, "delmsg", key(A, 11, B, 1)), map! {});
        assert_eq!(g.ok(a, "delmsg", key(A, 99, B, 1)), map! {});
        assert_eq!(g.ok(b, "getmsg", key(A, 11, B, 1)), map! {});
        let h = g.history(b, "getp2pmsg", vec![("target", A.into())]);
        let it = &items(&h)[0];
        assert_eq!(
            (&it[4], &it[5], &it[6], &it[7]),
            (&true.into(), &"".into(), &"".into(), &4_242.into())
        );

        // Group and room: membership rules, bin body as sent.
        g.group(a, 5, &[B]);
        g.send(
            a,
            "sendgroupmsg",
            5,
            1,
            30,
            Value::Binary(vec![0, 159, 255]),
        )
        .answer
        .unwrap();
        assert_eq!(
            field(&g.ok(b, "getmsg", key(A, 1, 5, 2)), "msg"),
            &Value::Binary(vec![0, 159, 255])
        );
        assert_eq!(g.err(c, "getmsg", key(A, 1, 5, 2)), NOT_GROUP_MEMBER);
        g.ok(b, "enterroom", map! {"rid": 5});
        assert_eq!(
            g.ok(b, "getmsg", key(A, 1, 5, 3)),
            map! {},
            "no such room message"
        );
        assert_eq!(g.err(c, "getmsg", key(A, 1, 5, 3)), NOT_IN_ROOM);
    }

    #[test]
    fn broadcasts_in_one_millisecond_get_distinct_mids() {
        let mut g = Gate::new();
        g.login(B);
        let mids: BTreeSet<i64> = (0..2500)
            .map(|_| {
                num(
                    &g.s.broadcast(PID, A, 30, "x".into(), "", 7_000)[0].payload_value(),
                    "mid",
                )
            })
            .collect();
        assert_eq!(mids.len(), 2500);
    }

    #[test]
    fn broadcast_hook() {
        let mut g = Gate::new();
        let (a1, a2, b) = (g.login(A), g.login(A), g.login(B));
        let other_pid = g.login_pid(PID + 1, C);
        let pushes = g.s.broadcast(PID, A, 30, "to all".into(), "at", 7_000);
        assert_eq!(pushes.iter().map(|p| p.conn).collect::<Vec<_>>(), vec![b]);
        let p = &pushes[0];
        assert_eq!(
            (
                p.method,
                num(&p.payload_value(), "from"),
                num(&p.payload_value(), "mtime")
            ),
            ("pushbroadcastmsg", A, 7_000)
        );
        assert_eq!(get(p.payload_value().as_map().unwrap(), "to"), None);
        let mid = num(&p.payload_value(), "mid");
        assert_ne!(mid, 0);
        // From the system (uid 0): everyone of the pid.
        let pushes =
            g.s.broadcast(PID, 0, 31, Value::Binary(vec![1, 2]), "", 7_000);
        assert_eq!(
            pushes.iter().map(|p| p.conn).collect::<Vec<_>>(),
            vec![a1, a2, b]
        );
        assert_ne!(num(&pushes[0].payload_value(), "mid"), mid);
        let h = g.history(b, "getbroadcastmsg", vec![("desc", true.into())]);
        let list = items(&h);
        assert_eq!(list.len(), 2);
        assert_eq!(
            (&list[0][1], &list[0][5]),
            (&Value::from(0), &Value::Binary(vec![1, 2]))
        );
        assert_eq!(
            (&list[1][1], &list[1][5], &list[1][6]),
            (&Value::from(A), &"to all".into(), &"at".into())
        );
        let h = g.history(other_pid, "getbroadcastmsg", vec![]);
        assert_eq!(num(&h, "num"), 0);
    }

    #[test]
    fn binary_bodies_stay_binary() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        let bin = Value::Binary(vec![0xff, 0x00, 0xfe]);
        let (mtime, pushes) =
            g.s.inject(PID, 1, A, B, 1, 30, bin.clone(), "a", 500)
                .unwrap();
        assert_eq!(pushes.len(), 1);
        assert_eq!(field(&pushes[0].payload_value(), "msg"), &bin);
        g.post(a, "sendmsg", B, 2);
        let h = g.history(b, "getp2pmsg", vec![("target", A.into())]);
        let list = items(&h);
        assert_eq!(
            (&list[0][5], &list[0][7], &list[1][5]),
            (&bin, &Value::from(mtime), &"x".into())
        );
        assert_eq!(
            field(
                &g.ok(b, "getmsg", map! {"from": A, "mid": 1, "xid": B, "type": 1}),
                "msg"
            ),
            &bin
        );
        // inject behaves like a send: membership, empty body, resend, the kind.
        assert_eq!(
            g.s.inject(PID, 2, A, 9, 1, 30, bin.clone(), "", 0)
                .unwrap_err()
                .code,
            NOT_GROUP_MEMBER
        );
        assert_eq!(
            g.s.inject(PID, 3, A, 9, 1, 30, bin.clone(), "", 0)
                .unwrap_err()
                .code,
            NOT_IN_ROOM
        );
        assert_eq!(
            g.s.inject(PID, 4, A, 9, 1, 30, bin.clone(), "", 0)
                .unwrap_err()
                .code,
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.s.inject(PID, 1, A, B, 3, 30, Value::Binary(vec![]), "", 0)
                .unwrap_err()
                .code,
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.s.inject(PID, 1, A, B, 1, 30, bin, "", 9_999).unwrap(),
            (mtime, vec![])
        );
        // A sender that never logged in is fine.
        let (_, pushes) =
            g.s.inject(PID, 1, 555, A, 1, 30, "hey".into(), "", 0)
                .unwrap();
        assert_eq!(pushes.iter().map(|p| p.conn).collect::<Vec<_>>(), vec![a]);
    }
}
