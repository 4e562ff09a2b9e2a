//! The gate's semantics (docs/gate.md, "What it implements") as a pure state machine.
//!
//! No sockets, no threads, no clock: the server layer hands every quest and the current
//! time in, writes the answer back, and sends the [`Push`]es it gets (quests to other
//! connections). Everything lives per pid; different pids never see each other.
//!
//! This file owns the core: [`GateState`] (connections, projects), `Project` (its users
//! with their connections and logout times, the clock, and one state struct per area),
//! [`GateError`], [`Push`], [`Outcome`], the route table with its dispatcher, and the
//! payload readers ([`Args`]) every handler uses, including the one positive-id check.
//! Each area owns its state and its routes in its own file:
//!
//! | file | owns |
//! |---|---|
//! | `session.rs` | `auth`, `ping`, `bye`; the `kickout` hook |
//! | `messages.rs` | the three sends, stored messages, pushes, resends, `getmsg`, `delmsg`; the `broadcast` and `inject` hooks |
//! | `history.rs` | the four history quests |
//! | `unread.rs` | `getunread`, `cleanunread`, `getp2punread`, `getgroupunread` and the unread marks |
//! | `groups.rs` | group membership, counts and information quests |
//! | `rooms.rs` | room membership, counts and info quests; the `kickout_room` hook |
//! | `friends.rs` | friend lists and blacklists; the blacklist check of p2p sends |
//! | `users.rs` | online users, user information; [`Project::is_online`] |
//! | `data.rs` | the per-user key-value store |
//! | `conversations.rs` | `getsession`, `removesession`, `setlang`, the five conversation lists |
//! | `system.rs` | connection attrs, debug logs, devices, device push options |
//! | `value_added.rs` | translation, profanity, content checks, speech to text (fixed rules) |
//! | `files.rs` | `filetoken` and the file proxy's `sendfile`, `sendgroupfile`, `sendroomfile`; the stored files |
//!
//! Adding an area: a new file with `pub(super) const ROUTES: &[Route]` (and, when it keeps
//! state, a `State` struct), its `mod` line and its `ROUTES` in [`AREAS`] here, and its
//! state as one field of `Project`. Unit tests use the harness in `testkit.rs`.
//!
//! Where docs/gate.md leaves room, the gate decides (each choice is repeated where it is
//! made):
//! - `ping` and `bye` are answered `{}` even before auth; an unknown method is 20004 even
//!   before auth (the route table is consulted before the session).
//! - Ids that real RTM requires positive (`uid` in `auth`, `to`, `gid`, `rid`, `ouid`,
//!   `from`, `xid`, the entries of `uids` and `gids`) are 200033 when zero or negative.
//! - Every list of ids in a quest (`uids`, `gids`, `rids`, `friends`, `blacks`) holds 1
//!   to 100 ids: empty is 200033, more is 200032 ([`Args::ids`]; the JavaScript docs
//!   give 100 for blacklists only).
//! - A message's mtime is `max(now, last mtime of the pid)`, so the gate's clock never runs
//!   backwards; unread marks and logout times use the same clock.
//! - mid 0 is never deduplicated (clients generate a mid when the caller passes 0,
//!   docs/Messages.md); a resend is answered with the first mtime before the
//!   membership check, so a resend after a reconnect (which leaves rooms) still succeeds.
//! - `begin`, `end` and `lastid` bound a history query only when positive.
//! - `delmsg` of a message that does not exist is answered `{}` (idempotent); only the
//!   sender may call it (200021), whether or not the message exists.
//! - `getgroupunread` skips gids the caller is not a member of instead of failing.
//! - `getunread` looks at every mtype; deleted messages count neither as unread nor for
//!   `ltime`.
//! - The group and room quests that docs/gate.md does not restrict (`delgroupmembers`,
//!   `getgroupmembers`, `getgroupcount`) do not require membership; sending p2p to oneself
//!   is allowed.
//! - Friend lists and blacklists are one-directional (the owner's only); a p2p send from a
//!   user the receiver blocked is 200021 (RTM documents no blacklist-specific code).
//! - `info` maps (`getgroupsopeninfo`, `getuseropeninfo`, `getroomsopeninfo`) have
//!   decimal-string keys and leave out ids without public information (`oinfo` never
//!   set, or set to `""`, which clears it: users, groups and rooms share [`Info`]).
//! - Each conversation keeps its newest `history_limit` to twice that many messages
//!   (`GateBuilder::history_limit`, 100,000 by default); what is dropped is dropped
//!   everywhere, resend detection included.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use rmpv::Value;

use crate::fpnn::packet;
use crate::value::PutValue;

mod conversations;
mod data;
mod files;
mod friends;
mod groups;
mod history;
mod messages;
mod rooms;
mod session;
mod system;
#[cfg(test)]
mod testkit;
mod unread;
mod users;
mod value_added;

pub(crate) use files::{DEFAULT_MAX_FILE, FILE_PATH};

/// Every area's routes, in one table; adding an area adds one line here.
const AREAS: &[&[Route]] = &[
    session::ROUTES,
    messages::ROUTES,
    history::ROUTES,
    unread::ROUTES,
    groups::ROUTES,
    rooms::ROUTES,
    friends::ROUTES,
    users::ROUTES,
    data::ROUTES,
    conversations::ROUTES,
    system::ROUTES,
    value_added::ROUTES,
    files::ROUTES,
];

/// A connection, from TCP accept to close; the server layer picks the ids.
pub(crate) type ConnId = u64;

const CORE_UNKNOWN_METHOD: i32 = 20004;
const PERMISSION_DENIED: i32 = 200021;
const UNAUTHORIZED: i32 = 200022;
const DUPLICATED_AUTH: i32 = 200023;
const EMPTY_PARAMETER: i32 = 200033;
const NOT_IN_ROOM: i32 = 200040;
const NOT_GROUP_MEMBER: i32 = 200041;
const LARGE_MESSAGE_OR_ATTRS: i32 = 200030;
const TOO_MANY_ITEMS: i32 = 200032;

/// The most ids one list of a quest carries (`uids`, `gids`, `rids`, `friends`,
/// `blacks`): the JavaScript docs give 100 for `addBlacks` / `deleteBlacks`, and the
/// gate applies it to every list (docs/gate.md, "Lists of ids").
const MAX_IDS: usize = 100;

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
    /// The quest's payload, msgpack: encoded once for all its receivers, not built as a
    /// `Value` (a `String` per key) and encoded again for each.
    pub payload: Vec<u8>,
}

impl Push {
    /// The payload decoded (for tests).
    #[cfg(test)]
    pub(crate) fn payload_value(&self) -> Value {
        packet::decode_payload_within(&self.payload, usize::MAX).expect("a push payload")
    }

    /// `kickout` and `kickoutroom` are oneway (docs/gate.md, "Pushes"); the pushes of
    /// messages are twoway quests.
    pub fn twoway(&self) -> bool {
        !matches!(self.method, "kickout" | "kickoutroom")
    }
}

/// What one quest did: its answer and the quests it causes on other connections. The
/// answer is a `Value` for tests (`GateState::handle`) or an [`Answer`], as the server
/// layer writes it ([`GateState::handle_bytes`], [`GateState::handle_decoded`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome<A = Value> {
    pub answer: Result<A, GateError>,
    pub pushes: Vec<Push>,
    /// `bye`: the server layer closes the connection after sending the answer.
    pub close_after: bool,
}

