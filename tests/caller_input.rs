//! Caller input: every public method of `RtmClient` (the table of
//! docs/porting.md) given out-of-range or empty arguments (zero, negative and
//! extreme ids, empty id lists, empty and oversized strings, invalid mtypes,
//! absurd counts, `u64::MAX` timeouts) answers through its callback, exactly
//! once, never from inside the call, with 0 or a documented code: 200033
//! (`RTM_EC_EMPTY_PARAMETER`) for what the client or the gate checks, or
//! the gate's documented refusals (docs/gate.md). Nothing panics or hangs,
//! logged in or not.
//!
//! The files area's rows use a one-byte file (`file`) or an empty one.
#![cfg(feature = "gate")]

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Instant;

use common::*;
use crossbeam_channel::Sender;
use rtm_client::gate::Gate;
use rtm_client::{error_code, RtmClient, RtmError, RtmFile, SendError};

type Done = Sender<i32>;
type CallFn = dyn Fn(&RtmClient, Done);

thread_local! {
    /// Set while a test thread is inside an API call.
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
}

/// A code for the callback's outcome: 0 for a result, the error's code, -1
/// for both or neither, -2 for a callback run inside the API call (codes
/// the client itself never uses: only a hostile gate sends negative codes).
fn outcome(err: Option<i32>, ok: bool) -> i32 {
    if IN_CALL.with(Cell::get) {
        return -2;
    }
    match (err, ok) {
        (Some(c), false) => c,
        (None, true) => 0,
        _ => -1,
    }
}

fn cb<T>(d: Done) -> impl FnOnce(Option<RtmError>, Option<T>) + Send + 'static {
    move |e, r| {
        let _ = d.send(outcome(e.map(|e| e.code), r.is_some()));
    }
}

fn scb<T>(d: Done) -> impl FnOnce(Option<SendError>, Option<T>) + Send + 'static {
    move |e, r| {
        let _ = d.send(outcome(e.map(|e| e.error.code), r.is_some()));
    }
}

/// What a case may answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// An error with a documented code.
    Refused,
    /// A result, or an error with a documented code (the argument is
    /// extreme but not wrong, such as a `u64::MAX` timeout).
    Either,
}
use Expect::*;

/// The codes the API documents for arguments it or the gate refuses.
const DOCUMENTED: &[i32] = &[
    error_code::RTM_EC_EMPTY_PARAMETER, // 200033
    200021,                             // permission denied (gate)
    200030,                             // message or attrs too large (gate)
    200032,                             // too many items (gate)
    200040,                             // not in the room (gate)
    200041,                             // not a member of the group (gate)
    error_code::FPNN_EC_PROTO_KEY_NOT_FOUND,
    error_code::FPNN_EC_PROTO_UNKNOWN_ERROR, // a quest over the packet limit, not sent
    error_code::FPNN_EC_CORE_INVALID_CONNECTION, // not logged in
];

macro_rules! cases {
    ($($expect:ident $name:literal => |$c:ident, $d:ident| $call:expr;)+) => {
        vec![$(($expect, $name, Box::new(move |$c: &RtmClient, $d: Done| $call) as Box<CallFn>)),+]
    };
}

