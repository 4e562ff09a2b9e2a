//! The files area (docs/gate.md, "Files"): `filetoken` on the gate, and the file proxy's
//! `sendfile`, `sendgroupfile` and `sendroomfile`, answered only on file-proxy connections
//! (which never authenticate). The proxy checks the token and the sign, stores the file,
//! and sends a file message through the normal message path whose body is the file's URL.
//!
//! Rules:
//! - A token is granted to the caller for one `cmd` and one target (`to`, `gid` or `rid`,
//!   the key the `cmd` needs; `tos` is accepted and ignored), once the caller may send
//!   there (`Project::may_send`, as a send checks; else the send's error: 200041,
//!   200040, 200021 when the receiver has blocked the caller; a resend included, since the
//!   quest has no mid: docs/Files.md, "Resending a file"). It is used up by the upload
//!   that succeeds with it; it does not expire.
//! - An upload is checked in this order: the keys (200033; `mtype` must be 40..=50), the
//!   token for `(pid, from, cmd, target)` (200003 unknown, used or another's), an empty
//!   file (200003), the size (200031 over the proxy's limit, 4 MiB by default; the gate's
//!   packet limit, 8 MiB, closes the connection before), the attrs JSON with `rtm.sign`
//!   (a string) and `rtm.ext` (a string or null) (200004), the sign (200003), then the
//!   send's own rules (membership, the receiver's blacklist, resend by mid).
//! - The message's body is the URL `http://PROXY/file/N` (`PROXY` the proxy's
//!   `host:port`, `N` the file's number); its attrs are the upload's attrs as sent. The
//!   proxy answers a plain HTTP GET of `/file/N` with the file's bytes (404 for no such
//!   file; src/gate/server.rs), and `Gate::file` gives them to tests.
//! - Memory stays bounded: the proxy keeps the newest files up to a total size
//!   ([`DEFAULT_FILE_STORE`] by default; the newest file is always kept), and the
//!   [`TOKENS_KEPT`] most recently granted tokens. An older file's URL answers 404, an
//!   older token is refused as unknown (200003).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rmpv::Value;

use super::messages::{Content, Kind, Msg};
use super::{int, obj, small, Args, Ctx, GateError, GateState, Route, UNAUTHORIZED};
use crate::api::files::file_sign;
use crate::gate::DEFAULT_FILE_STORE;

pub(super) const ROUTES: &[Route] = &[
    Route::open("filetoken", file_token),
    Route::proxy("sendfile", |s, ctx, a| upload(Kind::P2p, s, ctx, a)),
    Route::proxy("sendgroupfile", |s, ctx, a| upload(Kind::Group, s, ctx, a)),
    Route::proxy("sendroomfile", |s, ctx, a| upload(Kind::Room, s, ctx, a)),
];

const INVALID_FILE_OR_SIGN_OR_TOKEN: i32 = 200003;
const ATTRS_WITHOUT_SIGN_OR_EXT: i32 = 200004;
const LARGE_FILE_OR_ATTRS: i32 = 200031;

/// The path of a file URL before the file's number: `http://PROXY/file/N`.
pub(crate) const FILE_PATH: &str = "/file/";

/// The default size limit of an uploaded file, in bytes.
pub(crate) const DEFAULT_MAX_FILE: usize = 4 << 20;

/// How many of the most recently granted tokens stay valid until used.
pub(crate) const TOKENS_KEPT: usize = 100_000;

/// What a token allows: one upload by `uid` of `pid` to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grant {
    pid: i64,
    uid: i64,
    kind: Kind,
    target: i64,
}

