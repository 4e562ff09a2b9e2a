//! The system area: connection attributes (`addattrs`, `getattrs`), debug logs
//! (`adddebuglog`), devices (`adddevice`, `removedevice`) and device push options
//! (`addoption`, `removeoption`, `getoption`).
//!
//! Choices (docs/gate.md, "System"):
//! - Attributes belong to a connection: `auth`'s `attrs` (when a str-to-str map) start
//!   them, `addattrs` merges into them, and they go when the connection closes.
//!   `getattrs` lists every connection of the caller, in connection order, each map with
//!   `login` (the login time, ms, as text) and `my` (`"1"` for the asking connection,
//!   `"0"` for the others) added.
//! - Debug logs are kept per project, the last [`MAX_LOGS`]; `msg` must not be empty.
//! - A device token belongs to one user: adding it again (from anyone) moves it to the
//!   caller with the new apptype; removing a token the caller does not own does nothing.
//! - A push option is a set of mtypes per (user, type, xid); the empty set means every
//!   mtype. Adding without `mtypes` (or with an empty list) makes it every mtype; adding
//!   mtypes to an every-mtype option keeps it every mtype. Removing without `mtypes`
//!   removes the option; removing mtypes from a set removes them (the option goes when
//!   none is left) and leaves an every-mtype option as it is. `type` other than 0 (p2p)
//!   or 1 (group) is 200033.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rmpv::Value;

use super::{get, mtypes, obj, text, Args, ConnId, Ctx, GateError, Project, Route};

/// How many debug log entries a project keeps (the oldest go first).
pub(super) const MAX_LOGS: usize = 1_000;

pub(super) const ROUTES: &[Route] = &[
    Route::user("addattrs", |p, ctx, a| {
        let attrs = a.req("attrs", str_map)?;
        let conn = p.system.conns.entry(ctx.conn).or_default();
        conn.attrs.extend(attrs);
        Ok(obj([]))
    }),
    Route::user("getattrs", get_attrs),
    Route::user("adddebuglog", |p, ctx, a| {
        let msg = a.req("msg", text)?;
        let attrs = a.req("attrs", Value::as_str)?;
        let logs = &mut p.system.logs;
        if logs.len() == MAX_LOGS {
            logs.remove(0);
        }
        logs.push(DebugLog {
            uid: ctx.uid,
            msg: msg.to_owned(),
            attrs: attrs.to_owned(),
            time: ctx.now,
        });
        Ok(obj([]))
    }),
    Route::user("adddevice", |p, ctx, a| {
        let (apptype, token) = (a.req("apptype", text)?, a.req("devicetoken", text)?);
        let device = (ctx.uid, apptype.to_owned());
        p.system.devices.insert(token.to_owned(), device);
        Ok(obj([]))
    }),
    Route::user("removedevice", |p, ctx, a| {
        let token = a.req("devicetoken", text)?;
        if p.system.devices.get(token).is_some_and(|d| d.0 == ctx.uid) {
            p.system.devices.remove(token);
        }
        Ok(obj([]))
    }),
    Route::user("addoption", |p, ctx, a| {
        let (key, types) = option(ctx, a)?;
        let all = types.is_empty();
        let set = p.system.options.entry(key).or_insert_with(|| types.clone());
        if all {
            set.clear();
        } else if !set.is_empty() {
            set.extend(types);
        }
        Ok(obj([]))
    }),
    Route::user("removeoption", |p, ctx, a| {
        let (key, types) = option(ctx, a)?;
        let options = &mut p.system.options;
        match options.get_mut(&key) {
            Some(_) if types.is_empty() => {
                options.remove(&key);
            }
            Some(set) if !set.is_empty() => {
                set.retain(|t| !types.contains(t));
                if set.is_empty() {
                    options.remove(&key);
                }
            }
            _ => {}
        }
        Ok(obj([]))
    }),
    Route::user("getoption", |p, ctx, _| {
        let side = |kind: u8| {
            let entries = (p.system.options.iter())
                .filter(|((uid, t, _), _)| *uid == ctx.uid && *t == kind)
                .map(|((_, _, xid), set)| {
                    let list = set.iter().map(|&m| Value::from(m)).collect();
                    (xid.to_string().into(), Value::Array(list))
                });
            Value::Map(entries.collect())
        };
        Ok(obj([("p2p", side(0)), ("group", side(1))]))
    }),
];

/// The system state of one project.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Per authenticated connection: its login time and attributes.
    conns: HashMap<ConnId, Conn>,
    /// The last [`MAX_LOGS`] debug log entries, oldest first.
    logs: Vec<DebugLog>,
    /// Device token -> (owner uid, apptype).
    devices: BTreeMap<String, (i64, String)>,
    /// (uid, type, xid) -> the mtypes not pushed; empty = every mtype.
    options: BTreeMap<OptionKey, BTreeSet<u8>>,
}

