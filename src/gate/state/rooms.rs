//! The rooms area: `enterroom`, `leaveroom`, `getuserrooms`, `getroommembers`,
//! `getroomcount`, the room info quests (`setroominfo`, `getroominfo`,
//! `getroomopeninfo`, `getroomsopeninfo`) and the `kickout_room` test hook. A user
//! leaves every room when its last connection closes (the core calls
//! [`State::leave_all`]).
//!
//! Choices (docs/gate.md, "Rooms"): a room exists once someone enters it or its info is
//! set; `setroominfo` and `getroominfo` need the caller in the room (200040), the open
//! info, members and counts do not; `oinfo` and `pinfo` are at most 65,535 bytes
//! (200030), and `""` clears a part (the shared `Info`, as for users and groups); a
//! `rids` list holds 1 to 100 ids (200033 when empty, 200032 beyond).

use std::collections::HashMap;

use rmpv::Value;

use crate::value::MapBuilder;

use super::{
    int_array, obj, open_info, Args, Ctx, GateError, GateState, Info, Members, Project, Push,
    Route, NOT_IN_ROOM,
};

pub(super) const ROUTES: &[Route] = &[
    Route::user("enterroom", |p, ctx, a| {
        let rid = a.id("rid")?;
        p.rooms.members.add(rid, [ctx.uid]);
        Ok(obj([]))
    }),
    Route::user("leaveroom", |p, ctx, a| {
        let rid = a.id("rid")?;
        p.rooms.leave(rid, ctx.uid);
        Ok(obj([]))
    }),
    Route::user("getuserrooms", |p, ctx, _| {
        Ok(obj([("rooms", int_array(p.rooms.rooms_of(ctx.uid)))]))
    }),
    Route::user("getroommembers", |p, _, a| {
        let rid = a.id("rid")?;
        Ok(obj([("uids", int_array(p.rooms.members(rid)))]))
    }),
    Route::user("getroomcount", count),
    Route::user("setroominfo", set_info),
    Route::user("getroominfo", |p, ctx, a| {
        let rid = p.rooms.member_rid(ctx, a)?;
        Ok(p.rooms.info.get(&rid).unwrap_or(&Info::default()).both())
    }),
    Route::user("getroomopeninfo", |p, _, a| {
        let rid = a.id("rid")?;
        let oinfo = p.rooms.info.get(&rid).map_or("", |i| i.oinfo.as_str());
        Ok(obj([("oinfo", oinfo.into())]))
    }),
    Route::user("getroomsopeninfo", |p, _, a| {
        Ok(open_info(&rids(a)?, &p.rooms.info))
    }),
];

/// `getroomcount {rids}`: `{cn: {rid: count}}` for every rid asked (0 for an empty room);
/// an empty `rids` is 200033.
fn count(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let cn = rids(a)?.into_iter().map(|rid| {
        (
            rid.to_string().into(),
            (p.rooms.members(rid).count() as i64).into(),
        )
    });
    Ok(obj([("cn", Value::Map(cn.collect()))]))
}

/// `setroominfo {rid, oinfo?, pinfo?}`: in the room only; each part that is given
/// replaces the stored one, `""` clearing it (users' and groups' rule: [`Info::set`]).
fn set_info(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let rid = p.rooms.member_rid(ctx, a)?;
    Info::set(&mut p.rooms.info, rid, a)?;
    Ok(obj([]))
}

/// The `rids` of a quest: 1 to 100 positive ids (`Args::ids`), in the order given; empty is
/// 200033, as an empty `uids` or `gids` is.
fn rids(a: Args) -> Result<Vec<i64>, GateError> {
    a.ids("rids")
}

/// The rooms of one project.
#[derive(Debug, Default)]
pub(super) struct State {
    members: Members,
    info: HashMap<i64, Info>,
}

impl State {
    pub(super) fn is_member(&self, rid: i64, uid: i64) -> bool {
        self.members.contains(rid, uid)
    }

    /// The members of `rid` in uid order (none for an unknown room).
    pub(super) fn members(&self, rid: i64) -> impl Iterator<Item = i64> + '_ {
        self.members.of(rid)
    }

    /// The rooms `uid` is in, in rid order.
    fn rooms_of(&self, uid: i64) -> Vec<i64> {
        let mut rooms: Vec<i64> = (self.members.0.iter())
            .filter(|(_, m)| m.contains(&uid))
            .map(|(&rid, _)| rid)
            .collect();
        rooms.sort_unstable();
        rooms
    }

    /// The `rid` of a quest that needs the caller in the room (200040 otherwise).
    fn member_rid(&self, ctx: &Ctx, a: Args) -> Result<i64, GateError> {
        let rid = a.id("rid")?;
        if !self.is_member(rid, ctx.uid) {
            return Err(GateError::new(NOT_IN_ROOM, "not in the room"));
        }
        Ok(rid)
    }

    fn leave(&mut self, rid: i64, uid: i64) {
        self.members.remove(rid, &[uid]);
    }

    pub(super) fn leave_all(&mut self, uid: i64) {
        self.members.0.values_mut().for_each(|members| {
            members.remove(&uid);
        });
    }
}

