//! Login outcomes, the auth payload, and the option checks of `RtmClient::new`
//! (docs/protocol.md section 5, docs/porting.md).
#![cfg(feature = "gate")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use rmpv::Value;
use rtm_client::gate::Gate;
use rtm_client::{error_code, RtmClient, RtmOptions, SDK_VERSION};

#[test]
fn login_accepted_calls_back_true_0() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    assert_eq!(login(&client, 1001, "any", 0), (true, 0));
    assert_eq!(gate.connections_of(PID, 1001), 1);
}

#[test]
fn login_with_a_rejected_token_calls_back_false_0() {
    let gate = Gate::builder().token(1001, "right").start().unwrap();
    let client = RtmClient::new(options(&gate)).unwrap();
    assert_eq!(login(&client, 1001, "wrong", 0), (false, 0));
    assert_eq!(gate.connections_of(PID, 1001), 0);
    // The right token still works on the same client.
    assert_eq!(login(&client, 1001, "right", 0), (true, 0));
}

#[test]
fn login_to_an_unreachable_gate_calls_back_false_20012() {
    let client = RtmClient::new(RtmOptions {
        endpoint: Some(format!("127.0.0.1:{}", dead_port())),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        login(&client, 1001, "t", 0),
        (false, error_code::FPNN_EC_CORE_INVALID_CONNECTION)
    );
}

#[test]
fn login_whose_auth_is_never_answered_times_out_with_20003() {
    let gate = gate();
    gate.pause(Duration::from_secs(60));
    let client = RtmClient::new(options(&gate)).unwrap();
    assert_eq!(
        login(&client, 1001, "t", 200),
        (false, error_code::FPNN_EC_CORE_TIMEOUT)
    );
    gate.resume();
    assert_eq!(
        login(&client, 1001, "t", 0),
        (true, 0),
        "a login after the timeout works"
    );
}

#[test]
fn auth_identifies_the_sdk_and_sends_pid_and_uid_as_integers() {
    let gate = gate();
    let client = RtmClient::new(RtmOptions {
        pid: 77,
        ..options(&gate)
    })
    .unwrap();
    assert_eq!(login(&client, 1001, "tok", 0), (true, 0));
    let auths = gate.auth_requests();
    assert_eq!(auths.len(), 1);
    let a = &auths[0];
    assert_eq!(SDK_VERSION, format!("Rust_{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        field(a, "version").and_then(Value::as_str),
        Some(SDK_VERSION)
    );
    assert!(matches!(field(a, "pid"), Some(Value::Integer(_))), "{a}");
    assert!(matches!(field(a, "uid"), Some(Value::Integer(_))), "{a}");
    assert_eq!(field(a, "pid").and_then(Value::as_i64), Some(77));
    assert_eq!(field(a, "uid").and_then(Value::as_i64), Some(1001));
    assert_eq!(field(a, "token").and_then(Value::as_str), Some("tok"));
    assert!(
        field(a, "attrs").is_none(),
        "attrs are sent only when set: {a}"
    );
}

#[test]
fn auth_carries_attrs_when_they_are_set() {
    let gate = gate();
    let attrs = HashMap::from([
        ("device".to_owned(), "test".to_owned()),
        ("lang".to_owned(), "en".to_owned()),
    ]);
    let client = RtmClient::new(RtmOptions {
        attrs: Some(attrs),
        ..options(&gate)
    })
    .unwrap();
    assert_eq!(login(&client, 1001, "tok", 0), (true, 0));
    let a = &gate.auth_requests()[0];
    let sent = field(a, "attrs").expect("attrs");
    assert_eq!(field(sent, "device").and_then(Value::as_str), Some("test"));
    assert_eq!(field(sent, "lang").and_then(Value::as_str), Some("en"));
    assert_eq!(sent.as_map().map(Vec::len), Some(2));
}

#[test]
fn new_without_an_endpoint_fails_with_200033() {
    let e = RtmClient::new(RtmOptions::default()).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
}

#[test]
fn new_with_an_endpoint_that_is_not_host_port_fails_with_20012() {
    let e = RtmClient::new(RtmOptions {
        endpoint: Some("nohost".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
}

/// `connection_timeout: 0` means the default (30 s), as `timeout: 0` does for
/// every call and as JavaScript's `connectionTimeout: 0` does; it used to
/// become 1 ms, so every login failed with 20012. The server holds its
/// handshake answer well past 1 ms: a login that ends meanwhile ended on a
/// timeout of its own.
#[test]
fn a_connection_timeout_of_0_means_the_default() {
    const HOLD: Duration = Duration::from_millis(200);
    let server = common::raw::RawServer::bind();
    let client = RtmClient::new(RtmOptions {
        auto_reconnect: false,
        connection_timeout: 0,
        ..server.options()
    })
    .unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(1001, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    let stream = server.accept_tcp();
    assert_eq!(
        rx.recv_timeout(HOLD).ok(),
        None,
        "the login ended before the server answered the handshake"
    );
    let mut conn = common::raw::RawConn::upgrade(stream);
    conn.accept_auth(&[]);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (true, 0));
}

/// An error answer to `auth` is a failed login with a non-zero code, never
/// `(false, 0)` (which means a rejected token): one whose `code` is 0, or
/// not an integer, or missing, is malformed and fails it with 20001, as any
/// other call's malformed error answer does.
#[test]
fn an_auth_error_answer_with_code_0_or_no_readable_code_fails_the_login_with_20001() {
    let gate = gate();
    let client = RtmClient::new(RtmOptions {
        auto_reconnect: false,
        ..options(&gate)
    })
    .unwrap();
    let errors = [
        map(vec![("code", 0.into()), ("ex", "zero".into())]),
        map(vec![("code", "200027".into()), ("ex", "a str".into())]),
        map(vec![("ex", "no code".into())]),
    ];
    for error in errors {
        let mut bytes = Vec::new();
        rtm_client::fpnn::packet::encode_payload(&error, &mut bytes);
        gate.rewrite_answers(Some(Box::new(move |method: &str, _: &Value, _| {
            (method == "auth").then(|| (1, bytes.clone()))
        })));
        assert_eq!(
            login(&client, 1001, "t", 0),
            (false, error_code::FPNN_EC_CORE_UNKNOWN_ERROR),
            "{error}"
        );
    }
    // A real error code passes through unchanged.
    let mut bytes = Vec::new();
    rtm_client::fpnn::packet::encode_payload(
        &map(vec![("code", 200024.into()), ("ex", "denied".into())]),
        &mut bytes,
    );
    gate.rewrite_answers(Some(Box::new(move |method: &str, _: &Value, _| {
        (method == "auth").then(|| (1, bytes.clone()))
    })));
    assert_eq!(
        login(&client, 1001, "t", 0),
        (false, error_code::RTM_EC_AUTH_DENIED)
    );
    gate.rewrite_answers(None);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
}

#[test]
fn new_rewrites_the_tcp_gate_port_13325_to_13321() {
    let c = RtmClient::new(RtmOptions {
        endpoint: Some("rtm.example.com:13325".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.endpoint(), ("rtm.example.com:13321", false));
    let c = RtmClient::new(RtmOptions {
        endpoint: Some("rtm.example.com:13321".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.endpoint(), ("rtm.example.com:13321", false));
}

#[test]
fn new_prefers_the_ssl_endpoint() {
    let c = RtmClient::new(RtmOptions {
        endpoint: Some("plain.example.com:13325".into()),
        ssl_endpoint: Some("tls.example.com:13322".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.endpoint(), ("tls.example.com:13322", true));
}

#[test]
fn a_second_login_replaces_the_session_on_a_new_connection() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    assert_eq!(login(&client, 1002, "t", 0), (true, 0));
    wait_until("the first connection is gone", || {
        gate.connections_of(PID, 1001) == 0
    });
    assert_eq!(gate.connections_of(PID, 1002), 1);
    // The replaced session ends without events: no SessionClosed, no relogin.
    ev.fence(&gate, 1002);
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Closed { .. } | Ev::Relogin { .. })),
        0,
        "{:#?}",
        ev.seen
    );
}

#[test]
fn a_login_replaced_while_its_auth_is_pending_completes_with_20002() {
    let gate = gate();
    gate.pause(Duration::from_secs(60));
    let client = RtmClient::new(options(&gate)).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(1001, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    wait_until("the first login's connection is open", || {
        gate.connection_count() == 1
    });
    // The paused gate never answers the first auth: only the replacement
    // can end it.
    let (tx2, rx2) = crossbeam_channel::bounded(1);
    client.login(
        1002,
        "t",
        move |ok, code| tx2.send((ok, code)).unwrap(),
        300,
    );
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        (false, error_code::FPNN_EC_CORE_CONNECTION_CLOSED)
    );
    gate.resume();
    let second = rx2.recv_timeout(WAIT).unwrap();
    assert!(
        second == (true, 0) || second == (false, error_code::FPNN_EC_CORE_TIMEOUT),
        "{second:?}"
    );
    assert_eq!(login(&client, 1002, "t", 0), (true, 0));
}
