//! The rooms area: `enterroom`, `leaveroom` and the membership they keep, and the
//! `kickout_room` test hook. A user leaves every room when its last connection closes
//! (the core calls [`State::leave_all`]).

use super::{obj, GateState, Members, Push, Route};

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
];

/// The rooms of one project.
#[derive(Debug, Default)]
pub(super) struct State {
    members: Members,
}

impl State {
    pub(super) fn is_member(&self, rid: i64, uid: i64) -> bool {
        self.members.contains(rid, uid)
    }

    /// The members of `rid` in uid order (none for an unknown room).
    pub(super) fn members(&self, rid: i64) -> impl Iterator<Item = i64> + '_ {
        self.members.of(rid)
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
        let p = self.projects.entry(pid).or_default();
        p.rooms.leave(rid, uid);
        p.push_to([uid], "kickoutroom", &obj([("rid", rid.into())]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

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
}