impl GateState {
    /// Test hook: removes `uid` from room `rid` and tells each of its connections with
    /// `kickoutroom {rid}`. The quests go out even when the user was not in the room, so a
    /// test can provoke the client's event without entering first.
    pub fn kickout_room(&mut self, pid: i64, uid: i64, rid: i64) -> Vec<Push> {
        let p = self.project(pid);
        p.rooms.leave(rid, uid);
        p.push_to(
            [uid],
            "kickoutroom",
            MapBuilder::new().put("rid", rid).build().into_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::MAX_INFO_BYTES as MAX_INFO;
    use super::super::*;

    fn rids(rids: &[i64]) -> Value {
        map! {"rids": int_array(rids.iter().copied())}
    }

    #[test]
    fn rooms_members_and_counts() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        for (conn, rid) in [(a, 7), (a, 3), (b, 3), (a, 3)] {
            g.ok(conn, "enterroom", map! {"rid": rid});
        }
        assert_eq!(
            int_list(field(&g.ok(a, "getuserrooms", map! {}), "rooms")),
            [3, 7]
        );
        assert_eq!(
            int_list(field(&g.ok(c, "getuserrooms", map! {}), "rooms")),
            Vec::<i64>::new()
        );
        assert_eq!(
            int_list(field(&g.ok(c, "getroommembers", map! {"rid": 3}), "uids")),
            [A, B]
        );
        let cn = g.ok(c, "getroomcount", rids(&[3, 7, 9]));
        assert_eq!(cn, map! {"cn": map! {"3": 2, "7": 1, "9": 0}});
        g.ok(b, "leaveroom", map! {"rid": 3});
        assert_eq!(
            g.ok(c, "getroomcount", rids(&[3])),
            map! {"cn": map! {"3": 1}}
        );
        g.s.disconnect(a, 2_000);
        assert_eq!(
            g.ok(c, "getroomcount", rids(&[3, 7])),
            map! {"cn": map! {"3": 0, "7": 0}}
        );
        assert_eq!(g.err(c, "getroomcount", map! {}), EMPTY_PARAMETER);
        assert_eq!(g.err(c, "getroomcount", rids(&[1, 0])), EMPTY_PARAMETER);
        let many: Vec<i64> = (1..=MAX_IDS as i64 + 1).collect();
        assert_eq!(g.err(c, "getroomcount", rids(&many)), 200032);
        assert!(g.q(c, "getroomcount", rids(&many[1..])).answer.is_ok());
        assert_eq!(
            g.err(c, "getroommembers", map! {"rid": -3}),
            EMPTY_PARAMETER
        );
    }

    #[test]
    fn an_empty_rids_is_200033_as_an_empty_uids_or_gids() {
        let mut g = Gate::new();
        let a = g.login(A);
        g.ok(a, "enterroom", map! {"rid": 3});
        for method in ["getroomcount", "getroomsopeninfo"] {
            assert_eq!(g.err(a, method, rids(&[])), EMPTY_PARAMETER, "{method}");
        }
        // The same rule as the users' and groups' lists.
        let none = Value::Array(vec![]);
        assert_eq!(
            g.err(a, "getuseropeninfo", map! {"uids": none.clone()}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(a, "getgroupsopeninfo", map! {"gids": none}),
            EMPTY_PARAMETER
        );
    }

    #[test]
    fn room_info_private_part_for_members_only() {
        let mut g = Gate::new();
        let (a, c) = (g.login(A), g.login(C));
        assert_eq!(
            g.err(a, "setroominfo", map! {"rid": 4, "oinfo": "o"}),
            NOT_IN_ROOM
        );
        assert_eq!(g.err(a, "getroominfo", map! {"rid": 4}), NOT_IN_ROOM);
        assert_eq!(
            g.ok(c, "getroomopeninfo", map! {"rid": 4}),
            map! {"oinfo": ""}
        );
        g.ok(a, "enterroom", map! {"rid": 4});
        g.ok(a, "enterroom", map! {"rid": 5});
        assert_eq!(
            g.ok(a, "getroominfo", map! {"rid": 4}),
            map! {"oinfo": "", "pinfo": ""}
        );
        g.ok(
            a,
            "setroominfo",
            map! {"rid": 4, "oinfo": "open", "pinfo": "secret"},
        );
        g.ok(a, "setroominfo", map! {"rid": 4, "pinfo": "secret2"});
        g.ok(a, "setroominfo", map! {"rid": 5, "pinfo": "p5"});
        assert_eq!(
            g.ok(a, "getroominfo", map! {"rid": 4}),
            map! {"oinfo": "open", "pinfo": "secret2"}
        );
        assert_eq!(
            g.ok(c, "getroomopeninfo", map! {"rid": 4}),
            map! {"oinfo": "open"}
        );
        assert_eq!(g.err(c, "getroominfo", map! {"rid": 4}), NOT_IN_ROOM);
        assert_eq!(
            g.ok(c, "getroomsopeninfo", rids(&[4, 5, 6])),
            map! {"info": map! {"4": "open"}}
        );
        let big = "x".repeat(MAX_INFO + 1);
        assert_eq!(
            g.err(a, "setroominfo", map! {"rid": 4, "oinfo": big}),
            200030
        );
        let max = "x".repeat(MAX_INFO);
        g.ok(a, "setroominfo", map! {"rid": 4, "oinfo": max.clone()});
        assert_eq!(
            g.ok(c, "getroomopeninfo", map! {"rid": 4}),
            map! {"oinfo": max}
        );
        assert_eq!(
            g.err(a, "setroominfo", map! {"rid": 4, "oinfo": 5}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(c, "getroomsopeninfo", map! {"rids": 4}),
            EMPTY_PARAMETER
        );
        // Leaving keeps the info; a member who left no longer reads the private part.
        g.ok(a, "leaveroom", map! {"rid": 4});
        assert_eq!(g.err(a, "getroominfo", map! {"rid": 4}), NOT_IN_ROOM);
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
        assert!(pushes.iter().all(|p| p.method == "kickoutroom"
            && !p.twoway()
            && p.payload_value() == map! {"rid": 5}));
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
        assert!(kick.iter().all(|p| p.payload_value() == map! {}));
        assert!(g.s.kickout(PID + 5, A).is_empty());
    }
}
