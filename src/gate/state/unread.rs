//! The unread area: `getunread`, `cleanunread`, `getp2punread` and `getgroupunread`, and
//! each user's unread mark (moved by `cleanunread` and `getunread {clear: true}`). The
//! counts are read from the messages stored by `messages.rs`; the default `mtime` of the
//! counters is the user's last logout, kept by the core (`mod.rs`).

use std::collections::{BTreeSet, HashMap};

use rmpv::Value;

use super::messages::{Kind, Msg};
use super::{int, int_array, mtypes, obj, Args, Ctx, GateError, Mtypes, Project, Route};

pub(super) const ROUTES: &[Route] = &[
    Route::user("getunread", get_unread),
    // The only quest without keys: any payload will do.
    Route::user("cleanunread", |p, ctx, _| {
        let mark = p.mark(ctx.now);
        p.unread.clear(ctx.uid, mark);
        Ok(obj([]))
    }),
    Route::user("getp2punread", |p, ctx, a| unread_num(Kind::P2p, p, ctx, a)),
    Route::user("getgroupunread", |p, ctx, a| {
        unread_num(Kind::Group, p, ctx, a)
    }),
];

/// The mtypes the unread counters use when the caller names none: chat and file messages.
const UNREAD_MTYPES: std::ops::RangeInclusive<u8> = 30..=50;

/// The unread marks of one project.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Per uid: messages up to this mtime are read (for `getunread`).
    marks: HashMap<i64, i64>,
}

impl State {
    pub(super) fn clear(&mut self, uid: i64, t: i64) {
        self.marks.insert(uid, t);
    }
}

/// `getunread {clear?}`: peers and groups with a message from someone else after the mark
/// (any mtype; deleted messages do not count). With `clear`, answered first, then the mark
/// moves.
fn get_unread(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let uid = ctx.uid;
    let clear = a.opt("clear", Value::as_bool)?.unwrap_or(false);
    let mark = p.unread.marks.get(&uid).copied().unwrap_or(0);
    let fresh = |x: &Msg| x.from != uid && !x.deleted && x.mtime > mark;
    let (mut p2p, mut groups) = (BTreeSet::new(), BTreeSet::new());
    for (&(kind, a, _), log) in &p.messages.convs {
        let list = log.msgs();
        match kind {
            Kind::P2p => p2p.extend(
                list.iter()
                    .filter(|x| x.to == uid && fresh(x))
                    .map(|x| x.from),
            ),
            Kind::Group if p.groups.is_member(a, uid) && list.iter().any(fresh) => {
                groups.insert(a);
            }
            _ => {}
        }
    }
    if clear {
        let mark = p.mark(ctx.now);
        p.unread.clear(uid, mark);
    }
    Ok(obj([("p2p", int_array(p2p)), ("group", int_array(groups))]))
}

/// `getp2punread {uids, mtime?, mtypes?}` and `getgroupunread {gids, mtime?, mtypes?}`.
fn unread_num(kind: Kind, p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let uid = ctx.uid;
    let (list_key, out_key) = if kind == Kind::P2p {
        ("uids", "p2p")
    } else {
        ("gids", "group")
    };
    let targets: BTreeSet<i64> = a.ids(list_key)?.into_iter().collect();
    let window = Window::read(p, uid, a)?;
    let (mut counts, mut ltimes) = (Vec::new(), Vec::new());
    for id in targets {
        // A gid the caller is not a member of is skipped rather than failing the batch.
        if kind == Kind::Group && !p.groups.is_member(id, uid) {
            continue;
        }
        let msgs = p.messages.conv(&kind.conv(uid, id));
        let count = window.unread(uid, msgs);
        if let (true, Some(last)) = (count > 0, window.last(msgs)) {
            counts.push((Value::from(id), Value::from(count)));
            ltimes.push((Value::from(id), Value::from(last.mtime)));
        }
    }
    Ok(obj([
        (out_key, Value::Map(counts)),
        ("ltime", Value::Map(ltimes)),
    ]))
}

