//! The four history methods through the client against the local gate:
//! paging with the returned cursor, page size, mtypes, direction, deleted
//! messages.
#![cfg(feature = "gate")]

mod msg_common;

use std::sync::mpsc;

use msg_common::*;
use rtm_client::{blocking, HistoryMessages, RtmClient, RtmError};

/// Where a history query looks.
#[derive(Debug, Clone, Copy)]
enum Hist {
    P2p(i64),
    Group(i64),
    Room(i64),
    Broadcast,
}

/// One history row, whatever the method: (id, from or direction, mtype, mid,
/// deleted, msg, attrs, mtime).
type Row = (i64, i64, u8, i64, bool, Option<String>, String, i64);

/// A page, its rows flattened to [`Row`] and its cursor kept.
struct Page {
    num: i32,
    lastid: i64,
    begin: i64,
    end: i64,
    rows: Vec<Row>,
}

fn flatten<M>(h: HistoryMessages<M>, row: impl Fn(M) -> Row) -> Page {
    Page {
        num: h.num,
        lastid: h.lastid,
        begin: h.begin,
        end: h.end,
        rows: h.msgs.into_iter().map(row).collect(),
    }
}

#[allow(clippy::too_many_arguments)]
fn page(
    c: &RtmClient,
    at: Hist,
    desc: bool,
    num: i32,
    begin: Option<i64>,
    end: Option<i64>,
    lastid: Option<i64>,
    mtypes: Option<&[u8]>,
) -> Result<Page, RtmError> {
    let h = |m: rtm_client::HistoryMsg| {
        (
            m.id, m.from, m.mtype, m.mid, m.deleted, m.msg, m.attrs, m.mtime,
        )
    };
    Ok(match at {
        Hist::P2p(ouid) => flatten(
            blocking(|cb| c.get_p2p_message(ouid, desc, num, begin, end, lastid, mtypes, 0, cb))?,
            |m| {
                let d = i64::from(m.direction);
                (m.id, d, m.mtype, m.mid, m.deleted, m.msg, m.attrs, m.mtime)
            },
        ),
        Hist::Group(gid) => flatten(
            blocking(|cb| c.get_group_message(gid, desc, num, begin, end, lastid, mtypes, 0, cb))?,
            h,
        ),
        Hist::Room(rid) => flatten(
            blocking(|cb| c.get_room_message(rid, desc, num, begin, end, lastid, mtypes, 0, cb))?,
            h,
        ),
        Hist::Broadcast => flatten(
            blocking(|cb| c.get_broadcast_message(desc, num, begin, end, lastid, mtypes, 0, cb))?,
            h,
        ),
    })
}

/// Pages through everything with pages of `num`, passing back the answer's
/// `lastid` and `begin` (ascending) or `end` (descending). Returns the pages'
/// rows in order.
fn page_all(c: &RtmClient, at: Hist, desc: bool, num: i32) -> Vec<Vec<Row>> {
    let (mut begin, mut end, mut lastid) = (None, None, None);
    let mut pages = Vec::new();
    for _ in 0..100 {
        let p = page(c, at, desc, num, begin, end, lastid, None).expect("history page");
        assert_eq!(p.num as usize, p.rows.len(), "{at:?}: num counts the rows");
        if p.rows.is_empty() {
            return pages;
        }
        let last = p.rows.last().unwrap();
        assert_eq!(p.lastid, last.0, "{at:?}: lastid is the last row's id");
        if desc {
            assert_eq!(p.end, last.7, "{at:?}: end is the last row's mtime");
            end = Some(p.end);
        } else {
            assert_eq!(p.begin, last.7, "{at:?}: begin is the last row's mtime");
            begin = Some(p.begin);
        }
        lastid = Some(p.lastid);
        pages.push(p.rows);
    }
    panic!("{at:?}: paging does not end");
}

/// Sends the 45 messages "m0".."m44" to `to`, pipelined (so that many share a
/// millisecond and only the cursor's lastid tells them apart). Returns their
/// mids in order.
fn send_45(c: &RtmClient, to: To) -> Vec<i64> {
    let (tx, rx) = mpsc::channel();
    for i in 0..45i64 {
        let tx = tx.clone();
        let cb = move |e: Option<rtm_client::SendError>, d: Option<rtm_client::SendAnswer>| {
            assert!(e.is_none(), "send m{i}: {e:?}");
            let _ = tx.send(d.unwrap().mid);
        };
        let (msg, mid) = (format!("m{i}"), BIG_MID + i);
        match to {
            To::P2p(uid) => c.send_message(uid, 30, &msg, "", mid, 0, cb),
            To::Group(gid) => c.send_group_message(gid, 30, &msg, "", mid, 0, cb),
            To::Room(rid) => c.send_room_message(rid, 30, &msg, "", mid, 0, cb),
        }
    }
    for _ in 0..45 {
        rx.recv_timeout(WAIT).expect("every send answered");
    }
    (0..45).map(|i| BIG_MID + i).collect()
}

