//! Audit: the `SessionClosed` of a session ended on one thread is queued after that
//! thread's `perform` (after `close_and_join`), with no lock held; a `login` made on
//! another thread meanwhile starts a new session whose login callback can be queued
//! first. The application then sees `login(true, 0)` followed by `SessionClosed(0)`
//! and believes its fresh session is closed.
#![cfg(feature = "gate")]

mod common;

use std::sync::Arc;

use common::*;
use parking_lot::Mutex;
use rtm_client::{Dispatch, PushEvent, RtmClient, RtmOptions};

const ME: i64 = 1001;
const PEER: i64 = 2002;

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn an_old_session_closed_is_not_delivered_after_the_next_login_callback() {
    let gate = gate();
    let client = online(
        RtmOptions {
            dispatch: Dispatch::Inline,
            ..options(&gate)
        },
        ME,
    );
    // Until a probe's callback runs on the reader: the queue is idle, so the
    // next push's handler runs on the reader too.
    wait_until("a probe's callback runs on the reader thread", || {
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.send_message(PEER, 30, "probe", "", 0, 0, move |_, _| {
            tx.send(thread_name()).unwrap()
        });
        rx.recv_timeout(WAIT).unwrap() == "rtm-reader"
    });
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = log.clone();
    client.on_session_closed(move |code| l.lock().push(format!("closed({code})")));
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (release, release_rx) = crossbeam_channel::bounded::<()>(1);
    client.processor().on(PushEvent::RecvChat, move |_| {
        let _ = entered_tx.send(thread_name());
        // Bounded: the test releases it.
        let _ = release_rx.recv_timeout(WAIT);
    });
    gate.inject_message(PID, 1, PEER, ME, 77, 30, b"hold", "")
        .unwrap();
    assert_eq!(entered.recv_timeout(WAIT).unwrap(), "rtm-reader");

    // Thread U closes: its step ends the session, then it joins the reader
    // (busy in the handler) before it queues SessionClosed(0).
    let c = client.clone();
    let closer = std::thread::spawn(move || c.close());
    wait_until("the close shut the connection", || gate.connection_count() == 0);

    // Meanwhile a new login on this thread: a new session, online.
    let l = log.clone();
    client.login(
        ME,
        "token",
        move |ok, code| l.lock().push(format!("login({ok}, {code})")),
        0,
    );
    wait_until("the new login's callback is queued", || {
        gate.connection_count() == 1 && client.dispatch_queue_len_for_tests() >= 1
    });
    release.send(()).unwrap();
    closer.join().unwrap();
    wait_until("both are delivered", || log.lock().len() == 2);
    assert_eq!(
        *log.lock(),
        vec!["closed(0)".to_owned(), "login(true, 0)".to_owned()],
        "the old session's SessionClosed came after the new session's login callback"
    );
    client.destroy();
}