/// A push option's owner, type and xid.
type OptionKey = (i64, u8, i64);

#[derive(Debug, Default)]
struct Conn {
    login: i64,
    attrs: BTreeMap<String, String>,
}

/// One `adddebuglog` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DebugLog {
    pub(super) uid: i64,
    pub(super) msg: String,
    pub(super) attrs: String,
    /// When it was stored (the gate's wall clock, ms).
    pub(super) time: i64,
}

impl State {
    /// `conn` authenticated at `now` with `auth`'s payload (whose `attrs`, when a
    /// str-to-str map, become the connection's first attributes).
    pub(super) fn login(&mut self, conn: ConnId, now: i64, auth: Args) {
        let attrs = auth
            .fields()
            .ok()
            .and_then(|f| get(f, "attrs"))
            .and_then(str_map);
        let attrs = attrs.unwrap_or_default();
        self.conns.insert(conn, Conn { login: now, attrs });
    }

    /// `conn` closed: its attributes go.
    pub(super) fn disconnect(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }
}

/// `getattrs {}`: `{attrs: [map]}`, one map per connection of the caller.
fn get_attrs(p: &mut Project, ctx: &mut Ctx, _: Args) -> Result<Value, GateError> {
    let maps = p.conns(ctx.uid).map(|conn| {
        let c = p.system.conns.get(&conn);
        let mut m: Vec<(Value, Value)> = c
            .into_iter()
            .flat_map(|c| &c.attrs)
            .filter(|(k, _)| !matches!(k.as_str(), "login" | "my"))
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect();
        let login = c.map_or(0, |c| c.login).to_string();
        m.push(("login".into(), login.into()));
        m.push(("my".into(), if conn == ctx.conn { "1" } else { "0" }.into()));
        Value::Map(m)
    });
    Ok(obj([("attrs", Value::Array(maps.collect()))]))
}

/// `(caller, type, xid)` and the mtypes of `addoption` / `removeoption`.
fn option(ctx: &Ctx, a: Args) -> Result<(OptionKey, BTreeSet<u8>), GateError> {
    let kind = a.req("type", |v| v.as_u64().filter(|&t| t <= 1))? as u8;
    let xid = a.id("xid")?;
    let types = a.opt("mtypes", mtypes)?.unwrap_or_default();
    Ok(((ctx.uid, kind, xid), types.iter().collect()))
}

