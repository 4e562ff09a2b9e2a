//! The gate's semantics (GATE.md section 2) as a pure state machine.
//!
//! No sockets, no threads, no clock: the server layer hands every quest and the current
//! time in, writes the answer back, and sends the [`Push`]es it gets (quests to other
//! connections). Everything lives per pid; different pids never see each other.
//!
//! Where GATE.md leaves room, this module decides (each choice is repeated where it is made):
//! - `ping` and `bye` are answered `{}` even before auth; an unknown method is 20004 even
//!   before auth (the method table is consulted before the session).
//! - A message's mtime is `max(now, last mtime of the pid)`, so the gate's clock never runs
//!   backwards; unread marks and logout times use the same clock.
//! - mid 0 is never deduplicated (clients generate a mid when the caller passes 0,
//!   PROTOCOL.md section 7); a resend is answered with the first mtime before the
//!   membership check, so a resend after a reconnect (which leaves rooms) still succeeds.
//! - `begin`, `end` and `lastid` bound a history query only when positive.
//! - `delmsg` of a message that does not exist is answered `{}` (idempotent); only the
//!   sender may call it (200021), whether or not the message exists.
//! - `getgroupunread` skips gids the caller is not a member of instead of failing.
//! - `getunread` looks at every mtype; deleted messages count neither as unread nor for
//!   `ltime`.
//! - The group and room quests that GATE.md does not restrict (`delgroupmembers`,
//!   `getgroupmembers`) do not require membership; sending p2p to oneself is allowed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rmpv::Value;

/// A connection, from TCP accept to close; the server layer picks the ids.
pub(crate) type ConnId = u64;

const CORE_UNKNOWN_METHOD: i32 = 20004;
const PERMISSION_DENIED: i32 = 200021;
const UNAUTHORIZED: i32 = 200022;
const DUPLICATED_AUTH: i32 = 200023;
const EMPTY_PARAMETER: i32 = 200033;
const NOT_IN_ROOM: i32 = 200040;
const NOT_GROUP_MEMBER: i32 = 200041;
/// GATE.md: at most 20 history items per answer.
const MAX_PAGE: u64 = 20;
/// The mtypes the unread counters use when the caller names none: chat and file messages.
const UNREAD_MTYPES: std::ops::RangeInclusive<u8> = 30..=50;

/// An error answer (status 1, `{code, ex}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GateError {
    pub code: i32,
    pub ex: String,
}

impl GateError {
    fn new(code: i32, ex: impl Into<String>) -> Self {
        GateError {
            code,
            ex: ex.into(),
        }
    }

    /// 200033: a key is missing, mistyped or out of range.
    fn bad(key: &str) -> Self {
        Self::new(
            EMPTY_PARAMETER,
            format!("missing or invalid parameter: {key}"),
        )
    }
}

/// A quest from the gate to one connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Push {
    pub conn: ConnId,
    pub method: &'static str,
    pub payload: Value,
}

impl Push {
    /// `kickout` and `kickoutroom` are oneway (PROTOCOL.md section 6); the pushes of
    /// messages are twoway quests.
    pub fn twoway(&self) -> bool {
        !matches!(self.method, "kickout" | "kickoutroom")
    }
}

/// What one quest did: its answer and the quests it causes on other connections.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub answer: Result<Value, GateError>,
    pub pushes: Vec<Push>,
    /// `bye`: the server layer closes the connection after sending the answer.
    pub close_after: bool,
}

/// Where a message goes. Its discriminant is the `type` of `getmsg`/`delmsg` (broadcast is
/// 4, as in the client's duplicate filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
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
    fn target_key(self) -> Option<&'static str> {
        match self {
            Kind::P2p => Some("to"),
            Kind::Group => Some("gid"),
            Kind::Room => Some("rid"),
            Kind::Broadcast => None,
        }
    }

    /// The key naming the target in a history quest.
    fn history_key(self) -> Option<&'static str> {
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
    fn conv(self, from: i64, target: i64) -> Conv {
        match self {
            Kind::P2p => (self, from.min(target), from.max(target)),
            Kind::Broadcast => (self, 0, 0),
            _ => (self, target, 0),
        }
    }
}

type Conv = (Kind, i64, i64);
/// (kind, from, target, mid): what identifies a message for resends, `getmsg` and `delmsg`.
type MsgKey = (Kind, i64, i64, i64);

/// What a quest does; the three sends share one path, and so do the four histories.
#[derive(Debug, Clone, Copy)]
enum Route {
    Send(Kind),
    History(Kind),
    GetMsg,
    DelMsg,
    AddMembers,
    DelMembers,
    GetMembers,
    EnterRoom,
    LeaveRoom,
    GetUnread,
    CleanUnread,
    UnreadNum(Kind),
}

const ROUTES: &[(&str, Route)] = &[
    ("sendmsg", Route::Send(Kind::P2p)),
    ("sendgroupmsg", Route::Send(Kind::Group)),
    ("sendroommsg", Route::Send(Kind::Room)),
    ("getp2pmsg", Route::History(Kind::P2p)),
    ("getgroupmsg", Route::History(Kind::Group)),
    ("getroommsg", Route::History(Kind::Room)),
    ("getbroadcastmsg", Route::History(Kind::Broadcast)),
    ("getmsg", Route::GetMsg),
    ("delmsg", Route::DelMsg),
    ("addgroupmembers", Route::AddMembers),
    ("delgroupmembers", Route::DelMembers),
    ("getgroupmembers", Route::GetMembers),
    ("enterroom", Route::EnterRoom),
    ("leaveroom", Route::LeaveRoom),
    ("getunread", Route::GetUnread),
    ("cleanunread", Route::CleanUnread),
    ("getp2punread", Route::UnreadNum(Kind::P2p)),
    ("getgroupunread", Route::UnreadNum(Kind::Group)),
];

#[derive(Debug, Clone)]
struct Msg {
    id: i64,
    from: i64,
    /// The receiver (p2p), gid, rid, or 0 (broadcast).
    to: i64,
    mtype: u8,
    mid: i64,
    /// str or bin, kept as sent; "" once deleted.
    body: Value,
    attrs: Value,
    mtime: i64,
    deleted: bool,
}

impl Msg {
    /// A message before the gate stamps its id and mtime.
    fn draft(from: i64, to: i64, mid: i64, mtype: u8, body: Value, attrs: Value) -> Self {
        Msg {
            id: 0,
            from,
            to,
            mtype,
            mid,
            body,
            attrs,
            mtime: 0,
            deleted: false,
        }
    }
}

#[derive(Debug, Default)]
struct User {
    conns: BTreeSet<ConnId>,
    unread_mark: i64,
    last_logout: i64,
}

#[derive(Debug, Default)]
struct Project {
    last_id: i64,
    last_mtime: i64,
    /// Messages of each conversation in id order (which is also mtime order).
    convs: HashMap<Conv, Vec<Msg>>,
    /// The first message with each key.
    index: HashMap<MsgKey, (Conv, usize)>,
    groups: HashMap<i64, BTreeSet<i64>>,
    rooms: HashMap<i64, BTreeSet<i64>>,
    users: BTreeMap<i64, User>,
}

/// The whole in-memory state of one gate.
#[derive(Debug)]
pub(crate) struct GateState {
    tokens: Option<HashMap<i64, String>>,
    conns: HashMap<ConnId, (i64, i64)>,
    projects: HashMap<i64, Project>,
}

impl GateState {
    /// `tokens`: `None` accepts any non-empty token; `Some` only those uid:token pairs.
    pub fn new(tokens: Option<HashMap<i64, String>>) -> Self {
        GateState {
            tokens,
            conns: HashMap::new(),
            projects: HashMap::new(),
        }
    }