/// Checks that paging forwards and backwards, 10 and 20 at a time, returns
/// the 45 messages "m0".."m44" once each, in order, with the right sender.
fn check_paging(reader: &RtmClient, at: Hist, from: i64) {
    let want: Vec<String> = (0..45).map(|i| format!("m{i}")).collect();
    for num in [10, 20] {
        for desc in [false, true] {
            let pages = page_all(reader, at, desc, num);
            let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
            let full = num as usize;
            let expect_sizes: Vec<usize> =
                (0..45).step_by(full).map(|s| full.min(45 - s)).collect();
            assert_eq!(sizes, expect_sizes, "{at:?} num {num} desc {desc}");
            let rows: Vec<Row> = pages.into_iter().flatten().collect();
            let mut texts: Vec<String> = rows.iter().map(|r| r.5.clone().unwrap()).collect();
            let mut ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            if desc {
                texts.reverse();
                ids.reverse();
            }
            assert_eq!(
                texts, want,
                "{at:?} num {num} desc {desc}: no gap, no repeat"
            );
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{at:?}: ids ascend");
            assert!(rows.iter().all(|r| r.1 == from && r.2 == 30 && !r.4));
        }
    }
}

#[test]
fn p2p_history_pages_45_messages_both_ways_without_gap_or_repeat() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    let mids = send_45(&a, To::P2p(B));
    // Direction 2 (received) as B sees it, 1 (sent) as A does.
    check_paging(&b, Hist::P2p(A), 2);
    check_paging(&a, Hist::P2p(B), 1);
    let rows = page(&b, Hist::P2p(A), false, 20, None, None, None, None)
        .unwrap()
        .rows;
    let got: Vec<i64> = rows.iter().map(|r| r.3).collect();
    assert_eq!(got, mids[..20], "mids above 2^53 come back intact");
}

#[test]
fn group_history_pages_45_messages_both_ways_without_gap_or_repeat() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    group(&a, GID, &[B]);
    send_45(&a, To::Group(GID));
    check_paging(&b, Hist::Group(GID), A);
    check_paging(&a, Hist::Group(GID), A);
}

#[test]
fn room_history_pages_45_messages_both_ways_without_gap_or_repeat() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    enter(&a, RID);
    enter(&b, RID);
    send_45(&a, To::Room(RID));
    check_paging(&b, Hist::Room(RID), A);
}

#[test]
fn broadcast_history_pages_45_messages_both_ways_without_gap_or_repeat() {
    let gate = gate();
    let b = logged_in(&gate, B);
    for i in 0..45 {
        gate.broadcast(PID, C, 30, &format!("m{i}"), "");
    }
    check_paging(&b, Hist::Broadcast, C);
}

#[test]
fn num_above_20_returns_at_most_20() {
    let gate = gate();
    let a = logged_in(&gate, A);
    group(&a, GID, &[B]);
    enter(&a, RID);
    for to in [To::P2p(B), To::Group(GID), To::Room(RID)] {
        send_45(&a, to);
    }
    for i in 0..45 {
        gate.broadcast(PID, C, 30, &format!("m{i}"), "");
    }
    for at in [
        Hist::P2p(B),
        Hist::Group(GID),
        Hist::Room(RID),
        Hist::Broadcast,
    ] {
        for desc in [false, true] {
            let p = page(&a, at, desc, 50, None, None, None, None).unwrap();
            assert_eq!((p.num, p.rows.len()), (20, 20), "{at:?} desc {desc}");
        }
    }
    // num is sent as given.
    let nums: Vec<i64> = gate
        .received("getroommsg")
        .iter()
        .map(|p| int(p, "num"))
        .collect();
    assert_eq!(nums, [50, 50]);
}

/// Sends to `to` six messages of mtypes 30, 31, 51, 30, 32, 51 ("t0".."t5").
fn send_mixed(c: &RtmClient, to: To) {
    for (i, mtype) in [30u8, 31, 51, 30, 32, 51].into_iter().enumerate() {
        send(c, to, mtype, &format!("t{i}"), 0).expect("send");
    }
}

