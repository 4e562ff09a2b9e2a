//! The session and conversation methods (docs/Conversations.md) through the client
//! against the local gate: sessions from stored messages and their removal, the
//! translation language, the four conversation lists (unread counts, last messages,
//! newest first, `mtime`/`mtypes` and their defaults) and the combined unread list with
//! `clear`.
#![cfg(feature = "gate")]

mod msg_common;

use msg_common::*;
use rmpv::Value;
use rtm_client::gate::Gate;
use rtm_client::{blocking, error_code, RtmClient, Session};

/// A third group id, above 2^32.
const GID3: i64 = (1 << 35) + 5003;

fn world() -> (Gate, RtmClient, RtmClient, RtmClient) {
    let gate = gate();
    let (a, b, c) = (
        logged_in(&gate, A),
        logged_in(&gate, B),
        logged_in(&gate, C),
    );
    (gate, a, b, c)
}

fn session(c: &RtmClient) -> Session {
    blocking(|cb| c.get_session(0, cb)).unwrap()
}

#[test]
fn get_session_lists_the_peers_and_groups_with_messages() {
    let (gate, a, b, c) = world();
    assert_eq!(session(&a), Session::default());
    send(&b, To::P2p(A), 30, "to a", 0).unwrap();
    send(&a, To::P2p(C), 32, "from a", 0).unwrap(); // either direction, any mtype
    send(&b, To::P2p(C), 30, "not a's", 0).unwrap();
    group(&b, GID, &[A]);
    group(&c, GID2, &[A]); // no message: no conversation
    send(&b, To::Group(GID), 30, "g", 0).unwrap();
    gate.clear_quest_log();
    let want = Session {
        p2p: vec![B, C],
        group: vec![GID],
    };
    assert_eq!(session(&a), want);
    assert_eq!(keys(&gate.received("getsession")[0]), Vec::<String>::new());
    // Ascending ids: B < A.
    assert_eq!(session(&c).p2p, vec![B, A]);
    assert!(session(&c).group.is_empty());
}