/// Every API method with bad arguments. Ids: 0, -1 and `i64::MIN` are never
/// valid; lists are empty; strings empty, 2 MiB (the gate has no size limit below its
/// packet limit) or 9 MiB (over the 8 MiB packet limit); mtypes outside the user
/// range; counts 0, negative or `i32::MAX`.
fn cases() -> Vec<(Expect, &'static str, Box<CallFn>)> {
    let big = "x".repeat(2 << 20);
    let huge = "x".repeat(9 << 20);
    let (b1, b2, b3, b4, b5, b6, b7) = (
        big.clone(),
        big.clone(),
        big.clone(),
        big.clone(),
        big.clone(),
        big.clone(),
        big,
    );
    const T: u64 = 5_000;
    const MAX: u64 = u64::MAX;
    cases! {
        Refused "send_message(to 0)" => |c, d| c.send_message(0, 30, "m", "", 0, T, scb(d));
        Refused "send_message(to -1)" => |c, d| c.send_message(-1, 30, "m", "", 0, T, scb(d));
        Refused "send_message(to i64::MIN)" => |c, d| c.send_message(i64::MIN, 30, "m", "", 0, T, scb(d));
        Refused "send_message(empty msg)" => |c, d| c.send_message(1002, 30, "", "", 0, T, scb(d));
        Either "send_message(mtype 0)" => |c, d| c.send_message(1002, 0, "m", "", 0, T, scb(d));
        Either "send_message(mtype 255)" => |c, d| c.send_message(1002, 255, "m", "", 0, T, scb(d));
        Either "send_message(mid -1)" => |c, d| c.send_message(1002, 30, "m", "", -1, T, scb(d));
        Either "send_message(2 MiB msg)" => |c, d| c.send_message(1002, 30, &b1, "", 0, T, scb(d));
        Refused "send_message(9 MiB msg, over the packet limit)" => |c, d| c.send_message(1002, 30, &huge, "", 0, T, scb(d));
        Either "send_message(timeout MAX)" => |c, d| c.send_message(1002, 30, "m", "", 0, MAX, scb(d));
        Refused "send_group_message(gid 0)" => |c, d| c.send_group_message(0, 30, "m", "", 0, T, scb(d));
        Refused "send_group_message(gid -1)" => |c, d| c.send_group_message(-1, 30, "m", "", 0, T, scb(d));
        Refused "send_group_message(empty msg)" => |c, d| c.send_group_message(77, 30, "", "", 0, T, scb(d));
        Either "send_group_message(2 MiB attrs)" => |c, d| c.send_group_message(77, 30, "m", &b2, 0, T, scb(d));
        Refused "send_room_message(rid 0)" => |c, d| c.send_room_message(0, 30, "m", "", 0, T, scb(d));
        Refused "send_room_message(rid -1)" => |c, d| c.send_room_message(-1, 30, "m", "", 0, T, scb(d));
        Refused "send_room_message(empty msg)" => |c, d| c.send_room_message(88, 30, "", "", 0, T, scb(d));
        Refused "send_chat(to 0)" => |c, d| c.send_chat(0, "m", "", 0, T, scb(d));
        Refused "send_chat(empty)" => |c, d| c.send_chat(1002, "", "", 0, T, scb(d));
        Refused "send_audio(to -1)" => |c, d| c.send_audio(-1, "m", "", 0, T, scb(d));
        Refused "send_audio(empty)" => |c, d| c.send_audio(1002, "", "", 0, T, scb(d));
        Refused "send_cmd(to i64::MIN)" => |c, d| c.send_cmd(i64::MIN, "m", "", 0, T, scb(d));
        Refused "send_cmd(empty)" => |c, d| c.send_cmd(1002, "", "", 0, T, scb(d));
        Refused "send_group_chat(gid 0)" => |c, d| c.send_group_chat(0, "m", "", 0, T, scb(d));
        Refused "send_group_audio(empty)" => |c, d| c.send_group_audio(77, "", "", 0, T, scb(d));
        Refused "send_group_cmd(gid -1)" => |c, d| c.send_group_cmd(-1, "m", "", 0, T, scb(d));
        Refused "send_room_chat(rid 0)" => |c, d| c.send_room_chat(0, "m", "", 0, T, scb(d));
        Either "send_room_audio(2 MiB)" => |c, d| c.send_room_audio(88, &b3, "", 0, T, scb(d));
        Refused "send_room_cmd(empty)" => |c, d| c.send_room_cmd(88, "", "", 0, T, scb(d));
        Either "get_unread_message(timeout MAX)" => |c, d| c.get_unread_message(true, MAX, cb(d));
        Either "clean_unread_message(timeout MAX)" => |c, d| c.clean_unread_message(MAX, cb(d));
        Refused "get_p2p_unread_message_num(no uids)" => |c, d| c.get_p2p_unread_message_num(&[], None, None, T, cb(d));
        Refused "get_p2p_unread_message_num(uid 0)" => |c, d| c.get_p2p_unread_message_num(&[0, -1], None, None, T, cb(d));
        Either "get_p2p_unread_message_num(mtime -1, no mtypes)" => |c, d| c.get_p2p_unread_message_num(&[1002], Some(-1), Some(&[]), T, cb(d));
        Refused "get_group_unread_message_num(no gids)" => |c, d| c.get_group_unread_message_num(&[], None, None, T, cb(d));
        Refused "get_group_unread_message_num(gid -1)" => |c, d| c.get_group_unread_message_num(&[-1], Some(i64::MIN), None, T, cb(d));
        Refused "get_group_message(gid 0)" => |c, d| c.get_group_message(0, true, 10, None, None, None, None, T, cb(d));
        Either "get_group_message(num i32::MAX)" => |c, d| c.get_group_message(77, true, i32::MAX, None, None, None, None, T, cb(d));
        Either "get_group_message(num -1, begin > end)" => |c, d| c.get_group_message(77, false, -1, Some(i64::MAX), Some(-5), Some(-1), Some(&[]), T, cb(d));
        Refused "get_room_message(rid -1)" => |c, d| c.get_room_message(-1, true, 10, None, None, None, None, T, cb(d));
        Either "get_room_message(num 0)" => |c, d| c.get_room_message(88, true, 0, None, None, None, Some(&[0, 255]), T, cb(d));
        Either "get_broadcast_message(num i32::MIN)" => |c, d| c.get_broadcast_message(true, i32::MIN, Some(-1), Some(-1), Some(-1), None, T, cb(d));
        Refused "get_p2p_message(ouid 0)" => |c, d| c.get_p2p_message(0, true, 10, None, None, None, None, T, cb(d));
        Either "get_p2p_message(num -5)" => |c, d| c.get_p2p_message(1002, true, -5, None, None, None, None, MAX, cb(d));
        Refused "get_group_chat(gid 0)" => |c, d| c.get_group_chat(0, true, 10, None, None, None, T, cb(d));
        Refused "get_room_chat(rid -1)" => |c, d| c.get_room_chat(-1, true, 10, None, None, None, T, cb(d));
        Either "get_broadcast_chat(num 0)" => |c, d| c.get_broadcast_chat(true, 0, None, None, None, T, cb(d));
        Refused "get_p2p_chat(ouid -1)" => |c, d| c.get_p2p_chat(-1, false, i32::MAX, None, None, None, T, cb(d));
        Refused "get_message(from 0, mid 0)" => |c, d| c.get_message(0, 0, 0, 1, T, cb(d));
        Refused "get_message(type 9)" => |c, d| c.get_message(1001, 1, 1002, 9, T, cb(d));
        Either "get_message(mid -1)" => |c, d| c.get_message(1001, -1, 1002, 1, T, cb(d));
        Refused "delete_message(from 0)" => |c, d| c.delete_message(0, 1, 1002, 1, T, cb(d));
        Refused "delete_message(type 0)" => |c, d| c.delete_message(1001, 1, 1002, 0, T, cb(d));
        Refused "get_chat(xid -1)" => |c, d| c.get_chat(1001, 1, -1, 1, T, cb(d));
        Refused "delete_chat(type 255)" => |c, d| c.delete_chat(1001, 1, 1002, 255, T, cb(d));
        Either "get_session(timeout MAX)" => |c, d| c.get_session(MAX, cb(d));
        Refused "remove_session(to 0)" => |c, d| c.remove_session(0, T, cb(d));
        Refused "remove_session(to -1)" => |c, d| c.remove_session(-1, T, cb(d));
        Either "set_translation_language(empty)" => |c, d| c.set_translation_language("", T, cb(d));
        Either "get_p2p_conversation_list(mtime -1, no mtypes)" => |c, d| c.get_p2p_conversation_list(Some(-1), Some(&[]), T, cb(d));
        Either "get_p2p_unread_conversation_list(mtime MIN)" => |c, d| c.get_p2p_unread_conversation_list(Some(i64::MIN), None, MAX, cb(d));
        Either "get_group_conversation_list(mtypes 0, 255)" => |c, d| c.get_group_conversation_list(None, Some(&[0, 255]), T, cb(d));
        Either "get_group_unread_conversation_list(mtime MAX)" => |c, d| c.get_group_unread_conversation_list(Some(i64::MAX), None, T, cb(d));
        Either "get_unread_conversation_list(no mtypes)" => |c, d| c.get_unread_conversation_list(Some(true), Some(-1), Some(&[]), T, cb(d));
        Refused "data_set(empty key)" => |c, d| c.data_set("", "v", T, cb(d));
        Refused "data_set(2 MiB value)" => |c, d| c.data_set("k", &b4, T, cb(d));
        Refused "data_get(empty key)" => |c, d| c.data_get("", T, cb(d));
        Refused "data_delete(empty key)" => |c, d| c.data_delete("", T, cb(d));
        Refused "add_friends(empty)" => |c, d| c.add_friends(&[], T, cb(d));
        Refused "add_friends(0, -1)" => |c, d| c.add_friends(&[0, -1], T, cb(d));
        Refused "delete_friends(empty)" => |c, d| c.delete_friends(&[], T, cb(d));
        Refused "delete_friends(i64::MIN)" => |c, d| c.delete_friends(&[i64::MIN], T, cb(d));
        Either "get_friends(timeout MAX)" => |c, d| c.get_friends(MAX, cb(d));
        Refused "add_blacks(empty)" => |c, d| c.add_blacks(&[], T, cb(d));
        Refused "add_blacks(-1)" => |c, d| c.add_blacks(&[-1], T, cb(d));
        Refused "delete_blacks(empty)" => |c, d| c.delete_blacks(&[], T, cb(d));
        Either "get_blacks(timeout MAX)" => |c, d| c.get_blacks(MAX, cb(d));
        Refused "add_group_members(gid 0)" => |c, d| c.add_group_members(0, &[1002], T, cb(d));
        Refused "add_group_members(no uids)" => |c, d| c.add_group_members(77, &[], T, cb(d));
        Refused "add_group_members(uid -1)" => |c, d| c.add_group_members(77, &[-1], T, cb(d));
        Refused "delete_group_members(gid -1)" => |c, d| c.delete_group_members(-1, &[1002], T, cb(d));
        Refused "delete_group_members(no uids)" => |c, d| c.delete_group_members(77, &[], T, cb(d));
        Refused "get_group_members(gid 0)" => |c, d| c.get_group_members(0, None, T, cb(d));
        Refused "get_group_count(gid -1)" => |c, d| c.get_group_count(-1, Some(true), T, cb(d));
        Either "get_user_groups(timeout MAX)" => |c, d| c.get_user_groups(MAX, cb(d));
        Refused "set_group_info(gid 0)" => |c, d| c.set_group_info(0, Some("o"), None, T, cb(d));
        Either "set_group_info(nothing to set)" => |c, d| c.set_group_info(77, None, None, T, cb(d));
        Refused "set_group_info(2 MiB)" => |c, d| c.set_group_info(77, Some(&b5), None, T, cb(d));
        Refused "get_group_info(gid -1)" => |c, d| c.get_group_info(-1, T, cb(d));
        Refused "get_group_open_info(gid 0)" => |c, d| c.get_group_open_info(0, T, cb(d));
        Refused "get_groups_open_info(empty)" => |c, d| c.get_groups_open_info(&[], T, cb(d));
        Refused "get_groups_open_info(0)" => |c, d| c.get_groups_open_info(&[0], T, cb(d));
        Refused "enter_room(rid 0)" => |c, d| c.enter_room(0, T, cb(d));
        Refused "enter_room(rid -1)" => |c, d| c.enter_room(-1, T, cb(d));
        Refused "leave_room(rid i64::MIN)" => |c, d| c.leave_room(i64::MIN, T, cb(d));
        Either "get_user_rooms(timeout MAX)" => |c, d| c.get_user_rooms(MAX, cb(d));
        Refused "set_room_info(rid 0)" => |c, d| c.set_room_info(0, Some("o"), Some("p"), T, cb(d));
        Either "set_room_info(nothing to set)" => |c, d| c.set_room_info(77, None, None, T, cb(d));
        Refused "get_room_info(rid -1)" => |c, d| c.get_room_info(-1, T, cb(d));
        Refused "get_room_open_info(rid 0)" => |c, d| c.get_room_open_info(0, T, cb(d));
        Refused "get_rooms_open_info(empty)" => |c, d| c.get_rooms_open_info(&[], T, cb(d));
        Refused "get_room_members(rid 0)" => |c, d| c.get_room_members(0, T, cb(d));
        Refused "get_room_count(empty)" => |c, d| c.get_room_count(&[], T, cb(d));
        Refused "get_room_count(-1)" => |c, d| c.get_room_count(&[-1], T, cb(d));
        Refused "get_online_users(empty)" => |c, d| c.get_online_users(&[], T, cb(d));
        Refused "get_online_users(0)" => |c, d| c.get_online_users(&[0], T, cb(d));
        Either "set_user_info(nothing to set)" => |c, d| c.set_user_info(None, None, T, cb(d));
        Refused "set_user_info(2 MiB)" => |c, d| c.set_user_info(Some(&b6), Some(""), T, cb(d));
        Either "get_user_info(timeout MAX)" => |c, d| c.get_user_info(MAX, cb(d));
        Refused "get_user_open_info(empty)" => |c, d| c.get_user_open_info(&[], T, cb(d));
        Refused "get_user_open_info(-1)" => |c, d| c.get_user_open_info(&[-1], T, cb(d));
        Refused "add_attrs(empty)" => |c, d| c.add_attrs(&HashMap::new(), T, cb(d));
        Either "get_attrs(timeout MAX)" => |c, d| c.get_attrs(MAX, cb(d));
        Refused "add_debug_log(empty)" => |c, d| c.add_debug_log("", "", T, cb(d));
        Either "add_debug_log(2 MiB)" => |c, d| c.add_debug_log(&b7, "", T, cb(d));
        Refused "add_device(empty)" => |c, d| c.add_device("", "", T, cb(d));
        Refused "remove_device(empty)" => |c, d| c.remove_device("", T, cb(d));
        Refused "add_device_push_option(type 9)" => |c, d| c.add_device_push_option(9, 1002, None, T, cb(d));
        Refused "add_device_push_option(xid 0)" => |c, d| c.add_device_push_option(0, 0, Some(&[]), T, cb(d));
        Refused "remove_device_push_option(xid -1)" => |c, d| c.remove_device_push_option(1, -1, None, T, cb(d));
        Either "get_device_push_option(timeout MAX)" => |c, d| c.get_device_push_option(MAX, cb(d));
        Refused "translate(empty text)" => |c, d| c.translate("", None, "fr", None, None, T, cb(d));
        Refused "translate(empty target)" => |c, d| c.translate("hi", Some(""), "", Some(""), Some(""), T, cb(d));
        Refused "profanity(empty)" => |c, d| c.profanity("", None, T, cb(d));
        Refused "text_check(empty)" => |c, d| c.text_check("", Some(""), T, cb(d));
        Refused "image_check(empty)" => |c, d| c.image_check("", 9, None, T, cb(d));
        Refused "audio_check(empty)" => |c, d| c.audio_check("", 9, "", None, Some(-1), None, T, cb(d));
        Refused "video_check(empty)" => |c, d| c.video_check("", 9, "", None, T, cb(d));
        Refused "speech2_text(empty)" => |c, d| c.speech2_text("", 0, "", Some(""), Some(i32::MIN), T, cb(d));
        Refused "file_token(unknown cmd)" => |c, d| c.file_token("sendmsg", None, Some(1002), None, None, T, cb(d));
        Refused "file_token(empty cmd)" => |c, d| c.file_token("", Some(&[]), None, None, None, T, cb(d));
        Refused "file_token(to 0)" => |c, d| c.file_token("sendfile", None, Some(0), None, None, T, cb(d));
        Refused "send_file(mtype 30)" => |c, d| c.send_file(30, 1002, &RtmFile::new("a.txt", [1u8]), 0, T, scb(d));
        Refused "send_file(empty file)" => |c, d| c.send_file(50, 1002, &RtmFile::new("", Vec::new()), 0, T, scb(d));
        Refused "send_file(to -1)" => |c, d| c.send_file(50, -1, &RtmFile::new("a.txt", [1u8]), 0, MAX, scb(d));
        Refused "send_group_file(gid 0)" => |c, d| c.send_group_file(40, 0, &RtmFile::new("a.png", [1u8]), -1, T, scb(d));
        Refused "send_room_file(rid i64::MIN)" => |c, d| c.send_room_file(41, i64::MIN, &RtmFile::new(".", [1u8]), 0, T, scb(d));
    }
}