impl<A> Outcome<A> {
    #[cfg(test)]
    fn map<B>(self, f: impl FnOnce(A) -> B) -> Outcome<B> {
        Outcome {
            answer: self.answer.map(f),
            pushes: self.pushes,
            close_after: self.close_after,
        }
    }
}

/// A successful answer, as the server layer writes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Value(Value),
    /// `{mtime}`: the answer of the sends, the most frequent quests, written with no map
    /// `Value` (a `Vec` and a key `String`) built and dropped for each.
    Mtime(i64),
}

impl Answer {
    /// The answer as a `Value`, borrowed when it is one (the JSON path and the
    /// `rewrite_answers` test hook read it so).
    pub(crate) fn as_value(&self) -> Cow<'_, Value> {
        match self {
            Answer::Value(v) => Cow::Borrowed(v),
            Answer::Mtime(_) => Cow::Owned(self.clone().into_value()),
        }
    }

    pub(crate) fn into_value(self) -> Value {
        match self {
            Answer::Value(v) => v,
            Answer::Mtime(mtime) => obj([("mtime", mtime.into())]),
        }
    }

    /// Appends the answer's msgpack: the bytes `packet::encode_payload` writes for
    /// [`Answer::into_value`].
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Answer::Value(v) => packet::encode_payload(v, out),
            Answer::Mtime(mtime) => {
                out.push(0x81);
                packet::write_str(out, "mtime");
                mtime.write_to(out);
            }
        }
    }
}

/// What a handler knows about its quest besides the payload, and what it reports back
/// besides the answer.
#[derive(Debug)]
struct Ctx {
    conn: ConnId,
    /// The caller; 0 in an [`Handler::Open`] handler (which may run before `auth`).
    uid: i64,
    /// The wall clock in ms, as the server layer passed it in.
    now: i64,
    /// Quests to other connections, sent after the answer.
    pushes: Vec<Push>,
    /// Close the connection after the answer (`bye`).
    close_after: bool,
}

