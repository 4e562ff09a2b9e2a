//! The friends and blacklist methods through the client against the local gate
//! (docs/Friends.md): one-directional friend lists, the 100-uid limit, and blacklists
//! that stop p2p sends from the blocked user only.
#![cfg(feature = "gate")]

mod msg_common;

use msg_common::*;
use rtm_client::{blocking, error_code, RtmClient, RtmError};

fn friends(c: &RtmClient) -> Vec<i64> {
    blocking(|cb| c.get_friends(0, cb)).expect("getfriends")
}

fn blacks(c: &RtmClient) -> Vec<i64> {
    blocking(|cb| c.get_blacks(0, cb)).expect("getblacks")
}

fn code<T: std::fmt::Debug>(r: Result<T, RtmError>) -> i32 {
    r.expect_err("an error answer").code
}

#[test]
fn add_get_delete_friends_of_the_caller_only() {
    let gate = gate();
    let (a, b) = (logged_in(&gate, A), logged_in(&gate, B));
    blocking(|cb| a.add_friends(&[C, B], 0, cb)).unwrap();
    blocking(|cb| a.add_friends(&[B], 0, cb)).unwrap();
    let mut got = friends(&a);
    got.sort_unstable();
    let mut want = vec![B, C];
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(friends(&b), Vec::<i64>::new(), "one-directional");
    blocking(|cb| a.delete_friends(&[B, 4242], 0, cb)).unwrap();
    assert_eq!(friends(&a), vec![C]);
    // The wire keys of docs/Friends.md.
    let sent = gate.received("addfriends");
    assert_eq!(sent[0], map(vec![("friends", id_list(&[C, B]))]));
    assert_eq!(
        gate.received("delfriends")[0],
        map(vec![("friends", id_list(&[B, 4242]))])
    );
}

fn p2p(from: &RtmClient, to: i64, text: &str) -> Result<(), i32> {
    blocking(|cb| from.send_message(to, 51, text, "", 0, 0, cb))
        .map(|_| ())
        .map_err(|e| e.error.code)
}

#[test]
fn a_blocked_user_cannot_send_to_the_blocker() {
    let gate = gate();
    let (a, b) = (logged_in(&gate, A), logged_in(&gate, B));
    p2p(&b, A, "before").unwrap();
    blocking(|cb| a.add_blacks(&[B], 0, cb)).unwrap();
    assert_eq!(blacks(&a), vec![B]);
    assert_eq!(blacks(&b), Vec::<i64>::new());
    assert_eq!(
        p2p(&b, A, "blocked"),
        Err(error_code::RTM_EC_PERMISSION_DENIED)
    );
    // The blocker can still send, and both still read their conversation.
    p2p(&a, B, "from a").unwrap();
    for (c, other) in [(&a, B), (&b, A)] {
        let h = blocking(|cb| c.get_p2p_message(other, false, 10, None, None, None, None, 0, cb))
            .expect("history");
        let texts: Vec<_> = h.msgs.iter().map(|m| m.msg.clone().unwrap()).collect();
        assert_eq!(texts, ["before", "from a"]);
    }
    blocking(|cb| a.delete_blacks(&[B], 0, cb)).unwrap();
    assert_eq!(blacks(&a), Vec::<i64>::new());
    p2p(&b, A, "after").unwrap();
    assert_eq!(
        gate.received("addblacks")[0],
        map(vec![("blacks", id_list(&[B]))])
    );
}

type Edit = fn(&RtmClient, &[i64]) -> Result<(), RtmError>;
type Read = fn(&RtmClient) -> Vec<i64>;

/// Both lists: (wire add, wire delete, add, delete, get).
const LISTS: [(&str, &str, Edit, Edit, Read); 2] = [
    (
        "addfriends",
        "delfriends",
        |c, ids| blocking(|cb| c.add_friends(ids, 0, cb)),
        |c, ids| blocking(|cb| c.delete_friends(ids, 0, cb)),
        friends,
    ),
    (
        "addblacks",
        "delblacks",
        |c, ids| blocking(|cb| c.add_blacks(ids, 0, cb)),
        |c, ids| blocking(|cb| c.delete_blacks(ids, 0, cb)),
        blacks,
    ),
];

#[test]
fn list_errors() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let many: Vec<i64> = (1..=101).collect();
    for (add_wire, del_wire, add, del, get) in LISTS {
        for edit in [add, del] {
            assert_eq!(code(edit(&a, &[])), error_code::RTM_EC_EMPTY_PARAMETER);
            let e = code(edit(&a, &many));
            assert_eq!(e, error_code::RTM_EC_TOO_MANY_ITEMS_IN_PARAMETERS);
            assert_eq!(code(edit(&a, &[B, 0])), error_code::RTM_EC_EMPTY_PARAMETER);
        }
        // The empty lists were refused without sending; the others reached the gate.
        assert_eq!(gate.received(add_wire).len(), 2, "{add_wire}");
        assert_eq!(gate.received(del_wire).len(), 2, "{del_wire}");
        assert_eq!(get(&a), Vec::<i64>::new(), "refused edits change nothing");
        add(&a, &many[..100]).unwrap();
        assert_eq!(get(&a).len(), 100);
    }
    // Reads fail too when the client is not logged in.
    a.close();
    let e = code(blocking(|cb| a.get_friends(0, cb)));
    assert_eq!(e, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
    let e = code(blocking(|cb| a.get_blacks(0, cb)));
    assert_eq!(e, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
}
