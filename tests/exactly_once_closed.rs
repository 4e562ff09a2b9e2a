//! No push handler or callback of a session runs after that session's
//! `SessionClosed` (docs/architecture.md, "Reliability"): pushes keep
//! arriving and quests are in flight while the session ends by `close`, by
//! a kickout, or by a lost connection without auto-reconnect; in every round,
//! everything of the session that runs, runs before `SessionClosed`.
#![cfg(feature = "gate")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rtm_client::gate::Gate;
use rtm_client::{PushEvent, RtmClient, RtmOptions};

use common::{wait_until, PID};

const ROUNDS: usize = 15;
const UID: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Push,
    Callback,
    Closed,
    Fence,
}

#[derive(Clone, Copy, Debug)]
enum End {
    Close,
    Kickout,
    Lost,
}

fn round(gate: &Arc<Gate>, end: End, mids: &Arc<AtomicI64>) {
    let client = RtmClient::new(RtmOptions {
        auto_reconnect: false,
        ..common::options(gate)
    })
    .unwrap();
    let log: Arc<Mutex<Vec<Ran>>> = Arc::default();
    for e in PushEvent::ALL {
        let l = log.clone();
        client.processor().on(e, move |_| l.lock().push(Ran::Push));
    }
    let l = log.clone();
    client.on_session_closed(move |_| l.lock().push(Ran::Closed));
    assert_eq!(common::login(&client, UID, "token", 0), (true, 0));

    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (gate, stop, mids) = (gate.clone(), stop.clone(), mids.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mid = mids.fetch_add(1, Ordering::Relaxed);
                let _ = gate.inject_message(PID, 1, 7, UID, mid, 51, b"x", "");
            }
        })
    };
    wait_until("pushes arrive", || {
        log.lock().iter().filter(|r| **r == Ran::Push).count() >= 3
    });
    for _ in 0..200 {
        let l = log.clone();
        client.get_p2p_unread_message_num(&[7], None, None, 0, move |_, _| {
            l.lock().push(Ran::Callback)
        });
    }
    match end {
        End::Close => client.close(),
        End::Kickout => assert!(gate.kickout(PID, UID) >= 1),
        End::Lost => assert!(gate.drop_user(PID, UID) >= 1),
    }
    wait_until("SessionClosed", || log.lock().contains(&Ran::Closed));
    stop.store(true, Ordering::Relaxed);
    pusher.join().unwrap();
    // The connection's threads are gone when SessionClosed is queued; a call
    // now (20012) is queued after anything they could still have queued.
    let l = log.clone();
    client.get_p2p_unread_message_num(&[7], None, None, 0, move |e, _| {
        assert_eq!(e.map(|e| e.code), Some(20012));
        l.lock().push(Ran::Fence)
    });
    wait_until("the fence", || log.lock().contains(&Ran::Fence));
    let log = log.lock().clone();
    let closed = log.iter().position(|r| *r == Ran::Closed).unwrap();
    let after: Vec<_> = log[closed + 1..]
        .iter()
        .filter(|r| **r != Ran::Fence)
        .collect();
    assert!(
        after.is_empty(),
        "{end:?}: ran after SessionClosed: {after:?}"
    );
    assert_eq!(
        log.iter().filter(|r| **r == Ran::Callback).count(),
        200,
        "{end:?}: every callback ran once, before SessionClosed"
    );
    client.destroy();
}

#[test]
fn nothing_of_a_session_runs_after_its_session_closed() {
    let gate = Arc::new(common::gate());
    let mids = Arc::new(AtomicI64::new(1));
    for _ in 0..ROUNDS {
        for end in [End::Close, End::Kickout, End::Lost] {
            round(&gate, end, &mids);
        }
    }
}