    /// A quest on connection `conn` (which exists from TCP accept and is unauthenticated
    /// until `auth` succeeds).
    pub fn handle(&mut self, conn: ConnId, method: &str, payload: &Value, now_ms: i64) -> Outcome {
        let mut out = Outcome {
            answer: Ok(obj([])),
            pushes: Vec::new(),
            close_after: false,
        };
        out.answer = self.dispatch(conn, method, payload, now_ms, &mut out);
        out
    }

    /// The connection closed (any reason). When it was the user's last connection, records
    /// the logout time and leaves every room.
    pub fn disconnect(&mut self, conn: ConnId, now_ms: i64) {
        let Some((pid, uid)) = self.conns.remove(&conn) else {
            return;
        };
        let p = self.projects.entry(pid).or_default();
        let t = p.clock(now_ms);
        let user = p.users.entry(uid).or_default();
        user.conns.remove(&conn);
        if user.conns.is_empty() {
            user.last_logout = t;
            p.rooms.values_mut().for_each(|members| {
                members.remove(&uid);
            });
        }
    }

    /// The authenticated connections of a user.
    pub fn conns_of(&self, pid: i64, uid: i64) -> Vec<ConnId> {
        self.projects
            .get(&pid)
            .map_or_else(Vec::new, |p| p.conns(uid).collect())
    }

    /// `(pid, uid)` once the connection is authenticated.
    pub fn uid_of(&self, conn: ConnId) -> Option<(i64, i64)> {
        self.conns.get(&conn).copied()
    }

    /// Test hook: `kickout {}` (oneway) to each connection of the user. The connections
    /// stay open: the client closes them, as it does after a real gate's kickout.
    pub fn kickout(&self, pid: i64, uid: i64) -> Vec<Push> {
        let p = self.projects.get(&pid).into_iter();
        let conns = p.flat_map(|p| p.conns(uid));
        conns
            .map(|conn| Push {
                conn,
                method: "kickout",
                payload: obj([]),
            })
            .collect()
    }

    /// Test hook: removes `uid` from room `rid` and tells each of its connections with
    /// `kickoutroom {rid}`. The quests go out even when the user was not in the room, so a
    /// test can provoke the client's event without entering first.
    pub fn kickout_room(&mut self, pid: i64, uid: i64, rid: i64) -> Vec<Push> {
        let p = self.projects.entry(pid).or_default();
        if let Some(members) = p.rooms.get_mut(&rid) {
            members.remove(&uid);
        }
        let payload = obj([("rid", rid.into())]);
        p.conns(uid)
            .map(|conn| Push {
                conn,
                method: "kickoutroom",
                payload: payload.clone(),
            })
            .collect()
    }

    /// Test hook: a broadcast from `from` (str or bin body, not checked for emptiness), kept
    /// in the broadcast history and pushed to every authenticated connection of the pid but
    /// `from`'s. Its mid is generated like a client's (PROTOCOL.md section 7), from the mtime
    /// and the id, so clients' duplicate filters do not drop it.
    pub fn broadcast(
        &mut self,
        pid: i64,
        from: i64,
        mtype: u8,
        msg: Value,
        attrs: &str,
        now_ms: i64,
    ) -> Vec<Push> {
        let p = self.projects.entry(pid).or_default();
        let mid = p
            .clock(now_ms)
            .saturating_mul(1000)
            .saturating_add((p.last_id + 1) % 1000);
        let msg = Msg::draft(from, 0, mid, mtype, msg, attrs.into());
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
        let p = self.projects.entry(pid).or_default();
        p.send(
            kind,
            Msg::draft(from, target, mid, mtype, msg, attrs.into()),
            now_ms,
        )
    }

    fn dispatch(
        &mut self,
        conn: ConnId,
        method: &str,
        payload: &Value,
        now: i64,
        out: &mut Outcome,
    ) -> Result<Value, GateError> {
        match method {
            "ping" => return Ok(obj([])),
            "bye" => {
                out.close_after = true;
                return Ok(obj([]));
            }
            "auth" => return self.auth(conn, payload),
            _ => {}
        }
        let route = ROUTES
            .iter()
            .find(|(name, _)| *name == method)
            .map(|(_, route)| *route)
            .ok_or_else(|| GateError::new(CORE_UNKNOWN_METHOD, "unknown method"))?;
        let (pid, uid) = *self
            .conns
            .get(&conn)
            .ok_or_else(|| GateError::new(UNAUTHORIZED, "unauthorized"))?;
        let p = self.projects.entry(pid).or_default();
        if let Route::CleanUnread = route {
            // The only quest without keys: any payload will do.
            p.users.entry(uid).or_default().unread_mark = p.clock(now);
            return Ok(obj([]));
        }
        let m = payload.as_map().ok_or_else(|| GateError::bad("payload"))?;
        match route {
            Route::Send(kind) => {
                let msg = Msg::draft(
                    uid,
                    req(m, kind.target_key().unwrap_or_default(), int)?,
                    req(m, "mid", int)?,
                    req(m, "mtype", small)?,
                    req(m, "msg", raw)?,
                    req(m, "attrs", raw)?,
                );
                let (mtime, pushes) = p.send(kind, msg, now)?;
                out.pushes = pushes;
                Ok(obj([("mtime", mtime.into())]))
            }
            Route::History(kind) => p.history(kind, uid, m),
            Route::GetMsg | Route::DelMsg => {
                let (from, mid, xid) = (
                    req(m, "from", int)?,
                    req(m, "mid", int)?,
                    req(m, "xid", int)?,
                );
                let kind = req(m, "type", |v| int(v).and_then(Kind::from_type))?;
                if let Route::DelMsg = route {
                    p.delete(kind, uid, from, xid, mid)
                } else {
                    p.get(kind, uid, from, xid, mid)
                }
            }
            Route::AddMembers | Route::DelMembers => {
                let (gid, uids) = (req(m, "gid", int)?, req(m, "uids", ids)?);
                let members = p.groups.entry(gid).or_default();
                if let Route::AddMembers = route {
                    members.extend(uids.into_iter().chain([uid]));
                } else {
                    uids.iter().for_each(|u| {
                        members.remove(u);
                    });
                }
                Ok(obj([]))
            }
            Route::GetMembers => {
                let gid = req(m, "gid", int)?;
                let uids = p
                    .groups
                    .get(&gid)
                    .into_iter()
                    .flatten()
                    .map(|&u| u.into())
                    .collect();
                Ok(obj([("uids", Value::Array(uids))]))
            }
            Route::EnterRoom | Route::LeaveRoom => {
                let rid = req(m, "rid", int)?;
                if let Route::EnterRoom = route {
                    p.rooms.entry(rid).or_default().insert(uid);
                } else if let Some(members) = p.rooms.get_mut(&rid) {
                    members.remove(&uid);
                }
                Ok(obj([]))
            }
            Route::GetUnread => {
                let clear = opt(m, "clear", Value::as_bool)?.unwrap_or(false);
                let answer = p.unread(uid);
                if clear {
                    p.users.entry(uid).or_default().unread_mark = p.clock(now);
                }
                Ok(answer)
            }
            Route::UnreadNum(kind) => p.unread_num(kind, uid, m),
            Route::CleanUnread => unreachable!("answered above"),
        }
    }

    fn auth(&mut self, conn: ConnId, payload: &Value) -> Result<Value, GateError> {
        if self.conns.contains_key(&conn) {
            return Err(GateError::new(DUPLICATED_AUTH, "duplicated auth"));
        }
        let m = payload.as_map().ok_or_else(|| GateError::bad("payload"))?;
        let (pid, uid) = (req(m, "pid", int)?, req(m, "uid", int)?);
        let token = req(m, "token", Value::as_str)?;
        req(m, "version", Value::as_str)?;
        let ok = !token.is_empty()
            && self
                .tokens
                .as_ref()
                .map_or(true, |t| t.get(&uid).is_some_and(|x| x == token));
        if ok {
            self.conns.insert(conn, (pid, uid));
            self.projects
                .entry(pid)
                .or_default()
                .users
                .entry(uid)
                .or_default()
                .conns
                .insert(conn);
        }
        Ok(obj([("ok", ok.into())]))
    }
}