#[test]
fn remove_session_hides_it_until_the_next_message() {
    let (gate, a, b, c) = world();
    send(&b, To::P2p(A), 30, "b", 0).unwrap();
    send(&c, To::P2p(A), 30, "c", 0).unwrap();
    assert_eq!(session(&a).p2p, vec![B, C]);
    gate.clear_quest_log();
    blocking(|cb| a.remove_session(C, 0, cb)).unwrap();
    let q = gate.received("removesession");
    assert_eq!((keys(&q[0]), int(&q[0], "to")), (vec!["to".to_owned()], C));
    assert_eq!(session(&a).p2p, vec![B]);
    assert_eq!(session(&c).p2p, vec![A]); // only the caller's session
                                          // Removing a session that does not exist is fine; a bad uid is the gate's 200033.
    blocking(|cb| a.remove_session(C + 1, 0, cb)).unwrap();
    let e = blocking(|cb| a.remove_session(0, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    // It is also left out of the p2p conversation list...
    let l = blocking(|cb| a.get_p2p_conversation_list(Some(0), None, 0, cb)).unwrap();
    assert_eq!(l.conversations, vec![B]);
    // ...until a new message arrives, from either side.
    send(&a, To::P2p(C), 30, "again", 0).unwrap();
    assert_eq!(session(&a).p2p, vec![B, C]);
}

#[test]
fn set_translation_language_accepts_supported_languages_and_empty() {
    let (gate, a, _b, _c) = world();
    for lang in ["en", "zh-cn", ""] {
        blocking(|cb| a.set_translation_language(lang, 0, cb)).unwrap();
    }
    let sent: Vec<Value> = gate
        .received("setlang")
        .iter()
        .map(|q| field(q, "lang").clone())
        .collect();
    assert_eq!(sent, vec!["en".into(), "zh-cn".into(), "".into()]);
    let e = blocking(|cb| a.set_translation_language("klingon", 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_UNSUPPORTED_LANGUAGE);
}

#[test]
fn p2p_conversation_lists_count_unread_and_keep_the_last_message() {
    let (gate, a, b, c) = world();
    let t1 = send(&b, To::P2p(A), 30, "b1", 0).unwrap().payload.mtime;
    wait_past_ms(t1);
    send(&c, To::P2p(A), 30, "c1", 0).unwrap();
    send(&c, To::P2p(A), 41, "c2", 0).unwrap();
    send(&c, To::P2p(A), 60, "c3", 0).unwrap(); // outside the default mtypes
    send(&a, To::P2p(B), 30, "a1", 0).unwrap(); // own: B's conversation is now the newest
    gate.clear_quest_log();

    let all = blocking(|cb| a.get_p2p_conversation_list(Some(0), None, 0, cb)).unwrap();
    assert_eq!(
        (&all.conversations, &all.unreads),
        (&vec![B, C], &vec![1, 2])
    );
    let last: Vec<(u8, u8, Option<&str>)> = all
        .msgs
        .iter()
        .map(|m| (m.direction, m.mtype, m.msg.as_deref()))
        .collect();
    assert_eq!(last, vec![(1, 30, Some("a1")), (2, 41, Some("c2"))]);
    let entries: Vec<(i64, i32, i64)> = all.iter().map(|e| (e.id, e.unread, e.msg.id)).collect();
    assert_eq!(
        entries,
        vec![(B, 1, all.msgs[0].id), (C, 2, all.msgs[1].id)]
    );
    let q = gate.received("getp2pconversationlist");
    assert_eq!(
        (keys(&q[0]), int(&q[0], "mtime")),
        (vec!["mtime".to_owned()], 0)
    );

    // Unread means strictly after mtime; the unread list keeps only unread > 0.
    let all = blocking(|cb| a.get_p2p_conversation_list(Some(t1), None, 0, cb)).unwrap();
    assert_eq!((all.conversations, all.unreads), (vec![B, C], vec![0, 2]));
    let unread = blocking(|cb| a.get_p2p_unread_conversation_list(Some(t1), None, 0, cb)).unwrap();
    assert_eq!((unread.conversations, unread.unreads), (vec![C], vec![2]));
    assert_eq!(unread.msgs[0].msg.as_deref(), Some("c2"));

    // Explicit mtypes.
    let only60 = blocking(|cb| a.get_p2p_conversation_list(Some(0), Some(&[60]), 0, cb)).unwrap();
    assert_eq!((only60.conversations, only60.unreads), (vec![C], vec![1]));
    assert_eq!(only60.msgs[0].msg.as_deref(), Some("c3"));
    let q = gate.received("getp2pconversationlist");
    assert_eq!(
        field(q.last().unwrap(), "mtypes"),
        &Value::Array(vec![60.into()])
    );

    // Without mtime: unread since the last logout.
    go_offline(&gate, &a, A);
    let a = logged_in(&gate, A);
    send(&c, To::P2p(A), 31, "c4", 0).unwrap();
    gate.clear_quest_log();
    let unread = blocking(|cb| a.get_p2p_unread_conversation_list(None, None, 0, cb)).unwrap();
    assert_eq!((unread.conversations, unread.unreads), (vec![C], vec![1]));
    assert_eq!(unread.msgs[0].msg.as_deref(), Some("c4"));
    assert!(keys(&gate.received("getp2punreadconversationlist")[0]).is_empty());
}

#[test]
fn group_conversation_lists_use_membership_and_from() {
    let (_gate, a, b, c) = world();
    group(&a, GID, &[B]);
    group(&a, GID2, &[C]);
    group(&b, GID3, &[C]); // a group A is not in
    send(&b, To::Group(GID), 30, "b1", 0).unwrap();
    send(&b, To::Group(GID), 31, "b2", 0).unwrap();
    send(&c, To::Group(GID3), 30, "not for a", 0).unwrap();
    send(&a, To::Group(GID2), 30, "own", 0).unwrap();

    let all = blocking(|cb| a.get_group_conversation_list(Some(0), None, 0, cb)).unwrap();
    assert_eq!(
        (&all.conversations, &all.unreads),
        (&vec![GID2, GID], &vec![0, 2])
    );
    let last: Vec<(i64, Option<&str>)> = all
        .msgs
        .iter()
        .map(|m| (m.from, m.msg.as_deref()))
        .collect();
    assert_eq!(last, vec![(A, Some("own")), (B, Some("b2"))]);

    let unread = blocking(|cb| a.get_group_unread_conversation_list(Some(0), None, 0, cb)).unwrap();
    assert_eq!((unread.conversations, unread.unreads), (vec![GID], vec![2]));
    let only31 =
        blocking(|cb| a.get_group_unread_conversation_list(Some(0), Some(&[31]), 0, cb)).unwrap();
    assert_eq!((only31.unreads, only31.msgs[0].mtype), (vec![1], 31));
    // Leaving the group drops its conversation.
    blocking(|cb| b.delete_group_members(GID, &[A], 0, cb)).unwrap();
    let all = blocking(|cb| a.get_group_conversation_list(Some(0), None, 0, cb)).unwrap();
    assert_eq!(all.conversations, vec![GID2]);
}

#[test]
fn unread_conversation_list_has_both_kinds_and_clear_moves_the_unread_mark() {
    let (gate, a, b, _c) = world();
    group(&a, GID, &[B]);
    send(&b, To::P2p(A), 30, "p", 0).unwrap();
    send(&b, To::Group(GID), 32, "g", 0).unwrap();
    gate.clear_quest_log();
    let check = |clear: Option<bool>| {
        let u = blocking(|cb| a.get_unread_conversation_list(clear, Some(0), None, 0, cb)).unwrap();
        assert_eq!(
            (&u.group.conversations, &u.group.unreads),
            (&vec![GID], &vec![1])
        );
        assert_eq!((u.group.msgs[0].from, u.group.msgs[0].mtype), (B, 32));
        assert_eq!((&u.p2p.conversations, &u.p2p.unreads), (&vec![B], &vec![1]));
        assert_eq!(u.p2p.msgs[0].direction, 2);
    };
    check(None);
    check(Some(false));
    let unread = blocking(|cb| a.get_unread_message(false, 0, cb)).unwrap();
    assert_eq!((unread.p2p, unread.group), (vec![B], vec![GID]));
    // clear: answered first, then getunread's mark moves.
    check(Some(true));
    let unread = blocking(|cb| a.get_unread_message(false, 0, cb)).unwrap();
    assert_eq!((unread.p2p, unread.group), (vec![], vec![]));
    let sent: Vec<Vec<String>> = gate
        .received("getunreadconversationlist")
        .iter()
        .map(keys)
        .collect();
    assert_eq!(sent[0], ["mtime"]);
    assert_eq!(sent[1], ["clear", "mtime"]);
}

#[test]
fn every_method_reports_a_closed_client_through_its_callback() {
    let gate = gate();
    let a = logged_in(&gate, A);
    a.close();
    let closed = error_code::FPNN_EC_CORE_INVALID_CONNECTION;
    let code = |e: rtm_client::RtmError| e.code;
    assert_eq!(
        blocking(|cb| a.get_session(0, cb)).map_err(code),
        Err(closed)
    );
    assert_eq!(
        blocking(|cb| a.remove_session(B, 0, cb)).map_err(code),
        Err(closed)
    );
    assert_eq!(
        blocking(|cb| a.set_translation_language("en", 0, cb)).map_err(code),
        Err(closed)
    );
    let e = blocking(|cb| a.get_p2p_conversation_list(None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, closed);
    let e = blocking(|cb| a.get_p2p_unread_conversation_list(None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, closed);
    let e = blocking(|cb| a.get_group_conversation_list(None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, closed);
    let e = blocking(|cb| a.get_group_unread_conversation_list(None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, closed);
    let e =
        blocking(|cb| a.get_unread_conversation_list(Some(true), None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, closed);
}

/// The local gate's translation language codes are one set: a language `translate`
/// accepts and answers with (`source` "zh-CN" for a Chinese text, the casing the
/// JavaScript SDK's own test passes) must be accepted by `setlang` too. Today `setlang`
/// knows only lower-case "zh-cn"/"zh-tw", so feeding `translate`'s `source` back into
/// `set_translation_language` fails with 200050, and a ported
/// `setTranslationLanguage('zh-CN')` is refused.
#[test]
fn set_translation_language_accepts_the_languages_translate_answers_with() {
    let (_gate, a, _b, _c) = world();
    let t = blocking(|cb| a.translate("你好", None, "en", None, None, 0, cb)).unwrap();
    assert_eq!(t.source, "zh-CN");
    let r = blocking(|cb| a.set_translation_language(&t.source, 0, cb));
    assert!(
        r.is_ok(),
        "setlang {:?} after translate answered it: {r:?}",
        t.source
    );
    let r = blocking(|cb| a.set_translation_language("zh-TW", 0, cb));
    assert!(r.is_ok(), "setlang zh-TW: {r:?}");
}