/// A handler of an authenticated quest: the caller's project, the context, the payload.
type UserFn = fn(&mut Project, &mut Ctx, Args<'_>) -> Result<Value, GateError>;
/// A handler of an authenticated send, answered `{mtime}` ([`Answer::Mtime`]).
type SendFn = fn(&mut Project, &mut Ctx, Args<'_>) -> Result<i64, GateError>;
/// A handler answered on any connection, authenticated or not.
type OpenFn = fn(&mut GateState, &mut Ctx, Args<'_>) -> Result<Value, GateError>;

#[derive(Clone, Copy)]
enum Handler {
    /// Answered before `auth` as well.
    Open(OpenFn),
    /// 200022 before `auth`.
    User(UserFn),
    /// [`Handler::User`] answered `{mtime}`.
    Send(SendFn),
    /// Answered only on file-proxy connections (which never authenticate), and only these
    /// are: on either kind of connection the other kind's methods are 20004.
    Proxy(OpenFn),
}

/// One wire method the gate answers.
struct Route {
    method: &'static str,
    handler: Handler,
}

impl Route {
    /// A method that needs an authenticated session (200022 before `auth`).
    const fn user(method: &'static str, f: UserFn) -> Route {
        Route {
            method,
            handler: Handler::User(f),
        }
    }

    /// A send: [`Route::user`] answered `{mtime}`.
    const fn send(method: &'static str, f: SendFn) -> Route {
        Route {
            method,
            handler: Handler::Send(f),
        }
    }

    /// A method answered on any connection.
    const fn open(method: &'static str, f: OpenFn) -> Route {
        Route {
            method,
            handler: Handler::Open(f),
        }
    }

    /// A method of the file proxy, answered only on its connections.
    const fn proxy(method: &'static str, f: OpenFn) -> Route {
        Route {
            method,
            handler: Handler::Proxy(f),
        }
    }
}

fn routes() -> impl Iterator<Item = &'static Route> {
    AREAS.iter().flat_map(|area| area.iter())
}

/// Every wire method the gate answers (for the cross-check against the client's methods).
#[cfg(test)]
pub(crate) fn route_names() -> Vec<&'static str> {
    routes().map(|r| r.method).collect()
}

#[derive(Debug, Default)]
struct User {
    conns: BTreeSet<ConnId>,
    last_logout: i64,
}

/// Maps keyed by ids and message keys hash with Fx (`src/hash.rs`): the gate
/// is a local emulator, and SipHash was an eighth of its work per message.
pub(crate) use crate::hash::FastMap;

/// One pid's state: the core (users, clock) and one field per area.
#[derive(Debug, Default)]
struct Project {
    /// The last stamped mtime; see [`Project::clock`].
    last_mtime: i64,
    /// The latest unread mark or logout time set ([`Project::mark`]): a message stored
    /// after it is stamped strictly after it, even within the same millisecond.
    last_mark: i64,
    users: BTreeMap<i64, User>,
    messages: messages::State,
    unread: unread::State,
    groups: groups::State,
    rooms: rooms::State,
    friends: friends::State,
    users_info: users::State,
    data: data::State,
    conversations: conversations::State,
    system: system::State,
}

/// The whole in-memory state of one gate.
#[derive(Debug)]
pub(crate) struct GateState {
    tokens: Option<HashMap<i64, String>>,
    conns: FastMap<ConnId, (i64, i64)>,
    projects: FastMap<i64, Project>,
    /// The file proxy's settings and stored files (`files.rs`).
    files: files::Proxy,
    /// Messages kept per conversation (`messages.rs`, `State::limit`).
    history_limit: usize,
}

impl GateState {
    /// `tokens`: `None` accepts any non-empty token; `Some` only those uid:token pairs.
    pub fn new(tokens: Option<HashMap<i64, String>>) -> Self {
        GateState {
            tokens,
            conns: FastMap::default(),
            projects: FastMap::default(),
            files: files::Proxy::default(),
            history_limit: crate::gate::DEFAULT_HISTORY_LIMIT,
        }
    }

    /// Keeps at least the newest `limit` messages of each conversation, at most twice
    /// that; 0 keeps all ([`crate::gate::GateBuilder::history_limit`]). Applies to the
    /// projects seen so far and to those to come.
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit;
        for p in self.projects.values_mut() {
            p.messages.set_limit(limit);
        }
    }

    /// The state of project `pid`, created on first use.
    fn project(&mut self, pid: i64) -> &mut Project {
        let limit = self.history_limit;
        self.projects.entry(pid).or_insert_with(|| Project {
            messages: messages::State::with_limit(limit),
            ..Project::default()
        })
    }

    /// A quest on connection `conn` (which exists from TCP accept and is unauthenticated
    /// until `auth` succeeds), answered with a `Value`: [`GateState::handle_decoded`] for
    /// the tests.
    #[cfg(test)]
    pub fn handle(&mut self, conn: ConnId, method: &str, payload: &Value, now_ms: i64) -> Outcome {
        self.handle_decoded(false, conn, method, payload, now_ms)
            .map(Answer::into_value)
    }

    /// A decoded quest on a connection of the gate (`proxy` false) or of its file proxy
    /// (`proxy` true: only the proxy's methods are routed there, without auth), answered as
    /// the server layer writes it: the server's path for the payloads it does not read
    /// from their bytes ([`GateState::handle_bytes`]), with no answer turned into a
    /// `Value` and back.
    pub(crate) fn handle_decoded(
        &mut self,
        proxy: bool,
        conn: ConnId,
        method: &str,
        payload: &Value,
        now_ms: i64,
    ) -> Outcome<Answer> {
        self.handle_on(proxy, conn, method, Src::Value(payload), now_ms)
    }

    /// [`GateState::handle_decoded`] with the payload's msgpack bytes, read key by key
    /// (`Src::Bytes`): the server's path for payloads of at most `packet::FIELDS_MAX`
    /// bytes that `packet::check_payload_within` has passed, where it answers exactly as
    /// `handle_decoded` does with the decoded payload. Other bytes read as a payload that
    /// is not a map. `index`: the payload's `packet::map_index` when the check gave it
    /// (`packet::check_map_index`); `None` builds it when a key is first read.
    pub(crate) fn handle_bytes(
        &mut self,
        conn: ConnId,
        method: &str,
        payload: &[u8],
        index: Option<&[packet::MapEntry]>,
        now_ms: i64,
    ) -> Outcome<Answer> {
        let lazy = Lazy::default();
        if let Some(index) = index {
            let _ = lazy.index.set(Some(Cow::Borrowed(index)));
        }
        self.handle_on(false, conn, method, Src::Bytes(payload, &lazy), now_ms)
    }

    /// A quest on connection `conn` of the file proxy (docs/gate.md, "Files"), answered
    /// with a `Value`: [`GateState::handle_decoded`] for the tests.
    #[cfg(test)]
    pub fn handle_proxy(
        &mut self,
        conn: ConnId,
        method: &str,
        payload: &Value,
        now_ms: i64,
    ) -> Outcome {
        self.handle_decoded(true, conn, method, payload, now_ms)
            .map(Answer::into_value)
    }

    fn handle_on(
        &mut self,
        proxy: bool,
        conn: ConnId,
        method: &str,
        payload: Src,
        now_ms: i64,
    ) -> Outcome<Answer> {
        let mut ctx = Ctx {
            conn,
            uid: 0,
            now: now_ms,
            pushes: Vec::new(),
            close_after: false,
        };
        let answer = self.dispatch(proxy, &mut ctx, method, Args(payload));
        Outcome {
            answer,
            pushes: ctx.pushes,
            close_after: ctx.close_after,
        }
    }

    /// The route first (an unknown method is 20004 even before auth, and so is a method of
    /// the other kind of connection), then the session.
    fn dispatch(
        &mut self,
        proxy: bool,
        ctx: &mut Ctx,
        method: &str,
        args: Args,
    ) -> Result<Answer, GateError> {
        let route = routes()
            .find(|r| r.method == method && matches!(r.handler, Handler::Proxy(_)) == proxy)
            .ok_or_else(|| GateError::new(CORE_UNKNOWN_METHOD, "unknown method"))?;
        match route.handler {
            Handler::Open(f) | Handler::Proxy(f) => f(self, ctx, args).map(Answer::Value),
            Handler::User(f) => f(self.caller(ctx)?, ctx, args).map(Answer::Value),
            Handler::Send(f) => f(self.caller(ctx)?, ctx, args).map(Answer::Mtime),
        }
    }

    /// The project of an authenticated quest's caller, whose uid goes into `ctx`; 200022
    /// before `auth`.
    fn caller(&mut self, ctx: &mut Ctx) -> Result<&mut Project, GateError> {
        let (pid, uid) = *self
            .conns
            .get(&ctx.conn)
            .ok_or_else(|| GateError::new(UNAUTHORIZED, "unauthorized"))?;
        ctx.uid = uid;
        Ok(self.project(pid))
    }

    /// The connection closed (any reason). When it was the user's last connection, records
    /// the logout time and leaves every room.
    pub fn disconnect(&mut self, conn: ConnId, now_ms: i64) {
        let Some((pid, uid)) = self.conns.remove(&conn) else {
            return;
        };
        let p = self.project(pid);
        let t = p.mark(now_ms);
        let user = p.users.entry(uid).or_default();
        user.conns.remove(&conn);
        p.system.disconnect(conn);
        if user.conns.is_empty() {
            user.last_logout = t;
            p.rooms.leave_all(uid);
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
}

impl Project {
    /// The gate's clock: wall time, but never before the last message.
    fn clock(&self, now: i64) -> i64 {
        now.max(self.last_mtime)
    }

    /// The time an unread mark or a logout is set to: [`Project::clock`], remembered
    /// so that later messages are stamped after it (docs/gate.md, *Unread*). Without
    /// that, a message sent in the same millisecond as a `cleanunread` or a logout
    /// got the mark's time and counted as read.
    fn mark(&mut self, now: i64) -> i64 {
        let t = self.clock(now);
        self.last_mark = self.last_mark.max(t);
        t
    }

    fn conns(&self, uid: i64) -> impl Iterator<Item = ConnId> + '_ {
        self.users
            .get(&uid)
            .into_iter()
            .flat_map(|u| u.conns.iter().copied())
    }

    /// One push of `method` to every connection of each of `uids`.
    /// The last push takes `payload` itself: one receiver (a p2p message's) costs no copy.
    fn push_to(
        &self,
        uids: impl IntoIterator<Item = i64>,
        method: &'static str,
        payload: Vec<u8>,
    ) -> Vec<Push> {
        let mut pushes: Vec<Push> = uids
            .into_iter()
            .flat_map(|u| self.conns(u))
            .map(|conn| Push {
                conn,
                method,
                payload: Vec::new(),
            })
            .collect();
        if let Some((last, others)) = pushes.split_last_mut() {
            for p in others {
                p.payload = payload.clone();
            }
            last.payload = payload;
        }
        pushes
    }
}

/// Who belongs to which group or room: id -> uids.
#[derive(Debug, Default)]
struct Members(HashMap<i64, BTreeSet<i64>>);

impl Members {
    fn contains(&self, id: i64, uid: i64) -> bool {
        self.0.get(&id).is_some_and(|m| m.contains(&uid))
    }

    /// The members of `id` in uid order (none for an unknown id).
    fn of(&self, id: i64) -> impl Iterator<Item = i64> + '_ {
        self.0.get(&id).into_iter().flatten().copied()
    }

    /// The ids whose members include `uid` (in no particular order).
    fn ids_with(&self, uid: i64) -> impl Iterator<Item = i64> + '_ {
        self.0
            .iter()
            .filter(move |(_, m)| m.contains(&uid))
            .map(|(&id, _)| id)
    }

    fn add(&mut self, id: i64, uids: impl IntoIterator<Item = i64>) {
        self.0.entry(id).or_default().extend(uids);
    }

    fn remove(&mut self, id: i64, uids: &[i64]) {
        if let Some(members) = self.0.get_mut(&id) {
            uids.iter().for_each(|u| {
                members.remove(u);
            });
        }
    }
}

