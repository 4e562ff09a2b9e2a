//! get_message and delete_message through the client against the local
//! gate, and binary (non-UTF-8) bodies in pushes, history and get_message.
#![cfg(feature = "gate")]

mod msg_common;

use msg_common::*;
use rtm_client::gate::Gate;
use rtm_client::{blocking, error_code, RetrievedMessage, RtmClient, RtmError};

fn get(c: &RtmClient, from: i64, mid: i64, to: To) -> Result<RetrievedMessage, RtmError> {
    blocking(|cb| c.get_message(from, mid, to.xid(), to.kind(), 0, cb))
}

fn delete(c: &RtmClient, from: i64, mid: i64, to: To) -> Result<(), RtmError> {
    blocking(|cb| c.delete_message(from, mid, to.xid(), to.kind(), 0, cb))
}

/// A gate with A and B in group GID and room RID (and A alone in GID2 with
/// B, to have a second group both can read).
fn world() -> (Gate, RtmClient, RtmClient) {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    group(&a, GID, &[B]);
    group(&a, GID2, &[B]);
    enter(&a, RID);
    enter(&b, RID);
    (gate, a, b)
}

const TARGETS: [To; 3] = [To::P2p(B), To::Group(GID), To::Room(RID)];

#[test]
fn get_message_reads_p2p_group_and_room_messages_by_sender_mid_and_xid() {
    let (gate, a, b) = world();
    for to in TARGETS {
        let sent = send(&a, to, 31, "hello", BIG_MID).unwrap();
        let want = RetrievedMessage {
            id: 0,
            mtype: 31,
            msg: Some("hello".into()),
            binary: b"hello".to_vec(),
            attrs: String::new(),
            mtime: sent.payload.mtime,
        };
        for reader in [&a, &b] {
            let got = get(reader, A, BIG_MID, to).unwrap_or_else(|e| panic!("{to:?}: {e}"));
            assert!(got.id > 0, "{to:?}: {got:?}");
            assert_eq!(RetrievedMessage { id: 0, ..got }, want, "{to:?}");
        }
        // Another mid, or the same mid from the other user, is not found.
        let other_sender = match to {
            To::P2p(_) => (B, To::P2p(A)),
            _ => (B, to),
        };
        for (from, mid, to) in [
            (A, BIG_MID + 1, to),
            (other_sender.0, BIG_MID, other_sender.1),
        ] {
            let e = get(&b, from, mid, to).expect_err("no such message");
            assert_eq!(e.code, error_code::FPNN_EC_PROTO_KEY_NOT_FOUND, "{to:?}");
        }
    }
    // The xid names the conversation: the same mid in another group is not it.
    let e = get(&a, A, BIG_MID, To::Group(GID2)).expect_err("other group");
    assert_eq!(e.code, 10009);
    // p2p: xid is the receiver, not the sender.
    let e = get(&a, A, BIG_MID, To::P2p(A)).expect_err("xid is the receiver");
    assert_eq!(e.code, 10009);

    let sent = gate.received("getmsg");
    assert_eq!(keys(&sent[0]), ["from", "mid", "xid", "type"]);
    let first: Vec<i64> = ["from", "mid", "xid", "type"]
        .iter()
        .map(|k| int(&sent[0], k))
        .collect();
    assert_eq!(first, [A, BIG_MID, B, 1]);
    let kinds: Vec<(i64, i64)> = sent
        .iter()
        .map(|p| (int(p, "xid"), int(p, "type")))
        .collect();
    assert!(kinds.contains(&(GID, 2)) && kinds.contains(&(RID, 3)));
}

#[test]
fn a_deleted_message_is_not_found_with_10009() {
    let (gate, a, b) = world();
    for to in TARGETS {
        let sent = send(&a, to, 30, "short-lived", 0).unwrap();
        get(&b, A, sent.mid, to).expect("there before the delete");
        delete(&a, A, sent.mid, to).unwrap_or_else(|e| panic!("{to:?}: {e}"));
        for reader in [&a, &b] {
            let e = get(reader, A, sent.mid, to).expect_err("deleted");
            assert_eq!(e.code, error_code::FPNN_EC_PROTO_KEY_NOT_FOUND, "{to:?}");
            assert_eq!(e.code, 10009);
        }
    }
    let sent = gate.received("delmsg");
    assert_eq!(sent.len(), 3);
    assert!(sent
        .iter()
        .all(|p| keys(p) == ["from", "mid", "xid", "type"]));
    let kinds: Vec<(i64, i64)> = sent
        .iter()
        .map(|p| (int(p, "xid"), int(p, "type")))
        .collect();
    assert_eq!(kinds, [(B, 1), (GID, 2), (RID, 3)]);
}

