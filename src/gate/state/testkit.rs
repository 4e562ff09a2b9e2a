//! The shared harness of the gate's unit tests: a [`Gate`] over one [`GateState`] with a
//! settable clock, logins, quests (`q`, `ok`, `err`), send and history shortcuts, and
//! readers for answers. Every area's tests use it:
//!
//! ```ignore
//! use super::super::testkit::*;
//! use super::super::*;
//! ```

use rmpv::Value;

use super::{get, obj, ConnId, GateState, Outcome};

pub(super) const PID: i64 = 7;
pub(super) const A: i64 = 100;
pub(super) const B: i64 = 200;
pub(super) const C: i64 = 300;

pub(super) fn o<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    obj(pairs)
}

/// `map! {"key": value, ...}`: a str-keyed msgpack map.
macro_rules! map {
    ($($k:literal: $v:expr),* $(,)?) => { $crate::gate::state::testkit::o([$(($k, Value::from($v))),*]) };
}
pub(super) use map;

pub(super) fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    get(v.as_map().expect("answer is a map"), key).unwrap_or_else(|| panic!("no {key} in {v}"))
}

pub(super) fn num(v: &Value, key: &str) -> i64 {
    field(v, key).as_i64().unwrap()
}

pub(super) fn int_list(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// `{id: n}` maps as sorted pairs.
pub(super) fn int_map(v: &Value) -> Vec<(i64, i64)> {
    v.as_map()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_i64().unwrap(), v.as_i64().unwrap()))
        .collect()
}

pub(super) struct Gate {
    pub(super) s: GateState,
    pub(super) now: i64,
    pub(super) next: ConnId,
}

impl Gate {
    pub(super) fn new() -> Self {
        Gate {
            s: GateState::new(None),
            now: 1_000,
            next: 1,
        }
    }

    pub(super) fn conn(&mut self) -> ConnId {
        self.next += 1;
        self.next
    }

    pub(super) fn login_pid(&mut self, pid: i64, uid: i64) -> ConnId {
        let c = self.conn();
        let a = self.ok(
            c,
            "auth",
            map! {"pid": pid, "uid": uid, "token": "t", "version": "Rust_0.1.0"},
        );
        assert_eq!(field(&a, "ok"), &Value::from(true));
        c
    }

    pub(super) fn login(&mut self, uid: i64) -> ConnId {
        self.login_pid(PID, uid)
    }

    pub(super) fn q(&mut self, conn: ConnId, method: &str, payload: Value) -> Outcome {
        self.s.handle(conn, method, &payload, self.now)
    }

    pub(super) fn ok(&mut self, conn: ConnId, method: &str, payload: Value) -> Value {
        self.q(conn, method, payload)
            .answer
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    pub(super) fn err(&mut self, conn: ConnId, method: &str, payload: Value) -> i32 {
        match self.q(conn, method, payload).answer {
            Err(e) => e.code,
            Ok(v) => panic!("{method} answered {v}"),
        }
    }

    /// A send quest with body `msg`; returns the outcome.
    pub(super) fn send(
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
    pub(super) fn send_code(&mut self, conn: ConnId, method: &str, target: i64, mid: i64) -> i32 {
        let out = self.send(conn, method, target, mid, 30, "x".into());
        out.answer.expect_err("send succeeded").code
    }

    /// A send of "x" with mtype 30 that must succeed.
    pub(super) fn post(&mut self, conn: ConnId, method: &str, target: i64, mid: i64) -> Outcome {
        let out = self.send(conn, method, target, mid, 30, "x".into());
        assert!(out.answer.is_ok(), "{method}: {:?}", out.answer);
        out
    }

    pub(super) fn sendp(&mut self, conn: ConnId, to: i64, mid: i64, mtype: u8) -> i64 {
        let out = self.send(conn, "sendmsg", to, mid, mtype, format!("m{mid}").into());
        num(&out.answer.unwrap(), "mtime")
    }

    pub(super) fn group(&mut self, conn: ConnId, gid: i64, uids: &[i64]) {
        let uids = Value::Array(uids.iter().map(|&u| u.into()).collect());
        self.ok(conn, "addgroupmembers", map! {"gid": gid, "uids": uids});
    }

    pub(super) fn history(
        &mut self,
        conn: ConnId,
        method: &str,
        extra: Vec<(&str, Value)>,
    ) -> Value {
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

pub(super) fn items(h: &Value) -> Vec<Vec<Value>> {
    field(h, "msgs")
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_array().unwrap().clone())
        .collect()
}

pub(super) fn ids_of(h: &Value) -> Vec<i64> {
    items(h).iter().map(|x| x[0].as_i64().unwrap()).collect()
}