/// The longest `oinfo` or `pinfo` (and data value), in bytes; longer is 200030.
const MAX_INFO_BYTES: usize = 65_535;

/// The public (`oinfo`) and private (`pinfo`) information of a user, group or room; ""
/// until set. Users, groups and rooms share it, so `""` means the same for the three: a
/// part set to `""` is cleared, and an id whose `oinfo` is `""` (never set, or cleared)
/// is left out of the `info` maps ([`open_info`]).
#[derive(Debug, Default, Clone)]
struct Info {
    oinfo: String,
    pinfo: String,
}

impl Info {
    /// Applies `oinfo?` and `pinfo?` from `a` to the information of `id` in `map` (an
    /// absent key leaves that part as it was; `""` clears it, as the JavaScript SDK sends
    /// it). Both are checked before either is stored: not a str is 200033, over
    /// [`MAX_INFO_BYTES`] is 200030. An entry left with both parts `""` is removed, so
    /// cleared information holds no memory.
    fn set(map: &mut HashMap<i64, Info>, id: i64, a: Args) -> Result<(), GateError> {
        let oinfo = a.opt("oinfo", sized_str)?.transpose()?;
        let pinfo = a.opt("pinfo", sized_str)?.transpose()?;
        let info = map.entry(id).or_default();
        if let Some(o) = oinfo {
            info.oinfo = o;
        }
        if let Some(p) = pinfo {
            info.pinfo = p;
        }
        if info.oinfo.is_empty() && info.pinfo.is_empty() {
            map.remove(&id);
        }
        Ok(())
    }

    /// `{oinfo, pinfo}`.
    fn both(&self) -> Value {
        obj([
            ("oinfo", self.oinfo.as_str().into()),
            ("pinfo", self.pinfo.as_str().into()),
        ])
    }
}

/// A str, or 200030 when it is over [`MAX_INFO_BYTES`]; `None` (200033) when not a str.
fn sized_str(v: &Value) -> Option<Result<String, GateError>> {
    let s = v.as_str()?;
    Some(if s.len() > MAX_INFO_BYTES {
        Err(GateError::new(
            LARGE_MESSAGE_OR_ATTRS,
            format!("longer than {MAX_INFO_BYTES} bytes"),
        ))
    } else {
        Ok(s.to_owned())
    })
}

/// The answer of `getgroupsopeninfo {gids}`-like quests: `{info: {"id": oinfo}}` for the
/// `ids` that have public information in `info` (an `oinfo` other than `""`), keyed by
/// the decimal id (str keys, as RTM answers them).
fn open_info(ids: &[i64], info: &HashMap<i64, Info>) -> Value {
    let map = ids
        .iter()
        .filter_map(|id| {
            let oinfo = &info.get(id)?.oinfo;
            (!oinfo.is_empty()).then(|| (id.to_string().into(), oinfo.as_str().into()))
        })
        .collect();
    obj([("info", Value::Map(map))])
}

/// A quest's payload, read key by key. A payload that is not a map fails the first read
/// with 200033 (`payload`), so a handler that reads nothing accepts any payload.
#[derive(Debug, Clone, Copy)]
struct Args<'a>(Src<'a>);

/// Where [`Args`] reads from.
#[derive(Debug, Clone, Copy)]
enum Src<'a> {
    /// A decoded payload.
    Value(&'a Value),
    /// The msgpack bytes of a short payload (at most `packet::FIELDS_MAX`, checked by
    /// `packet::check_payload_within`): the map's entries are indexed once
    /// (`packet::map_index`) and a key's value is decoded when it is read; the whole map
    /// is decoded only for a handler that borrows from it or walks all of it. The same
    /// reads as from the decoded payload, without building a `Value` for every key and
    /// value of every quest.
    Bytes(&'a [u8], &'a Lazy<'a>),
}

/// What [`Src::Bytes`] builds on demand.
#[derive(Debug, Default)]
struct Lazy<'a> {
    index: OnceCell<Option<Cow<'a, [packet::MapEntry]>>>,
    whole: OnceCell<Value>,
}

impl Lazy<'_> {
    /// The index of the payload `b`, built on first use unless the server gave it.
    fn index(&self, b: &[u8]) -> Option<&[packet::MapEntry]> {
        self.index
            .get_or_init(|| packet::map_index(b).map(Cow::Owned))
            .as_deref()
    }
}

