//! What the 13 message methods put on the wire, as the gate received it
//! ([`Gate::received`]): the keys of docs/Messages.md, optional arguments
//! left out when `None`, and 64-bit ids intact.
#![cfg(feature = "gate")]

mod msg_common;

use msg_common::*;
use rmpv::Value;
use rtm_client::blocking;

#[test]
fn sends_put_target_mid_mtype_msg_and_attrs_on_the_wire() {
    let gate = gate();
    let a = logged_in(&gate, A);
    group(&a, GID, &[B]);
    enter(&a, RID);
    blocking(|cb| a.send_message(B, 31, "p", "{\"x\":1}", BIG_MID, 0, cb)).unwrap();
    blocking(|cb| a.send_group_message(GID, 32, "g", "ga", BIG_MID + 1, 0, cb)).unwrap();
    blocking(|cb| a.send_room_message(RID, 51, "r", "", BIG_MID + 2, 0, cb)).unwrap();
    for (method, key, id, mid, mtype, msg, attrs) in [
        ("sendmsg", "to", B, BIG_MID, 31, "p", "{\"x\":1}"),
        ("sendgroupmsg", "gid", GID, BIG_MID + 1, 32, "g", "ga"),
        ("sendroommsg", "rid", RID, BIG_MID + 2, 51, "r", ""),
    ] {
        let sent = gate.received(method);
        assert_eq!(sent.len(), 1, "{method}");
        let p = &sent[0];
        assert_eq!(keys(p), [key, "mid", "mtype", "msg", "attrs"], "{method}");
        assert_eq!(
            (int(p, key), int(p, "mid"), int(p, "mtype")),
            (id, mid, mtype)
        );
        assert_eq!(field(p, "msg"), &Value::from(msg), "{method}: msg is a str");
        assert_eq!(field(p, "attrs"), &Value::from(attrs), "{method}");
    }
}

#[test]
fn unread_requests_leave_out_mtime_and_mtypes_when_none() {
    let gate = gate();
    let a = logged_in(&gate, A);
    group(&a, GID, &[B]);
    blocking(|cb| a.get_unread_message(false, 0, cb)).unwrap();
    blocking(|cb| a.get_unread_message(true, 0, cb)).unwrap();
    blocking(|cb| a.clean_unread_message(0, cb)).unwrap();
    for mtime in [None, Some(BIG_MID)] {
        for mtypes in [None, Some(&[30u8, 51][..])] {
            blocking(|cb| a.get_p2p_unread_message_num(&[B, C], mtime, mtypes, 0, cb)).unwrap();
            blocking(|cb| a.get_group_unread_message_num(&[GID, GID2], mtime, mtypes, 0, cb))
                .unwrap();
        }
    }

    let getunread = gate.received("getunread");
    assert!(getunread.iter().all(|p| keys(p) == ["clear"]));
    let clears: Vec<Option<bool>> = getunread
        .iter()
        .map(|p| field(p, "clear").as_bool())
        .collect();
    assert_eq!(clears, [Some(false), Some(true)]);
    let clean = gate.received("cleanunread");
    assert_eq!(clean.len(), 1);
    assert!(keys(&clean[0]).is_empty(), "cleanunread {{}}: {}", clean[0]);

    for (method, list, ids) in [
        ("getp2punread", "uids", [B, C]),
        ("getgroupunread", "gids", [GID, GID2]),
    ] {
        let sent = gate.received(method);
        let key_sets: Vec<Vec<String>> = sent.iter().map(keys).collect();
        assert_eq!(
            key_sets,
            [
                vec![list.to_owned()],
                vec![list.to_owned(), "mtypes".into()],
                vec![list.to_owned(), "mtime".into()],
                vec![list.to_owned(), "mtime".into(), "mtypes".into()],
            ],
            "{method}"
        );
        assert!(
            sent.iter().all(|p| int_list(p, list) == ids),
            "{method}: 64-bit ids"
        );
        assert_eq!(int(&sent[3], "mtime"), BIG_MID);
        assert_eq!(int_list(&sent[3], "mtypes"), [30, 51]);
    }
}

