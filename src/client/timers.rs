//! The session timers of every client in the process, on one thread
//! (`rtm-session`): each client has at most one wake-up pending (the
//! earliest its machine asked for); when it is due the thread feeds that
//! client's machine a tick. Ticks do no blocking work (a relogin's connect
//! runs on the thread that becomes its connection's reader, and a session
//! ended by the watchdog is closed on a thread of its own, `Inner::tick`),
//! so one thread serves any number of clients. It starts with the first wake-up and ends
//! when none is pending, so a process without sessions has no such thread.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::Inner;

struct Timers {
    /// Due wake-ups in order: (when, client id).
    order: BTreeSet<(Instant, u64)>,
    /// Each client's pending wake-up.
    by_client: BTreeMap<u64, (Instant, Weak<Inner>)>,
    running: bool,
}

static TIMERS: Mutex<Timers> = Mutex::new(Timers {
    order: BTreeSet::new(),
    by_client: BTreeMap::new(),
    running: false,
});
static CHANGED: Condvar = Condvar::new();

/// Asks for a tick of `inner` at `at` (an earlier pending one stays: the
/// machine re-arms on an early tick). Nothing once the client is destroyed:
/// checked under the timers' lock, so a wake-up racing with `destroy` is
/// either refused here or removed by its `cancel`.
pub(super) fn wake(inner: &Arc<Inner>, at: Instant) {
    let id = inner.id;
    let mut t = TIMERS.lock();
    if inner.dispatcher.is_destroyed() {
        return;
    }
    if let Some(&(old, _)) = t.by_client.get(&id) {
        if old <= at {
            return;
        }
        t.order.remove(&(old, id));
    }
    t.order.insert((at, id));
    t.by_client.insert(id, (at, Arc::downgrade(inner)));
    CHANGED.notify_one();
    if !t.running {
        match std::thread::Builder::new()
            .name("rtm-session".into())
            .spawn(run)
        {
            Ok(_) => t.running = true,
            Err(e) => log::error!("cannot start the session timer thread: {e}"),
        }
    }
}

/// Drops client `id`'s pending wake-up (it is being destroyed).
pub(super) fn cancel(id: u64) {
    let mut t = TIMERS.lock();
    if let Some((at, _)) = t.by_client.remove(&id) {
        t.order.remove(&(at, id));
        CHANGED.notify_one();
    }
}

fn run() {
    let mut t = TIMERS.lock();
    loop {
        let Some(&(at, id)) = t.order.first() else {
            t.running = false;
            return;
        };
        if at > Instant::now() {
            CHANGED.wait_until(&mut t, at);
            continue;
        }
        t.order.remove(&(at, id));
        let inner = t.by_client.remove(&id).map(|(_, w)| w);
        drop(t);
        if let Some(inner) = inner.and_then(|w| w.upgrade()) {
            inner.tick();
        }
        t = TIMERS.lock();
    }
}