impl Project {
    /// The gate's clock: wall time, but never before the last message.
    fn clock(&self, now: i64) -> i64 {
        now.max(self.last_mtime)
    }

    fn conns(&self, uid: i64) -> impl Iterator<Item = ConnId> + '_ {
        self.users
            .get(&uid)
            .into_iter()
            .flat_map(|u| u.conns.iter().copied())
    }

    fn is_member(&self, gid: i64, uid: i64) -> bool {
        self.groups.get(&gid).is_some_and(|m| m.contains(&uid))
    }

    /// May `uid` send to or read `target`?
    fn check_access(&self, kind: Kind, uid: i64, target: i64) -> Result<(), GateError> {
        match kind {
            Kind::Group if !self.is_member(target, uid) => {
                Err(GateError::new(NOT_GROUP_MEMBER, "not a group member"))
            }
            Kind::Room if !self.rooms.get(&target).is_some_and(|m| m.contains(&uid)) => {
                Err(GateError::new(NOT_IN_ROOM, "not in room"))
            }
            _ => Ok(()),
        }
    }

    fn find(&self, key: MsgKey) -> Option<&Msg> {
        let (conv, i) = self.index.get(&key)?;
        self.convs.get(conv)?.get(*i)
    }

    /// A send (quest or hook): the body check, the resend rule, the access check, then
    /// [`Project::store`].
    fn send(&mut self, kind: Kind, msg: Msg, now: i64) -> Result<(i64, Vec<Push>), GateError> {
        if msg.body.as_slice().map_or(true, <[u8]>::is_empty) {
            return Err(GateError::bad("msg"));
        }
        // A resend is answered before the access check: a client resending after a
        // reconnect (which left its rooms) gets the first answer, as GATE.md promises.
        if msg.mid != 0 {
            if let Some(first) = self.find((kind, msg.from, msg.to, msg.mid)) {
                return Ok((first.mtime, Vec::new()));
            }
        }
        self.check_access(kind, msg.from, msg.to)?;
        Ok(self.store(kind, msg, now))
    }

    /// Stamps a new message with its id and mtime, stores it, and returns its mtime and
    /// pushes (never to the sender).
    fn store(&mut self, kind: Kind, mut msg: Msg, now: i64) -> (i64, Vec<Push>) {
        msg.mtime = self.clock(now);
        self.last_mtime = msg.mtime;
        self.last_id += 1;
        msg.id = self.last_id;
        let Msg {
            from,
            to,
            mid,
            mtime,
            ..
        } = msg;
        let mut payload = vec![
            ("from", from.into()),
            ("mtype", msg.mtype.into()),
            ("mid", mid.into()),
            ("msg", msg.body.clone()),
            ("attrs", msg.attrs.clone()),
            ("mtime", mtime.into()),
        ];
        payload.extend(kind.target_key().map(|k| (k, to.into())));
        let payload = obj(payload);
        let conv = kind.conv(from, to);
        let list = self.convs.entry(conv).or_default();
        self.index
            .entry((kind, from, to, mid))
            .or_insert((conv, list.len()));
        list.push(msg);
        let receivers: Vec<i64> = match kind {
            Kind::P2p => vec![to],
            Kind::Group => self
                .groups
                .get(&to)
                .into_iter()
                .flatten()
                .copied()
                .collect(),
            Kind::Room => self.rooms.get(&to).into_iter().flatten().copied().collect(),
            Kind::Broadcast => self.users.keys().copied().collect(),
        };
        let pushes = receivers
            .into_iter()
            .filter(|&u| u != from)
            .flat_map(|u| self.conns(u))
            .map(|conn| Push {
                conn,
                method: kind.push_method(),
                payload: payload.clone(),
            })
            .collect();
        (mtime, pushes)
    }

    /// `getp2pmsg`, `getgroupmsg`, `getroommsg`, `getbroadcastmsg`.
    fn history(&self, kind: Kind, uid: i64, m: &[(Value, Value)]) -> Result<Value, GateError> {
        let target = kind
            .history_key()
            .map(|k| req(m, k, int))
            .transpose()?
            .unwrap_or(0);
        let desc = req(m, "desc", Value::as_bool)?;
        // Any integer width; a huge num is just "as many as allowed".
        let num = req(m, "num", |v| v.as_u64().filter(|&n| n >= 1))?.min(MAX_PAGE) as usize;
        let [begin, end, lastid] = ["begin", "end", "lastid"].map(|k| opt(m, k, int));
        let (begin, end, lastid) = (begin?.unwrap_or(0), end?.unwrap_or(0), lastid?.unwrap_or(0));
        let mtypes = opt(m, "mtypes", mtypes)?.filter(|t| !t.is_empty());
        self.check_access(kind, uid, target)?;
        let keep = |x: &&Msg| {
            (begin <= 0 || x.mtime >= begin)
                && (end <= 0 || x.mtime <= end)
                && (lastid <= 0 || if desc { x.id < lastid } else { x.id > lastid })
                && mtypes.as_ref().map_or(true, |t| t.contains(&x.mtype))
        };
        let all = self
            .convs
            .get(&kind.conv(uid, target))
            .map_or(&[][..], Vec::as_slice);
        let page: Vec<&Msg> = if desc {
            all.iter().rev().filter(keep).take(num).collect()
        } else {
            all.iter().filter(keep).take(num).collect()
        };
        let (mut lastid, mut begin, mut end) = (lastid, begin, end);
        if let Some(last) = page.last() {
            lastid = last.id;
            *(if desc { &mut end } else { &mut begin }) = last.mtime;
        }
        let msgs = page
            .iter()
            .map(|x| {
                // In p2p history the second element is the direction.
                let second = match kind {
                    Kind::P2p if x.from == uid => 1,
                    Kind::P2p => 2,
                    _ => x.from,
                };
                let fields = [
                    x.id.into(),
                    second.into(),
                    x.mtype.into(),
                    x.mid.into(),
                    x.deleted.into(),
                ];
                Value::Array(
                    fields
                        .into_iter()
                        .chain([x.body.clone(), x.attrs.clone(), x.mtime.into()])
                        .collect(),
                )
            })
            .collect();
        Ok(obj([
            ("num", page.len().into()),
            ("lastid", lastid.into()),
            ("begin", begin.into()),
            ("end", end.into()),
            ("msgs", Value::Array(msgs)),
        ]))
    }

    /// `getmsg`: to a participant; `{}` when there is no such message or it was deleted.
    fn get(&self, kind: Kind, uid: i64, from: i64, xid: i64, mid: i64) -> Result<Value, GateError> {
        if kind == Kind::P2p && uid != from && uid != xid {
            return Err(GateError::new(PERMISSION_DENIED, "not a participant"));
        }
        self.check_access(kind, uid, xid)?;
        Ok(
            match self.find((kind, from, xid, mid)).filter(|x| !x.deleted) {
                Some(x) => obj([
                    ("id", x.id.into()),
                    ("mtype", x.mtype.into()),
                    ("msg", x.body.clone()),
                    ("attrs", x.attrs.clone()),
                    ("mtime", x.mtime.into()),
                ]),
                None => obj([]),
            },
        )
    }

    /// `delmsg`: only the sender may (200021, checked first); a message that does not exist
    /// (or is already deleted) is answered `{}` so that a retried delete succeeds.
    fn delete(
        &mut self,
        kind: Kind,
        uid: i64,
        from: i64,
        xid: i64,
        mid: i64,
    ) -> Result<Value, GateError> {
        if uid != from {
            return Err(GateError::new(
                PERMISSION_DENIED,
                "only the sender may delete a message",
            ));
        }
        if let Some((conv, i)) = self.index.get(&(kind, from, xid, mid)) {
            if let Some(x) = self.convs.get_mut(conv).and_then(|l| l.get_mut(*i)) {
                x.deleted = true;
                x.body = "".into();
                x.attrs = "".into();
            }
        }
        Ok(obj([]))
    }

    /// `getunread`: peers and groups with a message from someone else after the mark.
    fn unread(&self, uid: i64) -> Value {
        let mark = self.users.get(&uid).map_or(0, |u| u.unread_mark);
        let fresh = |x: &Msg| x.from != uid && !x.deleted && x.mtime > mark;
        let (mut p2p, mut groups) = (BTreeSet::new(), BTreeSet::new());
        for (&(kind, a, _), list) in &self.convs {
            match kind {
                Kind::P2p => p2p.extend(
                    list.iter()
                        .filter(|x| x.to == uid && fresh(x))
                        .map(|x| x.from),
                ),
                Kind::Group if self.is_member(a, uid) && list.iter().any(fresh) => {
                    groups.insert(a);
                }
                _ => {}
            }
        }
        let list = |s: BTreeSet<i64>| Value::Array(s.into_iter().map(Value::from).collect());
        obj([("p2p", list(p2p)), ("group", list(groups))])
    }

    /// `getp2punread {uids}` and `getgroupunread {gids}`.
    fn unread_num(&self, kind: Kind, uid: i64, m: &[(Value, Value)]) -> Result<Value, GateError> {
        let (list_key, out_key) = if kind == Kind::P2p {
            ("uids", "p2p")
        } else {
            ("gids", "group")
        };
        let targets: BTreeSet<i64> = req(m, list_key, ids)?.into_iter().collect();
        if targets.is_empty() {
            return Err(GateError::bad(list_key));
        }
        let since = opt(m, "mtime", int)?
            .unwrap_or_else(|| self.users.get(&uid).map_or(0, |u| u.last_logout));
        // Missing or empty: chat and file messages (Messages.md: "为空或undefined").
        let mtypes = opt(m, "mtypes", mtypes)?
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| UNREAD_MTYPES.collect());
        let (mut counts, mut ltimes) = (Vec::new(), Vec::new());
        for id in targets {
            // A gid the caller is not a member of is skipped rather than failing the batch.
            if kind == Kind::Group && !self.is_member(id, uid) {
                continue;
            }
            let Some(list) = self.convs.get(&kind.conv(uid, id)) else {
                continue;
            };
            let live = list
                .iter()
                .filter(|x| !x.deleted && mtypes.contains(&x.mtype));
            // In the p2p conversation with `id`, "not from the caller" is "from id to the caller".
            let count = live
                .clone()
                .filter(|x| x.from != uid && x.mtime > since)
                .count();
            if let (true, Some(ltime)) = (count > 0, live.map(|x| x.mtime).max()) {
                counts.push((Value::from(id), Value::from(count)));
                ltimes.push((Value::from(id), Value::from(ltime)));
            }
        }
        Ok(obj([
            (out_key, Value::Map(counts)),
            ("ltime", Value::Map(ltimes)),
        ]))
    }
}

