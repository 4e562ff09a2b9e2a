//! The chat methods (docs/Chat.md) through the client against the local gate: the nine
//! sends put mtype 30/31/32 on the message wire methods and reach the chat, audio and cmd
//! events; the four chat histories ask for and get only the chat mtypes; get_chat and
//! delete_chat work like get_message and delete_message with their arguments in place.
#![cfg(feature = "gate")]

mod msg_common;

use msg_common::*;
use rmpv::Value;
use rtm_client::{
    blocking, error_code, HistoryMessages, HistoryMsg, PushEvent, RtmClient, RtmError, SendAnswer,
    SendError,
};

type Sent = Result<SendAnswer, SendError>;

/// The nine chat sends of `c` to `to`, in the order text, audio, cmd.
fn chat_send(c: &RtmClient, to: To, mtype: u8, msg: &str, mid: i64) -> Sent {
    blocking(|cb| match (to, mtype) {
        (To::P2p(x), 30) => c.send_chat(x, msg, "at", mid, 0, cb),
        (To::P2p(x), 31) => c.send_audio(x, msg, "at", mid, 0, cb),
        (To::P2p(x), 32) => c.send_cmd(x, msg, "at", mid, 0, cb),
        (To::Group(x), 30) => c.send_group_chat(x, msg, "at", mid, 0, cb),
        (To::Group(x), 31) => c.send_group_audio(x, msg, "at", mid, 0, cb),
        (To::Group(x), 32) => c.send_group_cmd(x, msg, "at", mid, 0, cb),
        (To::Room(x), 30) => c.send_room_chat(x, msg, "at", mid, 0, cb),
        (To::Room(x), 31) => c.send_room_audio(x, msg, "at", mid, 0, cb),
        (To::Room(x), 32) => c.send_room_cmd(x, msg, "at", mid, 0, cb),
        _ => unreachable!("chat mtypes are 30..=32"),
    })
}

/// The wire method and target key of a send to `to`.
fn wire(to: To) -> (&'static str, &'static str) {
    match to {
        To::P2p(_) => ("sendmsg", "to"),
        To::Group(_) => ("sendgroupmsg", "gid"),
        To::Room(_) => ("sendroommsg", "rid"),
    }
}

/// The push event B sees for a chat message of `mtype` sent to `to`.
fn event(to: To, mtype: u8) -> PushEvent {
    use PushEvent::*;
    match (to, mtype) {
        (To::P2p(_), 30) => RecvChat,
        (To::P2p(_), 31) => RecvAudio,
        (To::P2p(_), _) => RecvCmd,
        (To::Group(_), 30) => RecvGroupChat,
        (To::Group(_), 31) => RecvGroupAudio,
        (To::Group(_), _) => RecvGroupCmd,
        (To::Room(_), 30) => RecvRoomChat,
        (To::Room(_), 31) => RecvRoomAudio,
        (To::Room(_), _) => RecvRoomCmd,
    }
}

#[test]
fn the_nine_sends_carry_the_chat_mtypes_and_reach_the_chat_events() {
    let (gate, a, b) = two_users();
    let pushes = Pushes::listen(&b);
    let mut mid = BIG_MID;
    for to in [To::P2p(B), To::Group(GID), To::Room(RID)] {
        for mtype in [30, 31, 32] {
            mid += 1;
            gate.clear_quest_log();
            let sent = chat_send(&a, to, mtype, "hello", mid).unwrap();
            assert_eq!(sent.mid, mid);
            assert!(sent.payload.mtime > 0);
            let (method, key) = wire(to);
            let q = gate.received(method);
            assert_eq!(q.len(), 1, "{to:?} {mtype}");
            assert_eq!(keys(&q[0]), [key, "mid", "mtype", "msg", "attrs"]);
            assert_eq!(
                (int(&q[0], key), int(&q[0], "mid"), int(&q[0], "mtype")),
                (to.xid(), mid, i64::from(mtype))
            );
            assert_eq!(field(&q[0], "attrs"), &Value::from("at"));
            let seen = pushes.wait_mid(mid);
            assert_eq!(seen.event, event(to, mtype), "{to:?} {mtype}");
            assert_eq!(
                (seen.msg.from, seen.msg.mtype, seen.msg.msg.as_deref()),
                (A, mtype, Some("hello"))
            );
            assert_eq!(seen.msg.mtime, sent.payload.mtime);
        }
    }
    // mid 0: the client generates one, and it comes back with the answer.
    let sent = chat_send(&a, To::P2p(B), 30, "gen", 0).unwrap();
    assert!(sent.mid > 0);
    assert_eq!(pushes.wait_mid(sent.mid).msg.msg.as_deref(), Some("gen"));
}

