//! The room methods through the client against the local gate (docs/Rooms.md):
//! the user's rooms, members and counts follow enter/leave/disconnect, the
//! private room info is for members only, and bad arguments complete with
//! 200033 without reaching the wire.
#![cfg(feature = "gate")]

mod msg_common;

use std::collections::HashMap;

use msg_common::*;
use rtm_client::{blocking, error_code, RoomInfo, RoomOpenInfo};

#[test]
fn user_rooms_members_and_counts_follow_the_members() {
    let gate = gate();
    let (a, b) = (logged_in(&gate, A), logged_in(&gate, B));
    enter(&a, RID);
    enter(&a, RID2);
    enter(&b, RID);
    assert_eq!(blocking(|cb| a.get_user_rooms(0, cb)).unwrap(), [RID2, RID]);
    assert_eq!(blocking(|cb| b.get_user_rooms(0, cb)).unwrap(), [RID]);
    assert_eq!(
        blocking(|cb| b.get_room_members(RID, 0, cb)).unwrap(),
        [B, A]
    );
    let counts = blocking(|cb| b.get_room_count(&[RID, RID2, 999], 0, cb)).unwrap();
    assert_eq!(counts.cn, HashMap::from([(RID, 2), (RID2, 1), (999, 0)]));

    blocking(|cb| a.leave_room(RID2, 0, cb)).unwrap();
    assert_eq!(blocking(|cb| a.get_user_rooms(0, cb)).unwrap(), [RID]);
    // The last connection closing leaves every room.
    a.close();
    wait_until("A is offline", || gate.connections_of(PID, A) == 0);
    let counts = blocking(|cb| b.get_room_count(&[RID, RID2], 0, cb)).unwrap();
    assert_eq!(counts.cn, HashMap::from([(RID, 1), (RID2, 0)]));
    assert_eq!(blocking(|cb| b.get_room_members(RID, 0, cb)).unwrap(), [B]);

    let e = blocking(|cb| b.get_room_count(&[], 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let e = blocking(|cb| b.get_room_members(-1, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let too_many: Vec<i64> = (1..=101).collect();
    let e = blocking(|cb| b.get_room_count(&too_many, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_TOO_MANY_ITEMS_IN_PARAMETERS);
    let sent = gate.received("getroomcount");
    assert_eq!(sent.len(), 3, "the empty list was not sent: {sent:?}");
    assert_eq!(
        keys(&sent[0]),
        ["rids"],
        "getroomcount carries only rids: {sent:?}"
    );
}

#[test]
fn room_info_private_part_is_for_members_only() {
    let gate = gate();
    let (a, c) = (logged_in(&gate, A), logged_in(&gate, C));
    let e = blocking(|cb| a.set_room_info(RID, Some("open"), None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_NOT_IN_ROOM);
    enter(&a, RID);
    enter(&a, RID2);
    blocking(|cb| a.set_room_info(RID, Some("open"), Some("secret"), 0, cb)).unwrap();
    blocking(|cb| a.set_room_info(RID, None, Some("secret 2"), 0, cb)).unwrap();
    blocking(|cb| a.set_room_info(RID2, None, Some("p"), 0, cb)).unwrap();
    let info = blocking(|cb| a.get_room_info(RID, 0, cb)).unwrap();
    assert_eq!(
        info,
        RoomInfo {
            oinfo: "open".into(),
            pinfo: "secret 2".into()
        }
    );
    let open = blocking(|cb| c.get_room_open_info(RID, 0, cb)).unwrap();
    assert_eq!(
        open,
        RoomOpenInfo {
            oinfo: "open".into()
        }
    );
    let e = blocking(|cb| c.get_room_info(RID, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_NOT_IN_ROOM);
    let open = blocking(|cb| c.get_rooms_open_info(&[RID, RID2, 5], 0, cb)).unwrap();
    assert_eq!(open.info, HashMap::from([(RID, "open".to_string())]));
    let none = blocking(|cb| c.get_room_open_info(5, 0, cb)).unwrap();
    assert_eq!(none.oinfo, "");

    // Neither part: sent as `{rid}` (as JavaScript and set_group_info do), nothing changes.
    blocking(|cb| a.set_room_info(RID, None, None, 0, cb)).unwrap();
    let unchanged = blocking(|cb| a.get_room_info(RID, 0, cb)).unwrap();
    assert_eq!(unchanged, info);
    let e = blocking(|cb| c.get_rooms_open_info(&[], 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let big = "x".repeat(65_536);
    let e = blocking(|cb| a.set_room_info(RID, Some(&big), None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_LARGE_MESSAGE_OR_ATTRS);
    let sent = gate.received("setroominfo");
    assert_eq!(sent.len(), 6, "{sent:?}");
    assert_eq!(keys(&sent[2]), ["rid", "pinfo"], "None leaves oinfo out");
    assert_eq!(keys(&sent[4]), ["rid"], "(None, None) sends the rid alone");
    assert!(gate.received("getroomsopeninfo").len() == 1);

    // `Some("")` clears the public part (as for groups and users, docs/gate.md
    // "Information"): the room is then left out of the open infos, its private part stays.
    blocking(|cb| a.set_room_info(RID, Some(""), None, 0, cb)).unwrap();
    let open = blocking(|cb| c.get_rooms_open_info(&[RID, RID2], 0, cb)).unwrap();
    assert_eq!(open.info, HashMap::new());
    let cleared = blocking(|cb| a.get_room_info(RID, 0, cb)).unwrap();
    assert_eq!(
        (cleared.oinfo.as_str(), cleared.pinfo.as_str()),
        ("", "secret 2")
    );
}

/// An `oinfo` that is not UTF-8, bin or nil is read as `get_room_open_info`
/// reads it (docs/Rooms.md): invalid UTF-8 replaced, nil `""`. One such
/// room used to fail the whole call with 10010.
#[test]
fn open_info_of_several_rooms_reads_odd_oinfo_as_text() {
    let gate = gate();
    let a = logged_in(&gate, A);
    answer_with(&gate, "getroomsopeninfo", odd_open_infos());
    let got = blocking(|cb| a.get_rooms_open_info(&[5, 6, 7, 8, 9], 0, cb))
        .expect("one odd oinfo failed the whole call");
    assert_eq!(got.info, odd_open_infos_read());
}

/// Room counts are read as every count is (docs/api-internals.md,
/// `de::count`): any integer width saturated to `0..=i32::MAX`, nil 0. A nil
/// count, or one above `i64::MAX`, used to fail the whole call with 10010.
#[test]
fn room_counts_saturate_to_i32_and_read_nil_as_0() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let answer = map(vec![(
        "cn",
        rmpv::Value::Map(vec![
            ("5".into(), rmpv::Value::Nil),
            ("6".into(), 2.into()),
            ("7".into(), u64::MAX.into()),
            ("8".into(), (-4).into()),
        ]),
    )]);
    answer_with(&gate, "getroomcount", msgpack(&answer));
    let got = blocking(|cb| a.get_room_count(&[5, 6, 7, 8], 0, cb)).expect("getroomcount");
    let want = HashMap::from([(5, 0), (6, 2), (7, i32::MAX), (8, 0)]);
    assert_eq!(got.cn, want);
}
