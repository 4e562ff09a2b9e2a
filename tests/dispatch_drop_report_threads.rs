//! Backpressure in `Dispatch::Threads` mode (docs/reliability.md, "Backpressure in the
//! dispatch queue"; src/client/dispatch.rs module docs): events dropped while the queue
//! is full are "reported with one `ErrorRecorder` (20011) once there is room again ...
//! Nothing is dropped silently". In `Queued` mode the `dispatch_pending()` call that
//! makes room reports them; in `Threads` (and `Inline`) mode only a later *event* does,
//! so when the flood stops, the drop is never reported: the dispatcher thread drains the
//! queue and says nothing, however many answers and calls follow.
#![cfg(feature = "gate")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use rtm_client::{blocking, PushEvent};

const UID: i64 = 1;
const LIMIT: usize = 4;
const PUSHES: i64 = 20;

#[test]
fn events_dropped_in_threads_mode_are_reported_once_the_queue_has_room() {
    let gate = gate();
    let client = online(options(&gate), UID);
    client.set_dispatch_limit_for_tests(LIMIT);
    let delivered = Arc::new(AtomicU64::new(0));
    let d = delivered.clone();
    client.processor().on(PushEvent::RecvMessage, move |_| {
        d.fetch_add(1, Ordering::SeqCst);
    });
    let reported = Arc::new(AtomicU64::new(0));
    let r = reported.clone();
    client.on_error_recorder(move |e| {
        if e.code == 20011 {
            let n: u64 = e.ex.split(' ').next().and_then(|n| n.parse().ok()).unwrap();
            r.fetch_add(n, Ordering::SeqCst);
        }
    });

    // A callback holds the dispatcher thread while pushes arrive.
    let (started_tx, started) = crossbeam_channel::bounded(1);
    let (release, release_rx) = crossbeam_channel::bounded::<()>(1);
    client.get_p2p_unread_message_num(&[7], None, None, 0, move |_, _| {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(WAIT);
    });
    started.recv_timeout(WAIT).unwrap();
    for mid in 1..=PUSHES {
        gate.inject_message(PID, 1, 7, UID, mid, 51, b"x", "").unwrap();
    }
    // Its answer bypasses the queue and follows every push: all were handled.
    blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb)).unwrap();
    assert_eq!(client.dispatch_queue_len_for_tests(), LIMIT, "full");
    release.send(()).unwrap();

    // Room again: the queue drains, calls go through and are answered.
    wait_until("the queued pushes ran", || {
        delivered.load(Ordering::SeqCst) == LIMIT as u64
    });
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.get_p2p_unread_message_num(&[7], None, None, 0, move |e, _| {
        tx.send(e.map(|e| e.code)).unwrap()
    });
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), None);
    assert_eq!(delivered.load(Ordering::SeqCst), LIMIT as u64);
    wait_until(
        "the dropped pushes to be reported through ErrorRecorder",
        || reported.load(Ordering::SeqCst) == (PUSHES as u64 - LIMIT as u64),
    );
    client.destroy();
}