/// begin, end, lastid, mtypes.
type Options = (Option<i64>, Option<i64>, Option<i64>, Option<&'static [u8]>);

#[test]
fn history_requests_leave_out_the_options_that_are_none() {
    let gate = gate();
    let a = logged_in(&gate, A);
    group(&a, GID, &[B]);
    enter(&a, RID);
    let some: Options = (Some(11), Some(BIG_MID - 1), Some(BIG_MID), Some(&[30, 41]));
    for (desc, num, (begin, end, lastid, mtypes)) in
        [(true, 7, (None, None, None, None)), (false, 8, some)]
    {
        blocking(|cb| a.get_p2p_message(B, desc, num, begin, end, lastid, mtypes, 0, cb)).unwrap();
        blocking(|cb| a.get_group_message(GID, desc, num, begin, end, lastid, mtypes, 0, cb))
            .unwrap();
        blocking(|cb| a.get_room_message(RID, desc, num, begin, end, lastid, mtypes, 0, cb))
            .unwrap();
        blocking(|cb| a.get_broadcast_message(desc, num, begin, end, lastid, mtypes, 0, cb))
            .unwrap();
    }
    // Only the options given, one at a time.
    blocking(|cb| a.get_group_message(GID, true, 9, None, Some(5), None, None, 0, cb)).unwrap();
    blocking(|cb| a.get_group_message(GID, false, 9, None, None, Some(6), None, 0, cb)).unwrap();

    for (method, key, id) in [
        ("getp2pmsg", Some("ouid"), B),
        ("getgroupmsg", Some("gid"), GID),
        ("getroommsg", Some("rid"), RID),
        ("getbroadcastmsg", None, 0),
    ] {
        let sent = gate.received(method);
        let with = |rest: &[&str]| -> Vec<String> {
            key.into_iter()
                .chain(rest.iter().copied())
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(keys(&sent[0]), with(&["desc", "num"]), "{method}");
        assert_eq!(
            keys(&sent[1]),
            with(&["desc", "num", "begin", "end", "lastid", "mtypes"]),
            "{method}"
        );
        if let Some(k) = key {
            assert_eq!(
                (int(&sent[0], k), int(&sent[1], k)),
                (id, id),
                "{method}: 64-bit id"
            );
        }
        assert_eq!(field(&sent[0], "desc").as_bool(), Some(true));
        assert_eq!(int(&sent[0], "num"), 7);
        assert_eq!(field(&sent[1], "desc").as_bool(), Some(false));
        let cursor = ["num", "begin", "end", "lastid"].map(|k| int(&sent[1], k));
        assert_eq!(cursor, [8, 11, BIG_MID - 1, BIG_MID], "{method}");
        assert_eq!(int_list(&sent[1], "mtypes"), [30, 41]);
    }
    let group = gate.received("getgroupmsg");
    assert_eq!(keys(&group[2]), ["gid", "desc", "num", "end"]);
    assert_eq!(keys(&group[3]), ["gid", "desc", "num", "lastid"]);
}

#[test]
fn get_and_delete_message_put_from_mid_xid_and_type_on_the_wire() {
    let gate = gate();
    let a = logged_in(&gate, A);
    group(&a, GID, &[B]);
    enter(&a, RID);
    for (to, t) in [(B, 1u8), (GID, 2), (RID, 3)] {
        // Nothing to find: 10009; nothing to delete: fine.
        let e = blocking(|cb| a.get_message(A, BIG_MID, to, t, 0, cb)).unwrap_err();
        assert_eq!(e.code, 10009);
        blocking(|cb| a.delete_message(A, BIG_MID, to, t, 0, cb)).unwrap();
    }
    for method in ["getmsg", "delmsg"] {
        let sent = gate.received(method);
        let rows: Vec<[i64; 4]> = sent
            .iter()
            .map(|p| {
                assert_eq!(keys(p), ["from", "mid", "xid", "type"], "{method}");
                ["from", "mid", "xid", "type"].map(|k| int(p, k))
            })
            .collect();
        assert_eq!(
            rows,
            [
                [A, BIG_MID, B, 1],
                [A, BIG_MID, GID, 2],
                [A, BIG_MID, RID, 3]
            ],
            "{method}"
        );
    }
}
