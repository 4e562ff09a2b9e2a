//! The data methods through the client against the local gate (docs/Data.md): a
//! key-value store per user, with the key and value limits checked by the client
//! (nothing sent) and by the gate (for other clients), with the same codes: 200033 for
//! a bad key, 200030 for a value over 65,535 bytes.
#![cfg(feature = "gate")]

mod msg_common;

use msg_common::*;
use rtm_client::{blocking, error_code, DataValue, RtmClient, RtmError};

fn code<T: std::fmt::Debug>(r: Result<T, RtmError>) -> i32 {
    r.expect_err("an error answer").code
}

fn get(c: &RtmClient, key: &str) -> Option<String> {
    blocking(|cb| c.data_get(key, 0, cb)).expect("dataget").val
}

#[test]
fn set_get_delete_per_user() {
    let gate = gate();
    let (a, b) = (logged_in(&gate, A), logged_in(&gate, B));
    assert_eq!(get(&a, "k"), None);
    blocking(|cb| a.data_set("k", "v1", 0, cb)).unwrap();
    blocking(|cb| a.data_set("k", "v2", 0, cb)).unwrap();
    blocking(|cb| b.data_set("k", "", 0, cb)).unwrap();
    assert_eq!(get(&a, "k"), Some("v2".into()));
    assert_eq!(
        get(&b, "k"),
        Some(String::new()),
        "an empty value is a value"
    );
    blocking(|cb| a.data_delete("k", 0, cb)).unwrap();
    blocking(|cb| a.data_delete("k", 0, cb)).unwrap();
    assert_eq!(
        blocking(|cb| a.data_get("k", 0, cb)).unwrap(),
        DataValue { val: None }
    );
    assert_eq!(get(&b, "k"), Some(String::new()));
    assert_eq!(
        gate.received("dataset")[0],
        map(vec![("key", "k".into()), ("val", "v1".into())])
    );
    assert_eq!(gate.received("dataget")[0], map(vec![("key", "k".into())]));
    assert_eq!(gate.received("datadel")[0], map(vec![("key", "k".into())]));
}

#[test]
fn limits_are_checked_before_sending() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let (k128, k129) = ("k".repeat(128), "k".repeat(129));
    let (v_max, v_over) = ("v".repeat(65_535), "v".repeat(65_536));
    blocking(|cb| a.data_set(&k128, &v_max, 0, cb)).unwrap();
    assert_eq!(get(&a, &k128).map(|v| v.len()), Some(65_535));
    let empty = error_code::RTM_EC_EMPTY_PARAMETER;
    for key in ["", k129.as_str()] {
        assert_eq!(code(blocking(|cb| a.data_set(key, "v", 0, cb))), empty);
        assert_eq!(code(blocking(|cb| a.data_get(key, 0, cb))), empty);
        assert_eq!(code(blocking(|cb| a.data_delete(key, 0, cb))), empty);
    }
    // The client refuses a too-long value with the gate's code (200030), so a caller sees
    // the same code whichever side checks it.
    assert_eq!(
        code(blocking(|cb| a.data_set("k", &v_over, 0, cb))),
        error_code::RTM_EC_LARGE_MESSAGE_OR_ATTRS
    );
    // A multi-byte key is measured in bytes: 43 three-byte characters are 129 bytes.
    let wide = "\u{4e2d}".repeat(43);
    assert_eq!(code(blocking(|cb| a.data_set(&wide, "v", 0, cb))), empty);
    assert_eq!(gate.received("dataset").len(), 1);
    assert_eq!(gate.received("dataget").len(), 1);
    assert!(gate.received("datadel").is_empty());
}
