//! The groups area: `addgroupmembers`, `delgroupmembers`, `getgroupmembers`,
//! `getgroupcount`, `getusergroups`, the group information quests, and the membership
//! they keep. A group exists once members are added. Sends and reads check membership
//! through [`State::is_member`]. "Online" is a user with at least one authenticated
//! connection ([`Project::is_online`]).

use std::collections::HashMap;

use rmpv::Value;

use super::{
    int_array, obj, open_info, Args, Ctx, GateError, Info, Members, Project, Route,
    NOT_GROUP_MEMBER,
};

pub(super) const ROUTES: &[Route] = &[
    Route::user("addgroupmembers", add_members),
    Route::user("delgroupmembers", del_members),
    Route::user("getgroupmembers", get_members),
    Route::user("getgroupcount", get_count),
    Route::user("getusergroups", get_user_groups),
    Route::user("setgroupinfo", set_info),
    Route::user("getgroupinfo", get_info),
    Route::user("getgroupopeninfo", get_open_info),
    Route::user("getgroupsopeninfo", get_opens_info),
];

/// The groups of one project.
#[derive(Debug, Default)]
pub(super) struct State {
    members: Members,
    /// Only groups whose information was set have an entry.
    info: HashMap<i64, Info>,
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

/// `addgroupmembers {gid, uids}`: creates the group if needed, adds `uids` (1 to 100,
/// `Args::ids`) and the caller.
fn add_members(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let (gid, uids) = (a.id("gid")?, a.ids("uids")?);
    p.groups.members.add(gid, uids.into_iter().chain([ctx.uid]));
    Ok(obj([]))
}

/// `delgroupmembers {gid, uids}`: removes `uids` (1 to 100, `Args::ids`); no membership
/// needed.
fn del_members(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let (gid, uids) = (a.id("gid")?, a.ids("uids")?);
    p.groups.members.remove(gid, &uids);
    Ok(obj([]))
}

/// `gid` and `online?` of `getgroupmembers` and `getgroupcount`: the members, and the
/// online ones when `online` is true (`None` otherwise).
fn members_online(p: &Project, a: Args) -> Result<(Vec<i64>, Option<Vec<i64>>), GateError> {
    let gid = a.id("gid")?;
    let online = a.opt("online", Value::as_bool)?.unwrap_or(false);
    let all: Vec<i64> = p.groups.members(gid).collect();
    let onlines = online.then(|| all.iter().copied().filter(|&u| p.is_online(u)).collect());
    Ok((all, onlines))
}

/// `getgroupmembers {gid, online?}`: `{uids}`, plus `onlines` when `online` is true; no
/// membership needed.
fn get_members(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let (all, onlines) = members_online(p, a)?;
    let mut answer = vec![("uids", int_array(all))];
    answer.extend(onlines.map(|o| ("onlines", int_array(o))));
    Ok(obj(answer))
}

/// `getgroupcount {gid, online?}`: `{cn}`, plus `online` (a count) when `online` is true;
/// no membership needed.
fn get_count(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let (all, onlines) = members_online(p, a)?;
    let mut answer = vec![("cn", all.len().into())];
    answer.extend(onlines.map(|o| ("online", o.len().into())));
    Ok(obj(answer))
}

/// `getusergroups {}`: `{gids}`, the caller's groups in gid order.
fn get_user_groups(p: &mut Project, ctx: &mut Ctx, _: Args) -> Result<Value, GateError> {
    let mut gids: Vec<i64> = p.groups.members.ids_with(ctx.uid).collect();
    gids.sort_unstable();
    Ok(obj([("gids", int_array(gids))]))
}

/// 200041 unless the caller is a member of `gid`.
fn member(p: &Project, ctx: &Ctx, gid: i64) -> Result<(), GateError> {
    if p.groups.is_member(gid, ctx.uid) {
        Ok(())
    } else {
        Err(GateError::new(NOT_GROUP_MEMBER, "not a group member"))
    }
}

/// `setgroupinfo {gid, oinfo?, pinfo?}`: members only; each part is a str of at most
/// 65,535 bytes (200030); `""` clears it ([`Info::set`]).
fn set_info(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let gid = a.id("gid")?;
    member(p, ctx, gid)?;
    Info::set(&mut p.groups.info, gid, a)?;
    Ok(obj([]))
}

/// `getgroupinfo {gid}`: `{oinfo, pinfo}`, members only ("" when never set).
fn get_info(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let gid = a.id("gid")?;
    member(p, ctx, gid)?;
    Ok(p.groups.info.get(&gid).unwrap_or(&Info::default()).both())
}

/// `getgroupopeninfo {gid}`: `{oinfo}` for anyone ("" when never set).
fn get_open_info(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let gid = a.id("gid")?;
    let oinfo = p.groups.info.get(&gid).map_or("", |i| i.oinfo.as_str());
    Ok(obj([("oinfo", oinfo.into())]))
}

/// `getgroupsopeninfo {gids}`: `{info: {"gid": oinfo}}` for anyone, for the groups with
/// public information (an `oinfo` other than `""`); `gids` holds 1 to 100 ids
/// (`Args::ids`: 200033 when empty, 200032 beyond).
fn get_opens_info(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let ids = a.ids("gids")?;
    Ok(open_info(&ids, &p.groups.info))
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

#[cfg(test)]
mod info_tests {
    use super::super::testkit::*;
    use super::super::*;

    #[test]
    fn counts_online_members_and_user_groups() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.group(a, 1, &[B, C]);
        g.group(b, 2, &[B]); // a group of the caller only: uids holds 1 to 100 ids
        let m = g.ok(a, "getgroupmembers", map! {"gid": 1, "online": true});
        assert_eq!(int_list(field(&m, "uids")), [A, B, C]);
        assert_eq!(int_list(field(&m, "onlines")), [A, B]);
        let m = g.ok(a, "getgroupmembers", map! {"gid": 1, "online": false});
        assert_eq!(m, map! {"uids": int_array([A, B, C])});
        let c = g.ok(a, "getgroupcount", map! {"gid": 1, "online": true});
        assert_eq!(c, map! {"cn": 3, "online": 2});
        g.s.disconnect(b, g.now);
        assert_eq!(
            g.ok(a, "getgroupcount", map! {"gid": 1, "online": true}),
            map! {"cn": 3, "online": 1}
        );
        assert_eq!(g.ok(a, "getgroupcount", map! {"gid": 1}), map! {"cn": 3});
        assert_eq!(g.err(a, "getgroupcount", map! {"gid": 0}), EMPTY_PARAMETER);
        assert_eq!(
            g.err(a, "getgroupcount", map! {"gid": 1, "online": 1}),
            EMPTY_PARAMETER
        );
        let b2 = g.login(B);
        assert_eq!(
            int_list(field(&g.ok(b2, "getusergroups", map! {}), "gids")),
            [1, 2]
        );
        assert_eq!(
            int_list(field(&g.ok(a, "getusergroups", map! {}), "gids")),
            [1]
        );
    }

    #[test]
    fn info_private_to_members_open_to_all() {
        let mut g = Gate::new();
        let (a, c) = (g.login(A), g.login(C));
        g.group(a, 1, &[B]);
        assert_eq!(
            g.ok(a, "getgroupinfo", map! {"gid": 1}),
            map! {"oinfo": "", "pinfo": ""}
        );
        assert_eq!(
            g.err(c, "setgroupinfo", map! {"gid": 1, "oinfo": "x"}),
            NOT_GROUP_MEMBER
        );
        g.ok(
            a,
            "setgroupinfo",
            map! {"gid": 1, "oinfo": "open", "pinfo": "private"},
        );
        g.ok(a, "setgroupinfo", map! {"gid": 1, "oinfo": "open2"});
        assert_eq!(
            g.ok(a, "getgroupinfo", map! {"gid": 1}),
            map! {"oinfo": "open2", "pinfo": "private"}
        );
        assert_eq!(g.err(c, "getgroupinfo", map! {"gid": 1}), NOT_GROUP_MEMBER);
        assert_eq!(
            g.ok(c, "getgroupopeninfo", map! {"gid": 1}),
            map! {"oinfo": "open2"}
        );
        assert_eq!(
            g.ok(c, "getgroupopeninfo", map! {"gid": 3}),
            map! {"oinfo": ""}
        );
        let gids = Value::Array(vec![1.into(), 3.into()]);
        assert_eq!(
            g.ok(c, "getgroupsopeninfo", map! {"gids": gids}),
            o([("info", o([("1", "open2".into())]))])
        );
        assert_eq!(
            g.err(c, "getgroupsopeninfo", map! {"gids": Value::Array(vec![])}),
            EMPTY_PARAMETER
        );
        let big = o([("gid", 1.into()), ("pinfo", "p".repeat(65_536).into())]);
        assert_eq!(g.err(a, "setgroupinfo", big), LARGE_MESSAGE_OR_ATTRS);
        assert_eq!(
            g.ok(a, "getgroupinfo", map! {"gid": 1}),
            map! {"oinfo": "open2", "pinfo": "private"}
        );
    }
}