#[test]
fn send_errors_keep_the_mid_and_empty_bodies_are_not_sent() {
    let (gate, a, _b) = two_users();
    let c = logged_in(&gate, C);
    gate.clear_quest_log();
    for to in [To::P2p(B), To::Group(GID), To::Room(RID)] {
        for mtype in [30, 31, 32] {
            let e = chat_send(&a, to, mtype, "", 77).unwrap_err();
            assert_eq!(
                (e.mid, e.error.code),
                (77, error_code::RTM_EC_EMPTY_PARAMETER)
            );
        }
    }
    for m in ["sendmsg", "sendgroupmsg", "sendroommsg"] {
        assert!(gate.received(m).is_empty(), "{m} was sent");
    }
    // The gate's answers: C is neither in the group nor in the room.
    for mtype in [30, 31, 32] {
        let e = chat_send(&c, To::Group(GID), mtype, "x", 5).unwrap_err();
        assert_eq!(
            (e.mid, e.error.code),
            (5, error_code::RTM_EC_NOT_GROUP_MEMBER)
        );
        let e = chat_send(&c, To::Room(RID), mtype, "x", 6).unwrap_err();
        assert_eq!((e.mid, e.error.code), (6, error_code::RTM_EC_NOT_IN_ROOM));
    }
}

/// The (mtype, body) pairs of a history page.
fn summary<M>(h: &HistoryMessages<M>, f: impl Fn(&M) -> (u8, String)) -> Vec<(u8, String)> {
    h.msgs.iter().map(f).collect()
}

fn group_row(m: &HistoryMsg) -> (u8, String) {
    (m.mtype, m.msg.clone().unwrap_or_default())
}

#[test]
fn chat_histories_hold_only_text_audio_and_cmd() {
    let (gate, a, b) = two_users();
    let mtypes = [30u8, 40, 31, 51, 32, 29];
    for (i, &mtype) in mtypes.iter().enumerate() {
        let body = format!("m{i}");
        for to in [To::P2p(B), To::Group(GID), To::Room(RID)] {
            send(&a, to, mtype, &body, 0).unwrap();
        }
        gate.broadcast(PID, C, mtype, &body, "");
    }
    let want: Vec<(u8, String)> = vec![(30, "m0".into()), (31, "m2".into()), (32, "m4".into())];
    gate.clear_quest_log();

    let h = blocking(|cb| b.get_p2p_chat(A, false, 20, None, None, None, 0, cb)).unwrap();
    let rows = summary(&h, |m| (m.mtype, m.msg.clone().unwrap_or_default()));
    assert_eq!(rows, want);
    assert!(h.msgs.iter().all(|m| m.direction == 2));
    let h = blocking(|cb| b.get_group_chat(GID, false, 20, None, None, None, 0, cb)).unwrap();
    assert_eq!(summary(&h, group_row), want);
    assert!(h.msgs.iter().all(|m| m.from == A));
    let h = blocking(|cb| b.get_room_chat(RID, false, 20, None, None, None, 0, cb)).unwrap();
    assert_eq!(summary(&h, group_row), want);
    let h = blocking(|cb| b.get_broadcast_chat(false, 20, None, None, None, 0, cb)).unwrap();
    assert_eq!(summary(&h, group_row), want);
    assert!(h.msgs.iter().all(|m| m.from == C));

    // What went on the wire: the history quests with mtypes [30, 31, 32].
    let chat = Value::Array(vec![30.into(), 31.into(), 32.into()]);
    for (method, key, target) in [
        ("getp2pmsg", Some("ouid"), A),
        ("getgroupmsg", Some("gid"), GID),
        ("getroommsg", Some("rid"), RID),
        ("getbroadcastmsg", None, 0),
    ] {
        let q = gate.received(method);
        assert_eq!(q.len(), 1, "{method}");
        assert_eq!(field(&q[0], "mtypes"), &chat, "{method}");
        let mut want_keys: Vec<&str> = key.into_iter().collect();
        want_keys.extend(["desc", "num", "mtypes"]);
        assert_eq!(keys(&q[0]), want_keys, "{method}");
        if let Some(k) = key {
            assert_eq!(int(&q[0], k), target);
        }
    }

    // Paging: descending, one at a time, with the cursor passed back.
    let mut seen = Vec::new();
    let (mut end, mut lastid) = (None, None);
    for _ in 0..4 {
        let h = blocking(|cb| a.get_group_chat(GID, true, 1, None, end, lastid, 0, cb)).unwrap();
        if h.msgs.is_empty() {
            break;
        }
        seen.extend(summary(&h, group_row));
        (end, lastid) = (Some(h.end), Some(h.lastid));
    }
    seen.reverse();
    assert_eq!(seen, want);
}

