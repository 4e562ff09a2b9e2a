//! The Rust-only adapters (`result_callback`, `future`) over real calls to a
//! local gate: answers, error answers, timeouts, and `Dispatch::Queued`.
#![cfg(feature = "gate")]

#[path = "shared/mod.rs"]
mod shared;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};

use rtm_client::gate::Gate;
use rtm_client::{
    error_code, future, result_callback, Dispatch, RtmClient, RtmError, RtmOptions, SendAnswer,
    SendError, UnreadMessage,
};
use shared::{wait_until, WAIT};

/// Counts its wakes.
struct Count(AtomicUsize);
impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn client(gate: &Gate, dispatch: Dispatch) -> RtmClient {
    RtmClient::new(RtmOptions {
        endpoint: Some(gate.endpoint()),
        pid: 1,
        dispatch,
        ..Default::default()
    })
    .expect("client")
}

/// Logs in, running queued callbacks while it waits (a no-op in Threads mode).
fn login(client: &RtmClient, uid: i64) {
    let (tx, rx) = mpsc::channel();
    client.login(
        uid,
        "token",
        move |ok, code| {
            let _ = tx.send((ok, code));
        },
        5_000,
    );
    let mut result = None;
    wait_until("the login callback ran", || {
        client.dispatch_pending();
        result = rx.try_recv().ok();
        result.is_some()
    });
    assert_eq!(result, Some((true, 0)));
}

#[test]
fn result_callback_gets_ok_for_an_answer_and_err_for_a_failure() {
    let gate = Gate::start().unwrap();
    let alice = client(&gate, Dispatch::Threads);
    let (tx, rx) = mpsc::channel();
    // Not logged in yet: no connection, 20012, as an Err.
    let t = tx.clone();
    alice.get_unread_message(
        false,
        1000,
        result_callback(move |r: Result<UnreadMessage, RtmError>| {
            let _ = t.send(r.map(|_| ()).map_err(|e| e.code));
        }),
    );
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        Err(error_code::FPNN_EC_CORE_INVALID_CONNECTION)
    );
    login(&alice, 1001);
    alice.get_unread_message(
        false,
        1000,
        result_callback(move |r: Result<UnreadMessage, RtmError>| {
            let _ = tx.send(r.map(|_| ()).map_err(|e| e.code));
        }),
    );
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(()));
}

#[test]
fn a_future_ends_with_the_calls_timeout_when_the_gate_does_not_answer() {
    let gate = Gate::start().unwrap();
    let alice = client(&gate, Dispatch::Threads);
    login(&alice, 1001);
    gate.pause(WAIT);
    let mut f = future(|cb| alice.send_message(1002, 30, "hi", "", 0, 50, cb));
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let mut result = None;
    wait_until("the future is ready", || {
        if let Poll::Ready(r) = Pin::new(&mut f).poll(&mut cx) {
            result = Some(r);
        }
        result.is_some()
    });
    gate.resume();
    let err: SendError = result.unwrap().unwrap_err();
    assert_eq!(err.error.code, error_code::FPNN_EC_CORE_TIMEOUT);
    assert!(err.mid != 0, "the generated mid is reported");
}

#[test]
fn in_queued_mode_a_future_is_ready_only_after_dispatch_pending_ran_its_callback() {
    let gate = Gate::start().unwrap();
    let alice = client(&gate, Dispatch::Queued);
    login(&alice, 1001);
    let mut f = future(|cb| alice.send_message(1002, 30, "hi", "", 0, 5000, cb));
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    // The answer may already be queued, but nobody has run the queue.
    assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    wait_until(
        "dispatch_pending ran the callback and woke the future",
        || {
            alice.dispatch_pending();
            count.0.load(Ordering::SeqCst) > 0
        },
    );
    match Pin::new(&mut f).poll(&mut cx) {
        Poll::Ready(Ok(SendAnswer { mid, payload })) => {
            assert!(mid != 0 && payload.mtime > 0);
        }
        other => panic!("expected the send's answer, got {other:?}"),
    }
}