impl<'a> Args<'a> {
    fn fields(self) -> Result<&'a [(Value, Value)], GateError> {
        let v = match self.0 {
            Src::Value(v) => v,
            // Checked bytes decode; were they ever not to, they read as no map.
            Src::Bytes(b, lazy) => lazy
                .whole
                .get_or_init(|| packet::decode_payload_within(b, usize::MAX).unwrap_or(Value::Nil)),
        };
        v.as_map()
            .map(Vec::as_slice)
            .ok_or_else(|| GateError::bad("payload"))
    }

    /// The value of `key`: [`Args::fields_of`] of one key.
    fn field(self, key: &str) -> Result<Option<Field<'a>>, GateError> {
        let [v] = self.fields_of([key])?;
        Ok(v)
    }

    /// The values of `keys`, each as [`get`] finds it in the decoded map, from one pass
    /// over the index: from the bytes, a value is read only when it is used.
    fn fields_of<const N: usize>(
        self,
        keys: [&str; N],
    ) -> Result<[Option<Field<'a>>; N], GateError> {
        match self.0 {
            Src::Bytes(b, lazy) if lazy.whole.get().is_none() => {
                let index = lazy.index(b);
                let index = index.ok_or_else(|| GateError::bad("payload"))?;
                // The first entry of each key counts, nil or not (as in `get`).
                let mut first = [None; N];
                for e in index {
                    let Some(key) = e.key(b) else { continue };
                    if let Some(i) = keys.iter().position(|k| k.as_bytes() == key) {
                        first[i] = first[i].or(Some(e.value()));
                    }
                }
                Ok(first.map(|pos| pos.and_then(|pos| Field::at(b, pos))))
            }
            _ => {
                let fields = self.fields()?;
                Ok(keys.map(|key| get(fields, key).map(Field::Value)))
            }
        }
    }

    /// A required key, converted by `f`; missing or unconvertible: 200033. `f` may
    /// borrow from the payload (from bytes, the whole map is decoded once for it);
    /// [`Args::field`] reads one key only.
    fn req<T>(self, key: &str, f: impl FnOnce(&'a Value) -> Option<T>) -> Result<T, GateError> {
        get(self.fields()?, key)
            .and_then(f)
            .ok_or_else(|| GateError::bad(key))
    }

    /// An optional key: absent is `None`, present but unconvertible is 200033.
    fn opt<T>(
        self,
        key: &str,
        f: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, GateError> {
        get(self.fields()?, key)
            .map(|v| f(v).ok_or_else(|| GateError::bad(key)))
            .transpose()
    }

    /// A required id that real RTM requires positive (a uid, gid or rid); zero or
    /// negative is 200033.
    fn id(self, key: &str) -> Result<i64, GateError> {
        need_int(self.field(key)?, key, positive)
    }

    /// A required list of 1 to [`MAX_IDS`] positive ids, in the order given, an id given
    /// twice kept once (where it came first), so that an answer keyed by id holds each
    /// key once: empty (or an id not positive) is 200033, more than [`MAX_IDS`] (counted
    /// as sent) is 200032. Every quest that takes a list of uids, gids or rids reads it
    /// here, so they share the one rule.
    fn ids(self, key: &str) -> Result<Vec<i64>, GateError> {
        let mut ids: Vec<i64> = self.req(key, |v| v.as_array()?.iter().map(id).collect())?;
        if ids.is_empty() {
            return Err(GateError::bad(key));
        }
        if ids.len() > MAX_IDS {
            return Err(GateError::new(
                TOO_MANY_ITEMS,
                format!("at most {MAX_IDS} items in {key}"),
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        ids.retain(|i| seen.insert(*i));
        Ok(ids)
    }
}

/// One value of a quest's payload, where [`Args::field`] or [`Args::fields_of`] found it;
/// never nil (nil counts as absent, as in [`get`]).
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    /// At this position of payload bytes that `packet::check_payload_within` has passed.
    At(&'a [u8], usize),
    /// In the decoded payload.
    Value(&'a Value),
}

impl<'a> Field<'a> {
    /// The value at `pos` of checked payload bytes; `None` for nil (and for the unused
    /// marker after it, which decodes as nil).
    fn at(b: &'a [u8], pos: usize) -> Option<Field<'a>> {
        let nil = packet::NIL..=packet::NIL + 1;
        (!nil.contains(b.get(pos)?)).then_some(Field::At(b, pos))
    }

    /// The value, as [`get`] reads it from the decoded map (read from the bytes: no
    /// allocation for a scalar).
    fn value(self) -> Option<Cow<'a, Value>> {
        match self {
            Field::At(b, pos) => packet::read_value_at(b, pos).map(Cow::Owned),
            Field::Value(v) => Some(Cow::Borrowed(v)),
        }
    }

    /// The value as [`int`] reads it (from the bytes, with no `Value` built).
    fn int(self) -> Option<i64> {
        match self {
            Field::At(b, pos) => packet::int_value(b, pos),
            Field::Value(v) => int(v),
        }
    }

    /// Whether the value is a str or bin.
    fn is_str_or_bin(self) -> bool {
        match self {
            Field::At(b, pos) => packet::bytes_value(b, pos).is_some(),
            Field::Value(v) => matches!(v, Value::String(_) | Value::Binary(_)),
        }
    }

    /// The value's msgpack as the quest carried it, when it came as bytes and means the
    /// same value as its decoded form encoded again: not for a str whose bytes are not
    /// UTF-8, which decodes as a `String` that `rmpv` (and `packet::write_value`) encode
    /// as bin.
    fn msgpack(self) -> Option<&'a [u8]> {
        let Field::At(b, pos) = self else { return None };
        if let Some(text) = packet::str_value(b, pos) {
            // ASCII, most bodies, is checked a word at a time.
            if !text.is_ascii() && std::str::from_utf8(text).is_err() {
                return None;
            }
        }
        packet::value_bytes_at(b, pos)
    }
}

impl PutValue for Field<'_> {
    /// The bytes as the quest carried them ([`Field::msgpack`]), or the decoded value
    /// encoded (the same value; integers and lengths in their shortest form).
    fn write_to(self, out: &mut Vec<u8>) {
        match (self, self.msgpack()) {
            (_, Some(bytes)) => out.extend_from_slice(bytes),
            (Field::Value(v), None) => packet::write_value(out, v),
            // Checked bytes always hold a whole value; were they ever not to, nil.
            (Field::At(..), None) => match self.value() {
                Some(v) => packet::write_value(out, &v),
                None => out.push(packet::NIL),
            },
        }
    }
}

/// A required integer read by [`Args::field`] or [`Args::fields_of`], converted by `f`;
/// missing or unconvertible: 200033 naming `key`.
fn need_int<T>(
    v: Option<Field>,
    key: &str,
    f: impl FnOnce(i64) -> Option<T>,
) -> Result<T, GateError> {
    v.and_then(Field::int)
        .and_then(f)
        .ok_or_else(|| GateError::bad(key))
}

/// A required str or bin (a message's body or attrs) read by [`Args::field`] or
/// [`Args::fields_of`]; anything else: 200033 naming `key`.
fn str_or_bin<'a>(v: Option<Field<'a>>, key: &str) -> Result<Field<'a>, GateError> {
    v.filter(|v| v.is_str_or_bin())
        .ok_or_else(|| GateError::bad(key))
}

/// A str-keyed msgpack map.
fn obj<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// An array of integers.
fn int_array(items: impl IntoIterator<Item = i64>) -> Value {
    Value::Array(items.into_iter().map(Value::from).collect())
}

/// The value of `key`; nil counts as absent.
fn get<'a>(m: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_nil())
}

/// Any msgpack integer width that fits an i64.
fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

/// A positive integer: an id.
fn id(v: &Value) -> Option<i64> {
    v.as_i64().and_then(positive)
}

/// [`id`] of an integer.
fn positive(n: i64) -> Option<i64> {
    (n > 0).then_some(n)
}

/// An mtype: an integer in 0..=255.
fn small(v: &Value) -> Option<u8> {
    v.as_i64().and_then(byte)
}

/// [`small`] of an integer.
fn byte(n: i64) -> Option<u8> {
    u8::try_from(n).ok()
}

/// A list of mtypes (`mtypes?` of a quest), read into a [`Mtypes`] set: one pass over the
/// list, and none in the filters that use it.
fn mtypes(v: &Value) -> Option<Mtypes> {
    v.as_array()?.iter().map(small).collect()
}

/// A set of mtypes: 256 flags. A quest's `mtypes` list is read into one once, so an mtype
/// filter costs one lookup per stored message however long (or repetitive) the list was;
/// with the list itself each message cost a scan of it, under the gate's state lock.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Mtypes([u64; 4]);

impl Mtypes {
    pub(super) fn insert(&mut self, t: u8) {
        self.0[usize::from(t >> 6)] |= 1 << (t & 63);
    }

    pub(super) fn contains(&self, t: u8) -> bool {
        self.0[usize::from(t >> 6)] & (1 << (t & 63)) != 0
    }

    /// No mtype at all (an empty list).
    pub(super) fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// The mtypes in the set, ascending.
    pub(super) fn iter(self) -> impl Iterator<Item = u8> {
        (0..=u8::MAX).filter(move |&t| self.contains(t))
    }
}

impl FromIterator<u8> for Mtypes {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Self {
        let mut set = Mtypes::default();
        for t in iter {
            set.insert(t);
        }
        set
    }
}