/// Runs every case on `client`; returns `(case, code)` for each.
fn walk(client: &RtmClient) -> Vec<(Expect, &'static str, i32)> {
    let mut out = Vec::new();
    for (expect, name, call) in cases() {
        let (tx, rx) = crossbeam_channel::unbounded();
        IN_CALL.with(|f| f.set(true));
        call(client, tx);
        IN_CALL.with(|f| f.set(false));
        let code = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{name}: no callback within {WAIT:?}"));
        assert!(rx.try_recv().is_err(), "{name}: a second callback");
        out.push((expect, name, code));
    }
    out
}

fn check(results: &[(Expect, &str, i32)], logged_in: bool) {
    let mut wrong = Vec::new();
    for &(expect, name, code) in results {
        let documented = DOCUMENTED.contains(&code);
        let fine = match (expect, logged_in) {
            (_, false) => documented,
            (Refused, true) => documented && code != error_code::FPNN_EC_CORE_INVALID_CONNECTION,
            (Either, true) => code == 0 || documented,
        };
        if !fine {
            wrong.push(format!("{name} answered {code} (expected {expect:?})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cases:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_method_answers_bad_arguments_once_through_its_callback_with_a_documented_code() {
    let gate = Gate::start().unwrap();
    let client = online(options(&gate), 1001);
    let _peer = online(options(&gate), 1002);
    // A group and a room the cases may name.
    rtm_client::blocking(|cb| client.add_group_members(77, &[1002], 0, cb)).unwrap();
    rtm_client::blocking(|cb| client.enter_room(88, 0, cb)).unwrap();
    let started = Instant::now();
    let results = walk(&client);
    eprintln!("{} cases in {:?}", results.len(), started.elapsed());
    check(&results, true);
    // The session survived all of it.
    rtm_client::blocking(|cb| client.send_message(1002, 30, "still here", "", 0, 0, cb))
        .expect("a valid send after the walk");

    // Login and the session controls with bad arguments.
    let other = RtmClient::new(options(&gate)).unwrap();
    for (uid, token) in [(0, "t"), (-1, "t"), (i64::MIN, "t"), (1003, "")] {
        let (ok, code) = login(&other, uid, token, u64::MAX);
        assert!(!ok, "login({uid}, {token:?}) succeeded");
        // (false, 0) is the gate refusing the token, as in JavaScript.
        assert!(
            code == 0 || DOCUMENTED.contains(&code),
            "login({uid}, {token:?}): {code}"
        );
    }
    other.bye();
    other.start_auto_reconnect();
    other.close();
    other.close();
    other.destroy();
    other.destroy();
}

#[test]
fn every_method_answers_once_before_login_without_a_panic_or_a_hang() {
    let gate = Gate::start().unwrap();
    let client = RtmClient::new(options(&gate)).unwrap();
    let results = walk(&client);
    check(&results, false);
    assert!(results.iter().all(|&(_, _, c)| c != 0), "{results:?}");
}