/// The file proxy of one gate: where it listens, its limit, its tokens and its files.
#[derive(Debug)]
pub(super) struct Proxy {
    /// `host:port` of the proxy's listener, answered as `endpoint` and used in URLs.
    endpoint: String,
    max_file: usize,
    tokens: HashMap<String, Grant>,
    /// The tokens granted, oldest first (used ones too), at most `tokens_kept`: the
    /// oldest leaves `tokens` when a new one comes.
    granted: VecDeque<String>,
    tokens_kept: usize,
    issued: u64,
    /// The stored files, by URL (shared, so that serving one copies nothing under the
    /// state's lock).
    files: HashMap<String, Arc<[u8]>>,
    /// The stored files' URLs, oldest first, and their total size, kept at most
    /// `store_limit` by dropping the oldest (the newest stays).
    stored_order: VecDeque<String>,
    stored_bytes: usize,
    store_limit: usize,
    /// How many files were ever stored: the next one is number `stored + 1`.
    stored: u64,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            endpoint: String::new(),
            max_file: DEFAULT_MAX_FILE,
            tokens: HashMap::new(),
            granted: VecDeque::new(),
            tokens_kept: TOKENS_KEPT,
            issued: 0,
            files: HashMap::new(),
            stored_order: VecDeque::new(),
            stored_bytes: 0,
            store_limit: DEFAULT_FILE_STORE,
            stored: 0,
        }
    }
}

fn kind_of(cmd: &str) -> Option<Kind> {
    match cmd {
        "sendfile" => Some(Kind::P2p),
        "sendgroupfile" => Some(Kind::Group),
        "sendroomfile" => Some(Kind::Room),
        _ => None,
    }
}

fn target_key(kind: Kind) -> &'static str {
    kind.target_key().unwrap_or("to")
}

/// `filetoken {cmd, to|gid|rid, tos?}` (authenticated): `{token, endpoint}`.
fn file_token(s: &mut GateState, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let (pid, uid) = s
        .uid_of(ctx.conn)
        .ok_or_else(|| GateError::new(UNAUTHORIZED, "unauthorized"))?;
    let kind = a.req("cmd", |v| v.as_str().and_then(kind_of))?;
    let target = a.id(target_key(kind))?;
    s.projects
        .entry(pid)
        .or_default()
        .may_send(kind, uid, target)?;
    let f = &mut s.files;
    f.issued += 1;
    let token = file_sign(
        format!("{pid}:{uid}:{}:{}", f.issued, ctx.now).as_bytes(),
        "filetoken",
    );
    let grant = Grant {
        pid,
        uid,
        kind,
        target,
    };
    f.grant(token.clone(), grant);
    Ok(obj([
        ("token", token.into()),
        ("endpoint", f.endpoint.as_str().into()),
    ]))
}

fn invalid(what: &str) -> GateError {
    GateError::new(INVALID_FILE_OR_SIGN_OR_TOKEN, what)
}

/// The sign of an upload's attrs, if they are `{"rtm":{"sign":S,"ext":E}}` with a string
/// S and a string or null E.
fn sign_of(attrs: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(attrs).ok()?;
    let rtm = v.get("rtm")?;
    let ext = rtm.get("ext")?;
    (ext.is_string() || ext.is_null()).then_some(())?;
    rtm.get("sign")?.as_str().map(str::to_owned)
}

/// `sendfile {to}`, `sendgroupfile {gid}`, `sendroomfile {rid}` (+ `pid, from, mid,
/// mtype, token, file, attrs, endpoint`) on the proxy: `{mtime}`.
fn upload(kind: Kind, s: &mut GateState, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let pid = a.req("pid", int)?;
    let from = a.id("from")?;
    let target = a.id(target_key(kind))?;
    let mid = a.req("mid", int)?;
    let mtype = a.req("mtype", |v| small(v).filter(|t| (40..=50).contains(t)))?;
    let token = a.req("token", Value::as_str)?;
    let file = a.req("file", |v| match v {
        Value::Binary(b) => Some(b.as_slice()),
        Value::String(t) => Some(t.as_bytes()),
        _ => None,
    })?;
    let attrs = a.req("attrs", Value::as_str)?;
    let want = Grant {
        pid,
        uid: from,
        kind,
        target,
    };
    if s.files.tokens.get(token) != Some(&want) {
        return Err(invalid("invalid token"));
    }
    if file.is_empty() {
        return Err(invalid("empty file"));
    }
    if file.len() > s.files.max_file {
        return Err(GateError::new(
            LARGE_FILE_OR_ATTRS,
            format!("file over {} bytes", s.files.max_file),
        ));
    }
    let sign = sign_of(attrs).ok_or_else(|| {
        GateError::new(
            ATTRS_WITHOUT_SIGN_OR_EXT,
            "attrs without rtm.sign or rtm.ext",
        )
    })?;
    if sign != file_sign(file, token) {
        return Err(invalid("invalid sign"));
    }
    let url = s.files.next_url();
    let content = Content::of(&url.as_str().into(), &attrs.into());
    let msg = Msg::draft(from, target, mid, mtype, content);
    let p = s.project(pid);
    // A resend (same mid) is answered as the first send and stores nothing.
    let resend = mid != 0 && p.messages.find((kind, from, target, mid)).is_some();
    let (mtime, pushes) = p.send(kind, msg, ctx.now)?;
    ctx.pushes = pushes;
    s.files.tokens.remove(token);
    if !resend {
        s.files.store(url, file.into());
    }
    Ok(obj([("mtime", mtime.into())]))
}

