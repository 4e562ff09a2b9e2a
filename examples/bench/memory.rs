//! The bench's memory scenarios (docs/performance.md): `pending`, what a quest
//! waiting for its answer costs, and `soak`, whether a million quests
//! through one client leave its memory where it was after the first 10,000.
//! Both read the process's resident memory (`VmRSS`), so they mean the
//! client's own only with `--gate-process` (or `--endpoint`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtm_client::RtmClient;
use serde_json::{json, Value};

use crate::measure::rss_kib;

/// RSS once it has stopped moving (three equal readings 50 ms apart, at
/// most 10 s): the quests just sent may still be on their way out.
fn settled_rss() -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = rss_kib();
    let mut same = 0;
    while same < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = rss_kib();
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// `n` quests sent while the gate does not answer (`pause` stops it
/// answering; it still reads them), so all of them wait in the client:
/// the growth of RSS per quest, after a warm-up of the same size that was
/// answered (so the allocator's pools and the client's tables have grown
/// once already).
pub fn pending(
    client: &RtmClient,
    n: usize,
    size: usize,
    pause: &dyn Fn(bool),
    first_mid: i64,
) -> Value {
    let msg = "x".repeat(size);
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = crossbeam_channel::bounded(1);
    // Warm-up: n answered quests, 1,000 in flight at a time.
    let warm = Arc::new(Window {
        client: client.clone(),
        msg: msg.clone(),
        n,
        first_mid,
        sent: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        rss_after_10k: AtomicU64::new(0),
        done: tx,
    });
    for _ in 0..1000.min(n) {
        warm.send_next();
    }
    rx.recv_timeout(Duration::from_secs(600))
        .expect("the warm-up finished");
    pause(true);
    let before = settled_rss();
    for i in 0..n {
        let d = done.clone();
        client.send_message(
            2,
            30,
            &msg,
            "",
            first_mid + (n + i) as i64,
            600_000,
            move |_, _| {
                d.fetch_add(1, Ordering::Relaxed);
            },
        );
    }
    let after = settled_rss();
    pause(false);
    json!({
        "scenario": "pending", "n": n, "size": size,
        "rss_before_kib": before, "rss_after_kib": after,
        "bytes_per_pending_quest": ((after.saturating_sub(before)) * 1024) as f64 / n as f64,
        "completed_while_paused": done.load(Ordering::Relaxed),
    })
}

/// `n` quests through one client, 100 in flight, each answer's callback
/// sending the next: RSS after the first 10,000 and at the end.
pub fn soak(client: &RtmClient, n: usize, size: usize, first_mid: i64) -> Value {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let w = Arc::new(Window {
        client: client.clone(),
        msg: "x".repeat(size),
        n,
        first_mid,
        sent: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        rss_after_10k: AtomicU64::new(0),
        done: tx,
    });
    let start = Instant::now();
    for _ in 0..100.min(n) {
        w.send_next();
    }
    rx.recv_timeout(Duration::from_secs(3600))
        .expect("the soak finished");
    let end = settled_rss();
    json!({
        "scenario": "soak", "n": n, "size": size, "window": 100,
        "seconds": start.elapsed().as_secs(),
        "rss_after_10000_kib": w.rss_after_10k.load(Ordering::Relaxed),
        "rss_at_end_kib": end,
    })
}

/// Callback-driven sending with a window, counting only (no latencies kept:
/// their buffer would be what grows).
struct Window {
    client: RtmClient,
    msg: String,
    n: usize,
    first_mid: i64,
    sent: AtomicUsize,
    answered: AtomicUsize,
    rss_after_10k: AtomicU64,
    done: crossbeam_channel::Sender<()>,
}

impl Window {
    fn send_next(self: &Arc<Self>) {
        let i = self.sent.fetch_add(1, Ordering::Relaxed);
        if i >= self.n {
            return;
        }
        let me = self.clone();
        self.client.send_message(
            2,
            30,
            &self.msg,
            "",
            self.first_mid + i as i64,
            60_000,
            move |_, _| {
                let k = me.answered.fetch_add(1, Ordering::Relaxed) + 1;
                if k == 10_000 {
                    me.rss_after_10k.store(rss_kib(), Ordering::Relaxed);
                }
                me.send_next();
                if k == me.n {
                    let _ = me.done.send(());
                }
            },
        );
    }
}
