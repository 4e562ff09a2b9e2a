//! The groups area: `addgroupmembers`, `delgroupmembers`, `getgroupmembers` and the
//! membership they keep. A group exists once members are added. Sends and reads check
//! membership through [`State::is_member`].

use rmpv::Value;

use super::{int_array, obj, Args, Ctx, GateError, Members, Project, Route};

pub(super) const ROUTES: &[Route] = &[
    Route::user("addgroupmembers", add_members),
    Route::user("delgroupmembers", del_members),
    Route::user("getgroupmembers", get_members),
];

/// The groups of one project.
#[derive(Debug, Default)]
pub(super) struct State {
    members: Members,
}

impl State {
    pub(super) fn is_member(&self, gid: i64, uid: i64) -> bool {
        self.members.contains(gid, uid)
    }

    /// The members of `gid` in uid order (none for an unknown group).
    pub(super) fn members(&self, gid: i64) -> impl Iterator<Item = i64> + '_ {
        self.members.of(gid)
    }
}

/// `addgroupmembers {gid, uids}`: creates the group if needed, adds `uids` and the caller.
fn add_members(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let (gid, uids) = (a.id("gid")?, a.ids("uids")?);
    p.groups.members.add(gid, uids.into_iter().chain([ctx.uid]));
    Ok(obj([]))
}

/// `delgroupmembers {gid, uids}`: no membership needed.
fn del_members(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let (gid, uids) = (a.id("gid")?, a.ids("uids")?);
    p.groups.members.remove(gid, &uids);
    Ok(obj([]))
}

/// `getgroupmembers {gid}`: `{uids}`; no membership needed.
fn get_members(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let gid = a.id("gid")?;
    Ok(obj([("uids", int_array(p.groups.members(gid)))]))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

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
}