#[test]
fn mtypes_filter_keeps_only_the_named_types() {
    let gate = gate();
    let a = logged_in(&gate, A);
    group(&a, GID, &[B]);
    enter(&a, RID);
    for to in [To::P2p(B), To::Group(GID), To::Room(RID)] {
        send_mixed(&a, to);
    }
    for (i, mtype) in [30u8, 31, 51, 30, 32, 51].into_iter().enumerate() {
        gate.broadcast(PID, C, mtype, &format!("t{i}"), "");
    }
    for at in [
        Hist::P2p(B),
        Hist::Group(GID),
        Hist::Room(RID),
        Hist::Broadcast,
    ] {
        let texts = |mtypes: Option<&[u8]>, desc: bool| -> Vec<(u8, String)> {
            page(&a, at, desc, 20, None, None, None, mtypes)
                .unwrap()
                .rows
                .into_iter()
                .map(|r| (r.2, r.5.unwrap()))
                .collect()
        };
        let s = |x: &str| x.to_owned();
        assert_eq!(
            texts(Some(&[30]), false),
            [(30, s("t0")), (30, s("t3"))],
            "{at:?}"
        );
        assert_eq!(
            texts(Some(&[51, 32]), true),
            [(51, s("t5")), (32, s("t4")), (51, s("t2"))],
            "{at:?}"
        );
        assert_eq!(texts(None, false).len(), 6, "{at:?}: no filter");
        assert!(texts(Some(&[99]), false).is_empty(), "{at:?}");
    }
}

#[test]
fn p2p_direction_is_1_for_sent_and_2_for_received() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    send(&a, To::P2p(B), 30, "a1", 0).unwrap();
    send(&b, To::P2p(A), 30, "b1", 0).unwrap();
    send(&a, To::P2p(B), 30, "a2", 0).unwrap();
    let dirs = |c: &RtmClient, ouid: i64| -> Vec<(i64, String)> {
        page(c, Hist::P2p(ouid), false, 20, None, None, None, None)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| (r.1, r.5.unwrap()))
            .collect()
    };
    let s = |x: &str| x.to_owned();
    assert_eq!(dirs(&a, B), [(1, s("a1")), (2, s("b1")), (1, s("a2"))]);
    assert_eq!(dirs(&b, A), [(2, s("a1")), (1, s("b1")), (2, s("a2"))]);
    // A conversation with someone else is a different one.
    assert!(dirs(&a, C).is_empty());
}

#[test]
fn deleted_messages_stay_in_history_marked_deleted() {
    let (_gate, a, b) = two_users();
    for to in [To::P2p(B), To::Group(GID), To::Room(RID)] {
        let keep1 = send(&a, to, 30, "keep 1", 0).unwrap();
        let gone = send(&a, to, 30, "delete me", BIG_MID).unwrap();
        let keep2 = send(&a, to, 30, "keep 2", 0).unwrap();
        blocking(|cb| a.delete_message(A, BIG_MID, to.xid(), to.kind(), 0, cb)).expect("delmsg");
        let at = match to {
            To::P2p(_) => Hist::P2p(A),
            To::Group(g) => Hist::Group(g),
            To::Room(r) => Hist::Room(r),
        };
        let rows = page(&b, at, false, 20, None, None, None, None)
            .unwrap()
            .rows;
        let summary: Vec<(i64, bool, String, String, i64)> = rows
            .into_iter()
            .map(|r| (r.3, r.4, r.5.unwrap_or_default(), r.6, r.7))
            .collect();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            summary,
            [
                (keep1.mid, false, s("keep 1"), s(""), keep1.payload.mtime),
                (BIG_MID, true, s(""), s(""), gone.payload.mtime),
                (keep2.mid, false, s("keep 2"), s(""), keep2.payload.mtime),
            ],
            "{to:?}"
        );
    }
}

#[test]
fn a_gate_with_a_history_limit_keeps_the_newest_of_each_conversation() {
    // 20 per conversation: the 45 messages leave 20 to 39 of them (the oldest
    // go in blocks when twice the limit is reached); here 45 = 40 + 5 leaves
    // the last 25.
    let gate = rtm_client::gate::Gate::builder()
        .history_limit(20)
        .start()
        .expect("start the gate");
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    send_45(&a, To::P2p(B));
    let texts: Vec<String> = page_all(&b, Hist::P2p(A), false, 20)
        .into_iter()
        .flatten()
        .map(|r| r.5.unwrap_or_default())
        .collect();
    let want: Vec<String> = (20..45).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, want);
}
