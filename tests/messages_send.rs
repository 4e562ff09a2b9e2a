//! The three send methods through the client against the local gate: mids,
//! answers and errors, invalid arguments, pushes, resends.
#![cfg(feature = "gate")]

mod msg_common;

use std::collections::HashSet;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::ThreadId;

use msg_common::*;
use rtm_client::{
    blocking, error_code, Dispatch, PushEvent, RtmClient, RtmError, SendAnswer, SendError,
};

const TARGETS: [To; 3] = [To::P2p(B), To::Group(GID), To::Room(RID)];

fn send_with_timeout(
    client: &RtmClient,
    to: To,
    msg: &str,
    mid: i64,
    timeout: u64,
    cb: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
) {
    match to {
        To::P2p(uid) => client.send_message(uid, 30, msg, "", mid, timeout, cb),
        To::Group(gid) => client.send_group_message(gid, 30, msg, "", mid, timeout, cb),
        To::Room(rid) => client.send_room_message(rid, 30, msg, "", mid, timeout, cb),
    }
}

fn send_method(to: To) -> &'static str {
    match to {
        To::P2p(_) => "sendmsg",
        To::Group(_) => "sendgroupmsg",
        To::Room(_) => "sendroommsg",
    }
}

#[test]
fn send_answers_carry_the_given_mid_or_the_generated_one_sent_on_the_wire() {
    let (gate, a, _b) = two_users();
    for to in TARGETS {
        let given = send(&a, to, 30, "with a mid", BIG_MID).expect("send with a mid");
        assert_eq!(given.mid, BIG_MID, "{to:?}");
        assert!(given.payload.mtime > 0, "{to:?}: {given:?}");

        let generated = send(&a, to, 30, "mid 0", 0).expect("send with mid 0");
        assert_ne!(generated.mid, 0, "{to:?}: a mid is generated for 0");
        assert!(generated.payload.mtime >= given.payload.mtime);

        let wire = gate.received(send_method(to));
        let mids: Vec<i64> = wire.iter().map(|p| int(p, "mid")).collect();
        assert_eq!(
            mids,
            [BIG_MID, generated.mid],
            "{to:?}: the mids on the wire"
        );
    }
}

#[test]
fn send_errors_carry_the_mid_for_all_three_methods() {
    let gate = gate();
    let a = logged_in(&gate, A);
    let b = logged_in(&gate, B);
    // B's group and room, which A is not part of.
    group(&b, GID, &[C]);
    enter(&b, RID);

    for (to, code) in [
        (To::Group(GID), error_code::RTM_EC_NOT_GROUP_MEMBER),
        (To::Room(RID), error_code::RTM_EC_NOT_IN_ROOM),
    ] {
        let e = send(&a, to, 30, "hi", BIG_MID).expect_err("not a member");
        assert_eq!((e.mid, e.error.code), (BIG_MID, code), "{to:?}: {e}");
        let e = send(&a, to, 30, "hi", 0).expect_err("not a member");
        assert_eq!(e.error.code, code, "{to:?}");
        let wire = gate.received(send_method(to));
        assert_eq!(
            e.mid,
            int(wire.last().unwrap(), "mid"),
            "{to:?}: the generated mid"
        );
        assert_ne!(e.mid, 0);
    }
    assert_eq!(error_code::RTM_EC_NOT_GROUP_MEMBER, 200041);
    assert_eq!(error_code::RTM_EC_NOT_IN_ROOM, 200040);

    // A p2p send fails when there is no connection: 20012, with the mid.
    let offline = client_with(&gate, Dispatch::Threads);
    for to in TARGETS {
        let e = send(&offline, to, 30, "hi", BIG_MID).expect_err("not logged in");
        assert_eq!(
            (e.mid, e.error.code),
            (BIG_MID, error_code::FPNN_EC_CORE_INVALID_CONNECTION),
            "{to:?}"
        );
        let e = send(&offline, to, 30, "hi", 0).expect_err("not logged in");
        assert_ne!(e.mid, 0, "{to:?}: the generated mid is reported");
    }
}