/// What the unread counters look at (`mtime?` and `mtypes?` of a quest): the live (not
/// deleted) messages of `mtypes` (missing or empty: 30..=50, Messages.md: "为空或undefined"),
/// unread when from someone else and strictly after `since` (missing: the caller's last
/// logout). The conversation lists (`conversations.rs`) count the same way.
pub(super) struct Window {
    since: i64,
    mtypes: Mtypes,
}

impl Window {
    /// Reads `mtime?` and `mtypes?` (200033 when mistyped) with their defaults for `uid`.
    pub(super) fn read(p: &Project, uid: i64, a: Args) -> Result<Window, GateError> {
        let since = a
            .opt("mtime", int)?
            .unwrap_or_else(|| p.users.get(&uid).map_or(0, |u| u.last_logout));
        let mtypes = a
            .opt("mtypes", mtypes)?
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| UNREAD_MTYPES.collect());
        Ok(Window { since, mtypes })
    }

    /// The messages of a conversation that count: not deleted, of the window's mtypes.
    fn live<'a>(&'a self, msgs: &'a [Msg]) -> impl DoubleEndedIterator<Item = &'a Msg> + Clone {
        msgs.iter()
            .filter(|x| !x.deleted && self.mtypes.contains(x.mtype))
    }

    /// How many of a conversation's messages are unread for `uid`. In a p2p conversation
    /// "not from the caller" is "from the peer to the caller".
    pub(super) fn unread(&self, uid: i64, msgs: &[Msg]) -> usize {
        self.live(msgs)
            .filter(|x| x.from != uid && x.mtime > self.since)
            .count()
    }

    /// The newest message of a conversation that counts (its `ltime`), whoever sent it.
    pub(super) fn last<'a>(&'a self, msgs: &'a [Msg]) -> Option<&'a Msg> {
        self.live(msgs).next_back()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    /// A long `mtypes` list (repeats, mtypes no message has) counts as its distinct
    /// mtypes do in the unread counts and the conversation lists (both use [`Window`]);
    /// all 256 mtypes count every live message.
    #[test]
    fn a_long_mtypes_list_counts_as_its_distinct_mtypes() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.group(b, 1, &[A, C]);
        for mid in 1..=30 {
            let mtype = [30, 51, 60][mid as usize % 3];
            g.now = 1_000 + mid;
            let from = if mid % 2 == 0 { b } else { c };
            g.send(from, "sendmsg", A, mid, mtype, "x".into())
                .answer
                .unwrap();
            g.send(from, "sendgroupmsg", 1, mid, mtype, "x".into())
                .answer
                .unwrap();
        }
        let types = |ts: &[i64]| Value::Array(ts.iter().map(|&t| t.into()).collect());
        let mut long = vec![0; 5_000];
        long.extend([60, 51, 60, 7, 51].repeat(60));
        long.extend(vec![255; 5_000]);
        let every: Vec<i64> = (0..=255).chain(0..=255).collect();
        let quests = [
            ("getp2punread", map! {"uids": types(&[B, C])}),
            ("getgroupunread", map! {"gids": types(&[1])}),
            ("getp2pconversationlist", map! {}),
            ("getgroupunreadconversationlist", map! {}),
            ("getunreadconversationlist", map! {}),
        ];
        for (method, payload) in quests {
            let mut ask = |ts: &[i64]| {
                let mut p = payload.as_map().unwrap().clone();
                p.push(("mtime".into(), 0.into()));
                p.push(("mtypes".into(), types(ts)));
                g.ok(a, method, Value::Map(p))
            };
            let short = ask(&[51, 60]);
            assert_eq!(ask(&long), short, "{method}");
            assert_ne!(ask(&[30]), short, "{method}");
            // Every mtype: the 30 messages of each conversation.
            assert_eq!(ask(&every), ask(&[30, 51, 60]), "{method}");
        }
        let u = g.ok(
            a,
            "getp2punread",
            map! {"uids": types(&[B, C]), "mtime": 0, "mtypes": types(&long)},
        );
        assert_eq!(int_map(field(&u, "p2p")), vec![(B, 10), (C, 10)]);
    }

    #[test]
    fn getunread_and_clear() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.group(b, 8, &[A]);
        g.group(b, 9, &[C]);
        g.sendp(b, A, 1, 30);
        g.sendp(c, A, 2, 51); // any mtype counts here
        g.sendp(a, C, 3, 30); // own messages are not unread
        g.post(b, "sendgroupmsg", 8, 4);
        g.post(c, "sendgroupmsg", 9, 5); // A is not a member
        let unread = |g: &mut Gate, conn, clear: Option<bool>| {
            let u = g.ok(conn, "getunread", o(clear.map(|c| ("clear", c.into()))));
            (int_list(field(&u, "p2p")), int_list(field(&u, "group")))
        };
        assert_eq!(unread(&mut g, a, None), (vec![B, C], vec![8]));
        assert_eq!(unread(&mut g, a, Some(false)), (vec![B, C], vec![8]));
        // clear: answered first, then the mark moves.
        assert_eq!(unread(&mut g, a, Some(true)), (vec![B, C], vec![8]));
        assert_eq!(unread(&mut g, a, None), (vec![], vec![]));
        g.now += 1;
        g.post(b, "sendgroupmsg", 8, 6);
        assert_eq!(unread(&mut g, a, None), (vec![], vec![8]));
        assert_eq!(unread(&mut g, b, None), (vec![], vec![9]));
        g.ok(a, "cleanunread", Value::Nil);
        assert_eq!(unread(&mut g, a, None), (vec![], vec![]));
        // A deleted message is not unread.
        g.now += 1;
        g.sendp(c, A, 7, 30);
        assert_eq!(unread(&mut g, a, None), (vec![C], vec![]));
        g.ok(c, "delmsg", map! {"from": C, "mid": 7, "xid": A, "type": 1});
        assert_eq!(unread(&mut g, a, None), (vec![], vec![]));
        assert_eq!(g.err(a, "getunread", map! {"clear": 1}), EMPTY_PARAMETER);
        assert_eq!(g.err(a, "getunread", Value::from("x")), EMPTY_PARAMETER);
    }

    /// A message stored in the same millisecond as the mark moves (`cleanunread`, a
    /// clear, a logout) is newer than the mark: it counts as unread.
    #[test]
    fn a_message_in_the_same_millisecond_as_the_mark_is_unread() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        let p2p = |g: &mut Gate, a| int_list(field(&g.ok(a, "getunread", o(None)), "p2p"));
        g.ok(a, "cleanunread", Value::Nil);
        let first = g.sendp(b, A, 1, 30);
        assert_eq!(p2p(&mut g, a), vec![B]);
        g.ok(a, "getunread", map! {"clear": true});
        let second = g.sendp(b, A, 2, 30);
        assert_eq!(p2p(&mut g, a), vec![B]);
        assert!(first > g.now && second > first, "{first} {second}");
        // `getp2punread` counts from the last logout by default.
        g.s.disconnect(a, g.now);
        g.sendp(b, A, 3, 30);
        let a = g.login(A);
        let u = g.ok(
            a,
            "getp2punread",
            o([("uids", vec![Value::from(B)].into())]),
        );
        assert_eq!(int_map(field(&u, "p2p")), vec![(B, 1)]);
    }

    #[test]
    fn p2p_unread_counts() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        let counts = |g: &mut Gate, extra: Vec<(&str, Value)>| {
            let mut p = vec![("uids", Value::Array(vec![B.into(), C.into(), 999.into()]))];
            p.extend(extra);
            let u = g.ok(a, "getp2punread", o(p));
            (int_map(field(&u, "p2p")), int_map(field(&u, "ltime")))
        };
        g.now = 100;
        g.sendp(b, A, 1, 30);
        g.now = 200;
        g.sendp(b, A, 2, 40);
        g.sendp(b, A, 3, 51); // outside the default mtypes
        g.sendp(c, A, 4, 29); // outside the default mtypes
        g.now = 300;
        g.sendp(a, B, 5, 30); // own: not counted, but it is the conversation's newest
        assert_eq!(counts(&mut g, vec![]), (vec![(B, 2)], vec![(B, 300)]));
        // Strictly after mtime.
        assert_eq!(
            counts(&mut g, vec![("mtime", 100.into())]),
            (vec![(B, 1)], vec![(B, 300)])
        );
        assert_eq!(
            counts(&mut g, vec![("mtime", 200.into())]),
            (vec![], vec![])
        );
        // Explicit mtypes; an empty list means the default.
        let types = Value::Array(vec![29.into(), 51.into()]);
        assert_eq!(
            counts(&mut g, vec![("mtypes", types)]),
            (vec![(B, 1), (C, 1)], vec![(B, 200), (C, 200)])
        );
        assert_eq!(
            counts(&mut g, vec![("mtypes", Value::Array(vec![]))]).0,
            vec![(B, 2)]
        );
        // Default mtime: the last logout (of the last connection).
        g.s.disconnect(a, 350);
        let a = g.login(A);
        g.now = 400;
        g.sendp(b, A, 6, 30);
        let u = g.ok(
            a,
            "getp2punread",
            map! {"uids": Value::Array(vec![B.into()])},
        );
        assert_eq!(
            (int_map(field(&u, "p2p")), int_map(field(&u, "ltime"))),
            (vec![(B, 1)], vec![(B, 400)])
        );
        // Deleted messages are not counted.
        g.ok(b, "delmsg", map! {"from": B, "mid": 6, "xid": A, "type": 1});
        let u = g.ok(
            a,
            "getp2punread",
            map! {"uids": Value::Array(vec![B.into()]), "mtime": 0},
        );
        assert_eq!(
            (int_map(field(&u, "p2p")), int_map(field(&u, "ltime"))),
            (vec![(B, 2)], vec![(B, 300)])
        );
        // Messages to oneself are one's own.
        g.sendp(a, A, 7, 30);
        let u = g.ok(
            a,
            "getp2punread",
            map! {"uids": Value::Array(vec![A.into()]), "mtime": 0},
        );
        assert_eq!(int_map(field(&u, "p2p")), vec![]);
        for bad in [
            map! {"uids": Value::Array(vec![])},
            map! {},
            map! {"uids": 5},
            map! {"uids": Value::Array(vec![B.into()]), "mtime": "x"},
        ] {
            assert_eq!(g.err(a, "getp2punread", bad), EMPTY_PARAMETER);
        }
    }

    #[test]
    fn group_unread_counts() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.group(a, 1, &[B]);
        g.group(b, 2, &[C]); // A is not a member: skipped
        g.now = 100;
        g.post(b, "sendgroupmsg", 1, 1);
        g.post(c, "sendgroupmsg", 2, 1);
        g.now = 200;
        g.post(a, "sendgroupmsg", 1, 2);
        g.send(b, "sendgroupmsg", 1, 3, 60, "x".into())
            .answer
            .unwrap();
        let gids = Value::Array(vec![1.into(), 2.into(), 3.into()]);
        let u = g.ok(a, "getgroupunread", map! {"gids": gids.clone()});
        assert_eq!(
            (int_map(field(&u, "group")), int_map(field(&u, "ltime"))),
            (vec![(1, 1)], vec![(1, 200)])
        );
        let u = g.ok(
            a,
            "getgroupunread",
            map! {"gids": gids.clone(), "mtime": 100},
        );
        assert_eq!(int_map(field(&u, "group")), vec![]);
        let u = g.ok(
            a,
            "getgroupunread",
            map! {"gids": gids.clone(), "mtypes": Value::Array(vec![30.into(), 60.into()])},
        );
        assert_eq!(
            (int_map(field(&u, "group")), int_map(field(&u, "ltime"))),
            (vec![(1, 2)], vec![(1, 200)])
        );
        let u = g.ok(b, "getgroupunread", map! {"gids": gids});
        assert_eq!(int_map(field(&u, "group")), vec![(1, 1), (2, 1)]);
        assert_eq!(
            g.err(a, "getgroupunread", map! {"gids": Value::Array(vec![])}),
            EMPTY_PARAMETER
        );
    }
}
