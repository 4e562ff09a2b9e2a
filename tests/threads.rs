//! A logged-in client has two threads of its own (its connection's reader
//! and writer), in every dispatch mode; the session timers and, in
//! `Dispatch::Threads` and `Dispatch::Inline` mode, the dispatcher are one
//! thread each for the whole process. Closed and dropped
//! clients release all of them.
//!
//! This binary counts the process's `rtm-*` threads, so it holds one test.
#![cfg(feature = "gate")]

mod common;

use common::*;
use rtm_client::{blocking, Dispatch, RtmClient, RtmOptions};

/// The client threads by name: (readers, writers, others).
fn census() -> (usize, usize, Vec<String>) {
    let names = client_threads();
    let count = |n: &str| names.iter().filter(|x| *x == n).count();
    let others = names
        .iter()
        .filter(|n| *n != "rtm-reader" && *n != "rtm-writer")
        .cloned()
        .collect();
    (count("rtm-reader"), count("rtm-writer"), others)
}

#[test]
fn logged_in_clients_own_two_threads_each_and_share_the_rest() {
    assert!(client_threads().is_empty(), "{:?}", client_threads());
    let gate = gate();
    let mut clients = Vec::new();
    for (i, dispatch) in [Dispatch::Threads, Dispatch::Queued, Dispatch::Inline]
        .into_iter()
        .cycle()
        .take(20)
        .enumerate()
    {
        let client = RtmClient::new(RtmOptions {
            dispatch,
            ..options(&gate)
        })
        .unwrap();
        let uid = 1000 + i as i64;
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(uid, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        // In Queued mode the login callback waits for dispatch_pending.
        wait_until("the login callback", || {
            client.dispatch_pending();
            !rx.is_empty()
        });
        assert_eq!(rx.try_recv().unwrap(), (true, 0));
        clients.push((client, uid));
    }
    // Every client: online and usable.
    for (client, uid) in &clients {
        one_connection(&gate, *uid);
        let sent = blocking(|cb| client.send_message(1, 30, "hi", "", 0, 0, cb));
        assert!(sent.is_ok(), "{sent:?}");
    }
    // Short-lived dial threads end on their own; wait for the steady state.
    wait_until(
        "20 readers, 20 writers, and at most 2 shared threads",
        || {
            let (r, w, others) = census();
            r == 20 && w == 20 && others.len() <= 2
        },
    );
    let (_, _, others) = census();
    for n in &others {
        assert!(n == "rtm-session" || n == "rtm-dispatch", "{others:?}");
    }
    eprintln!("20 logged-in clients: {:?}", client_threads().len());

    for (client, _) in &clients {
        client.close();
    }
    drop(clients);
    wait_until("every client thread has ended", || {
        client_threads().is_empty()
    });
}