#[test]
fn chat_histories_report_the_gates_errors() {
    let (gate, _a, _b) = two_users();
    let c = logged_in(&gate, C);
    let e = blocking(|cb| c.get_group_chat(GID, false, 10, None, None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_NOT_GROUP_MEMBER);
    let e = blocking(|cb| c.get_room_chat(RID, false, 10, None, None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_NOT_IN_ROOM);
    let e = blocking(|cb| c.get_p2p_chat(0, false, 10, None, None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let e = blocking(|cb| c.get_broadcast_chat(false, 0, None, None, None, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
}

fn get_chat(
    c: &RtmClient,
    from: i64,
    mid: i64,
    to: To,
) -> Result<rtm_client::RetrievedMessage, RtmError> {
    blocking(|cb| c.get_chat(from, mid, to.xid(), to.kind(), 0, cb))
}

fn delete_chat(c: &RtmClient, from: i64, mid: i64, to: To) -> Result<(), RtmError> {
    blocking(|cb| c.delete_chat(from, mid, to.xid(), to.kind(), 0, cb))
}

#[test]
fn get_chat_and_delete_chat_pass_their_arguments_in_order() {
    let (gate, a, b) = two_users();
    for (i, to) in [To::P2p(B), To::Group(GID), To::Room(RID)]
        .into_iter()
        .enumerate()
    {
        let mid = BIG_MID + i as i64;
        let sent = chat_send(&a, to, 31, "voice", mid).unwrap();
        gate.clear_quest_log();
        let got = get_chat(&b, A, mid, to).unwrap();
        assert_eq!(
            (got.mtype, got.msg.as_deref(), got.attrs.as_str(), got.mtime),
            (31, Some("voice"), "at", sent.payload.mtime)
        );
        let q = &gate.received("getmsg")[0];
        assert_eq!(keys(q), ["from", "mid", "xid", "type"]);
        let got_key = [int(q, "from"), int(q, "mid"), int(q, "xid"), int(q, "type")];
        assert_eq!(got_key, [A, mid, to.xid(), i64::from(to.kind())]);

        // Only the sender may delete (the JavaScript SDK's shifted arguments would name
        // another message); then the message is gone.
        let e = delete_chat(&b, A, mid, to).unwrap_err();
        assert_eq!(e.code, error_code::RTM_EC_PERMISSION_DENIED);
        delete_chat(&a, A, mid, to).unwrap();
        let q = gate.received("delmsg");
        let last = q.last().unwrap();
        let del_key = [
            int(last, "from"),
            int(last, "mid"),
            int(last, "xid"),
            int(last, "type"),
        ];
        assert_eq!(del_key, [A, mid, to.xid(), i64::from(to.kind())]);
        let e = get_chat(&b, A, mid, to).unwrap_err();
        assert_eq!(e.code, error_code::FPNN_EC_PROTO_KEY_NOT_FOUND);
    }
    // A type outside 1..=3 is refused without sending.
    gate.clear_quest_log();
    let e = blocking(|cb| a.get_chat(A, 1, B, 4, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    let e = blocking(|cb| a.delete_chat(A, 1, B, 0, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::RTM_EC_EMPTY_PARAMETER);
    assert!(gate.received("getmsg").is_empty() && gate.received("delmsg").is_empty());
}
