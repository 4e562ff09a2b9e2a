//! The system methods through the client against the local gate
//! (docs/System.md): per-connection attrs, debug logs, devices and device
//! push options, and the arguments refused before sending.
#![cfg(feature = "gate")]

mod msg_common;

use std::collections::HashMap;

use msg_common::*;
use rmpv::Value;
use rtm_client::{blocking, error_code, DevicePushOption};

fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn attrs_belong_to_connections_and_carry_the_login_time() {
    let gate = gate();
    let before = now_ms();
    let (a1, a2) = (logged_in(&gate, A), logged_in(&gate, A));
    let after = now_ms();
    blocking(|cb| a1.add_attrs(&attrs(&[("device", "phone")]), 0, cb)).unwrap();
    blocking(|cb| a1.add_attrs(&attrs(&[("device", "tablet"), ("v", "2")]), 0, cb)).unwrap();
    let maps = blocking(|cb| a2.get_attrs(0, cb)).unwrap();
    assert_eq!(maps.len(), 2, "{maps:?}");
    let mine: Vec<_> = maps.iter().filter(|m| m["my"] == "1").collect();
    let other: Vec<_> = maps.iter().filter(|m| m["my"] == "0").collect();
    assert_eq!((mine.len(), other.len()), (1, 1), "{maps:?}");
    assert_eq!(mine[0].len(), 2, "a2 added nothing: {maps:?}");
    assert_eq!(
        (other[0]["device"].as_str(), other[0]["v"].as_str()),
        ("tablet", "2")
    );
    for m in &maps {
        let login: i64 = m["login"].parse().expect("login is decimal ms");
        assert!(
            (before..=after).contains(&login),
            "{login} not in {before}..={after}"
        );
    }
    // A closed connection's attrs go with it.
    a1.close();
    wait_until("a1 is gone", || gate.connections_of(PID, A) == 1);
    let maps = blocking(|cb| a2.get_attrs(0, cb)).unwrap();
    assert_eq!((maps.len(), maps[0]["my"].as_str()), (1, "1"));

    let e = blocking(|cb| a2.add_attrs(&HashMap::new(), 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    assert_eq!(
        gate.received("addattrs").len(),
        2,
        "the empty map was not sent"
    );
}

#[test]
fn debug_logs_and_devices() {
    let gate = gate();
    let a = logged_in(&gate, A);
    blocking(|cb| a.add_debug_log("crash at start", "{\"v\":1}", 0, cb)).unwrap();
    let sent = gate.received("adddebuglog");
    assert_eq!(
        sent,
        [map(vec![
            ("msg", "crash at start".into()),
            ("attrs", "{\"v\":1}".into())
        ])]
    );
    let e = blocking(|cb| a.add_debug_log("", "", 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);

    blocking(|cb| a.add_device("apns", "token-1", 0, cb)).unwrap();
    blocking(|cb| a.remove_device("token-1", 0, cb)).unwrap();
    blocking(|cb| a.remove_device("token-1", 0, cb)).unwrap();
    assert_eq!(
        gate.received("adddevice"),
        [map(vec![
            ("apptype", "apns".into()),
            ("devicetoken", "token-1".into())
        ])]
    );
    let e = blocking(|cb| a.add_device("", "t", 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let e = blocking(|cb| a.remove_device("", 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    assert_eq!(gate.received("removedevice").len(), 2);
    assert_eq!(gate.received("adddebuglog").len(), 1);
}

#[test]
fn push_options_are_mtype_sets_and_empty_means_all() {
    let gate = gate();
    let (a, b) = (logged_in(&gate, A), logged_in(&gate, B));
    blocking(|cb| a.add_device_push_option(0, B, Some(&[30, 31]), 0, cb)).unwrap();
    blocking(|cb| a.add_device_push_option(1, GID, None, 0, cb)).unwrap();
    blocking(|cb| a.add_device_push_option(1, GID2, Some(&[40]), 0, cb)).unwrap();
    let o = blocking(|cb| a.get_device_push_option(0, cb)).unwrap();
    assert_eq!(
        o,
        DevicePushOption {
            p2p: HashMap::from([(B, vec![30, 31])]),
            group: HashMap::from([(GID, vec![]), (GID2, vec![40])]),
        }
    );
    blocking(|cb| a.remove_device_push_option(0, B, Some(&[30]), 0, cb)).unwrap();
    blocking(|cb| a.remove_device_push_option(1, GID2, None, 0, cb)).unwrap();
    let o = blocking(|cb| a.get_device_push_option(0, cb)).unwrap();
    assert_eq!(o.p2p, HashMap::from([(B, vec![31])]));
    assert_eq!(o.group, HashMap::from([(GID, vec![])]));
    // Options are per user.
    let o = blocking(|cb| b.get_device_push_option(0, cb)).unwrap();
    assert_eq!(o, DevicePushOption::default());

    let e = blocking(|cb| a.add_device_push_option(2, B, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let e = blocking(|cb| a.remove_device_push_option(0, 0, None, 0, cb)).unwrap_err();
    assert_eq!(
        e.code,
        error_code::RTM_EC_EMPTY_PARAMETER,
        "the gate refuses xid 0"
    );
    let adds = gate.received("addoption");
    assert_eq!(adds.len(), 3, "type 2 was not sent");
    assert_eq!(keys(&adds[1]), ["type", "xid"], "None leaves mtypes out");
    assert_eq!(
        field(&adds[0], "mtypes"),
        &Value::Array(vec![30.into(), 31.into()])
    );
}