/// A str-keyed msgpack map.
fn obj<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// The value of `key`; nil counts as absent.
fn get<'a>(m: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_nil())
}

/// A required key, converted by `f`; missing or unconvertible: 200033.
fn req<'a, T>(
    m: &'a [(Value, Value)],
    key: &str,
    f: impl FnOnce(&'a Value) -> Option<T>,
) -> Result<T, GateError> {
    get(m, key).and_then(f).ok_or_else(|| GateError::bad(key))
}

/// An optional key: absent is `None`, present but unconvertible is 200033.
fn opt<'a, T>(
    m: &'a [(Value, Value)],
    key: &str,
    f: impl FnOnce(&'a Value) -> Option<T>,
) -> Result<Option<T>, GateError> {
    get(m, key)
        .map(|v| f(v).ok_or_else(|| GateError::bad(key)))
        .transpose()
}

/// Any msgpack integer width that fits an i64.
fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

/// An mtype: an integer in 0..=255.
fn small(v: &Value) -> Option<u8> {
    v.as_u64().and_then(|n| u8::try_from(n).ok())
}

fn ids(v: &Value) -> Option<Vec<i64>> {
    v.as_array()?.iter().map(int).collect()
}

fn mtypes(v: &Value) -> Option<Vec<u8>> {
    v.as_array()?.iter().map(small).collect()
}

