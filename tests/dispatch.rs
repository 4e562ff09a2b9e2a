//! Where user code runs: `Dispatch::Threads`, `Dispatch::Queued` with
//! `dispatch_pending()`, and the `blocking` helper on every kind of thread.
#![cfg(feature = "gate")]

mod common;

use std::thread::ThreadId;
use std::time::Instant;

use common::*;
use rtm_client::{
    blocking, error_code, Dispatch, PushEvent, RtmClient, RtmError, RtmOptions, SendError,
};

const ME: i64 = 1001;
const PEER: i64 = 2002;

/// What ran, where.
type Ran = Log<(String, ThreadId)>;

fn record(ran: &Ran, what: impl Into<String>) {
    ran.push((what.into(), std::thread::current().id()));
}

/// Calls `dispatch_pending` on this thread until `done`, failing after [`WAIT`].
fn dispatch_until(client: &RtmClient, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out dispatching until {what}"
        );
        if client.dispatch_pending() == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// A round trip to the gate that bypasses the queue: once it returns, every
/// push the gate wrote before it has been read and queued.
fn round_trip(client: &RtmClient) -> Result<(), RtmError> {
    blocking(|cb| client.enter_room(1, 0, cb))
}

#[test]
fn queued_dispatch_runs_nothing_until_dispatch_pending_then_runs_on_the_calling_thread_in_arrival_order(
) {
    let gate = gate();
    let client = RtmClient::new(RtmOptions {
        dispatch: Dispatch::Queued,
        ..options(&gate)
    })
    .unwrap();
    let me = std::thread::current().id();
    let ran: Ran = Log::default();
    for event in [
        PushEvent::RecvChat,
        PushEvent::RecvGroupMessage,
        PushEvent::RecvRoomFile,
    ] {
        let r = ran.clone();
        client.processor().on(event, move |m| {
            record(&r, format!("{} {}", event.name(), m.mid))
        });
    }
    let r = ran.clone();
    client.login(
        ME,
        "t",
        move |ok, code| record(&r, format!("login {ok} {code}")),
        0,
    );

    // Logged in (the queue-bypassing round trip works), yet nothing ran.
    wait_until("the session is online", || round_trip(&client).is_ok());
    assert!(ran.get().is_empty(), "{:?}", ran.get());
    dispatch_until(&client, "the login callback ran", || ran.len() == 1);

    // Three pushes of three kinds, then a round trip: all three are queued.
    gate.send_quest(PID, ME, "pushmsg", p2p_push(PEER, ME, 30, 1, "a", ""), true);
    gate.send_quest(
        PID,
        ME,
        "pushgroupmsg",
        push_payload("pushgroupmsg", PEER, 4, 80, 2, "b".into(), ""),
        true,
    );
    gate.send_quest(
        PID,
        ME,
        "pushroommsg",
        push_payload("pushroommsg", PEER, 5, 41, 3, "c".into(), ""),
        true,
    );
    round_trip(&client).unwrap();
    assert_eq!(
        ran.len(),
        1,
        "pushes ran without dispatch_pending: {:?}",
        ran.get()
    );
    assert_eq!(client.dispatch_pending(), 3);
    assert_eq!(client.dispatch_pending(), 0);

    let got = ran.get();
    let order: Vec<&str> = got.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        order,
        [
            "login true 0",
            "pushchat 1",
            "pushgroupmsg 2",
            "pushroomfile 3"
        ]
    );
    assert!(
        got.iter().all(|(_, t)| *t == me),
        "everything runs on the dispatching thread"
    );
}

#[test]
fn queued_dispatch_holds_session_events_too() {
    let gate = gate();
    let client = RtmClient::new(RtmOptions {
        dispatch: Dispatch::Queued,
        ..options(&gate)
    })
    .unwrap();
    let ran: Ran = Log::default();
    let r = ran.clone();
    client.on_session_closed(move |code| record(&r, format!("closed {code}")));
    let r = ran.clone();
    client.on_relogin_completed(move |ok, _, _, n| record(&r, format!("relogin {ok} {n}")));
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(ME, "t", move |ok, _| tx.send(ok).unwrap(), 0);
    dispatch_until(&client, "the login callback ran", || !rx.is_empty());
    gate.drop_user(PID, ME);
    wait_until("the relogin reached the gate", || {
        gate.auth_requests().len() == 2
    });
    wait_until("the session is online again", || {
        round_trip(&client).is_ok()
    });
    client.close();
    assert!(ran.get().is_empty(), "{:?}", ran.get());
    dispatch_until(&client, "both events ran", || ran.len() == 2);
    let order: Vec<String> = ran.get().into_iter().map(|(w, _)| w).collect();
    assert_eq!(order, ["relogin true 1", "closed 0"]);
}

#[test]
fn threads_dispatch_runs_user_code_on_the_dispatcher_thread() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let ran: Ran = Log::default();
    let r = ran.clone();
    client
        .processor()
        .on(PushEvent::RecvChat, move |_| record(&r, "push"));
    let r = ran.clone();
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(
        ME,
        "t",
        move |_, _| {
            record(&r, "login");
            tx.send(()).unwrap();
        },
        0,
    );
    rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        client.dispatch_pending(),
        0,
        "nothing to do in Threads mode"
    );
    gate.send_quest(PID, ME, "pushmsg", p2p_push(PEER, ME, 30, 1, "a", ""), true);
    wait_until("the push ran", || ran.len() == 2);
    let got = ran.get();
    assert_eq!(got[0].1, got[1].1, "one dispatcher thread");
    assert_ne!(got[0].1, std::thread::current().id());
}

