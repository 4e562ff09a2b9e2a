//! The conversations area: `getsession`, `removesession`, `setlang` and the five
//! conversation lists. Conversations are read from the messages stored by `messages.rs`;
//! unread counts use the window of `unread.rs` and rows the encoder of `history.rs`. This
//! area keeps the removed sessions only.
//!
//! Rules (docs/gate.md, "Conversations"):
//! - A p2p conversation is any peer with a stored message either way (oneself included);
//!   a group conversation is a group the caller is a member of with a stored message.
//! - `removesession {to}` hides the p2p conversation with `to` from `getsession` and the
//!   p2p lists until a message newer than the removal is stored in it; without such a
//!   conversation it is answered `{}` and stores nothing.
//! - `setlang {lang}` checks the language and answers `{}`, keeping nothing: the
//!   JavaScript docs' `setTranslationLanguage` sets the default target language of the
//!   service's automatic translation of incoming messages, which the gate does not do
//!   (pushes and history have no documented translated form), and `translate` takes its
//!   target language as a required argument (docs/gate.md, "Conversations").
//! - The lists count, per conversation, the live messages of `mtypes` (default 30..=50)
//!   from others after `mtime` (default: the last logout), like `getp2punread`; the last
//!   message is the newest live message of `mtypes`, whoever sent it. The "all" lists keep
//!   every conversation that has such a message, the unread lists only those with an
//!   unread count above 0. Newest conversation first.

use std::collections::{BTreeSet, HashMap};

use rmpv::Value;

use super::history::row;
use super::messages::{Kind, Msg};
use super::unread::Window;
use super::{int_array, obj, Args, Ctx, GateError, Project, Route};

pub(super) const ROUTES: &[Route] = &[
    Route::user("getsession", get_session),
    Route::user("removesession", remove_session),
    Route::user("setlang", set_lang),
    Route::user("getp2pconversationlist", |p, ctx, a| {
        list(Kind::P2p, All, p, ctx, a)
    }),
    Route::user("getp2punreadconversationlist", |p, ctx, a| {
        list(Kind::P2p, Unread, p, ctx, a)
    }),
    Route::user("getgroupconversationlist", |p, ctx, a| {
        list(Kind::Group, All, p, ctx, a)
    }),
    Route::user("getgroupunreadconversationlist", |p, ctx, a| {
        list(Kind::Group, Unread, p, ctx, a)
    }),
    Route::user("getunreadconversationlist", unread_lists),
];

/// The removed sessions of one project.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Per (uid, peer): the id of the conversation's newest message when `uid` removed
    /// the session; it stays hidden until a message with a greater id is stored. Only
    /// conversations that exist (have a stored message) get an entry.
    removed: HashMap<(i64, i64), i64>,
}

/// Which conversations a list keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// Every conversation with a message of the list's mtypes.
    All,
    /// Only those with an unread count above 0.
    Unread,
}
use Which::{All, Unread};

/// The conversations of `kind` that `uid` has, as (peer or gid, messages oldest first):
/// p2p ones not hidden by `removesession`, group ones of groups `uid` is a member of.
fn conversations(p: &Project, kind: Kind, uid: i64) -> Vec<(i64, &[Msg])> {
    p.messages
        .convs
        .iter()
        .filter_map(|(&(k, a, b), msgs)| {
            let id = match k {
                Kind::P2p if a == uid => b,
                Kind::P2p if b == uid => a,
                Kind::Group if p.groups.is_member(a, uid) => a,
                _ => return None,
            };
            (k == kind).then_some((id, msgs.msgs()))
        })
        .filter(|(id, msgs)| {
            let newest = msgs.last().map_or(0, |x| x.id);
            kind != Kind::P2p
                || p.conversations
                    .removed
                    .get(&(uid, *id))
                    .map_or(true, |&mark| newest > mark)
        })
        .collect()
}