#[test]
fn three_thousand_pipelined_sends_get_distinct_generated_mids_and_one_callback_each() {
    const N: usize = 3000;
    let gate = gate();
    let a = logged_in(&gate, A);
    group(&a, GID, &[B]);
    enter(&a, RID);
    let (tx, rx) = mpsc::channel::<(usize, Result<SendAnswer, SendError>)>();
    // All sent without waiting, in a burst of a few milliseconds; p2p, group
    // and room share the client's one mid generator.
    for i in 0..N {
        let tx = tx.clone();
        let to = TARGETS[i % 3];
        send_with_timeout(&a, to, &format!("m{i}"), 0, 0, move |e, d| {
            let r = match (e, d) {
                (None, Some(d)) => Ok(d),
                (Some(e), None) => Err(e),
                other => panic!("callback {i} called with {other:?}"),
            };
            let _ = tx.send((i, r));
        });
    }
    drop(tx);
    let mut calls = vec![0u32; N];
    let mut mids = vec![0i64; N];
    for _ in 0..N {
        let (i, r) = rx.recv_timeout(WAIT).expect("a callback for every send");
        calls[i] += 1;
        mids[i] = r.unwrap_or_else(|e| panic!("send {i}: {e}")).mid;
    }
    assert!(calls.iter().all(|&n| n == 1), "every callback exactly once");
    // Every sender of the channel is gone once every callback has run (each
    // is FnOnce): no further call can come.
    assert!(rx.recv_timeout(WAIT).is_err());
    let distinct: HashSet<i64> = mids.iter().copied().collect();
    assert_eq!(distinct.len(), N, "generated mids are all distinct");
    assert!(mids.iter().all(|&m| m > 0));
    assert!(
        mids.windows(2).all(|w| w[0] < w[1]),
        "generated mids increase in the order of the calls"
    );

    // What went out is what the callbacks report.
    let mut wire: Vec<i64> = ["sendmsg", "sendgroupmsg", "sendroommsg"]
        .iter()
        .flat_map(|m| gate.received(m))
        .map(|p| int(&p, "mid"))
        .collect();
    wire.sort_unstable();
    assert_eq!(wire, mids);

    // The gate stored every one (a repeated mid would have been taken for a
    // resend and not stored).
    let b = logged_in(&gate, B);
    let n = blocking(|cb| b.get_p2p_unread_message_num(&[A], Some(0), None, 0, cb)).unwrap();
    assert_eq!(n.p2p.get(&A), Some(&(N as i32 / 3)));
    let n = blocking(|cb| b.get_group_unread_message_num(&[GID], Some(0), None, 0, cb)).unwrap();
    assert_eq!(n.group.get(&GID), Some(&(N as i32 / 3)));
    let (mut stored, mut lastid) = (0, None);
    loop {
        let page =
            blocking(|cb| a.get_room_message(RID, true, 20, None, None, lastid, None, 0, cb))
                .unwrap();
        if page.msgs.is_empty() {
            break;
        }
        stored += page.msgs.len();
        lastid = Some(page.lastid);
    }
    assert_eq!(stored, N / 3);
}

/// Calls `call` with a callback, holding a lock while the call runs and
/// setting a flag only after it has returned. Checks that the callback ran on
/// another thread (the dispatcher) after the call returned, with an error and
/// no data; returns the error.
fn rejected_later<T, E>(call: impl FnOnce(Box<dyn FnOnce(Option<E>, Option<T>) + Send>)) -> E
where
    T: std::fmt::Debug + Send + 'static,
    E: Send + 'static,
{
    let caller = std::thread::current().id();
    let returned = Arc::new(Mutex::new(false));
    let (tx, rx) = mpsc::channel::<(ThreadId, bool, Option<E>, Option<T>)>();
    let flag = returned.clone();
    let mut guard = returned.lock().unwrap();
    call(Box::new(move |e, d| {
        let me = std::thread::current().id();
        // On the caller's thread this would be inside the call: do not wait
        // for the lock the caller holds.
        let after = me != caller && *flag.lock().unwrap();
        let _ = tx.send((me, after, e, d));
    }));
    *guard = true;
    drop(guard);
    let (thread, after, e, d) = rx.recv_timeout(WAIT).expect("the callback is called");
    assert_ne!(thread, caller, "the callback ran inside the API call");
    assert!(after, "the callback ran before the API call returned");
    assert!(d.is_none(), "data with an error: {d:?}");
    e.expect("an error")
}