/// A body or attrs: str or bin, kept exactly as it came.
fn raw(v: &Value) -> Option<Value> {
    matches!(v, Value::String(_) | Value::Binary(_)).then(|| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: i64 = 7;
    const A: i64 = 100;
    const B: i64 = 200;
    const C: i64 = 300;

    fn o<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        obj(pairs)
    }

    /// `map! {"key": value, ...}`: a str-keyed msgpack map.
    macro_rules! map {
        ($($k:literal: $v:expr),* $(,)?) => { obj([$(($k, Value::from($v))),*]) };
    }

    fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
        get(v.as_map().expect("answer is a map"), key).unwrap_or_else(|| panic!("no {key} in {v}"))
    }

    fn num(v: &Value, key: &str) -> i64 {
        field(v, key).as_i64().unwrap()
    }

    fn int_list(v: &Value) -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    }

    /// `{id: n}` maps as sorted pairs.
    fn int_map(v: &Value) -> Vec<(i64, i64)> {
        v.as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_i64().unwrap(), v.as_i64().unwrap()))
            .collect()
    }

    struct Gate {
        s: GateState,
        now: i64,
        next: ConnId,
    }

    impl Gate {
        fn new() -> Self {
            Gate {
                s: GateState::new(None),
                now: 1_000,
                next: 1,
            }
        }

        fn conn(&mut self) -> ConnId {
            self.next += 1;
            self.next
        }

        fn login_pid(&mut self, pid: i64, uid: i64) -> ConnId {
            let c = self.conn();
            let a = self.ok(
                c,
                "auth",
                map! {"pid": pid, "uid": uid, "token": "t", "version": "Rust_0.1.0"},
            );
            assert_eq!(field(&a, "ok"), &Value::from(true));
            c
        }

        fn login(&mut self, uid: i64) -> ConnId {
            self.login_pid(PID, uid)
        }

        fn q(&mut self, conn: ConnId, method: &str, payload: Value) -> Outcome {
            self.s.handle(conn, method, &payload, self.now)
        }

        fn ok(&mut self, conn: ConnId, method: &str, payload: Value) -> Value {
            self.q(conn, method, payload)
                .answer
                .unwrap_or_else(|e| panic!("{method}: {e:?}"))
        }

        fn err(&mut self, conn: ConnId, method: &str, payload: Value) -> i32 {
            match self.q(conn, method, payload).answer {
                Err(e) => e.code,
                Ok(v) => panic!("{method} answered {v}"),
            }
        }

        /// A send quest with body `msg`; returns the outcome.
        fn send(
            &mut self,
            conn: ConnId,
            method: &str,
            target: i64,
            mid: i64,
            mtype: u8,
            msg: Value,
        ) -> Outcome {
            let key = match method {
                "sendmsg" => "to",
                "sendgroupmsg" => "gid",
                _ => "rid",
            };
            let p = o([
                (key, target.into()),
                ("mid", mid.into()),
                ("mtype", mtype.into()),
                ("msg", msg),
                ("attrs", "{}".into()),
            ]);
            self.q(conn, method, p)
        }

        /// A send of "x" with mtype 30 that must fail; returns its code.
        fn send_code(&mut self, conn: ConnId, method: &str, target: i64, mid: i64) -> i32 {
            let out = self.send(conn, method, target, mid, 30, "x".into());
            out.answer.expect_err("send succeeded").code
        }

        /// A send of "x" with mtype 30 that must succeed.
        fn post(&mut self, conn: ConnId, method: &str, target: i64, mid: i64) -> Outcome {
            let out = self.send(conn, method, target, mid, 30, "x".into());
            assert!(out.answer.is_ok(), "{method}: {:?}", out.answer);
            out
        }

        fn sendp(&mut self, conn: ConnId, to: i64, mid: i64, mtype: u8) -> i64 {
            let out = self.send(conn, "sendmsg", to, mid, mtype, format!("m{mid}").into());
            num(&out.answer.unwrap(), "mtime")
        }

        fn group(&mut self, conn: ConnId, gid: i64, uids: &[i64]) {
            let uids = Value::Array(uids.iter().map(|&u| u.into()).collect());
            self.ok(conn, "addgroupmembers", map! {"gid": gid, "uids": uids});
        }

        fn history(&mut self, conn: ConnId, method: &str, extra: Vec<(&str, Value)>) -> Value {
            let target = match method {
                "getp2pmsg" => Some("ouid"),
                "getgroupmsg" => Some("gid"),
                "getroommsg" => Some("rid"),
                _ => None,
            };
            let mut p = vec![("desc", false.into()), ("num", 20.into())];
            // `extra` may name the target under a placeholder key "target".
            for (k, v) in extra {
                let k = if k == "target" { target.unwrap() } else { k };
                p.retain(|(x, _)| *x != k);
                p.push((k, v));
            }
            self.ok(conn, method, o(p))
        }
    }

    fn items(h: &Value) -> Vec<Vec<Value>> {
        field(h, "msgs")
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_array().unwrap().clone())
            .collect()
    }

    fn ids_of(h: &Value) -> Vec<i64> {
        items(h).iter().map(|x| x[0].as_i64().unwrap()).collect()
    }

    #[test]
    fn auth_token_rule_and_session_errors() {
        let mut g = Gate::new();
        let c = g.conn();
        let auth = |token: &str, uid: i64| {
            map! {"pid": 1, "uid": uid, "token": token, "version": "v"}
        };
        // Before auth: other quests 200022, unknown methods 20004, ping and bye harmless.
        assert_eq!(g.err(c, "sendmsg", map! {}), UNAUTHORIZED);
        assert_eq!(g.err(c, "cleanunread", map! {}), UNAUTHORIZED);
        let unknown = g.q(c, "nosuchmethod", map! {}).answer.unwrap_err();
        assert_eq!(
            (unknown.code, unknown.ex.as_str()),
            (CORE_UNKNOWN_METHOD, "unknown method")
        );
        assert_eq!(g.ok(c, "ping", Value::Nil), map! {});
        // An empty token is never accepted, and the connection may try again.
        assert_eq!(
            field(&g.ok(c, "auth", auth("", 5)), "ok"),
            &Value::from(false)
        );
        assert_eq!(g.s.uid_of(c), None);
        assert_eq!(
            field(&g.ok(c, "auth", auth("x", 5)), "ok"),
            &Value::from(true)
        );
        assert_eq!(g.s.uid_of(c), Some((1, 5)));
        assert_eq!(g.s.conns_of(1, 5), vec![c]);
        assert_eq!(g.err(c, "auth", auth("x", 5)), DUPLICATED_AUTH);
        assert_eq!(g.err(c, "nosuchmethod", map! {}), CORE_UNKNOWN_METHOD);
        let bye = g.q(c, "bye", map! {});
        assert_eq!((bye.answer, bye.close_after), (Ok(map! {}), true));
        assert!(!g.q(c, "ping", map! {}).close_after);

        // Missing or mistyped keys.
        for bad in [
            Value::Nil,
            Value::from(3),
            map! {"uid": 5, "token": "x", "version": "v"},
            map! {"pid": 1, "uid": "5", "token": "x", "version": "v"},
            map! {"pid": 1, "uid": 5, "token": 9, "version": "v"},
            map! {"pid": 1, "uid": 5, "token": "x"},
            map! {"pid": 1.5, "uid": 5, "token": "x", "version": "v"},
        ] {
            let c = g.conn();
            assert_eq!(g.err(c, "auth", bad), EMPTY_PARAMETER);
        }

        // With a token list only those pairs log in (whatever the pid).
        let mut s = GateState::new(Some(HashMap::from([(5, "good".to_string())])));
        let ok = |s: &mut GateState, conn, token, uid| {
            let a = s.handle(conn, "auth", &auth(token, uid), 0).answer.unwrap();
            field(&a, "ok").as_bool().unwrap()
        };
        assert!(!ok(&mut s, 1, "bad", 5));
        assert!(!ok(&mut s, 1, "good", 6));
        assert!(!ok(&mut s, 1, "", 5));
        assert!(ok(&mut s, 1, "good", 5));
    }

    #[test]
    fn integers_of_any_width() {
        let mut g = Gate::new();
        let c = g.conn();
        let p = map! {"pid": Value::from(7u8), "uid": Value::from(100u64), "token": "t", "version": "v"};
        assert_eq!(field(&g.ok(c, "auth", p), "ok"), &Value::from(true));
        assert_eq!(g.s.uid_of(c), Some((7, 100)));
        let b = g.login(B);
        let big = 1_700_000_000_123_007i64;
        let p = map! {"to": Value::from(200u16), "mid": Value::from(big as u64), "mtype": Value::from(30i8), "msg": "x", "attrs": ""};
        assert!(g.ok(c, "sendmsg", p).as_map().is_some());
        let h = g.history(
            b,
            "getp2pmsg",
            vec![("target", Value::from(100i32)), ("num", Value::from(5u8))],
        );
        assert_eq!(items(&h)[0][3], Value::from(big));
        // Beyond i64 is not an id.
        let p =
            map! {"to": 200, "mid": Value::from(u64::MAX), "mtype": 30, "msg": "x", "attrs": ""};
        assert_eq!(g.err(c, "sendmsg", p), EMPTY_PARAMETER);
    }

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
        assert_eq!(p.payload, expect);
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
            .all(|p| p.method == "pushgroupmsg" && num(&p.payload, "gid") == 9));

        for c in [a2, c1] {
            g.ok(c, "enterroom", map! {"rid": 4});
        }
        let out = g.send(a1, "sendroommsg", 4, 8, 30, "r".into());
        assert_eq!(conns(&out), vec![c1]);
        assert!(out
            .pushes
            .iter()
            .all(|p| p.method == "pushroommsg" && num(&p.payload, "rid") == 4));
        assert_eq!(get(out.pushes[0].payload.as_map().unwrap(), "to"), None);
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

    /// Pages through a whole history by passing the cursor back; checks every answer's shape.
    fn page_all(g: &mut Gate, conn: ConnId, method: &str, target: i64, desc: bool) -> Vec<i64> {
        let (mut begin, mut end, mut lastid, mut seen) = (0, 0, 0, Vec::new());
        for _ in 0..10 {
            let p = vec![
                ("target", target.into()),
                ("desc", desc.into()),
                ("num", 20.into()),
                ("begin", begin.into()),
                ("end", end.into()),
                ("lastid", lastid.into()),
            ];
            let p = if method == "getbroadcastmsg" {
                p[1..].to_vec()
            } else {
                p
            };
            let h = g.history(conn, method, p);
            let page = items(&h);
            assert_eq!(num(&h, "num") as usize, page.len());
            assert!(page.len() <= 20);
            let Some(last) = page.last() else {
                assert_eq!(
                    [num(&h, "lastid"), num(&h, "begin"), num(&h, "end")],
                    [lastid, begin, end]
                );
                return seen;
            };
            assert_eq!(num(&h, "lastid"), last[0].as_i64().unwrap());
            let (moved, kept) = if desc {
                ("end", ("begin", begin))
            } else {
                ("begin", ("end", end))
            };
            assert_eq!(num(&h, moved), last[7].as_i64().unwrap());
            assert_eq!(num(&h, kept.0), kept.1);
            seen.extend(page.iter().map(|x| x[0].as_i64().unwrap()));
            (lastid, begin, end) = (num(&h, "lastid"), num(&h, "begin"), num(&h, "end"));
        }
        panic!("paging did not end");
    }

    #[test]
    fn paging_45_messages_each_way_has_no_gap_or_repeat() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.group(a, 1, &[B]);
        g.ok(a, "enterroom", map! {"rid": 2});
        g.ok(b, "enterroom", map! {"rid": 2});
        for i in 0..45 {
            // Three messages share each millisecond, so the cursor has to rely on lastid.
            g.now = 10_000 + i / 3;
            let from = if i % 2 == 0 { a } else { b };
            g.sendp(from, if from == a { B } else { A }, 0, 30);
            let who = if i % 2 == 0 { A } else { B };
            g.post(from, "sendgroupmsg", 1, 0);
            g.post(from, "sendroommsg", 2, 0);
            g.s.broadcast(PID, who, 30, "b".into(), "", g.now);
        }
        for (method, target) in [
            ("getp2pmsg", B),
            ("getgroupmsg", 1),
            ("getroommsg", 2),
            ("getbroadcastmsg", 0),
        ] {
            let asc = page_all(&mut g, a, method, target, false);
            assert_eq!(asc.len(), 45, "{method}");
            assert!(asc.windows(2).all(|w| w[0] < w[1]), "{method}: {asc:?}");
            let mut desc = page_all(&mut g, a, method, target, true);
            desc.reverse();
            assert_eq!(desc, asc, "{method}");
        }
    }

    #[test]
    fn history_filters_and_bounds() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        let mut sent = Vec::new();
        for i in 0..30 {
            g.now = 1_000 + i * 10;
            sent.push(g.sendp(a, B, i + 1, if i % 3 == 0 { 40 } else { 30 }));
        }
        let h = |g: &mut Gate, extra: Vec<(&str, Value)>| {
            let mut p = vec![("target", B.into())];
            p.extend(extra);
            g.history(a, "getp2pmsg", p)
        };
        let all = ids_of(&h(&mut g, vec![("num", 100.into())]));
        assert_eq!(all.len(), 20);
        assert_eq!(
            ids_of(&h(&mut g, vec![("num", Value::from(u64::MAX))])),
            all
        );
        for bad in [
            Value::from(0),
            Value::from(-1),
            Value::from("5"),
            Value::from(i64::MIN),
        ] {
            assert_eq!(
                g.err(a, "getp2pmsg", map! {"ouid": B, "desc": false, "num": bad}),
                EMPTY_PARAMETER
            );
        }
        // num, desc and the target are required.
        assert_eq!(
            g.err(a, "getp2pmsg", map! {"ouid": B, "num": 5}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(a, "getp2pmsg", map! {"desc": true, "num": 5}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(a, "getbroadcastmsg", map! {"desc": true}),
            EMPTY_PARAMETER
        );
        // mtypes: only those; an empty list filters nothing.
        let h40 = h(&mut g, vec![("mtypes", Value::Array(vec![40.into()]))]);
        assert_eq!(num(&h40, "num"), 10);
        assert!(items(&h40).iter().all(|x| x[2] == Value::from(40)));
        assert_eq!(
            num(&h(&mut g, vec![("mtypes", Value::Array(vec![]))]), "num"),
            20
        );
        let bad =
            map! {"ouid": B, "desc": false, "num": 5, "mtypes": Value::Array(vec![999.into()])};
        assert_eq!(g.err(a, "getp2pmsg", bad), EMPTY_PARAMETER);
        // begin <= mtime <= end, both inclusive.
        let w = h(&mut g, vec![("begin", 1_050.into()), ("end", 1_100.into())]);
        let times: Vec<i64> = items(&w).iter().map(|x| x[7].as_i64().unwrap()).collect();
        assert_eq!(times, vec![1_050, 1_060, 1_070, 1_080, 1_090, 1_100]);
        assert_eq!((num(&w, "begin"), num(&w, "end")), (1_100, 1_100));
        let w = h(
            &mut g,
            vec![
                ("begin", 1_050.into()),
                ("end", 1_100.into()),
                ("desc", true.into()),
            ],
        );
        assert_eq!(
            items(&w)
                .iter()
                .map(|x| x[7].as_i64().unwrap())
                .collect::<Vec<_>>(),
            vec![1_100, 1_090, 1_080, 1_070, 1_060, 1_050]
        );
        assert_eq!((num(&w, "begin"), num(&w, "end")), (1_050, 1_050));
        // lastid: ascending takes greater ids, descending smaller ones; 0 is no bound.
        let mid_id = all[10];
        let up = ids_of(&h(
            &mut g,
            vec![("lastid", mid_id.into()), ("num", 3.into())],
        ));
        assert_eq!(up, vec![mid_id + 1, mid_id + 2, mid_id + 3]);
        let down = ids_of(&h(
            &mut g,
            vec![
                ("lastid", mid_id.into()),
                ("num", 3.into()),
                ("desc", true.into()),
            ],
        ));
        assert_eq!(down, vec![mid_id - 1, mid_id - 2, mid_id - 3]);
        let newest = ids_of(&h(
            &mut g,
            vec![
                ("lastid", 0.into()),
                ("num", 1.into()),
                ("desc", true.into()),
            ],
        ));
        assert_eq!(newest, vec![all[0] + 29]);
        // Nothing found: everything echoed back.
        let none = h(
            &mut g,
            vec![
                ("begin", 5_000.into()),
                ("end", 6_000.into()),
                ("lastid", 3.into()),
            ],
        );
        assert_eq!(
            [
                num(&none, "num"),
                num(&none, "lastid"),
                num(&none, "begin"),
                num(&none, "end")
            ],
            [0, 3, 5_000, 6_000]
        );
        let none = g.history(a, "getp2pmsg", vec![("target", C.into())]);
        assert_eq!(
            [
                num(&none, "num"),
                num(&none, "lastid"),
                num(&none, "begin"),
                num(&none, "end")
            ],
            [0, 0, 0, 0]
        );
        // The same conversation seen from the other side, with directions.
        let hb = g.history(
            b,
            "getp2pmsg",
            vec![("target", A.into()), ("num", 1.into())],
        );
        let first = &items(&hb)[0];
        assert_eq!(
            first,
            &vec![
                all[0].into(),
                2.into(),
                40.into(),
                1.into(),
                false.into(),
                "m1".into(),
                "{}".into(),
                1_000.into()
            ]
        );
    }

    #[test]
    fn group_and_room_history_need_membership() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.group(a, 1, &[B]);
        assert_eq!(
            int_list(field(&g.ok(c, "getgroupmembers", map! {"gid": 1}), "uids")),
            vec![A, B]
        );
        assert_eq!(
            int_list(field(&g.ok(c, "getgroupmembers", map! {"gid": 5}), "uids")),
            Vec::<i64>::new()
        );
        g.post(b, "sendgroupmsg", 1, 1);
        let read = |g: &mut Gate, conn, method: &str, key: &str, id: i64| {
            g.q(
                conn,
                method,
                o([(key, id.into()), ("desc", false.into()), ("num", 5.into())]),
            )
            .answer
        };
        assert_eq!(
            read(&mut g, c, "getgroupmsg", "gid", 1).unwrap_err().code,
            NOT_GROUP_MEMBER
        );
        let h = read(&mut g, a, "getgroupmsg", "gid", 1).unwrap();
        assert_eq!(items(&h)[0][1], Value::from(B));
        g.ok(
            a,
            "delgroupmembers",
            map! {"gid": 1, "uids": Value::Array(vec![B.into()])},
        );
        assert_eq!(
            read(&mut g, b, "getgroupmsg", "gid", 1).unwrap_err().code,
            NOT_GROUP_MEMBER
        );
        assert_eq!(g.send_code(b, "sendgroupmsg", 1, 2), NOT_GROUP_MEMBER);
        assert_eq!(
            g.err(a, "addgroupmembers", map! {"gid": 1}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(
                a,
                "addgroupmembers",
                map! {"gid": 1, "uids": Value::Array(vec!["x".into()])}
            ),
            EMPTY_PARAMETER
        );

        assert_eq!(
            read(&mut g, a, "getroommsg", "rid", 3).unwrap_err().code,
            NOT_IN_ROOM
        );
        g.ok(a, "enterroom", map! {"rid": 3});
        assert!(read(&mut g, a, "getroommsg", "rid", 3).is_ok());
        g.ok(a, "leaveroom", map! {"rid": 3});
        g.ok(a, "leaveroom", map! {"rid": 3});
        assert_eq!(
            read(&mut g, a, "getroommsg", "rid", 3).unwrap_err().code,
            NOT_IN_ROOM
        );
        assert_eq!(g.err(a, "enterroom", map! {}), EMPTY_PARAMETER);
    }

    #[test]
    fn last_connection_closing_leaves_rooms_and_records_logout() {
        let mut g = Gate::new();
        let (a1, a2, b) = (g.login(A), g.login(A), g.login(B));
        g.ok(a1, "enterroom", map! {"rid": 3});
        g.s.disconnect(a1, 2_000);
        assert_eq!(g.s.conns_of(PID, A), vec![a2]);
        assert_eq!(g.s.uid_of(a1), None);
        assert_eq!(g.send_code(b, "sendroommsg", 3, 1), NOT_IN_ROOM);
        g.ok(b, "enterroom", map! {"rid": 3});
        // A is still in the room through its other connection.
        assert_eq!(
            g.send(b, "sendroommsg", 3, 1, 30, "x".into()).pushes.len(),
            1
        );
        g.s.disconnect(a2, 3_000);
        g.s.disconnect(a2, 3_000); // twice, or an unknown connection: nothing happens
        g.s.disconnect(999, 3_000);
        assert!(g.s.conns_of(PID, A).is_empty());
        let a = g.login(A);
        assert_eq!(g.send_code(a, "sendroommsg", 3, 2), NOT_IN_ROOM);
        assert_eq!(g.s.projects[&PID].users[&A].last_logout, 3_000);
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
    fn getunread_and_clear() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.group(b, 8, &[A]);
        g.group(b, 9, &[C]);
        g.sendp(b, A, 1, 30);
        g.sendp(c, A, 2, 51); // any mtype counts here
        g.sendp(a, C, 3, 30); // own messages are not unread
        g.post(b, "sendgroupmsg", 8, 4);
        g.post(c, "sendgroupmsg", 9, 5); // A is not a member
        let unread = |g: &mut Gate, conn, clear: Option<bool>| {
            let u = g.ok(conn, "getunread", o(clear.map(|c| ("clear", c.into()))));
            (int_list(field(&u, "p2p")), int_list(field(&u, "group")))
        };
        assert_eq!(unread(&mut g, a, None), (vec![B, C], vec![8]));
        assert_eq!(unread(&mut g, a, Some(false)), (vec![B, C], vec![8]));
        // clear: answered first, then the mark moves.
        assert_eq!(unread(&mut g, a, Some(true)), (vec![B, C], vec![8]));
        assert_eq!(unread(&mut g, a, None), (vec![], vec![]));
        g.now += 1;
        g.post(b, "sendgroupmsg", 8, 6);
        assert_eq!(unread(&mut g, a, None), (vec![], vec![8]));
        assert_eq!(unread(&mut g, b, None), (vec![], vec![9]));
        g.ok(a, "cleanunread", Value::Nil);
        assert_eq!(unread(&mut g, a, None), (vec![], vec![]));
        // A deleted message is not unread.
        g.now += 1;
        g.sendp(c, A, 7, 30);
        assert_eq!(unread(&mut g, a, None), (vec![C], vec![]));
        g.ok(c, "delmsg", map! {"from": C, "mid": 7, "xid": A, "type": 1});
        assert_eq!(unread(&mut g, a, None), (vec![], vec![]));
        assert_eq!(g.err(a, "getunread", map! {"clear": 1}), EMPTY_PARAMETER);
        assert_eq!(g.err(a, "getunread", Value::from("x")), EMPTY_PARAMETER);
    }

    #[test]
    fn p2p_unread_counts() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        let counts = |g: &mut Gate, extra: Vec<(&str, Value)>| {
            let mut p = vec![("uids", Value::Array(vec![B.into(), C.into(), 999.into()]))];
            p.extend(extra);
            let u = g.ok(a, "getp2punread", o(p));
            (int_map(field(&u, "p2p")), int_map(field(&u, "ltime")))
        };
        g.now = 100;
        g.sendp(b, A, 1, 30);
        g.now = 200;
        g.sendp(b, A, 2, 40);
        g.sendp(b, A, 3, 51); // outside the default mtypes
        g.sendp(c, A, 4, 29); // outside the default mtypes
        g.now = 300;
        g.sendp(a, B, 5, 30); // own: not counted, but it is the conversation's newest
        assert_eq!(counts(&mut g, vec![]), (vec![(B, 2)], vec![(B, 300)]));
        // Strictly after mtime.
        assert_eq!(
            counts(&mut g, vec![("mtime", 100.into())]),
            (vec![(B, 1)], vec![(B, 300)])
        );
        assert_eq!(
            counts(&mut g, vec![("mtime", 200.into())]),
            (vec![], vec![])
        );
        // Explicit mtypes; an empty list means the default.
        let types = Value::Array(vec![29.into(), 51.into()]);
        assert_eq!(
            counts(&mut g, vec![("mtypes", types)]),
            (vec![(B, 1), (C, 1)], vec![(B, 200), (C, 200)])
        );
        assert_eq!(
            counts(&mut g, vec![("mtypes", Value::Array(vec![]))]).0,
            vec![(B, 2)]
        );
        // Default mtime: the last logout (of the last connection).
        g.s.disconnect(a, 350);
        let a = g.login(A);
        g.now = 400;
        g.sendp(b, A, 6, 30);
        let u = g.ok(
            a,
            "getp2punread",
            map! {"uids": Value::Array(vec![B.into()])},
        );
        assert_eq!(
            (int_map(field(&u, "p2p")), int_map(field(&u, "ltime"))),
            (vec![(B, 1)], vec![(B, 400)])
        );
        // Deleted messages are not counted.
        g.ok(b, "delmsg", map! {"from": B, "mid": 6, "xid": A, "type": 1});
        let u = g.ok(
            a,
            "getp2punread",
            map! {"uids": Value::Array(vec![B.into()]), "mtime": 0},
        );
        assert_eq!(
            (int_map(field(&u, "p2p")), int_map(field(&u, "ltime"))),
            (vec![(B, 2)], vec![(B, 300)])
        );
        // Messages to oneself are one's own.
        g.sendp(a, A, 7, 30);
        let u = g.ok(
            a,
            "getp2punread",
            map! {"uids": Value::Array(vec![A.into()]), "mtime": 0},
        );
        assert_eq!(int_map(field(&u, "p2p")), vec![]);
        for bad in [
            map! {"uids": Value::Array(vec![])},
            map! {},
            map! {"uids": 5},
            map! {"uids": Value::Array(vec![B.into()]), "mtime": "x"},
        ] {
            assert_eq!(g.err(a, "getp2punread", bad), EMPTY_PARAMETER);
        }
    }

    #[test]
    fn group_unread_counts() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.group(a, 1, &[B]);
        g.group(b, 2, &[C]); // A is not a member: skipped
        g.now = 100;
        g.post(b, "sendgroupmsg", 1, 1);
        g.post(c, "sendgroupmsg", 2, 1);
        g.now = 200;
        g.post(a, "sendgroupmsg", 1, 2);
        g.send(b, "sendgroupmsg", 1, 3, 60, "x".into())
            .answer
            .unwrap();
        let gids = Value::Array(vec![1.into(), 2.into(), 3.into()]);
        let u = g.ok(a, "getgroupunread", map! {"gids": gids.clone()});
        assert_eq!(
            (int_map(field(&u, "group")), int_map(field(&u, "ltime"))),
            (vec![(1, 1)], vec![(1, 200)])
        );
        let u = g.ok(
            a,
            "getgroupunread",
            map! {"gids": gids.clone(), "mtime": 100},
        );
        assert_eq!(int_map(field(&u, "group")), vec![]);
        let u = g.ok(
            a,
            "getgroupunread",
            map! {"gids": gids.clone(), "mtypes": Value::Array(vec![30.into(), 60.into()])},
        );
        assert_eq!(
            (int_map(field(&u, "group")), int_map(field(&u, "ltime"))),
            (vec![(1, 2)], vec![(1, 200)])
        );
        let u = g.ok(b, "getgroupunread", map! {"gids": gids});
        assert_eq!(int_map(field(&u, "group")), vec![(1, 1), (2, 1)]);
        assert_eq!(
            g.err(a, "getgroupunread", map! {"gids": Value::Array(vec![])}),
            EMPTY_PARAMETER
        );
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
            (p.method, num(&p.payload, "from"), num(&p.payload, "mtime")),
            ("pushbroadcastmsg", A, 7_000)
        );
        assert_eq!(get(p.payload.as_map().unwrap(), "to"), None);
        let mid = num(&p.payload, "mid");
        assert_ne!(mid, 0);
        // From the system (uid 0): everyone of the pid.
        let pushes =
            g.s.broadcast(PID, 0, 31, Value::Binary(vec![1, 2]), "", 7_000);
        assert_eq!(
            pushes.iter().map(|p| p.conn).collect::<Vec<_>>(),
            vec![a1, a2, b]
        );
        assert_ne!(num(&pushes[0].payload, "mid"), mid);
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
    fn kickout_room_hook() {
        let mut g = Gate::new();
        let (a1, a2, b) = (g.login(A), g.login(A), g.login(B));
        g.ok(a1, "enterroom", map! {"rid": 5});
        g.ok(b, "enterroom", map! {"rid": 5});
        let pushes = g.s.kickout_room(PID, A, 5);
        assert_eq!(
            pushes.iter().map(|p| p.conn).collect::<Vec<_>>(),
            vec![a1, a2]
        );
        assert!(pushes
            .iter()
            .all(|p| p.method == "kickoutroom" && !p.twoway() && p.payload == map! {"rid": 5}));
        assert_eq!(g.send_code(a1, "sendroommsg", 5, 1), NOT_IN_ROOM);
        assert!(g
            .send(b, "sendroommsg", 5, 1, 30, "x".into())
            .pushes
            .is_empty());
        assert!(g.s.kickout_room(PID, C, 5).is_empty());
        let kick = g.s.kickout(PID, A);
        assert_eq!(
            kick.iter()
                .map(|p| (p.conn, p.method, p.twoway()))
                .collect::<Vec<_>>(),
            [(a1, "kickout", false), (a2, "kickout", false)]
        );
        assert!(kick.iter().all(|p| p.payload == map! {}));
        assert!(g.s.kickout(PID + 5, A).is_empty());
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
        assert_eq!(field(&pushes[0].payload, "msg"), &bin);
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

    #[test]
    fn projects_are_isolated() {
        let mut g = Gate::new();
        let (a, b) = (g.login_pid(1, A), g.login_pid(1, B));
        let (a2, b2) = (g.login_pid(2, A), g.login_pid(2, B));
        let out = g.send(a, "sendmsg", B, 1, 30, "x".into());
        assert_eq!(
            out.pushes.iter().map(|p| p.conn).collect::<Vec<_>>(),
            vec![b]
        );
        g.group(a, 1, &[B]);
        assert_eq!(g.send_code(a2, "sendgroupmsg", 1, 1), NOT_GROUP_MEMBER);
        assert_eq!(
            num(
                &g.history(b2, "getp2pmsg", vec![("target", A.into())]),
                "num"
            ),
            0
        );
        assert_eq!(
            int_list(field(&g.ok(b2, "getunread", map! {}), "p2p")),
            Vec::<i64>::new()
        );
        assert_eq!(g.s.conns_of(2, A), vec![a2]);
        assert_eq!(g.s.conns_of(3, A), Vec::<ConnId>::new());
    }

    /// A tiny deterministic generator of junk values.
    struct Junk(u64);

    impl Junk {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn value(&mut self, depth: u32) -> Value {
            match self.next() % if depth > 2 { 10 } else { 12 } {
                0 => Value::Nil,
                1 => Value::from(self.next() % 2 == 0),
                2 => Value::from(self.next() as i64),
                3 => Value::from(u64::MAX - self.next() % 3),
                4 => Value::from((self.next() % 7) as i64 - 3),
                5 => Value::from(i64::MIN),
                6 => Value::from(1.5),
                7 => Value::from(["", "x", "30", "\u{0}"][(self.next() % 4) as usize]),
                8 => Value::Binary(vec![0xff; (self.next() % 3) as usize]),
                9 => Value::Ext(1, vec![1]),
                10 => Value::Array(
                    (0..self.next() % 4)
                        .map(|_| self.value(depth + 1))
                        .collect(),
                ),
                _ => Value::Map(
                    (0..self.next() % 4)
                        .map(|_| (self.value(depth + 1), self.value(depth + 1)))
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn junk_never_panics() {
        const KEYS: &[&str] = &[
            "pid", "uid", "token", "version", "to", "gid", "rid", "ouid", "mid", "mtype", "msg",
            "attrs", "desc", "num", "begin", "end", "lastid", "mtypes", "from", "xid", "type",
            "uids", "gids", "mtime", "clear",
        ];
        let methods: Vec<&str> = ROUTES
            .iter()
            .map(|(m, _)| *m)
            .chain(["auth", "ping", "bye", "", "nosuch"])
            .collect();
        let mut g = Gate::new();
        let mut junk = Junk(0x9e37_79b9_7f4a_7c15);
        let (a, b) = (g.login(A), g.login(B));
        g.group(a, 1, &[B]);
        g.ok(a, "enterroom", map! {"rid": 1});
        g.sendp(b, A, 1, 30);
        let fresh = g.conn();
        for round in 0..20_000 {
            let method = methods[round % methods.len()];
            let payload = if junk.next() % 5 == 0 {
                junk.value(0)
            } else {
                // Well-formed maps with junk values (and sometimes small valid ids).
                let mut pairs = Vec::new();
                for k in KEYS {
                    let v = match junk.next() % 3 {
                        0 => continue,
                        1 => Value::from((junk.next() % 3) as i64),
                        _ => junk.value(0),
                    };
                    pairs.push((Value::from(*k), v));
                }
                Value::Map(pairs)
            };
            g.now = (junk.next() % 10_000) as i64 - 100;
            let conn = [a, b, fresh][round % 3];
            let out = g.s.handle(conn, method, &payload, g.now);
            if let Err(e) = out.answer {
                assert!([
                    CORE_UNKNOWN_METHOD,
                    PERMISSION_DENIED,
                    UNAUTHORIZED,
                    DUPLICATED_AUTH,
                    EMPTY_PARAMETER,
                    NOT_IN_ROOM,
                    NOT_GROUP_MEMBER
                ]
                .contains(&e.code));
            }
            if round % 1000 == 0 {
                g.s.disconnect(fresh, g.now);
            }
        }
        // Still a working gate.
        let c = g.login(C);
        assert!(g
            .send(c, "sendmsg", A, 12_345, 30, "still here".into())
            .answer
            .is_ok());
    }
}
