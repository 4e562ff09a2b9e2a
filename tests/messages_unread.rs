//! The unread methods through the client against the local gate:
//! get_p2p_unread_message_num, get_group_unread_message_num,
//! get_unread_message and clean_unread_message.
#![cfg(feature = "gate")]

mod msg_common;

use std::collections::HashMap;

use msg_common::*;
use rmpv::Value;
use rtm_client::{blocking, GroupUnreadNum, P2PUnreadNum, RtmClient, UnreadMessage};

fn p2p_unread(
    c: &RtmClient,
    uids: &[i64],
    mtime: Option<i64>,
    mtypes: Option<&[u8]>,
) -> P2PUnreadNum {
    blocking(|cb| c.get_p2p_unread_message_num(uids, mtime, mtypes, 0, cb)).expect("getp2punread")
}

fn group_unread(
    c: &RtmClient,
    gids: &[i64],
    mtime: Option<i64>,
    mtypes: Option<&[u8]>,
) -> GroupUnreadNum {
    blocking(|cb| c.get_group_unread_message_num(gids, mtime, mtypes, 0, cb))
        .expect("getgroupunread")
}

fn unread(c: &RtmClient, clear: bool) -> UnreadMessage {
    blocking(|cb| c.get_unread_message(clear, 0, cb)).expect("getunread")
}

fn counts(pairs: &[(i64, i32)]) -> HashMap<i64, i32> {
    pairs.iter().copied().collect()
}

/// Sends and returns the mtime; then waits until the wall clock is past it,
/// so that the next message is strictly later.
fn send_then_tick(c: &RtmClient, to: To, mtype: u8, msg: &str) -> i64 {
    let t = send(c, to, mtype, msg, 0).expect("send").payload.mtime;
    wait_past_ms(t);
    t
}

#[test]
fn p2p_unread_counts_messages_strictly_after_mtime() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let c = logged_in(&gate, C);
    let b = logged_in(&gate, B);
    let t1 = send_then_tick(&a, To::P2p(B), 30, "a1");
    let t2 = send_then_tick(&a, To::P2p(B), 30, "a2");
    let t3 = send_then_tick(&a, To::P2p(B), 31, "a3");
    let tc = send_then_tick(&c, To::P2p(B), 30, "c1");
    // B's own messages to A are not counted (but are part of the
    // conversation's ltime).
    let tb = send_then_tick(&b, To::P2p(A), 30, "b1");

    let r = p2p_unread(&b, &[A, C], Some(0), None);
    assert_eq!(r.p2p, counts(&[(A, 3), (C, 1)]));
    assert_eq!(r.ltime, HashMap::from([(A, tb), (C, tc)]));
    // Strictly after: the message at t1 itself is not counted.
    let r = p2p_unread(&b, &[A, C], Some(t1), None);
    assert_eq!(r.p2p, counts(&[(A, 2), (C, 1)]));
    let r = p2p_unread(&b, &[A, C], Some(t2), None);
    assert_eq!(r.p2p, counts(&[(A, 1), (C, 1)]));
    // Peers with nothing newer are left out.
    let r = p2p_unread(&b, &[A, C], Some(t3), None);
    assert_eq!(r.p2p, counts(&[(C, 1)]));
    assert_eq!(r.ltime, HashMap::from([(C, tc)]));
    let r = p2p_unread(&b, &[A, C], Some(tc), None);
    assert!(r.p2p.is_empty() && r.ltime.is_empty(), "{r:?}");
    // mtypes filter.
    let r = p2p_unread(&b, &[A, C], Some(0), Some(&[31]));
    assert_eq!(r.p2p, counts(&[(A, 1)]));
    assert_eq!(r.ltime, HashMap::from([(A, t3)]));
    // A's view: B's one message counts, A's own do not.
    let r = p2p_unread(&a, &[B], Some(0), None);
    assert_eq!(r.p2p, counts(&[(B, 1)]));
}