impl GateState {
    /// Sets the file proxy's `host:port` (answered by `filetoken`, used in file URLs).
    pub fn set_file_proxy(&mut self, endpoint: &str) {
        self.files.endpoint = endpoint.to_owned();
    }

    /// Sets the size limit of an uploaded file, in bytes (200031 beyond).
    pub fn set_max_file(&mut self, bytes: usize) {
        self.files.max_file = bytes;
    }

    /// Sets the total size of the files the proxy keeps, in bytes: beyond it the
    /// oldest are dropped, the newest always kept.
    pub fn set_file_store(&mut self, bytes: usize) {
        self.files.store_limit = bytes;
        self.files.trim();
    }

    /// The bytes of the file a file message's URL names.
    pub fn file(&self, url: &str) -> Option<Arc<[u8]>> {
        self.files.files.get(url).cloned()
    }

    /// The bytes of the file whose URL ends in [`FILE_PATH`] and `n`: what the proxy
    /// serves for a GET of that path.
    pub(crate) fn file_numbered(&self, n: &str) -> Option<Arc<[u8]>> {
        self.file(&self.files.url(n))
    }

    /// Stores `bytes` as the proxy's next file, as an upload would, and gives its URL.
    #[cfg(test)]
    pub(crate) fn put_file(&mut self, bytes: &[u8]) -> String {
        let url = self.files.next_url();
        self.files.store(url.clone(), bytes.into());
        url
    }
}

impl Proxy {
    /// The URL of file number `n`.
    fn url(&self, n: &str) -> String {
        format!("http://{}{FILE_PATH}{n}", self.endpoint)
    }

    /// The URL the next stored file gets: files are numbered from 1 in the order they
    /// are stored.
    fn next_url(&self) -> String {
        self.url(&(self.stored + 1).to_string())
    }

    /// Keeps `file` under `url` (the one [`Proxy::next_url`] gave), then drops the
    /// oldest files beyond the store's limit.
    fn store(&mut self, url: String, file: Arc<[u8]>) {
        self.stored += 1;
        self.stored_bytes += file.len();
        self.stored_order.push_back(url.clone());
        self.files.insert(url, file);
        self.trim();
    }

    /// Drops the oldest files while their total is over the limit, but never the newest.
    fn trim(&mut self) {
        while self.stored_bytes > self.store_limit && self.stored_order.len() > 1 {
            if let Some(old) = self.stored_order.pop_front() {
                if let Some(bytes) = self.files.remove(&old) {
                    self.stored_bytes -= bytes.len();
                }
            }
        }
    }