/// A map of str to str.
fn str_map(v: &Value) -> Option<BTreeMap<String, String>> {
    v.as_map()?
        .iter()
        .map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;
    use super::{DebugLog, MAX_LOGS};

    fn attrs_of(g: &mut Gate, conn: ConnId) -> Vec<Value> {
        field(&g.ok(conn, "getattrs", map! {}), "attrs")
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn attrs_per_connection_with_login_time() {
        let mut g = Gate::new();
        let a1 = g.conn();
        let auth =
            map! {"pid": PID, "uid": A, "token": "t", "version": "v", "attrs": map! {"dev": "web"}};
        g.ok(a1, "auth", auth);
        g.now = 5_000;
        let a2 = g.login(A);
        g.ok(a2, "addattrs", map! {"attrs": map! {"k": "v"}});
        g.ok(a2, "addattrs", map! {"attrs": map! {"k": "v2", "z": "1"}});
        let maps = attrs_of(&mut g, a1);
        assert_eq!(
            maps,
            [
                map! {"dev": "web", "login": "1000", "my": "1"},
                map! {"k": "v2", "z": "1", "login": "5000", "my": "0"}
            ]
        );
        assert_eq!(
            attrs_of(&mut g, a2)[1],
            map! {"k": "v2", "z": "1", "login": "5000", "my": "1"}
        );
        // Another user sees only its own connections; a closed connection's attrs go.
        let b = g.login(B);
        assert_eq!(attrs_of(&mut g, b).len(), 1);
        g.s.disconnect(a1, 6_000);
        assert_eq!(
            attrs_of(&mut g, a2),
            [map! {"k": "v2", "z": "1", "login": "5000", "my": "1"}]
        );
        assert_eq!(
            g.err(a2, "addattrs", map! {"attrs": map! {"k": 1}}),
            EMPTY_PARAMETER
        );
        assert_eq!(g.err(a2, "addattrs", map! {}), EMPTY_PARAMETER);
    }

    #[test]
    fn debug_logs_are_stored_and_bounded() {
        let mut g = Gate::new();
        let a = g.login(A);
        g.ok(a, "adddebuglog", map! {"msg": "m", "attrs": "x"});
        let logs = |g: &Gate| g.s.projects[&PID].system.logs.clone();
        let first = DebugLog {
            uid: A,
            msg: "m".into(),
            attrs: "x".into(),
            time: 1_000,
        };
        assert_eq!(logs(&g), [first]);
        assert_eq!(
            g.err(a, "adddebuglog", map! {"msg": "", "attrs": ""}),
            EMPTY_PARAMETER
        );
        assert_eq!(g.err(a, "adddebuglog", map! {"msg": "m"}), EMPTY_PARAMETER);
        for i in 0..MAX_LOGS {
            g.ok(a, "adddebuglog", map! {"msg": format!("{i}"), "attrs": ""});
        }
        let l = logs(&g);
        assert_eq!(
            (l.len(), l[0].msg.as_str(), l[MAX_LOGS - 1].msg.as_str()),
            (MAX_LOGS, "0", "999")
        );
    }

    #[test]
    fn devices_belong_to_one_user() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.ok(
            a,
            "adddevice",
            map! {"apptype": "apns", "devicetoken": "t1"},
        );
        g.ok(a, "adddevice", map! {"apptype": "fcm", "devicetoken": "t2"});
        let devices = |g: &Gate| g.s.projects[&PID].system.devices.clone();
        assert_eq!(devices(&g)["t1"], (A, "apns".to_string()));
        g.ok(b, "removedevice", map! {"devicetoken": "t1"});
        assert_eq!(devices(&g).len(), 2);
        g.ok(b, "adddevice", map! {"apptype": "fcm", "devicetoken": "t1"});
        assert_eq!(devices(&g)["t1"], (B, "fcm".to_string()));
        g.ok(a, "removedevice", map! {"devicetoken": "t2"});
        g.ok(a, "removedevice", map! {"devicetoken": "t2"});
        assert_eq!(devices(&g).keys().collect::<Vec<_>>(), ["t1"]);
        assert_eq!(
            g.err(a, "adddevice", map! {"apptype": "", "devicetoken": "t"}),
            EMPTY_PARAMETER
        );
        assert_eq!(g.err(a, "removedevice", map! {}), EMPTY_PARAMETER);
    }

    #[test]
    fn push_options_are_mtype_sets_per_target() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        let list = |m: &[u8]| Value::Array(m.iter().map(|&x| x.into()).collect());
        let opt = |t: i64, xid: i64, m: Option<&[u8]>| match m {
            Some(m) => map! {"type": t, "xid": xid, "mtypes": list(m)},
            None => map! {"type": t, "xid": xid},
        };
        g.ok(a, "addoption", opt(0, 9, Some(&[31, 30])));
        g.ok(a, "addoption", opt(0, 9, Some(&[32])));
        g.ok(a, "addoption", opt(1, 5, None));
        g.ok(a, "addoption", opt(1, 5, Some(&[30])));
        g.ok(a, "addoption", opt(1, 6, Some(&[30])));
        g.ok(a, "addoption", opt(1, 6, Some(&[])));
        let want = map! {"p2p": map! {"9": list(&[30, 31, 32])}, "group": map! {"5": list(&[]), "6": list(&[])}};
        assert_eq!(g.ok(a, "getoption", map! {}), want);
        assert_eq!(
            g.ok(b, "getoption", map! {}),
            map! {"p2p": map! {}, "group": map! {}}
        );
        g.ok(a, "removeoption", opt(0, 9, Some(&[30, 31])));
        g.ok(a, "removeoption", opt(1, 5, Some(&[30])));
        g.ok(a, "removeoption", opt(1, 6, None));
        g.ok(a, "removeoption", opt(1, 7, None));
        let want = map! {"p2p": map! {"9": list(&[32])}, "group": map! {"5": list(&[])}};
        assert_eq!(g.ok(a, "getoption", map! {}), want);
        g.ok(a, "removeoption", opt(0, 9, Some(&[32])));
        assert_eq!(field(&g.ok(a, "getoption", map! {}), "p2p"), &map! {});
        for bad in [
            opt(2, 9, None),
            opt(-1, 9, None),
            opt(0, 0, None),
            map! {"xid": 9},
        ] {
            assert_eq!(g.err(a, "addoption", bad.clone()), EMPTY_PARAMETER, "{bad}");
            assert_eq!(g.err(a, "removeoption", bad), EMPTY_PARAMETER);
        }
        assert_eq!(
            g.err(
                a,
                "addoption",
                map! {"type": 0, "xid": 1, "mtypes": list(&[1]).to_string()}
            ),
            EMPTY_PARAMETER
        );
    }
}
