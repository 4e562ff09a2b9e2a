//! The user methods through the client against the local gate (docs/Users.md): online
//! users, and user information of which others see only the public part.
#![cfg(feature = "gate")]

mod msg_common;

use std::collections::HashMap;

use msg_common::*;
use rtm_client::{blocking, error_code, RtmClient, RtmError, UserInfo};

fn code<T: std::fmt::Debug>(r: Result<T, RtmError>) -> i32 {
    r.expect_err("an error answer").code
}

#[test]
fn online_users_are_those_with_a_connection() {
    let gate = gate();
    let (a, b) = (logged_in(&gate, A), logged_in(&gate, B));
    let online = |uids: &[i64]| {
        let mut v = blocking(|cb| a.get_online_users(uids, 0, cb)).expect("getonlineusers");
        v.sort_unstable();
        v
    };
    let mut both = vec![A, B];
    both.sort_unstable();
    assert_eq!(online(&[A, B, C]), both);
    go_offline(&gate, &b, B);
    assert_eq!(online(&[A, B, C]), vec![A]);
    assert_eq!(
        gate.received("getonlineusers")[0],
        map(vec![("uids", id_list(&[A, B, C]))])
    );
    let e = code(blocking(|cb| a.get_online_users(&[], 0, cb)));
    assert_eq!(e, error_code::RTM_EC_EMPTY_PARAMETER);
    assert_eq!(gate.received("getonlineusers").len(), 2);
    let e = code(blocking(|cb| a.get_online_users(&[A, -5], 0, cb)));
    assert_eq!(e, error_code::RTM_EC_EMPTY_PARAMETER);
}

#[test]
fn set_and_get_own_info() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let mine = || blocking(|cb| a.get_user_info(0, cb)).expect("getuserinfo");
    assert_eq!(mine(), UserInfo::default());
    blocking(|cb| a.set_user_info(Some("open"), Some("private"), 0, cb)).unwrap();
    blocking(|cb| a.set_user_info(Some("open 2"), None, 0, cb)).unwrap();
    assert_eq!(
        gate.received("setuserinfo"),
        [
            map(vec![("oinfo", "open".into()), ("pinfo", "private".into())]),
            map(vec![("oinfo", "open 2".into())]),
        ]
    );
    let want = UserInfo {
        oinfo: "open 2".into(),
        pinfo: "private".into(),
    };
    assert_eq!(mine(), want);
    let big = "u".repeat(65_536);
    let e = code(blocking(|cb| a.set_user_info(None, Some(&big), 0, cb)));
    assert_eq!(e, error_code::RTM_EC_LARGE_MESSAGE_OR_ATTRS);
    assert_eq!(mine(), want, "a refused set changes nothing");
    a.close();
    assert_eq!(
        code(blocking(|cb| a.get_user_info(0, cb))),
        error_code::FPNN_EC_CORE_INVALID_CONNECTION
    );
}

#[test]
fn others_see_only_the_open_info() {
    let gate = gate();
    let (a, b, c) = (
        logged_in(&gate, A),
        logged_in(&gate, B),
        logged_in(&gate, C),
    );
    blocking(|cb| a.set_user_info(Some("a open"), Some("a private"), 0, cb)).unwrap();
    blocking(|cb| b.set_user_info(None, Some("b private"), 0, cb)).unwrap();
    let open = |cl: &RtmClient, uids: &[i64]| {
        blocking(|cb| cl.get_user_open_info(uids, 0, cb))
            .expect("getuseropeninfo")
            .info
    };
    // B set only its private part: no public information, left out as C is (as rooms
    // are, docs/gate.md "Information"), which also keeps B's private set private.
    let want: HashMap<i64, String> = [(A, "a open".into())].into();
    assert_eq!(open(&c, &[A, B, C]), want);
    assert_eq!(open(&a, &[A]), [(A, "a open".to_string())].into());
    // `Some("")` clears the public part (sent as "", as JavaScript sends it): A is then
    // left out too, while its private part stays.
    blocking(|cb| a.set_user_info(Some(""), None, 0, cb)).unwrap();
    assert_eq!(
        gate.received("setuserinfo")[2],
        map(vec![("oinfo", "".into())])
    );
    assert_eq!(open(&c, &[A, B, C]), HashMap::new());
    let mine = blocking(|cb| a.get_user_info(0, cb)).unwrap();
    assert_eq!(
        (mine.oinfo.as_str(), mine.pinfo.as_str()),
        ("", "a private")
    );
    let e = code(blocking(|cb| c.get_user_open_info(&[], 0, cb)));
    assert_eq!(e, error_code::RTM_EC_EMPTY_PARAMETER);
    assert_eq!(gate.received("getuseropeninfo").len(), 3);
    let e = code(blocking(|cb| c.get_user_open_info(&[0], 0, cb)));
    assert_eq!(e, error_code::RTM_EC_EMPTY_PARAMETER);
}

/// An `oinfo` that is not UTF-8, bin or nil is read as `get_user_info`
/// reads it (docs/Users.md): invalid UTF-8 replaced, nil `""`. One such
/// user used to fail the whole call with 10010, losing every other user.
#[test]
fn open_info_of_several_users_reads_odd_oinfo_as_text() {
    let gate = gate();
    let a = logged_in(&gate, A);
    answer_with(&gate, "getuseropeninfo", odd_open_infos());
    let got = blocking(|cb| a.get_user_open_info(&[5, 6, 7, 8, 9], 0, cb))
        .expect("one odd oinfo failed the whole call");
    assert_eq!(got.info, odd_open_infos_read());
}