    /// Keeps `token` for `grant`, forgetting the oldest token beyond `tokens_kept`.
    fn grant(&mut self, token: String, grant: Grant) {
        self.granted.push_back(token.clone());
        self.tokens.insert(token, grant);
        while self.granted.len() > self.tokens_kept {
            if let Some(old) = self.granted.pop_front() {
                self.tokens.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;
    use super::{ATTRS_WITHOUT_SIGN_OR_EXT, INVALID_FILE_OR_SIGN_OR_TOKEN, LARGE_FILE_OR_ATTRS};
    use crate::api::files::{file_attrs, file_sign};

    fn token(g: &mut Gate, conn: ConnId, cmd: &str, key: &str, target: i64) -> String {
        let a = g.ok(
            conn,
            "filetoken",
            o([("cmd", cmd.into()), (key, target.into())]),
        );
        assert_eq!(field(&a, "endpoint"), &Value::from("127.0.0.1:9"));
        field(&a, "token").as_str().unwrap().to_owned()
    }

    /// An upload on proxy connection 1 with the right sign unless `attrs` is given.
    #[allow(clippy::too_many_arguments)]
    fn upload(
        g: &mut Gate,
        cmd: &str,
        key: &str,
        from: i64,
        target: i64,
        mid: i64,
        token: &str,
        file: &[u8],
        attrs: Option<&str>,
    ) -> Outcome {
        let attrs = attrs.map_or_else(
            || file_attrs(&file_sign(file, token), Some("txt")),
            str::to_owned,
        );
        let p = o([
            ("pid", PID.into()),
            ("from", from.into()),
            ("mid", mid.into()),
            ("mtype", 50.into()),
            ("token", token.into()),
            ("file", Value::Binary(file.to_vec())),
            ("attrs", attrs.into()),
            ("endpoint", "127.0.0.1:9".into()),
            (key, target.into()),
        ]);
        g.s.handle_proxy(1, cmd, &p, g.now)
    }

    fn code(out: Outcome) -> i32 {
        out.answer.expect_err("upload succeeded").code
    }

    #[test]
    fn an_upload_is_stored_and_sent_as_a_file_message() {
        let mut g = Gate::new();
        g.s.set_file_proxy("127.0.0.1:9");
        let (a, b) = (g.login(A), g.login(B));
        g.group(a, 5, &[B]);
        g.ok(a, "enterroom", map! {"rid": 6});
        g.ok(b, "enterroom", map! {"rid": 6});
        for (n, (cmd, key, target, push)) in [
            ("sendfile", "to", B, "pushmsg"),
            ("sendgroupfile", "gid", 5, "pushgroupmsg"),
            ("sendroomfile", "rid", 6, "pushroommsg"),
        ]
        .into_iter()
        .enumerate()
        {
            let t = token(&mut g, a, cmd, key, target);
            let out = upload(&mut g, cmd, key, A, target, 70, &t, b"data", None);
            assert!(out.answer.is_ok(), "{cmd}: {:?}", out.answer);
            assert_eq!(out.pushes.len(), 1);
            let p = &out.pushes[0];
            assert_eq!(
                (p.conn, p.method, num(&p.payload_value(), "mtype")),
                (b, push, 50)
            );
            let url = format!("http://127.0.0.1:9/file/{}", n + 1);
            assert_eq!(field(&p.payload_value(), "msg"), &Value::from(url.as_str()));
            let payload = p.payload_value();
            let attrs = field(&payload, "attrs").as_str().unwrap();
            assert!(attrs.contains(&file_sign(b"data", &t)), "{attrs}");
            assert_eq!(g.s.file(&url).as_deref(), Some(&b"data"[..]));
            // The token is used up; a resend with a fresh token gets the first answer.
            assert_eq!(
                code(upload(&mut g, cmd, key, A, target, 70, &t, b"data", None)),
                INVALID_FILE_OR_SIGN_OR_TOKEN
            );
            let t2 = token(&mut g, a, cmd, key, target);
            let again = upload(&mut g, cmd, key, A, target, 70, &t2, b"data", None);
            assert_eq!(again.answer, out.answer);
            assert!(again.pushes.is_empty());
        }
        assert_eq!(g.s.file("http://127.0.0.1:9/file/99"), None);
        let h = g.history(b, "getp2pmsg", vec![("target", A.into())]);
        assert_eq!(num(&h, "num"), 1);
    }

    /// Uploads keep the newest files within the store's limit: older ones are gone (their
    /// numbers are not reused), the newest stays even alone over the limit, and a lower
    /// limit trims at once.
    #[test]
    fn the_proxy_keeps_the_newest_files_within_its_store_limit() {
        let mut g = Gate::new();
        g.s.set_file_proxy("127.0.0.1:9");
        let a = g.login(A);
        g.s.set_file_store(10);
        let mut urls = Vec::new();
        for (mid, byte) in [(1, 1u8), (2, 2), (3, 3)] {
            let t = token(&mut g, a, "sendfile", "to", B);
            let out = upload(&mut g, "sendfile", "to", A, B, mid, &t, &[byte; 4], None);
            assert!(out.answer.is_ok(), "{:?}", out.answer);
            urls.push(format!("http://127.0.0.1:9/file/{mid}"));
        }
        let kept = |g: &Gate| {
            urls.iter()
                .map(|u| g.s.file(u).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(&g), [false, true, true]);
        assert_eq!(g.s.file(&urls[2]).as_deref(), Some(&[3; 4][..]));
        let big = g.s.put_file(&[9; 11]);
        assert_eq!(big, "http://127.0.0.1:9/file/4");
        assert_eq!(kept(&g), [false, false, false]);
        assert_eq!(g.s.file(&big).as_deref(), Some(&[9; 11][..]));
        g.s.set_file_store(100);
        let last = g.s.put_file(&[5; 4]);
        g.s.set_file_store(4);
        assert_eq!((g.s.file(&big), g.s.file(&last).is_some()), (None, true));
    }

    /// Only the most recently granted tokens stay valid: an older one, unused, is
    /// refused as an unknown token.
    #[test]
    fn only_the_newest_tokens_stay_valid() {
        let mut g = Gate::new();
        g.s.set_file_proxy("127.0.0.1:9");
        let a = g.login(A);
        g.s.files.tokens_kept = 2;
        let tokens: Vec<_> = (0..3)
            .map(|_| token(&mut g, a, "sendfile", "to", B))
            .collect();
        assert_eq!(
            code(upload(
                &mut g, "sendfile", "to", A, B, 1, &tokens[0], b"x", None
            )),
            INVALID_FILE_OR_SIGN_OR_TOKEN
        );
        for (mid, t) in [(2, &tokens[1]), (3, &tokens[2])] {
            let out = upload(&mut g, "sendfile", "to", A, B, mid, t, b"x", None);
            assert!(out.answer.is_ok(), "{:?}", out.answer);
        }
        assert_eq!(g.s.files.tokens.len(), 0);
        assert!(g.s.files.granted.len() <= 2);
    }

    #[test]
    fn filetoken_rules() {
        let mut g = Gate::new();
        g.s.set_file_proxy("127.0.0.1:9");
        let a = g.login(A);
        let c = g.conn();
        assert_eq!(
            g.err(c, "filetoken", map! {"cmd": "sendfile", "to": B}),
            UNAUTHORIZED
        );
        for p in [
            map! {"cmd": "sendfiles", "to": B},
            map! {"cmd": "sendfile"},
            map! {"cmd": "sendfile", "gid": 5},
            map! {"cmd": "sendfile", "to": 0},
            map! {"to": B},
        ] {
            assert_eq!(g.err(a, "filetoken", p), EMPTY_PARAMETER);
        }
        assert_eq!(
            g.err(a, "filetoken", map! {"cmd": "sendgroupfile", "gid": 5}),
            NOT_GROUP_MEMBER
        );
        assert_eq!(
            g.err(a, "filetoken", map! {"cmd": "sendroomfile", "rid": 6}),
            NOT_IN_ROOM
        );
        let t1 = token(&mut g, a, "sendfile", "to", B);
        let t2 = token(&mut g, a, "sendfile", "to", B);
        assert_ne!(t1, t2);
        // The proxy's quests are not the gate's, and the gate's not the proxy's.
        assert_eq!(g.err(a, "sendfile", map! {}), CORE_UNKNOWN_METHOD);
        let out = g.s.handle_proxy(1, "sendmsg", &map! {}, 0);
        assert_eq!(out.answer.unwrap_err().code, CORE_UNKNOWN_METHOD);
        assert_eq!(
            g.s.handle_proxy(1, "filetoken", &map! {}, 0)
                .answer
                .unwrap_err()
                .code,
            CORE_UNKNOWN_METHOD
        );
    }

    /// docs/gate.md (Files): "A target the user may not send to is refused as the send
    /// would be". A user blocked by the receiver may not send to it (200021, docs/gate.md
    /// "Friends and blacklists"), so `filetoken` grants no token for it either (the
    /// client would otherwise upload the whole file before learning the send is refused).
    #[test]
    fn filetoken_to_a_receiver_who_blocked_the_caller_is_refused_like_the_send() {
        let mut g = Gate::new();
        g.s.set_file_proxy("127.0.0.1:9");
        let (a, b) = (g.login(A), g.login(B));
        g.ok(a, "addblacks", map! {"blacks": int_array([B])});
        assert_eq!(g.send_code(b, "sendmsg", A, 1), PERMISSION_DENIED);
        let out = g.q(b, "filetoken", map! {"cmd": "sendfile", "to": A});
        assert_eq!(
            out.answer.as_ref().map_err(|e| e.code).err(),
            Some(PERMISSION_DENIED),
            "filetoken answered {:?}",
            out.answer
        );
        // The owner may still send to the user it blocked, and so get a token.
        g.post(a, "sendmsg", B, 2);
        token(&mut g, a, "sendfile", "to", B);
        // Unblocked, the token is granted as the send is allowed.
        g.ok(a, "delblacks", map! {"blacks": int_array([B])});
        g.post(b, "sendmsg", A, 3);
        token(&mut g, b, "sendfile", "to", A);
    }

    #[test]
    fn uploads_check_token_size_attrs_and_sign() {
        let mut g = Gate::new();
        g.s.set_file_proxy("127.0.0.1:9");
        g.s.set_max_file(8);
        let a = g.login(A);
        let t = token(&mut g, a, "sendfile", "to", B);
        let up = |g: &mut Gate, from, to, tok: &str, file: &[u8], attrs: Option<&str>| {
            code(upload(g, "sendfile", "to", from, to, 1, tok, file, attrs))
        };
        assert_eq!(
            up(&mut g, A, B, "nope", b"x", None),
            INVALID_FILE_OR_SIGN_OR_TOKEN
        );
        assert_eq!(
            up(&mut g, C, B, &t, b"x", None),
            INVALID_FILE_OR_SIGN_OR_TOKEN
        );
        assert_eq!(
            up(&mut g, A, C, &t, b"x", None),
            INVALID_FILE_OR_SIGN_OR_TOKEN
        );
        assert_eq!(
            code(upload(
                &mut g,
                "sendgroupfile",
                "gid",
                A,
                B,
                1,
                &t,
                b"x",
                None
            )),
            INVALID_FILE_OR_SIGN_OR_TOKEN
        );
        assert_eq!(
            up(&mut g, A, B, &t, b"", None),
            INVALID_FILE_OR_SIGN_OR_TOKEN
        );
        assert_eq!(
            up(&mut g, A, B, &t, b"123456789", None),
            LARGE_FILE_OR_ATTRS
        );
        for attrs in [
            "",
            "{}",
            r#"{"rtm":{"sign":"s"}}"#,
            r#"{"rtm":{"ext":null}}"#,
            r#"{"rtm":{"sign":1,"ext":null}}"#,
            r#"{"rtm":{"sign":"s","ext":2}}"#,
        ] {
            assert_eq!(
                up(&mut g, A, B, &t, b"x", Some(attrs)),
                ATTRS_WITHOUT_SIGN_OR_EXT,
                "{attrs}"
            );
        }
        let forged = file_attrs(&file_sign(b"y", &t), None);
        assert_eq!(
            up(&mut g, A, B, &t, b"x", Some(&forged)),
            INVALID_FILE_OR_SIGN_OR_TOKEN
        );
        // None of the refusals used the token up; the right sign (ext null) passes.
        let good = file_attrs(&file_sign(b"x", &t), None);
        let out = upload(&mut g, "sendfile", "to", A, B, 1, &t, b"x", Some(&good));
        assert!(out.answer.is_ok(), "{:?}", out.answer);
        // mtype out of the file range.
        let t = token(&mut g, a, "sendfile", "to", B);
        let mut p = o([
            ("pid", PID.into()),
            ("from", A.into()),
            ("mid", 2.into()),
            ("mtype", 30.into()),
            ("token", t.as_str().into()),
            ("file", Value::Binary(vec![1])),
            ("attrs", file_attrs(&file_sign(&[1], &t), None).into()),
            ("to", B.into()),
        ]);
        assert_eq!(
            g.s.handle_proxy(1, "sendfile", &p, 0)
                .answer
                .unwrap_err()
                .code,
            EMPTY_PARAMETER
        );
        if let Value::Map(m) = &mut p {
            m[3].1 = 40.into();
        }
        assert!(g.s.handle_proxy(1, "sendfile", &p, 0).answer.is_ok());
    }
}