#[test]
fn blocking_works_from_a_plain_thread() {
    let gate = gate();
    let client = online(options(&gate), ME);
    let c = client.clone();
    let t = std::thread::spawn(move || {
        let a = blocking(|cb| c.send_message(PEER, 30, "hi", "", 0, 0, cb)).unwrap();
        let e: SendError = blocking(|cb| c.send_message(PEER, 30, "", "", 77, 0, cb)).unwrap_err();
        (a.mid, a.payload.mtime, e.mid, e.error.code)
    });
    let (mid, mtime, emid, code) = t.join().unwrap();
    assert!(mid != 0 && mtime > 0);
    assert_eq!((emid, code), (77, error_code::RTM_EC_EMPTY_PARAMETER));
}

#[test]
fn blocking_works_inside_callbacks_in_threads_mode() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let c = client.clone();
    let t = tx.clone();
    client.processor().on(PushEvent::RecvChat, move |_| {
        t.send(("push", blocking(|cb| c.enter_room(8, 0, cb)).is_ok()))
            .unwrap();
    });
    let c = client.clone();
    client.login(
        ME,
        "t",
        move |ok, _| {
            let r =
                blocking(|cb| c.send_message(PEER, 30, "from the login callback", "", 0, 0, cb));
            tx.send(("login", ok && r.is_ok())).unwrap();
        },
        0,
    );
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), ("login", true));
    gate.send_quest(PID, ME, "pushmsg", p2p_push(PEER, ME, 30, 1, "a", ""), true);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), ("push", true));
    client.destroy(); // the handlers hold handles
}

#[test]
fn blocking_works_on_the_dispatching_thread_in_queued_mode() {
    let gate = gate();
    let client = RtmClient::new(RtmOptions {
        dispatch: Dispatch::Queued,
        ..options(&gate)
    })
    .unwrap();
    let results = Log::default();
    let c = client.clone();
    let r = results.clone();
    client.processor().on(PushEvent::RecvChat, move |_| {
        r.push((
            "push",
            blocking(|cb| c.send_message(PEER, 30, "reply", "", 0, 0, cb)).is_ok(),
        ));
    });
    let c = client.clone();
    let r = results.clone();
    client.login(
        ME,
        "t",
        move |ok, _| {
            r.push(("login", ok && blocking(|cb| c.enter_room(3, 0, cb)).is_ok()));
        },
        0,
    );
    dispatch_until(&client, "the login callback ran", || results.len() == 1);
    // Straight on the dispatching thread, outside any callback.
    blocking(|cb| client.enter_room(4, 0, cb)).unwrap();
    gate.send_quest(PID, ME, "pushmsg", p2p_push(PEER, ME, 30, 1, "a", ""), true);
    dispatch_until(&client, "the push handler ran", || results.len() == 2);
    assert_eq!(results.get(), [("login", true), ("push", true)]);
    client.destroy();
}

#[test]
fn blocking_without_an_api_call_returns_20001_at_once() {
    let r: Result<(), RtmError> = blocking(|_cb| {});
    assert_eq!(r.unwrap_err().code, error_code::FPNN_EC_CORE_UNKNOWN_ERROR);
}

/// Inside a callback (a write batch: the dispatcher's turn, or in `Inline`
/// mode the reader's read) the client looks its online connection up once
/// and keeps it for the batch's later calls, for as long as the session does
/// not change. A change in between is seen by the next call: after `close()`
/// in the same callback, a call is refused as not logged in (20012) instead of
/// going to the closed connection (20002).
#[test]
fn a_call_after_close_in_the_same_callback_sees_the_session_closed() {
    for dispatch in [Dispatch::Threads, Dispatch::Inline] {
        let gate = gate();
        let client = online(
            RtmOptions {
                dispatch,
                ..options(&gate)
            },
            ME,
        );
        let (tx, rx) = crossbeam_channel::unbounded::<(&str, Option<i32>)>();
        let c = client.clone();
        client.send_message(PEER, 30, "first", "", 0, 0, move |e, _| {
            let t = tx.clone();
            c.send_message(PEER, 30, "second", "", 0, 0, move |e, _| {
                t.send(("second", e.map(|e| e.error.code))).unwrap()
            });
            c.close();
            let t = tx.clone();
            c.send_message(PEER, 30, "third", "", 0, 0, move |e, _| {
                t.send(("third", e.map(|e| e.error.code))).unwrap()
            });
            tx.send(("first", e.map(|e| e.error.code))).unwrap();
        });
        let mut got = std::collections::HashMap::new();
        while got.len() < 3 {
            let (what, code) = rx
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("{dispatch:?}: callbacks missing: {got:?}"));
            assert!(got.insert(what, code).is_none(), "{what} called twice");
        }
        assert_eq!(got["first"], None, "{dispatch:?}");
        assert_eq!(
            got["third"],
            Some(error_code::FPNN_EC_CORE_INVALID_CONNECTION),
            "{dispatch:?}: {got:?}"
        );
        client.destroy();
    }
}