#[test]
fn only_the_sender_may_delete_others_get_200021() {
    let (_gate, a, b) = world();
    for to in TARGETS {
        let sent = send(&a, to, 30, "mine", 0).unwrap();
        let e = delete(&b, A, sent.mid, to).expect_err("B is not the sender");
        assert_eq!(e.code, error_code::RTM_EC_PERMISSION_DENIED, "{to:?}");
        assert_eq!(e.code, 200021);
        // Still there.
        let got = get(&b, A, sent.mid, to).expect("not deleted");
        assert_eq!(got.msg.as_deref(), Some("mine"));
    }
}

#[test]
fn a_binary_body_arrives_as_bytes_in_the_push_history_and_get_message() {
    let (gate, a, b) = world();
    let pb = Pushes::listen(&b);
    let body: &[u8] = &[0xff, 0xfe, 0x00, 0x80, b'x', 0xc3];
    // Not UTF-8 (0xff never occurs in UTF-8).
    for (i, to) in TARGETS.into_iter().enumerate() {
        let mid = BIG_MID + i as i64;
        let mtime = gate
            .inject_message(PID, to.kind(), A, to.xid(), mid, 30, body, "{\"k\":1}")
            .unwrap_or_else(|e| panic!("{to:?}: {e}"));

        let push = pb.wait_mid(mid);
        assert_eq!(push.event, to.chat_event(), "{to:?}");
        let m = &push.msg;
        assert_eq!((m.from, m.mtype, m.mtime), (A, 30, mtime), "{to:?}");
        assert_eq!(
            (m.msg.as_deref(), m.binary.as_slice()),
            (None, body),
            "{to:?}"
        );
        assert_eq!(m.attrs, "{\"k\":1}");

        let got = get(&b, A, mid, to).unwrap_or_else(|e| panic!("{to:?}: {e}"));
        assert_eq!(
            (got.msg.as_deref(), got.binary.as_slice()),
            (None, body),
            "{to:?}"
        );
        assert_eq!((got.mtype, got.mtime), (30, mtime));

        let (msg, binary) = match to {
            To::P2p(_) => {
                let h = blocking(|cb| b.get_p2p_message(A, true, 1, None, None, None, None, 0, cb))
                    .unwrap();
                assert_eq!((h.msgs[0].mid, h.msgs[0].direction), (mid, 2));
                (h.msgs[0].msg.clone(), h.msgs[0].binary.clone())
            }
            To::Group(gid) => {
                let h =
                    blocking(|cb| b.get_group_message(gid, true, 1, None, None, None, None, 0, cb))
                        .unwrap();
                assert_eq!((h.msgs[0].mid, h.msgs[0].from), (mid, A));
                (h.msgs[0].msg.clone(), h.msgs[0].binary.clone())
            }
            To::Room(rid) => {
                let h =
                    blocking(|cb| b.get_room_message(rid, true, 1, None, None, None, None, 0, cb))
                        .unwrap();
                assert_eq!((h.msgs[0].mid, h.msgs[0].from), (mid, A));
                (h.msgs[0].msg.clone(), h.msgs[0].binary.clone())
            }
        };
        assert_eq!(
            (msg.as_deref(), binary.as_slice()),
            (None, body),
            "{to:?} history"
        );
    }
    // A text body is both: msg and its bytes.
    let sent = send(&a, To::P2p(B), 30, "héllo", 0).unwrap();
    let m = pb.wait_mid(sent.mid).msg;
    assert_eq!(m.msg.as_deref(), Some("héllo"));
    assert_eq!(m.binary, "héllo".as_bytes());
}