#[test]
fn p2p_unread_defaults_to_since_the_last_logout_and_skips_own_messages() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    // Before B's logout: not unread by default.
    send(&a, To::P2p(B), 30, "before", 0).unwrap();
    go_offline(&gate, &b, B);
    send(&a, To::P2p(B), 30, "while away 1", 0).unwrap();
    send(&a, To::P2p(B), 30, "while away 2", 0).unwrap();
    let app = send(&a, To::P2p(B), 51, "not a chat type", 0).unwrap();
    login(&b, B);
    let own = send(&b, To::P2p(A), 30, "back", 0).unwrap();

    let r = p2p_unread(&b, &[A], None, None);
    assert_eq!(
        r.p2p,
        counts(&[(A, 2)]),
        "since the logout, chat types only"
    );
    assert_eq!(r.ltime, HashMap::from([(A, own.payload.mtime)]));
    let r = p2p_unread(&b, &[A], None, Some(&[51]));
    assert_eq!(r.p2p, counts(&[(A, 1)]));
    assert_eq!(r.ltime, HashMap::from([(A, app.payload.mtime)]));
    let r = p2p_unread(&b, &[A], Some(0), None);
    assert_eq!(r.p2p, counts(&[(A, 3)]), "mtime 0: everything");
}

#[test]
fn group_unread_counts_only_other_members_messages() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    let c = logged_in(&gate, C);
    group(&a, GID, &[B, C]);
    group(&a, GID2, &[B]);
    send(&a, To::Group(GID), 30, "before", 0).unwrap();
    go_offline(&gate, &b, B);
    let t1 = send_then_tick(&a, To::Group(GID), 30, "a1");
    send_then_tick(&c, To::Group(GID), 30, "c1");
    send_then_tick(&a, To::Group(GID), 32, "a2");
    let app = send_then_tick(&a, To::Group(GID2), 51, "app");
    login(&b, B);
    let own = send(&b, To::Group(GID), 30, "mine", 0).unwrap();

    // Default: since B's logout, chat types, others' messages only.
    let r = group_unread(&b, &[GID, GID2], None, None);
    assert_eq!(r.group, counts(&[(GID, 3)]));
    assert_eq!(r.ltime, HashMap::from([(GID, own.payload.mtime)]));
    // Strictly after t1.
    let r = group_unread(&b, &[GID, GID2], Some(t1), None);
    assert_eq!(r.group, counts(&[(GID, 2)]));
    let r = group_unread(&b, &[GID, GID2], Some(0), None);
    assert_eq!(r.group, counts(&[(GID, 4)]));
    let r = group_unread(&b, &[GID, GID2], Some(0), Some(&[51]));
    assert_eq!(r.group, counts(&[(GID2, 1)]));
    assert_eq!(r.ltime, HashMap::from([(GID2, app)]));
    // A's view: only B's and C's messages.
    let r = group_unread(&a, &[GID], Some(0), None);
    assert_eq!(r.group, counts(&[(GID, 2)]));
}

#[test]
fn unread_message_lists_peers_and_groups_after_an_offline_period_and_clear_empties_it() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let c = logged_in(&gate, C);
    let b = logged_in(&gate, B);
    group(&a, GID, &[B]);
    group(&c, GID2, &[B]);
    go_offline(&gate, &b, B);
    send(&a, To::P2p(B), 30, "p2p while away", 0).unwrap();
    send(&a, To::Group(GID), 30, "group while away", 0).unwrap();
    login(&b, B);
    let want = UnreadMessage {
        p2p: vec![A],
        group: vec![GID],
    };
    assert_eq!(unread(&b, false), want);
    assert_eq!(unread(&b, false), want, "clear: false keeps them");
    assert_eq!(unread(&b, true), want, "clear: true answers first");
    assert_eq!(
        unread(&b, false),
        UnreadMessage::default(),
        "then it is empty"
    );
    // B's own messages never make anything unread for B.
    send(&b, To::P2p(A), 30, "mine", 0).unwrap();
    send(&b, To::Group(GID), 30, "mine", 0).unwrap();
    assert_eq!(unread(&b, false), UnreadMessage::default());
}