impl std::fmt::Debug for Mtypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A non-empty str.
fn text(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    fn list(ts: &[i64]) -> Value {
        Value::Array(ts.iter().map(|&t| t.into()).collect())
    }

    /// A quest's `mtypes` list is read into a set: however long and repetitive the list,
    /// the filter the quests apply is the very value read from its distinct mtypes, so
    /// filtering costs the same. (Kept as the list it was, it cost each stored message a
    /// scan of the list under the state lock: a 2 MB list over 20,000 messages held the
    /// gate for seconds.)
    #[test]
    fn an_mtypes_list_is_read_into_the_same_set_whatever_its_length() {
        let every: Vec<i64> = (0..=255).collect();
        let mut long: Vec<i64> = every.iter().rev().copied().collect();
        long.extend([30, 30, 40, 0, 255].repeat(10));
        assert_eq!(long.len(), 306);
        assert_eq!(mtypes(&list(&long)), mtypes(&list(&every)));
        assert_eq!(mtypes(&list(&[0; 100_000])), mtypes(&list(&[0])));
        assert_eq!(mtypes(&list(&[40, 30, 40, 30])), mtypes(&list(&[30, 40])));
        // One entry that is not an mtype refuses the whole list (200033 in the quests).
        for bad in [256, -1] {
            assert_eq!(mtypes(&list(&[30, bad, 40])), None, "{bad}");
        }
        assert_eq!(mtypes(&Value::from(30)), None);
    }

    #[test]
    fn an_mtypes_set_holds_exactly_the_listed_mtypes() {
        let none = mtypes(&list(&[])).unwrap();
        assert!(none.is_empty() && none.iter().next().is_none());
        assert_eq!(none, Mtypes::default());
        for t in 0..=255u8 {
            let one = mtypes(&list(&[t.into(), t.into()])).unwrap();
            assert!(!one.is_empty());
            assert!(one.iter().eq([t]), "{t}: {one:?}");
            assert!((0..=255u8).filter(|&u| one.contains(u)).eq([t]), "{t}");
            assert_eq!(one, [t].into_iter().collect());
        }
        let every = mtypes(&list(&(0..=255).rev().collect::<Vec<_>>())).unwrap();
        assert!(every.iter().eq(0..=255));
        assert!((0..=255).all(|t| every.contains(t)));
        let some: Mtypes = [255, 0, 63, 64, 127, 128, 64].into_iter().collect();
        assert!(some.iter().eq([0, 63, 64, 127, 128, 255]));
        assert_eq!(format!("{some:?}"), "{0, 63, 64, 127, 128, 255}");
    }

    #[test]
    fn an_mtime_answer_is_written_as_its_value_would_be() {
        for mtime in [0, 1, 127, 128, 1 << 40, i64::MAX, -1, -33, i64::MIN] {
            let (mut fast, mut by_value) = (Vec::new(), Vec::new());
            Answer::Mtime(mtime).encode(&mut fast);
            Answer::Value(Answer::Mtime(mtime).into_value()).encode(&mut by_value);
            assert_eq!(fast, by_value, "{mtime}");
            let decoded = packet::decode_payload(&fast).unwrap();
            assert_eq!(decoded, obj([("mtime", mtime.into())]), "{mtime}");
        }
    }

    #[test]
    fn every_method_has_exactly_one_route() {
        let names = route_names();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "a method is routed twice: {names:?}"
        );
        for m in [
            "auth",
            "ping",
            "bye",
            "sendmsg",
            "getp2pmsg",
            "getgroupunread",
        ] {
            assert!(unique.contains(m), "{m}");
        }
    }

    #[test]
    fn every_id_list_takes_1_to_100_ids() {
        let mut g = Gate::new();
        let a = g.login(A);
        g.group(a, 1, &[B]);
        let list = |n: i64| Value::Array((1..=n).map(Value::from).collect());
        /// (method, list key, the quest's other keys)
        type Quest = (&'static str, &'static str, &'static [(&'static str, i64)]);
        let quests: &[Quest] = &[
            ("addgroupmembers", "uids", &[("gid", 1)]),
            ("delgroupmembers", "uids", &[("gid", 2)]),
            ("addfriends", "friends", &[]),
            ("delfriends", "friends", &[]),
            ("addblacks", "blacks", &[]),
            ("delblacks", "blacks", &[]),
            ("getonlineusers", "uids", &[]),
            ("getuseropeninfo", "uids", &[]),
            ("getgroupsopeninfo", "gids", &[]),
            ("getroomcount", "rids", &[]),
            ("getroomsopeninfo", "rids", &[]),
            ("getp2punread", "uids", &[]),
            ("getgroupunread", "gids", &[]),
        ];
        for &(method, key, rest) in quests {
            let payload = |ids: Value| {
                let mut m: Vec<(Value, Value)> =
                    rest.iter().map(|&(k, v)| (k.into(), v.into())).collect();
                m.push((key.into(), ids));
                Value::Map(m)
            };
            assert_eq!(
                g.err(a, method, payload(list(0))),
                EMPTY_PARAMETER,
                "{method}"
            );
            assert_eq!(
                g.err(a, method, payload(list(101))),
                TOO_MANY_ITEMS,
                "{method}"
            );
            g.ok(a, method, payload(list(100)));
        }
        // A refused list changes nothing: group 1 has the accepted quest's 100 uids (A
        // among them) and B, not the refused quest's 101st.
        let members = int_list(field(&g.ok(a, "getgroupmembers", map! {"gid": 1}), "uids"));
        assert_eq!(members.len(), 101);
        assert!(!members.contains(&101));
        let members = g.ok(a, "getgroupmembers", map! {"gid": 2});
        assert_eq!(int_list(field(&members, "uids")), Vec::<i64>::new());
    }

    /// An id given twice in a list counts once: the answers keyed by id (`getroomcount`,
    /// the open infos) hold each key once, as a msgpack map must, and a list answer
    /// (`getonlineusers`) each id once.
    #[test]
    fn an_id_given_twice_counts_once() {
        let mut g = Gate::new();
        let a = g.login(A);
        g.ok(a, "enterroom", map! {"rid": 2});
        let twice = Value::Array(vec![2.into(), 3.into(), 2.into()]);
        let keys = |v: &Value| -> Vec<i64> {
            let Value::Map(m) = v else {
                panic!("not a map: {v:?}")
            };
            m.iter()
                .map(|(k, _)| k.as_i64().or_else(|| k.as_str()?.parse().ok()).unwrap())
                .collect()
        };
        let count = g.ok(a, "getroomcount", map! {"rids": twice.clone()});
        assert_eq!(keys(field(&count, "cn")), [2, 3]);
        // And a list answer holds it once.
        g.login(B);
        let online = g.ok(
            a,
            "getonlineusers",
            map! {"uids": Value::Array(vec![B.into(), A.into(), B.into()])},
        );
        assert_eq!(int_list(field(&online, "uids")), [B, A]);
    }

    #[test]
    fn ids_must_be_positive() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.group(a, 1, &[B]);
        g.ok(a, "enterroom", map! {"rid": 2});
        let ok_key = map! {"from": A, "mid": 1, "xid": B, "type": 1};
        for bad in [0, -1, i64::MIN] {
            let c = g.conn();
            let auth = map! {"pid": PID, "uid": bad, "token": "t", "version": "v"};
            assert_eq!(g.err(c, "auth", auth), EMPTY_PARAMETER);
            assert_eq!(g.s.uid_of(c), None);
            for method in ["sendmsg", "sendgroupmsg", "sendroommsg"] {
                assert_eq!(g.send_code(a, method, bad, 1), EMPTY_PARAMETER, "{method}");
            }
            for (method, key) in [
                ("getp2pmsg", "ouid"),
                ("getgroupmsg", "gid"),
                ("getroommsg", "rid"),
            ] {
                let p = o([(key, bad.into()), ("desc", false.into()), ("num", 5.into())]);
                assert_eq!(g.err(a, method, p), EMPTY_PARAMETER, "{method}");
            }
            for method in ["getmsg", "delmsg"] {
                for key in ["from", "xid"] {
                    let mut p = ok_key.as_map().unwrap().clone();
                    p.iter_mut()
                        .filter(|(k, _)| k.as_str() == Some(key))
                        .for_each(|kv| kv.1 = bad.into());
                    assert_eq!(
                        g.err(a, method, Value::Map(p)),
                        EMPTY_PARAMETER,
                        "{method} {key}"
                    );
                }
            }
            let list = Value::Array(vec![B.into(), bad.into()]);
            for method in ["addgroupmembers", "delgroupmembers"] {
                assert_eq!(
                    g.err(a, method, map! {"gid": bad, "uids": Value::Array(vec![])}),
                    EMPTY_PARAMETER
                );
                assert_eq!(
                    g.err(a, method, map! {"gid": 1, "uids": list.clone()}),
                    EMPTY_PARAMETER
                );
            }
            for method in ["getgroupmembers", "enterroom", "leaveroom"] {
                let key = if method == "getgroupmembers" {
                    "gid"
                } else {
                    "rid"
                };
                assert_eq!(
                    g.err(a, method, o([(key, bad.into())])),
                    EMPTY_PARAMETER,
                    "{method}"
                );
            }
            assert_eq!(
                g.err(a, "getp2punread", map! {"uids": list.clone()}),
                EMPTY_PARAMETER
            );
            assert_eq!(
                g.err(a, "getgroupunread", map! {"gids": list}),
                EMPTY_PARAMETER
            );
        }
        // Nothing was stored, joined or left by the refused quests.
        assert_eq!(
            g.ok(a, "getgroupmembers", map! {"gid": 1}),
            map! {"uids": int_array([A, B])}
        );
        assert_eq!(
            g.send(a, "sendroommsg", 2, 9, 30, "x".into())
                .answer
                .map(|_| ()),
            Ok(())
        );
        assert_eq!(
            num(
                &g.history(b, "getp2pmsg", vec![("target", A.into())]),
                "num"
            ),
            0
        );
    }

    mod bytes {
        //! `GateState::handle_bytes` (the server's path for short payloads) answers and
        //! changes the state exactly as `GateState::handle` with the decoded payload.

        use super::super::testkit::*;
        use super::super::*;
        use proptest::prelude::*;

        /// Keys the routes read, and some they do not.
        const KEYS: &[&str] = &[
            "to", "gid", "rid", "mid", "mtype", "msg", "attrs", "from", "xid", "type", "uids",
            "gids", "rids", "fuids", "num", "desc", "begin", "end", "lastid", "text", "key",
            "value", "lang", "open", "priv", "mtypes", "tag", "x",
        ];

        fn any_field() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Nil),
                any::<bool>().prop_map(Value::from),
                prop_oneof![
                    Just(0i64),
                    Just(-1),
                    Just(1),
                    Just(A),
                    Just(B),
                    Just(C),
                    Just(7)
                ]
                .prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                prop_oneof![Just(255u64), Just(256), Just(u64::MAX)].prop_map(Value::from),
                any::<f64>().prop_map(Value::F64),
                Just(Value::Ext(5, vec![1, 2])),
                prop_oneof![Just(""), Just("x"), Just("{}"), Just("hello"), Just("en")]
                    .prop_map(Value::from),
                Just(Value::from("y".repeat(300))),
                // A str whose bytes are not UTF-8 (written as str, `encode_value`).
                Just(not_utf8()),
                proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Binary),
            ];
            leaf.prop_recursive(2, 12, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Value::Map),
                ]
            })
        }

        /// A send's body and attrs are kept as their msgpack and pushed as sent, except a
        /// str that is not UTF-8, which goes out as a bin (as its decoded form encodes).
        #[test]
        fn a_body_is_stored_and_pushed_as_sent_unless_it_is_a_str_that_is_not_utf8() {
            for (body, pushed) in [
                // A short str as str 8 stays str 8; a bin stays as it is.
                (&[0xd9, 2, b'h', b'i'][..], &[0xd9, 2, b'h', b'i'][..]),
                (&[0xc4, 1, 7][..], &[0xc4, 1, 7][..]),
                // A str that is not UTF-8 decodes as a `String` that encodes as bin: the
                // bytes are pushed as the decoded payload's path pushes them.
                (&[0xa2, 0xff, 0xfe][..], &[0xc4, 2, 0xff, 0xfe][..]),
            ] {
                let (mut g, a) = world();
                let mut bytes = vec![0x85];
                for (key, value) in [("to", B), ("mid", 9), ("mtype", 30)] {
                    packet::write_str(&mut bytes, key);
                    packet::write_value(&mut bytes, &Value::from(value));
                }
                packet::write_str(&mut bytes, "msg");
                bytes.extend_from_slice(body);
                packet::write_str(&mut bytes, "attrs");
                packet::write_str(&mut bytes, "");
                let mut index = Vec::new();
                assert!(packet::check_map_index(&bytes, usize::MAX, &mut index).unwrap());
                let out = g.s.handle_bytes(a, "sendmsg", &bytes, Some(&index), g.now);
                assert!(out.answer.is_ok(), "{:?}", out.answer);
                let [push] = &out.pushes[..] else {
                    panic!("one push to B: {:?}", out.pushes)
                };
                let mut want = Vec::new();
                packet::write_str(&mut want, "msg");
                want.extend_from_slice(pushed);
                assert!(
                    push.payload.windows(want.len()).any(|w| w == want),
                    "{body:x?}: {:x?}",
                    push.payload
                );
                // History decodes what was stored: the same value as the push's.
                let payload = push.payload_value();
                let hist = g.ok(a, "getp2pmsg", map! {"ouid": B, "desc": true, "num": 1});
                let stored = field(&hist, "msgs").as_array().and_then(|m| m.first());
                let stored = stored.and_then(Value::as_array).and_then(|m| m.get(5));
                assert_eq!(stored, Some(field(&payload, "msg")), "{hist:?}");
            }
        }

        /// The str `ff fe` as a decoder reads it: a `String` whose bytes are not UTF-8.
        fn not_utf8() -> Value {
            packet::decode_payload(&[0xa2, 0xff, 0xfe]).unwrap()
        }

        /// A value as a client might write it: with an even `form`, in a longer form
        /// than needed where there is one (nil as the unused marker 0xc1, which reads
        /// as nil; an integer in 8 bytes; a short str as str 8); a str that is not UTF-8
        /// as a str (which `packet::write_value` writes as bin).
        fn encode_value(out: &mut Vec<u8>, value: &Value, form: u8) {
            let long = form % 2 == 0;
            match value {
                Value::String(s) if s.as_str().is_none() => {
                    out.push(0xd9);
                    out.push(s.as_bytes().len() as u8);
                    out.extend_from_slice(s.as_bytes());
                }
                Value::String(s) if long && s.as_bytes().len() < 256 => {
                    encode_key(out, s.as_str().unwrap_or_default(), 0)
                }
                Value::Nil if long => out.push(0xc1),
                Value::Integer(n) if long => match n.as_i64() {
                    Some(i) => {
                        out.push(0xd3);
                        out.extend_from_slice(&i.to_be_bytes());
                    }
                    None => {
                        out.push(0xcf);
                        out.extend_from_slice(&n.as_u64().unwrap_or(u64::MAX).to_be_bytes());
                    }
                },
                _ => packet::write_value(out, value),
            }
        }

        /// A key as a route reads it, or in another encoding of the same str (str8),
        /// or as a bin (which no route reads).
        fn encode_key(out: &mut Vec<u8>, key: &str, form: u8) {
            match form % 4 {
                0 => {
                    out.push(0xd9);
                    out.push(key.len() as u8);
                    out.extend_from_slice(key.as_bytes());
                }
                1 => packet::write_bin(out, key.as_bytes()),
                _ => packet::write_str(out, key),
            }
        }

        /// A gate with A online (its connection returned), B and C known, group 1 and room
        /// 1 with A and B, and one message from B to A.
        fn world() -> (Gate, ConnId) {
            let mut g = Gate::new();
            let a = g.login(A);
            let b = g.login(B);
            g.login(C);
            g.ok(
                a,
                "addgroupmembers",
                map! {"gid": 1, "uids": int_array([A, B])},
            );
            g.ok(a, "enterroom", map! {"rid": 1});
            g.post(b, "sendmsg", A, 5);
            (g, a)
        }

        /// The keys a method reads, with a good value for each (the hot quests; for the
        /// others, a few of [`KEYS`]).
        fn good(method: &str) -> Vec<(&'static str, Value)> {
            let target = match method {
                "sendmsg" => Some(("to", Value::from(B))),
                "sendgroupmsg" => Some(("gid", Value::from(1))),
                "sendroommsg" => Some(("rid", Value::from(1))),
                _ => None,
            };
            match (method, target) {
                (_, Some(t)) => vec![
                    t,
                    ("mid", Value::from(9)),
                    ("mtype", Value::from(30)),
                    ("msg", Value::from("hello")),
                    ("attrs", Value::from("")),
                ],
                ("getmsg" | "delmsg", _) => vec![
                    ("from", Value::from(B)),
                    ("mid", Value::from(5)),
                    ("xid", Value::from(A)),
                    ("type", Value::from(1)),
                ],
                _ => vec![
                    ("gid", Value::from(1)),
                    ("rid", Value::from(1)),
                    ("uids", int_array([B])),
                    ("text", Value::from("hello")),
                ],
            }
        }

        /// A payload for `method`: its keys, each mostly present with its good value and
        /// sometimes another (any type), in any key encoding, some keys twice, a few others
        /// added, in any order; or not a map at all.
        fn payload(method: &'static str) -> impl Strategy<Value = Vec<u8>> {
            let keys = good(method);
            let n = keys.len();
            (
                proptest::collection::vec((0u8..10, any::<u8>(), any_field()), n),
                proptest::collection::vec(
                    (prop::sample::select(KEYS), any::<u8>(), any_field()),
                    0..3,
                ),
                proptest::collection::vec(any::<prop::sample::Index>(), 0..2),
                any::<prop::sample::Index>(),
                0u8..20,
            )
                .prop_map(move |(mine, extra, twice, order, shape)| {
                    let mut entries: Vec<(&str, u8, Value)> = Vec::new();
                    for ((key, ok), (presence, form, other)) in keys.iter().zip(mine) {
                        match presence {
                            0 => {}
                            1 | 2 => entries.push((key, form, other)),
                            _ => entries.push((key, form.max(2), ok.clone())),
                        }
                    }
                    entries.extend(extra);
                    for i in twice {
                        if !entries.is_empty() {
                            let e = entries[i.index(entries.len())].clone();
                            entries.push((e.0, e.1.max(2), Value::from(C)));
                        }
                    }
                    if !entries.is_empty() {
                        let k = order.index(entries.len());
                        entries.rotate_left(k);
                    }
                    let mut bytes = Vec::new();
                    if shape == 0 {
                        packet::write_value(&mut bytes, &Value::from(1));
                        return bytes;
                    }
                    packet::write_count(&mut bytes, entries.len(), 0x80, [0xde, 0xdf]);
                    for (key, form, value) in &entries {
                        encode_key(&mut bytes, key, *form);
                        encode_value(&mut bytes, value, *form);
                    }
                    bytes
                })
        }

        fn method_and_payload() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
            let methods: Vec<&'static str> = routes()
                .map(|r| r.method)
                .filter(|m| *m != "auth")
                .collect();
            let hot = prop::sample::select(vec![
                "sendmsg",
                "sendgroupmsg",
                "sendroommsg",
                "getmsg",
                "delmsg",
            ]);
            prop_oneof![3 => hot, 1 => prop::sample::select(methods)]
                .prop_flat_map(|m| (Just(m), payload(m)))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]
            #[test]
            fn a_short_payload_read_from_its_bytes_is_answered_as_the_decoded_one(
                (method, bytes) in method_and_payload(),
            ) {
                prop_assume!(bytes.len() <= packet::FIELDS_MAX);
                prop_assert!(packet::check_payload_within(&bytes, usize::MAX).is_ok());
                let decoded = packet::decode_payload_within(&bytes, usize::MAX).unwrap();
                let (mut g1, a1) = world();
                let (mut g2, a2) = world();
                let (mut g3, a3) = world();
                prop_assert_eq!((a1, a1), (a2, a3));
                let by_value = g1.s.handle(a1, method, &decoded, g1.now);
                // With the index the server's check gives, and without (built when read).
                let mut index = Vec::new();
                let indexed = packet::check_map_index(&bytes, usize::MAX, &mut index).unwrap();
                let index = indexed.then_some(&index[..]);
                let by_bytes = g2.s.handle_bytes(a2, method, &bytes, index, g2.now);
                let lazily = g3.s.handle_bytes(a3, method, &bytes, None, g3.now);
                // Pushes compared decoded: from bytes, a body is pushed as it was sent
                // (a short str as str 8 stays str 8); from the decoded payload, encoded
                // again in the shortest form.
                let seen = |o: &Outcome| {
                    let pushes: Vec<_> =
                        o.pushes.iter().map(|p| (p.conn, p.method, p.payload_value())).collect();
                    (o.answer.clone(), pushes, o.close_after)
                };
                let by_bytes = by_bytes.map(Answer::into_value);
                prop_assert_eq!(seen(&by_value), seen(&by_bytes));
                prop_assert_eq!(seen(&by_value), seen(&lazily.map(Answer::into_value)));
                // The same state afterwards: the same answers to the same reads.
                for (m, p) in [
                    ("getp2pmsg", map! {"ouid": B, "desc": true, "num": 10}),
                    ("getgroupmsg", map! {"gid": 1, "desc": true, "num": 10}),
                    ("getroommsg", map! {"rid": 1, "desc": true, "num": 10}),
                    ("getgroupmembers", map! {"gid": 1}),
                    ("getfriends", map! {}),
                ] {
                    prop_assert_eq!(g1.q(a1, m, p.clone()), g2.q(a2, m, p.clone()), "{}", m);
                    prop_assert_eq!(g1.q(a1, m, p.clone()), g3.q(a3, m, p), "{}", m);
                }
            }
        }
    }
}