#[test]
fn invalid_arguments_complete_with_200033_on_the_dispatcher_without_sending() {
    let gate = gate();
    let a = logged_in(&gate, A);
    const EMPTY: i32 = error_code::RTM_EC_EMPTY_PARAMETER;
    assert_eq!(EMPTY, 200033);

    // An empty msg, for each send method, with a given and a generated mid.
    for to in TARGETS {
        let e: SendError = rejected_later(|cb| send_with_timeout(&a, to, "", BIG_MID, 0, cb));
        assert_eq!((e.mid, e.error.code), (BIG_MID, EMPTY), "{to:?}");
        let e: SendError = rejected_later(|cb| send_with_timeout(&a, to, "", 0, 0, cb));
        assert_eq!(e.error.code, EMPTY, "{to:?}");
        assert_ne!(e.mid, 0, "{to:?}: the generated mid is reported");
    }
    // Empty id lists.
    let code = |e: RtmError| e.code;
    let e = rejected_later(|cb| a.get_p2p_unread_message_num(&[], None, None, 0, cb));
    assert_eq!(code(e), EMPTY);
    let e = rejected_later(|cb| a.get_p2p_unread_message_num(&[], Some(1), Some(&[30]), 0, cb));
    assert_eq!(code(e), EMPTY);
    let e = rejected_later(|cb| a.get_group_unread_message_num(&[], None, None, 0, cb));
    assert_eq!(code(e), EMPTY);
    // message_type outside 1..=3.
    for t in [0u8, 4] {
        let e = rejected_later(|cb| a.get_message(A, BIG_MID, B, t, 0, cb));
        assert_eq!(code(e), EMPTY, "getmsg type {t}");
        let e = rejected_later(|cb| a.delete_message(A, BIG_MID, B, t, 0, cb));
        assert_eq!(code(e), EMPTY, "delmsg type {t}");
    }

    // Nothing of that reached the gate: after a round trip on the same
    // connection, the only quests it read are auth and the barrier.
    settle(&a);
    let methods: Vec<String> = gate.quest_log().into_iter().map(|(m, _)| m).collect();
    assert_eq!(methods, ["auth", "getunread"]);
}

#[test]
fn invalid_argument_callbacks_wait_for_dispatch_pending_in_queued_mode() {
    let gate = gate();
    let a = client_with(&gate, Dispatch::Queued);
    login(&a, A);
    let ran = Arc::new(Mutex::new(Vec::<(i64, i32)>::new()));
    let push = |r: &Arc<Mutex<Vec<(i64, i32)>>>| {
        let r = r.clone();
        move |e: Option<SendError>, d: Option<SendAnswer>| {
            assert!(d.is_none());
            let e = e.unwrap();
            r.lock().unwrap().push((e.mid, e.error.code));
        }
    };
    a.send_message(B, 30, "", "", BIG_MID, 0, push(&ran));
    a.send_group_message(GID, 30, "", "", BIG_MID, 0, push(&ran));
    a.send_room_message(RID, 30, "", "", BIG_MID, 0, push(&ran));
    let r2 = ran.clone();
    a.get_message(A, 1, B, 0, 0, move |e, d| {
        assert!(d.is_none());
        r2.lock().unwrap().push((0, e.unwrap().code));
    });
    assert!(
        ran.lock().unwrap().is_empty(),
        "a callback ran inside its API call"
    );
    assert_eq!(a.dispatch_pending(), 4);
    let want = (BIG_MID, error_code::RTM_EC_EMPTY_PARAMETER);
    assert_eq!(*ran.lock().unwrap(), [want, want, want, (0, want.1)]);
}

#[test]
fn pushes_never_reach_the_sender_and_reach_every_connection_of_the_receiver() {
    let gate = gate();
    let a1 = logged_in(&gate, A);
    let a2 = logged_in(&gate, A);
    let b1 = logged_in(&gate, B);
    let b2 = logged_in(&gate, B);
    assert_eq!(gate.connections_of(PID, B), 2);
    group(&a1, GID, &[B]);
    for c in [&a1, &a2, &b1, &b2] {
        enter(c, RID);
    }
    let (pa1, pa2) = (Pushes::listen(&a1), Pushes::listen(&a2));
    let (pb1, pb2) = (Pushes::listen(&b1), Pushes::listen(&b2));

    let mut sent = Vec::new();
    for to in TARGETS {
        let ans = send(&a1, to, 30, &format!("to {to:?}"), 0).expect("send");
        sent.push((to, ans));
    }
    for (to, ans) in &sent {
        for (name, p) in [("b1", &pb1), ("b2", &pb2)] {
            let s = p.wait_mid(ans.mid);
            assert_eq!(s.event, to.chat_event(), "{name} {to:?}");
            let m = &s.msg;
            assert_eq!((m.from, m.mtype, m.mtime), (A, 30, ans.payload.mtime));
            assert_eq!(m.msg.as_deref(), Some(format!("to {to:?}").as_str()));
            assert_eq!(m.binary, format!("to {to:?}").into_bytes());
            match to {
                To::P2p(_) => assert_eq!((m.gid, m.rid), (None, None)),
                To::Group(g) => assert_eq!((m.gid, m.rid), (Some(*g), None)),
                To::Room(r) => assert_eq!((m.gid, m.rid), (None, Some(*r))),
            }
            assert_eq!(p.with_mid(ans.mid).len(), 1, "{name} {to:?}: once");
        }
    }
    // A broadcast from A reaches both of B's connections too.
    gate.broadcast(PID, A, 30, "to everyone", "");
    for p in [&pb1, &pb2] {
        let all = p.wait("the broadcast", |s| {
            s.iter().any(|x| x.event == PushEvent::RecvBroadcastChat)
        });
        let bc: Vec<_> = all
            .iter()
            .filter(|x| x.event == PushEvent::RecvBroadcastChat)
            .collect();
        assert_eq!(bc.len(), 1);
        assert_eq!(
            (bc[0].msg.from, bc[0].msg.msg.as_deref()),
            (A, Some("to everyone"))
        );
    }
    // Neither of the sender's connections got any of it: every push the gate
    // wrote to them before the sentinel has been seen.
    settle(&a1);
    let s = sentinel(&gate, A, &[&pa1, &pa2]);
    assert!(before_sentinel(&pa1, s).is_empty(), "{:?}", pa1.all());
    assert!(before_sentinel(&pa2, s).is_empty(), "{:?}", pa2.all());
    // Push handlers run on the dispatcher, not on the test's thread.
    let me = std::thread::current().id();
    assert!(pb1.all().iter().all(|s| s.thread != me));
}

