//! Soak: 1,000,000 quests across 20 forced reconnects, no callback lost or
//! run twice, and the resident memory does not grow with the quest count.
//! Ignored by default (about a minute in release); run it with
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! It prints the time, the result codes and the RSS along the way (the last
//! figures are in CHANGELOG.md's entry and docs/security.md).
#![cfg(feature = "gate")]

mod common;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rtm_client::gate::Gate;
use rtm_client::RtmClient;

const QUESTS: usize = 1_000_000;
const RECONNECTS: usize = 20;
/// Quests in flight at most (the caller waits for a slot).
const WINDOW: usize = 2_000;

/// Resident set size of this process (client and gate), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a soak: about a minute in release (see the module docs)"]
fn a_million_quests_across_20_reconnects_complete_once_each_in_stable_memory() {
    let gate = Gate::start().unwrap();
    let client = RtmClient::new(options(&gate)).unwrap();
    assert_eq!(login(&client, 1001, "t", 0), (true, 0));
    let relogins = Arc::new(AtomicUsize::new(0));
    let r = relogins.clone();
    client.on_relogin_completed(move |ok, _, _, _| {
        if ok {
            r.fetch_add(1, Ordering::SeqCst);
        }
    });

    let counts: Arc<Vec<AtomicU8>> = Arc::new((0..QUESTS).map(|_| AtomicU8::new(0)).collect());
    let (slot_tx, slots) = crossbeam_channel::bounded::<()>(WINDOW);
    let (code_tx, codes) = crossbeam_channel::unbounded::<i32>();
    // Tallied as they come, so the channel does not hold a million codes.
    let tally = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut histogram = std::collections::BTreeMap::<i32, usize>::new();
        for done in 0..QUESTS {
            let c = codes
                .recv_deadline(deadline)
                .unwrap_or_else(|_| panic!("only {done} of {QUESTS} callbacks ran"));
            *histogram.entry(c).or_default() += 1;
        }
        (histogram, codes)
    });
    let started = Instant::now();
    let mut rss = vec![(0usize, rss_kib())];
    for i in 0..QUESTS {
        if i > 0 && i % (QUESTS / (RECONNECTS + 1)) == 0 && rss.len() <= RECONNECTS {
            // Each drop hits a logged-in session: the previous relogin is done.
            let k = rss.len() - 1;
            wait_until("the previous relogin", || {
                relogins.load(Ordering::SeqCst) == k && gate.connections_of(PID, 1001) == 1
            });
            rss.push((i, rss_kib()));
            assert_eq!(gate.drop_user(PID, 1001), 1);
        }
        slot_tx.send(()).unwrap();
        let (counts, slots, code_tx) = (counts.clone(), slots.clone(), code_tx.clone());
        client.get_friends(30_000, move |e, _| {
            counts[i].fetch_add(1, Ordering::Relaxed);
            let _ = code_tx.send(e.map_or(0, |e| e.code));
            let _ = slots.recv();
        });
    }
    let (histogram, codes) = tally.join().expect("every callback ran");
    let took = started.elapsed();
    rss.push((QUESTS, rss_kib()));
    // One more round trip, then no callback may have run twice.
    wait_until("the last relogin", || {
        relogins.load(Ordering::SeqCst) == RECONNECTS
    });
    rtm_client::blocking(|cb| client.get_friends(0, cb)).unwrap();
    assert!(codes.try_recv().is_err(), "a callback ran twice");
    let wrong = counts
        .iter()
        .filter(|c| c.load(Ordering::Relaxed) != 1)
        .count();
    eprintln!(
        "{QUESTS} quests, {RECONNECTS} forced drops, in {took:?} ({:.0}/s); codes {histogram:?}",
        QUESTS as f64 / took.as_secs_f64()
    );
    eprintln!("RSS KiB at quest n: {rss:?}");
    assert_eq!(
        wrong, 0,
        "{wrong} quests whose callback did not run exactly once"
    );
    assert_eq!(relogins.load(Ordering::SeqCst), RECONNECTS);
    // Stable memory: after the first reconnect (buffers and pools warmed up)
    // the RSS grows by less than 32 MiB over the rest of the run.
    let warmed = rss[1].1;
    let last = rss.last().unwrap().1;
    assert!(
        last < warmed + 32 * 1024,
        "RSS grew from {warmed} KiB to {last} KiB"
    );
}
