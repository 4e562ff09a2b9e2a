//! The users area: `getonlineusers`, `setuserinfo`, `getuserinfo`, `getuseropeninfo`.
//! A user is online while it has at least one authenticated connection
//! ([`Project::is_online`], also used by the groups area). Only the user sees its
//! private information (`pinfo`); others get the public part (`oinfo`) only.

use std::collections::HashMap;

use rmpv::Value;

use super::{int_array, obj, open_info, Args, Ctx, GateError, Info, Project, Route};

pub(super) const ROUTES: &[Route] = &[
    Route::user("getonlineusers", get_online),
    Route::user("setuserinfo", set_info),
    Route::user("getuserinfo", |p, ctx, _| {
        Ok(p.users_info
            .info
            .get(&ctx.uid)
            .unwrap_or(&Info::default())
            .both())
    }),
    Route::user("getuseropeninfo", get_open_info),
];

/// The users' information of one project; only users with a part other than `""` have
/// an entry.
#[derive(Debug, Default)]
pub(super) struct State {
    info: HashMap<i64, Info>,
}

impl Project {
    /// Has `uid` at least one authenticated connection?
    pub(super) fn is_online(&self, uid: i64) -> bool {
        self.conns(uid).next().is_some()
    }
}

/// `getonlineusers {uids}`: `{uids}`, those of `uids` online, in the request's order
/// without repeats; `uids` holds 1 to 100 ids (`Args::ids`: 200033 when empty, 200032
/// beyond).
fn get_online(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let mut uids = a.ids("uids")?;
    let mut seen = std::collections::BTreeSet::new();
    uids.retain(|&u| seen.insert(u) && p.is_online(u));
    Ok(obj([("uids", int_array(uids))]))
}

/// `setuserinfo {oinfo?, pinfo?}`: each part a str of at most 65,535 bytes (200030);
/// `""` clears it ([`Info::set`]).
fn set_info(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    Info::set(&mut p.users_info.info, ctx.uid, a)?;
    Ok(obj([]))
}

/// `getuseropeninfo {uids}`: `{info: {"uid": oinfo}}` for the users with public
/// information (an `oinfo` other than `""`); `uids` holds 1 to 100 ids (`Args::ids`).
fn get_open_info(p: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let ids = a.ids("uids")?;
    Ok(open_info(&ids, &p.users_info.info))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    #[test]
    fn online_users_and_user_info() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        let list = |ids: &[i64]| Value::Array(ids.iter().map(|&u| u.into()).collect());
        let on = g.ok(a, "getonlineusers", map! {"uids": list(&[C, B, A, B])});
        assert_eq!(int_list(field(&on, "uids")), [B, A]);
        g.s.disconnect(b, g.now);
        let on = g.ok(a, "getonlineusers", map! {"uids": list(&[B, A])});
        assert_eq!(int_list(field(&on, "uids")), [A]);
        assert_eq!(
            g.err(a, "getonlineusers", map! {"uids": list(&[])}),
            EMPTY_PARAMETER
        );

        assert_eq!(
            g.ok(a, "getuserinfo", map! {}),
            map! {"oinfo": "", "pinfo": ""}
        );
        g.ok(a, "setuserinfo", map! {"oinfo": "open", "pinfo": "private"});
        g.ok(a, "setuserinfo", map! {"pinfo": "p2"});
        assert_eq!(
            g.ok(a, "getuserinfo", map! {}),
            map! {"oinfo": "open", "pinfo": "p2"}
        );
        let c = g.login(C);
        let open = g.ok(c, "getuseropeninfo", map! {"uids": list(&[A, B])});
        assert_eq!(open, o([("info", o([("100", "open".into())]))]));
        let big = "x".repeat(65_536);
        assert_eq!(
            g.err(
                a,
                "setuserinfo",
                o([("oinfo", "new".into()), ("pinfo", big.into())])
            ),
            LARGE_MESSAGE_OR_ATTRS
        );
        assert_eq!(g.err(a, "setuserinfo", map! {"oinfo": 5}), EMPTY_PARAMETER);
        // A refused set changes neither part.
        assert_eq!(
            g.ok(a, "getuserinfo", map! {}),
            map! {"oinfo": "open", "pinfo": "p2"}
        );
        g.ok(a, "setuserinfo", o([("oinfo", "y".repeat(65_535).into())]));
    }
}
