//! The friends area: `addfriends`, `delfriends`, `getfriends`, `addblacks`, `delblacks`,
//! `getblacks`, and the blacklist check of p2p sends ([`State::check_send`], called by
//! the messages area's `Project::may_send`, for sends and file tokens).
//!
//! Both lists belong to their owner only: adding B to A's friends does not add A to B's,
//! and A blocking B changes nothing for B's lists. A block stops p2p messages from the
//! blocked user to the owner (200021); the owner can still send to the blocked user, and
//! both still read their history. 1 to 100 uids per add or delete (the one rule of every
//! id list, `Args::ids`: 200033 when empty, 200032 beyond).

use rmpv::Value;

use super::{int_array, obj, Args, Ctx, GateError, Members, Project, Route, PERMISSION_DENIED};

pub(super) const ROUTES: &[Route] = &[
    Route::user("addfriends", |p, ctx, a| {
        edit(&mut p.friends.friends, ctx, a, "friends", Members::add)
    }),
    Route::user("delfriends", |p, ctx, a| {
        edit(&mut p.friends.friends, ctx, a, "friends", remove)
    }),
    Route::user("getfriends", |p, ctx, _| Ok(list(&p.friends.friends, ctx))),
    Route::user("addblacks", |p, ctx, a| {
        edit(&mut p.friends.blacks, ctx, a, "blacks", Members::add)
    }),
    Route::user("delblacks", |p, ctx, a| {
        edit(&mut p.friends.blacks, ctx, a, "blacks", remove)
    }),
    Route::user("getblacks", |p, ctx, _| Ok(list(&p.friends.blacks, ctx))),
];

/// The friend lists and blacklists of one project, by owner uid.
#[derive(Debug, Default)]
pub(super) struct State {
    friends: Members,
    blacks: Members,
}

impl State {
    /// The send hook: may `from` send a p2p message to `to`? Not when `to` blocked `from`
    /// (200021).
    pub(super) fn check_send(&self, from: i64, to: i64) -> Result<(), GateError> {
        if self.blacks.contains(to, from) {
            return Err(GateError::new(
                PERMISSION_DENIED,
                "the receiver has blocked the sender",
            ));
        }
        Ok(())
    }
}

fn remove(list: &mut Members, owner: i64, uids: Vec<i64>) {
    list.remove(owner, &uids);
}

/// `add*`/`del*` `{friends|blacks}`: 1 to 100 positive uids, applied to the
/// caller's list; answers `{}`.
fn edit(
    lists: &mut Members,
    ctx: &Ctx,
    a: Args,
    key: &str,
    f: fn(&mut Members, i64, Vec<i64>),
) -> Result<Value, GateError> {
    let uids = a.ids(key)?;
    f(lists, ctx.uid, uids);
    Ok(obj([]))
}

/// `get*`: `{uids}`, the caller's list in uid order.
fn list(lists: &Members, ctx: &Ctx) -> Value {
    obj([("uids", int_array(lists.of(ctx.uid)))])
}

impl Project {
    /// Used by the unit tests of other areas: does `owner` block `other`?
    #[cfg(test)]
    pub(super) fn blocks(&self, owner: i64, other: i64) -> bool {
        self.friends.blacks.contains(owner, other)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    fn uids(ids: &[i64]) -> Value {
        Value::Array(ids.iter().map(|&u| u.into()).collect())
    }

    #[test]
    fn friend_lists_belong_to_their_owner() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.ok(a, "addfriends", map! {"friends": uids(&[C, B])});
        g.ok(a, "addfriends", map! {"friends": uids(&[B])});
        assert_eq!(
            int_list(field(&g.ok(a, "getfriends", map! {}), "uids")),
            [B, C]
        );
        assert_eq!(
            int_list(field(&g.ok(b, "getfriends", map! {}), "uids")),
            [0; 0]
        );
        g.ok(a, "delfriends", map! {"friends": uids(&[B, 999])});
        assert_eq!(
            int_list(field(&g.ok(a, "getfriends", map! {}), "uids")),
            [C]
        );
        let many: Vec<i64> = (1..=101).collect();
        for m in ["addfriends", "delfriends"] {
            assert_eq!(g.err(a, m, map! {"friends": uids(&many)}), TOO_MANY_ITEMS);
            assert_eq!(g.err(a, m, map! {"friends": uids(&[])}), EMPTY_PARAMETER);
            assert_eq!(g.err(a, m, map! {"friends": uids(&[0])}), EMPTY_PARAMETER);
        }
        g.ok(a, "addfriends", map! {"friends": uids(&many[..100])});
        assert_eq!(
            field(&g.ok(a, "getfriends", map! {}), "uids")
                .as_array()
                .unwrap()
                .len(),
            101
        );
    }

    #[test]
    fn a_block_stops_p2p_sends_to_the_owner_only() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.post(b, "sendmsg", A, 1);
        g.ok(a, "addblacks", map! {"blacks": uids(&[B])});
        assert!(g.s.projects[&PID].blocks(A, B));
        assert_eq!(int_list(field(&g.ok(a, "getblacks", map! {}), "uids")), [B]);
        assert_eq!(
            int_list(field(&g.ok(b, "getblacks", map! {}), "uids")),
            [0; 0]
        );
        assert_eq!(g.send_code(b, "sendmsg", A, 2), PERMISSION_DENIED);
        // A resend of a message sent before the block still gets its first answer.
        g.post(b, "sendmsg", A, 1);
        // The owner can still send, and both still read the conversation.
        assert!(!g.post(a, "sendmsg", B, 3).pushes.is_empty());
        let h = g.history(b, "getp2pmsg", vec![("target", A.into())]);
        assert_eq!(num(&h, "num"), 2);
        // Group messages are not affected.
        g.group(a, 9, &[B]);
        g.post(b, "sendgroupmsg", 9, 4);
        g.ok(a, "delblacks", map! {"blacks": uids(&[B])});
        g.post(b, "sendmsg", A, 5);
        assert_eq!(
            g.err(a, "addblacks", map! {"blacks": uids(&[1; 101])}),
            TOO_MANY_ITEMS
        );
        assert_eq!(g.err(a, "delblacks", map! {}), EMPTY_PARAMETER);
    }
}
