//! Backpressure (docs/reliability.md, "Backpressure in the dispatch queue";
//! src/client/dispatch.rs module docs): while a client's dispatch queue is full "new API
//! calls fail at once with 20011, without sending anything". The three file sends
//! (`send_file`, `send_group_file`, `send_room_file`) skip that check
//! (src/api/files.rs, `send_file_to`: no `Deliverer::queue_full`): they ask the gate for
//! a token and upload the whole file while the application is not draining its queue.
#![cfg(feature = "gate")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use rtm_client::gate::Gate;
use rtm_client::{blocking, Dispatch, PushEvent, RtmClient, RtmFile, RtmOptions};

const UID: i64 = 1;
const LIMIT: usize = 4;

fn poll_until(client: &RtmClient, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        if client.dispatch_pending() == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[test]
fn a_file_send_made_while_the_queue_is_full_fails_with_20011_and_sends_nothing() {
    let gate = Gate::builder().record_quests(true).start().expect("gate");
    let client = RtmClient::new(RtmOptions {
        dispatch: Dispatch::Queued,
        ..options(&gate)
    })
    .unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let d = delivered.clone();
    client.processor().on(PushEvent::RecvMessage, move |_| {
        d.fetch_add(1, Ordering::SeqCst);
    });
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(UID, "token", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    poll_until(&client, "logged in", || !rx.is_empty());
    assert_eq!(rx.recv().unwrap(), (true, 0));
    client.set_dispatch_limit_for_tests(LIMIT);

    // The application stops polling; pushes fill the queue.
    for mid in 1..=10 {
        gate.inject_message(PID, 1, 7, UID, mid, 51, b"x", "").unwrap();
    }
    blocking(|cb| client.get_p2p_unread_message_num(&[7], None, None, 0, cb)).unwrap();
    assert_eq!(client.dispatch_queue_len_for_tests(), LIMIT, "full");
    gate.clear_quest_log();

    let (tx, rx) = crossbeam_channel::unbounded();
    let t = tx.clone();
    client.send_message(7, 51, "text", "", 0, 0, move |e, _| {
        t.send(("send_message", e.map(|e| e.error.code))).unwrap()
    });
    client.send_file(50, 7, &RtmFile::new("a.bin", vec![7u8; 4096]), 0, 0, move |e, _| {
        tx.send(("send_file", e.map(|e| e.error.code))).unwrap()
    });
    let mut got = Vec::new();
    poll_until(&client, "both calls are called back", || {
        got.extend(rx.try_iter());
        got.len() == 2
    });
    assert_eq!(
        got,
        [("send_message", Some(20011)), ("send_file", Some(20011))],
        "quests the gate read meanwhile: {:?}",
        gate.quest_log().iter().map(|(m, _)| m.clone()).collect::<Vec<_>>()
    );
    client.destroy();
}
