//! The session area: `auth`, `ping` and `bye` (answered on any connection), and the
//! `kickout` test hook. The connections themselves are core state (`mod.rs`).

use rmpv::Value;

use crate::value::MapBuilder;

use super::{obj, Args, Ctx, GateError, GateState, Push, Route, DUPLICATED_AUTH};

pub(super) const ROUTES: &[Route] = &[
    Route::open("auth", auth),
    // `ping` and `bye` are answered `{}` even before auth.
    Route::open("ping", |_, _, _| Ok(obj([]))),
    Route::open("bye", |_, ctx, _| {
        ctx.close_after = true;
        Ok(obj([]))
    }),
];

/// `auth {pid, uid, token, version}`: `{ok}` by the token rule; a second one is 200023.
fn auth(s: &mut GateState, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    if s.conns.contains_key(&ctx.conn) {
        return Err(GateError::new(DUPLICATED_AUTH, "duplicated auth"));
    }
    let (pid, uid) = (a.req("pid", super::int)?, a.id("uid")?);
    let token = a.req("token", Value::as_str)?;
    a.req("version", Value::as_str)?;
    let ok = !token.is_empty()
        && s.tokens
            .as_ref()
            .map_or(true, |t| t.get(&uid).is_some_and(|x| x == token));
    if ok {
        s.conns.insert(ctx.conn, (pid, uid));
        let p = s.project(pid);
        p.users.entry(uid).or_default().conns.insert(ctx.conn);
        p.system.login(ctx.conn, ctx.now, a);
    }
    Ok(obj([("ok", ok.into())]))
}

impl GateState {
    /// Test hook: `kickout {}` (oneway) to each connection of the user. The connections
    /// stay open: the client closes them, as it does after a real gate's kickout.
    pub fn kickout(&self, pid: i64, uid: i64) -> Vec<Push> {
        self.projects.get(&pid).map_or_else(Vec::new, |p| {
            p.push_to([uid], "kickout", MapBuilder::new().build().into_bytes())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::testkit::*;
    use super::super::*;

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
            "pid",
            "uid",
            "token",
            "version",
            "to",
            "gid",
            "rid",
            "ouid",
            "mid",
            "mtype",
            "msg",
            "attrs",
            "desc",
            "num",
            "begin",
            "end",
            "lastid",
            "mtypes",
            "from",
            "xid",
            "type",
            "uids",
            "gids",
            "mtime",
            "clear",
            "rids",
            "oinfo",
            "pinfo",
            "apptype",
            "devicetoken",
            "text",
            "dst",
            "src",
            "profanity",
            "classify",
            "strategyId",
            "image",
            "audio",
            "video",
            "videoName",
            "lang",
            "codec",
            "srate",
        ];
        let methods: Vec<&str> = route_names().into_iter().chain(["", "nosuch"]).collect();
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
                    NOT_GROUP_MEMBER,
                    200030, // too large (room info)
                    200032, // too many items (a list of more than 100 ids)
                    200050, // unsupported language (value-added)
                    200054, // sensitive words (translate with profanity "stop")
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