/// `getsession {}`: `{p2p: [uid], group: [gid]}`, ascending.
fn get_session(p: &mut Project, ctx: &mut Ctx, _: Args) -> Result<Value, GateError> {
    let ids = |kind| -> BTreeSet<i64> {
        conversations(p, kind, ctx.uid)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    Ok(obj([
        ("p2p", int_array(ids(Kind::P2p))),
        ("group", int_array(ids(Kind::Group))),
    ]))
}

/// `removesession {to}`: hides the p2p session with `to` until its next message; `{}`.
/// Without a conversation with `to` there is nothing to hide: also `{}` (idempotent,
/// like `delmsg` of a missing message), and nothing is stored, so arbitrary ids do not
/// grow the state (a later first message shows the conversation either way).
fn remove_session(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let to = a.id("to")?;
    let newest = p.messages.conv(&Kind::P2p.conv(ctx.uid, to)).last();
    if let Some(newest) = newest {
        p.conversations.removed.insert((ctx.uid, to), newest.id);
    }
    Ok(obj([]))
}

/// `setlang {lang}`: `{}` for a language `translate` takes (`value_added::lang`, any
/// case) or `""` (the JavaScript SDK's "cancel"); anything else is 200050. Nothing is
/// kept: the language would only steer the service's automatic translation of incoming
/// messages, which the gate does not do, and `translate` never defaults to it (its `dst`
/// is required).
fn set_lang(_: &mut Project, _: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let lang = a.req("lang", Value::as_str)?;
    if !lang.is_empty() {
        super::value_added::lang(lang)?;
    }
    Ok(obj([]))
}

/// The list of `kind` for `uid`: `(conversations, unreads, msgs)` as msgpack arrays, the
/// newest conversation first.
fn list_of(p: &Project, kind: Kind, which: Which, uid: i64, w: &Window) -> [Value; 3] {
    let mut rows: Vec<(i64, usize, &Msg)> = conversations(p, kind, uid)
        .into_iter()
        .filter_map(|(id, msgs)| Some((id, w.unread(uid, msgs), w.last(msgs)?)))
        .filter(|&(_, unread, _)| which == All || unread > 0)
        .collect();
    rows.sort_by_key(|&(_, _, last)| std::cmp::Reverse(last.id));
    [
        int_array(rows.iter().map(|r| r.0)),
        Value::Array(rows.iter().map(|r| r.1.into()).collect()),
        Value::Array(rows.iter().map(|r| row(kind, uid, r.2)).collect()),
    ]
}

/// `get{p2p,group}[unread]conversationlist {mtime?, mtypes?}`:
/// `{conversations, unreads, msgs}`.
fn list(
    kind: Kind,
    which: Which,
    p: &mut Project,
    ctx: &mut Ctx,
    a: Args,
) -> Result<Value, GateError> {
    let w = Window::read(p, ctx.uid, a)?;
    let [c, u, m] = list_of(p, kind, which, ctx.uid, &w);
    Ok(obj([("conversations", c), ("unreads", u), ("msgs", m)]))
}

/// `getunreadconversationlist {clear?, mtime?, mtypes?}`: both unread lists; with
/// `clear`, answered first, then the unread mark moves (as `getunread`).
fn unread_lists(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let clear = a.opt("clear", Value::as_bool)?.unwrap_or(false);
    let w = Window::read(p, ctx.uid, a)?;
    let [gc, gu, gm] = list_of(p, Kind::Group, Unread, ctx.uid, &w);
    let [pc, pu, pm] = list_of(p, Kind::P2p, Unread, ctx.uid, &w);
    if clear {
        let mark = p.mark(ctx.now);
        p.unread.clear(ctx.uid, mark);
    }
    Ok(obj([
        ("groupConversations", gc),
        ("groupUnreads", gu),
        ("groupMsgs", gm),
        ("p2pConversations", pc),
        ("p2pUnreads", pu),
        ("p2pMsgs", pm),
    ]))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    /// (row id, row second element, row mtime).
    type RowSummary = (i64, i64, i64);

    /// `(conversations, unreads, rows)` of a list answer under the three `keys`.
    fn parts(v: &Value, keys: [&str; 3]) -> (Vec<i64>, Vec<i64>, Vec<RowSummary>) {
        let rows = field(v, keys[2])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let r = r.as_array().unwrap();
                assert_eq!(r.len(), 8);
                (
                    r[0].as_i64().unwrap(),
                    r[1].as_i64().unwrap(),
                    r[7].as_i64().unwrap(),
                )
            })
            .collect();
        (
            int_list(field(v, keys[0])),
            int_list(field(v, keys[1])),
            rows,
        )
    }

    const LIST: [&str; 3] = ["conversations", "unreads", "msgs"];

    fn session(g: &mut Gate, conn: ConnId) -> (Vec<i64>, Vec<i64>) {
        let s = g.ok(conn, "getsession", map! {});
        (int_list(field(&s, "p2p")), int_list(field(&s, "group")))
    }

    #[test]
    fn sessions_come_from_messages_and_removal_lasts_until_the_next_one() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        assert_eq!(session(&mut g, a), (vec![], vec![]));
        g.sendp(b, A, 1, 30);
        g.sendp(a, C, 2, 51); // any mtype, either direction
        g.sendp(b, C, 3, 30); // not A's
        g.group(b, 8, &[A]);
        g.group(b, 9, &[C]);
        g.post(b, "sendgroupmsg", 8, 4);
        g.post(c, "sendgroupmsg", 9, 5); // A is not a member
        g.group(a, 10, &[B]); // no messages: no conversation
        assert_eq!(session(&mut g, a), (vec![B, C], vec![8]));
        assert_eq!(session(&mut g, c), (vec![A, B], vec![9]));
        g.ok(a, "removesession", map! {"to": C});
        g.ok(a, "removesession", map! {"to": 12345}); // no such session: still {}
        assert_eq!(session(&mut g, a), (vec![B], vec![8]));
        assert_eq!(session(&mut g, c), (vec![A, B], vec![9])); // only for the caller
        g.sendp(c, A, 6, 30);
        assert_eq!(session(&mut g, a), (vec![B, C], vec![8]));
        // Leaving a group drops its conversation.
        g.ok(
            a,
            "delgroupmembers",
            map! {"gid": 8, "uids": Value::Array(vec![A.into()])},
        );
        assert_eq!(session(&mut g, a).1, Vec::<i64>::new());
        for bad in [map! {}, map! {"to": 0}, map! {"to": "x"}] {
            assert_eq!(g.err(a, "removesession", bad), EMPTY_PARAMETER);
        }
    }

    #[test]
    fn removesession_without_a_conversation_stores_nothing() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        let removed = |g: &Gate| g.s.projects[&PID].conversations.removed.len();
        // No conversation with these ids: answered {} (as for one that exists), but
        // nothing is kept, so arbitrary ids cannot grow the gate's memory.
        for to in [C, 12345, i64::MAX] {
            assert_eq!(g.ok(a, "removesession", map! {"to": to}), map! {});
        }
        assert_eq!(removed(&g), 0);
        // A message after such a removal shows the conversation, as without it.
        g.sendp(b, A, 1, 30);
        assert_eq!(session(&mut g, a), (vec![B], vec![]));
        // An existing conversation is hidden, and that is kept.
        g.ok(a, "removesession", map! {"to": B});
        assert_eq!(removed(&g), 1);
        assert_eq!(session(&mut g, a), (vec![], vec![]));
    }

    #[test]
    fn setlang_checks_the_language_but_stores_nothing_translate_would_use() {
        let mut g = Gate::new();
        let a = g.login(A);
        let empty = format!("{:?}", super::State::default());
        g.ok(a, "setlang", map! {"lang": "de"});
        // The JavaScript docs give setLang no effect the gate can honour (translate's
        // target language is required; pushes have no translated form), so nothing is
        // kept for it.
        assert_eq!(format!("{:?}", g.s.projects[&PID].conversations), empty);
        let t = g.ok(a, "translate", map! {"text": "hello", "dst": "fr"});
        assert_eq!(field(&t, "target"), &Value::from("fr"));
        assert_eq!(
            g.err(a, "translate", map! {"text": "hello"}),
            EMPTY_PARAMETER
        );
    }

    #[test]
    fn setlang_accepts_the_listed_languages_and_empty() {
        let mut g = Gate::new();
        let a = g.login(A);
        for lang in ["en", "zh-cn", "ZH-TW", ""] {
            assert_eq!(g.ok(a, "setlang", map! {"lang": lang}), map! {}, "{lang}");
        }
        let e = g
            .q(a, "setlang", map! {"lang": "klingon"})
            .answer
            .unwrap_err();
        assert_eq!(e.code, 200050);
        assert!(e.ex.contains("klingon"), "{}", e.ex);
        assert_eq!(g.err(a, "setlang", map! {}), EMPTY_PARAMETER);
        assert_eq!(g.err(a, "setlang", map! {"lang": 5}), EMPTY_PARAMETER);
    }

    #[test]
    fn p2p_lists_count_unread_and_order_newest_first() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.now = 100;
        let b1 = g.sendp(b, A, 1, 30);
        g.now = 200;
        g.sendp(c, A, 2, 30);
        g.sendp(c, A, 3, 41);
        g.sendp(c, A, 4, 60); // outside the default mtypes
        g.now = 300;
        g.sendp(a, B, 5, 30); // own: not unread, but B's conversation is now the newest
        let all = g.ok(a, "getp2pconversationlist", map! {});
        let (ids, unreads, rows) = parts(&all, LIST);
        assert_eq!((ids, unreads), (vec![B, C], vec![1, 2]));
        // Last message: the newest of the mtypes, whoever sent it (direction 1 = own).
        assert_eq!((rows[0].1, rows[0].2), (1, 300));
        assert_eq!((rows[1].1, rows[1].2), (2, 200));
        let unread = g.ok(a, "getp2punreadconversationlist", map! {"mtime": b1});
        let (ids, unreads, _) = parts(&unread, LIST);
        assert_eq!((ids, unreads), (vec![C], vec![2])); // B's one message is not after b1
        let all = g.ok(a, "getp2pconversationlist", map! {"mtime": b1});
        assert_eq!(parts(&all, LIST).1, vec![0, 2]); // B stays, with 0
        let types = Value::Array(vec![60.into()]);
        let only60 = g.ok(a, "getp2pconversationlist", map! {"mtypes": types});
        assert_eq!(parts(&only60, LIST).0, vec![C]);
        // Default mtime: the last logout.
        g.s.disconnect(a, 350);
        let a = g.login(A);
        g.now = 400;
        g.sendp(b, A, 6, 30);
        let unread = g.ok(a, "getp2punreadconversationlist", map! {});
        let (ids, unreads, _) = parts(&unread, LIST);
        assert_eq!((ids, unreads), (vec![B], vec![1]));
        // Deleted messages neither count nor are the last message.
        g.ok(b, "delmsg", map! {"from": B, "mid": 6, "xid": A, "type": 1});
        let unread = g.ok(a, "getp2punreadconversationlist", map! {});
        assert_eq!(parts(&unread, LIST).0, Vec::<i64>::new());
        // A removed session is left out of the lists too.
        g.ok(a, "removesession", map! {"to": C});
        let all = g.ok(a, "getp2pconversationlist", map! {"mtime": 0});
        assert_eq!(parts(&all, LIST).0, vec![B]);
        let bad = map! {"mtypes": Value::Array(vec![300.into()])};
        assert_eq!(g.err(a, "getp2pconversationlist", bad), EMPTY_PARAMETER);
        assert_eq!(
            g.err(a, "getgroupunreadconversationlist", map! {"mtime": "x"}),
            EMPTY_PARAMETER
        );
    }

    #[test]
    fn group_lists_and_the_combined_unread_list_with_clear() {
        let mut g = Gate::new();
        let (a, b, c) = (g.login(A), g.login(B), g.login(C));
        g.group(a, 1, &[B]);
        g.group(a, 2, &[C]);
        g.group(b, 3, &[C]); // A is not a member
        g.now = 100;
        g.post(b, "sendgroupmsg", 1, 1);
        g.post(b, "sendgroupmsg", 1, 2);
        g.post(c, "sendgroupmsg", 3, 3);
        g.now = 200;
        g.post(a, "sendgroupmsg", 2, 4); // own only
        g.now = 300;
        g.sendp(c, A, 5, 30);
        let all = g.ok(a, "getgroupconversationlist", map! {});
        let (ids, unreads, rows) = parts(&all, LIST);
        assert_eq!((ids, unreads), (vec![2, 1], vec![0, 2]));
        assert_eq!((rows[0].1, rows[1].1), (A, B)); // group rows carry `from`
        let unread = g.ok(a, "getgroupunreadconversationlist", map! {});
        assert_eq!(parts(&unread, LIST).0, vec![1]);
        let keys = |k: &str| {
            [
                format!("{k}Conversations"),
                format!("{k}Unreads"),
                format!("{k}Msgs"),
            ]
        };
        let both = |g: &mut Gate, clear: bool| {
            let v = g.ok(a, "getunreadconversationlist", map! {"clear": clear});
            let (gk, pk) = (keys("group"), keys("p2p"));
            let gp = parts(&v, [&gk[0], &gk[1], &gk[2]]);
            let pp = parts(&v, [&pk[0], &pk[1], &pk[2]]);
            ((gp.0, gp.1), (pp.0, pp.1))
        };
        let want = ((vec![1], vec![2]), (vec![C], vec![1]));
        assert_eq!(both(&mut g, false), want);
        let unread = |g: &mut Gate| {
            let u = g.ok(a, "getunread", map! {});
            (int_list(field(&u, "p2p")), int_list(field(&u, "group")))
        };
        assert_eq!(unread(&mut g), (vec![C], vec![1]));
        // clear: answered first, then the unread mark of getunread moves.
        assert_eq!(both(&mut g, true), want);
        assert_eq!(unread(&mut g), (vec![], vec![]));
        assert_eq!(
            g.err(a, "getunreadconversationlist", map! {"clear": 1}),
            EMPTY_PARAMETER
        );
    }
}