#[test]
fn a_resend_with_the_same_mid_gets_the_first_mtime_is_stored_once_and_pushed_once() {
    let (gate, a, b1) = two_users();
    let pb1 = Pushes::listen(&b1);
    for (i, to) in TARGETS.into_iter().enumerate() {
        let mid = BIG_MID + i as i64;
        let first = send(&a, to, 30, "first", mid).expect("first send");
        pb1.wait_mid(mid);
        // A second connection of B, whose duplicate filter has not seen the
        // first push: a second push from the gate would show there.
        let b2 = logged_in(&gate, B);
        let pb2 = Pushes::listen(&b2);
        wait_past_ms(first.payload.mtime);
        let again = send(&a, to, 30, "resent", mid).expect("resend");
        assert_eq!(again.mid, mid);
        assert_eq!(
            again.payload.mtime, first.payload.mtime,
            "{to:?}: answered with the first mtime"
        );
        settle(&a);
        let s = sentinel(&gate, B, &[&pb1, &pb2]);
        assert!(before_sentinel(&pb2, s).is_empty(), "{to:?}: pushed again");
        assert_eq!(pb1.with_mid(mid).len(), 1, "{to:?}");
        assert_eq!(pb1.with_mid(mid)[0].msg.msg.as_deref(), Some("first"));

        // Stored once: history has one message with that mid, the first body.
        let h: Vec<(i64, Option<String>, i64)> = match to {
            To::P2p(uid) => {
                blocking(|cb| a.get_p2p_message(uid, false, 20, None, None, None, None, 0, cb))
                    .unwrap()
                    .msgs
                    .into_iter()
                    .map(|m| (m.mid, m.msg, m.mtime))
                    .collect()
            }
            To::Group(gid) => {
                blocking(|cb| a.get_group_message(gid, false, 20, None, None, None, None, 0, cb))
                    .unwrap()
                    .msgs
                    .into_iter()
                    .map(|m| (m.mid, m.msg, m.mtime))
                    .collect()
            }
            To::Room(rid) => {
                blocking(|cb| a.get_room_message(rid, false, 20, None, None, None, None, 0, cb))
                    .unwrap()
                    .msgs
                    .into_iter()
                    .map(|m| (m.mid, m.msg, m.mtime))
                    .collect()
            }
        };
        assert_eq!(
            h,
            [(mid, Some("first".to_owned()), first.payload.mtime)],
            "{to:?}"
        );
        drop(b2);
        wait_until("B's second connection is gone", || {
            gate.connections_of(PID, B) == 1
        });
    }
}

#[test]
fn other_mtypes_reach_the_generic_events() {
    let (_gate, a, b) = two_users();
    let pb = Pushes::listen(&b);
    for (to, event) in [
        (To::P2p(B), PushEvent::RecvMessage),
        (To::Group(GID), PushEvent::RecvGroupMessage),
        (To::Room(RID), PushEvent::RecvRoomMessage),
    ] {
        let ans = send(&a, to, 51, "app", 0).expect("send");
        assert_eq!(pb.wait_mid(ans.mid).event, event);
    }
}
