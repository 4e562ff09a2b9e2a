//! The group methods through the client against the local gate (docs/Groups.md):
//! membership, online members and counts, the caller's groups, and group information
//! (private to members, open part to anyone).
#![cfg(feature = "gate")]

mod msg_common;

use std::collections::HashMap;

use msg_common::*;
use rtm_client::{
    blocking, error_code, GroupCount, GroupInfo, GroupMembers, GroupOpenInfo, RtmClient, RtmError,
};

fn code<T: std::fmt::Debug>(r: Result<T, RtmError>) -> i32 {
    r.expect_err("an error answer").code
}

fn members(c: &RtmClient, gid: i64, online: Option<bool>) -> GroupMembers {
    let mut m = blocking(|cb| c.get_group_members(gid, online, 0, cb)).expect("getgroupmembers");
    m.uids.sort_unstable();
    m.onlines.sort_unstable();
    m
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

#[test]
fn add_and_delete_group_members() {
    let gate = gate();
    let a = logged_in(&gate, A);
    blocking(|cb| a.add_group_members(GID, &[B, C], 0, cb)).unwrap();
    assert_eq!(members(&a, GID, None).uids, sorted(vec![A, B, C]));
    blocking(|cb| a.delete_group_members(GID, &[C], 0, cb)).unwrap();
    assert_eq!(members(&a, GID, None).uids, sorted(vec![A, B]));
    assert_eq!(
        gate.received("addgroupmembers")[0],
        map(vec![("gid", GID.into()), ("uids", id_list(&[B, C]))])
    );
    for r in [
        blocking(|cb| a.add_group_members(GID, &[], 0, cb)),
        blocking(|cb| a.delete_group_members(GID, &[], 0, cb)),
    ] {
        assert_eq!(code(r), error_code::RTM_EC_EMPTY_PARAMETER);
    }
    assert_eq!(gate.received("addgroupmembers").len(), 1);
    assert_eq!(gate.received("delgroupmembers").len(), 1);
    let e = code(blocking(|cb| a.add_group_members(0, &[B], 0, cb)));
    assert_eq!(e, error_code::RTM_EC_EMPTY_PARAMETER);
}

#[test]
fn members_and_counts_with_online() {
    let gate = gate();
    let (a, b) = (logged_in(&gate, A), logged_in(&gate, B));
    group(&a, GID, &[B, C]);
    let m = members(&a, GID, Some(true));
    assert_eq!(m.uids, sorted(vec![A, B, C]));
    assert_eq!(m.onlines, sorted(vec![A, B]));
    assert_eq!(members(&a, GID, Some(false)).onlines, Vec::<i64>::new());
    let count = |online| blocking(|cb| a.get_group_count(GID, online, 0, cb)).unwrap();
    assert_eq!(count(Some(true)), GroupCount { cn: 3, online: 2 });
    assert_eq!(count(None), GroupCount { cn: 3, online: 0 });
    go_offline(&gate, &b, B);
    assert_eq!(members(&a, GID, Some(true)).onlines, vec![A]);
    assert_eq!(count(Some(true)), GroupCount { cn: 3, online: 1 });
    assert_eq!(
        gate.received("getgroupcount")[0],
        map(vec![("gid", GID.into()), ("online", true.into())])
    );
    assert_eq!(
        gate.received("getgroupmembers")[0],
        map(vec![("gid", GID.into()), ("online", true.into())])
    );
    // A gid the gate requires positive.
    assert_eq!(
        code(blocking(|cb| a.get_group_members(-1, None, 0, cb))),
        error_code::RTM_EC_EMPTY_PARAMETER
    );
    assert_eq!(
        code(blocking(|cb| a.get_group_count(0, Some(true), 0, cb))),
        error_code::RTM_EC_EMPTY_PARAMETER
    );
}

#[test]
fn the_callers_groups() {
    let gate = gate();
    let (a, b) = (logged_in(&gate, A), logged_in(&gate, B));
    group(&a, GID, &[B]);
    group(&b, GID2, &[C]);
    let mine = |c: &RtmClient| sorted(blocking(|cb| c.get_user_groups(0, cb)).unwrap());
    assert_eq!(mine(&a), vec![GID]);
    assert_eq!(mine(&b), sorted(vec![GID, GID2]));
    blocking(|cb| a.delete_group_members(GID, &[B], 0, cb)).unwrap();
    assert_eq!(mine(&b), vec![GID2]);
    b.close();
    assert_eq!(
        code(blocking(|cb| b.get_user_groups(0, cb))),
        error_code::FPNN_EC_CORE_INVALID_CONNECTION
    );
}

#[test]
fn group_info_private_to_members_open_to_anyone() {
    let gate = gate();
    let (a, c) = (logged_in(&gate, A), logged_in(&gate, C));
    group(&a, GID, &[B]);
    let info = |cl: &RtmClient| blocking(|cb| cl.get_group_info(GID, 0, cb));
    assert_eq!(info(&a).unwrap(), GroupInfo::default());
    blocking(|cb| a.set_group_info(GID, Some("open"), Some("private"), 0, cb)).unwrap();
    blocking(|cb| a.set_group_info(GID, None, Some("private 2"), 0, cb)).unwrap();
    assert_eq!(
        gate.received("setgroupinfo")[1],
        map(vec![("gid", GID.into()), ("pinfo", "private 2".into())])
    );
    let want = GroupInfo {
        oinfo: "open".into(),
        pinfo: "private 2".into(),
    };
    assert_eq!(info(&a).unwrap(), want);
    assert_eq!(code(info(&c)), error_code::RTM_EC_NOT_GROUP_MEMBER);
    let e = code(blocking(|cb| c.set_group_info(GID, Some("x"), None, 0, cb)));
    assert_eq!(e, error_code::RTM_EC_NOT_GROUP_MEMBER);
    let big = "i".repeat(65_536);
    let e = code(blocking(|cb| {
        a.set_group_info(GID, Some(&big), None, 0, cb)
    }));
    assert_eq!(e, error_code::RTM_EC_LARGE_MESSAGE_OR_ATTRS);
    assert_eq!(info(&a).unwrap(), want, "refused sets change nothing");

    let open = |gid| blocking(|cb| c.get_group_open_info(gid, 0, cb));
    assert_eq!(
        open(GID).unwrap(),
        GroupOpenInfo {
            oinfo: "open".into()
        }
    );
    assert_eq!(open(GID2).unwrap(), GroupOpenInfo::default());
    assert_eq!(code(open(0)), error_code::RTM_EC_EMPTY_PARAMETER);
}

#[test]
fn open_info_of_several_groups() {
    let gate = gate();
    let (a, c) = (logged_in(&gate, A), logged_in(&gate, C));
    group(&a, GID, &[B]);
    group(&a, GID2, &[B]);
    blocking(|cb| a.set_group_info(GID, Some("one"), Some("p"), 0, cb)).unwrap();
    blocking(|cb| a.set_group_info(GID2, Some("two"), None, 0, cb)).unwrap();
    let got = blocking(|cb| c.get_groups_open_info(&[GID, GID2, 77], 0, cb)).unwrap();
    let want: HashMap<i64, String> = [(GID, "one".into()), (GID2, "two".into())].into();
    assert_eq!(got.info, want);
    // `Some("")` clears the public part; a group without one is left out, whether it
    // never had one or it was cleared (as rooms are, docs/gate.md "Information").
    blocking(|cb| a.set_group_info(GID2, Some(""), Some("p2"), 0, cb)).unwrap();
    let got = blocking(|cb| c.get_groups_open_info(&[GID, GID2, 77], 0, cb)).unwrap();
    assert_eq!(got.info, HashMap::from([(GID, "one".to_string())]));
    let opened = blocking(|cb| c.get_group_open_info(GID2, 0, cb)).unwrap();
    assert_eq!(opened.oinfo, "");
    assert_eq!(
        gate.received("getgroupsopeninfo")[0],
        map(vec![("gids", id_list(&[GID, GID2, 77]))])
    );
    let e = code(blocking(|cb| c.get_groups_open_info(&[], 0, cb)));
    assert_eq!(e, error_code::RTM_EC_EMPTY_PARAMETER);
    assert_eq!(gate.received("getgroupsopeninfo").len(), 2);
    let e = code(blocking(|cb| c.get_groups_open_info(&[GID, 0], 0, cb)));
    assert_eq!(e, error_code::RTM_EC_EMPTY_PARAMETER);
}

/// An `oinfo` that is not UTF-8, bin or nil is read as `get_group_open_info`
/// reads it (docs/Groups.md): invalid UTF-8 replaced, nil `""`. One such
/// group used to fail the whole call with 10010.
#[test]
fn open_info_of_several_groups_reads_odd_oinfo_as_text() {
    let gate = gate();
    let a = logged_in(&gate, A);
    answer_with(&gate, "getgroupsopeninfo", odd_open_infos());
    let got = blocking(|cb| a.get_groups_open_info(&[5, 6, 7, 8, 9], 0, cb))
        .expect("one odd oinfo failed the whole call");
    assert_eq!(got.info, odd_open_infos_read());
}

/// docs/api-internals.md: a count is "clamped to `0..=i32::MAX`", from any
/// integer width. A uint64 above `i64::MAX` used to fail the call with 10010.
#[test]
fn group_counts_above_i64_max_and_below_0_are_clamped() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let answer = map(vec![("cn", u64::MAX.into()), ("online", (-1).into())]);
    answer_with(&gate, "getgroupcount", msgpack(&answer));
    let c = blocking(|cb| a.get_group_count(GID, Some(true), 0, cb)).expect("getgroupcount");
    assert_eq!((c.cn, c.online), (i32::MAX, 0));
}