#[test]
fn clean_unread_message_empties_the_unread_lists() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let c = logged_in(&gate, C);
    let b = logged_in(&gate, B);
    group(&c, GID, &[B]);
    send(&a, To::P2p(B), 30, "1", 0).unwrap();
    send(&c, To::P2p(B), 30, "2", 0).unwrap();
    send(&c, To::Group(GID), 30, "3", 0).unwrap();
    assert_eq!(
        unread(&b, false),
        UnreadMessage {
            p2p: vec![A, C],
            group: vec![GID]
        }
    );
    blocking(|cb| b.clean_unread_message(0, cb)).expect("cleanunread");
    assert_eq!(unread(&b, false), UnreadMessage::default());

    // Messages after the mark are unread again, even within its millisecond; clean
    // empties again.
    send(&c, To::Group(GID), 30, "4", 0).unwrap();
    assert_eq!(
        unread(&b, false),
        UnreadMessage {
            p2p: vec![],
            group: vec![GID]
        }
    );
    blocking(|cb| b.clean_unread_message(0, cb)).expect("cleanunread");
    assert_eq!(unread(&b, false), UnreadMessage::default());
}

/// docs/Messages.md: "Entries whose key or value cannot be read are
/// skipped" (a key that is not an id, a count or time that is not an
/// integer); the other entries are kept. One such entry used to fail the
/// whole call with 10010.
#[test]
fn unread_counts_skip_the_entries_that_cannot_be_read() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let answer = |key: &str| {
        map(vec![
            (
                key,
                Value::Map(vec![
                    ("1002".into(), 3.into()),
                    ("not-a-uid".into(), 1.into()),
                    ("1003".into(), "x".into()),
                    (1004.into(), 4.into()),
                ]),
            ),
            (
                "ltime",
                Value::Map(vec![
                    ("1002".into(), 77.into()),
                    (Value::Nil, 1.into()),
                    ("1003".into(), 1.5f64.into()),
                ]),
            ),
        ])
    };
    answer_with(&gate, "getp2punread", msgpack(&answer("p2p")));
    let n = blocking(|cb| a.get_p2p_unread_message_num(&[1002, 1003, 1004], None, None, 0, cb))
        .expect("documented to skip the bad entries");
    assert_eq!(n.p2p, counts(&[(1002, 3), (1004, 4)]));
    assert_eq!(n.ltime, HashMap::from([(1002, 77)]));
    answer_with(&gate, "getgroupunread", msgpack(&answer("group")));
    let n = blocking(|cb| a.get_group_unread_message_num(&[1002, 1003], None, None, 0, cb))
        .expect("documented to skip the bad entries");
    assert_eq!(n.group, counts(&[(1002, 3), (1004, 4)]));
    assert_eq!(n.ltime, HashMap::from([(1002, 77)]));
}

/// The unread counts are read as every count is (docs/api-internals.md,
/// `de::count`): any integer width saturated to `0..=i32::MAX`, nil 0. They
/// were plain `i32`s: a negative count was kept, and a nil one or one above
/// `i32::MAX` failed the whole call with 10010.
#[test]
fn unread_counts_saturate_to_i32_and_read_nil_as_0() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let answer = |key: &str| {
        map(vec![(
            key,
            Value::Map(vec![
                ("5".into(), (-3).into()),
                ("6".into(), Value::Nil),
                ("7".into(), u64::MAX.into()),
                ("8".into(), (i64::from(i32::MAX) + 1).into()),
                ("9".into(), 2.into()),
            ]),
        )])
    };
    let want = counts(&[(5, 0), (6, 0), (7, i32::MAX), (8, i32::MAX), (9, 2)]);
    answer_with(&gate, "getp2punread", msgpack(&answer("p2p")));
    let n = blocking(|cb| a.get_p2p_unread_message_num(&[5, 6, 7, 8, 9], None, None, 0, cb))
        .expect("getp2punread");
    assert_eq!(n.p2p, want);
    answer_with(&gate, "getgroupunread", msgpack(&answer("group")));
    let n = blocking(|cb| a.get_group_unread_message_num(&[5, 6, 7, 8, 9], None, None, 0, cb))
        .expect("getgroupunread");
    assert_eq!(n.group, want);
}
