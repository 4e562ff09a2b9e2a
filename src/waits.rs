//! Which thread is waiting for which, process-wide, on the paths that end a
//! session or a client (docs/architecture.md, "Threads"): a thread that joins
//! a connection's threads (`Connection::join_threads` in
//! src/fpnn/connection/mod.rs), waits for another thread's session ending
//! (`Closing::wait_for_others` in src/client/driver.rs) or for the callback a
//! client's dispatcher is running (`Dispatcher::shutdown` in
//! src/client/dispatch.rs) records, for as long as it waits, the threads it
//! waits for. Before it waits it leaves out those that wait, themselves or
//! through others, for it: waiting for them would never end. So callbacks that
//! end each other's clients at the same time (two `Dispatch::Inline` readers
//! closing each other, a ring of them, an `Inline` reader and the dispatcher
//! thread) never wait for each other for ever: the last wait that would close
//! the cycle is not made.
//!
//! The check and the record are made under one lock, so of two threads about
//! to wait for each other the second sees the first's record. A wait whose set
//! of threads can grow while it sleeps (`Closing::wait_for_others`: an ending
//! listed meanwhile) is woken when it grows and makes its record again. A wait
//! on something another thread ends (an ending's listing, the job a dispatcher
//! runs: [`wait_on`]) is taken out of the record by the thread that ends it
//! ([`over`]), not left until the waiter runs again: a thread whose wait is
//! over but which has not yet woken waits for nobody, and a wait for it made
//! meanwhile is made. The lock is a leaf: nothing else is locked under it. None
//! of this is on the path of a call or an answer.

use std::thread::ThreadId;

use parking_lot::Mutex;

/// Every recorded wait: a thread, what it waits on ([`wait_on`]; 0: the threads
/// themselves, a join) and the threads it waits for.
static WAITS: Mutex<Vec<(ThreadId, usize, Vec<ThreadId>)>> = Mutex::new(Vec::new());

/// A wait of the calling thread, recorded until this is dropped
/// ([`wait_for`]).
#[must_use]
pub(crate) struct Waiting {
    /// Whether a record was made (something is left to wait for).
    recorded: bool,
}

impl Waiting {
    /// Whether nothing is left to wait for: every thread asked about waits,
    /// itself or through others, for the calling thread (or none was asked
    /// about).
    pub(crate) fn is_empty(&self) -> bool {
        !self.recorded
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.recorded {
            let me = std::thread::current().id();
            WAITS.lock().retain(|(t, _, _)| *t != me);
        }
    }
}

/// Records that the calling thread is about to wait for `threads`, but for
/// those that wait, themselves or through other recorded waits, for it (and
/// for itself): waiting for them would never end, so the caller does not. The
/// record lasts until the returned [`Waiting`] drops; [`Waiting::is_empty`]
/// tells the caller not to wait at all.
pub(crate) fn wait_for(threads: impl IntoIterator<Item = ThreadId>) -> Waiting {
    wait_on(0, threads)
}

/// [`wait_for`], for a wait on something else (`on`, its address) that those
/// threads end: each of them takes itself out of it when it does ([`over`]).
pub(crate) fn wait_on(on: usize, threads: impl IntoIterator<Item = ThreadId>) -> Waiting {
    let me = std::thread::current().id();
    let mut waits = WAITS.lock();
    let kept: Vec<ThreadId> = threads
        .into_iter()
        .filter(|&t| !reaches(&waits, t, me))
        .collect();
    if kept.is_empty() {
        return Waiting { recorded: false };
    }
    // One wait at a time per thread: a record left by an earlier wait of this
    // thread (there is none: each is dropped when its wait ends) is replaced.
    waits.retain(|(t, _, _)| *t != me);
    waits.push((me, on, kept));
    Waiting { recorded: true }
}

/// What `thread` did that the waits made on `on` ([`wait_on`]) were for is
/// done: they no longer wait for it, even before their threads wake up.
pub(crate) fn over(on: usize, thread: ThreadId) {
    for (_, _, waited) in WAITS.lock().iter_mut().filter(|(_, o, _)| *o == on) {
        waited.retain(|t| *t != thread);
    }
}

/// Whether `from` is `to` or waits, through the recorded waits, for `to`.
fn reaches(waits: &[(ThreadId, usize, Vec<ThreadId>)], from: ThreadId, to: ThreadId) -> bool {
    let mut seen = vec![from];
    let mut next = vec![from];
    while let Some(t) = next.pop() {
        if t == to {
            return true;
        }
        for (_, _, waited) in waits.iter().filter(|(w, _, _)| *w == t) {
            for &u in waited {
                if !seen.contains(&u) {
                    seen.push(u);
                    next.push(u);
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    /// A thread that records a wait for `target` and holds it until told.
    fn holder(
        target: ThreadId,
    ) -> (
        std::thread::JoinHandle<bool>,
        crossbeam_channel::Sender<()>,
        ThreadId,
    ) {
        let (recorded_tx, recorded) = bounded(1);
        let (release, released) = bounded::<()>(1);
        let h = std::thread::spawn(move || {
            let w = wait_for([target]);
            let empty = w.is_empty();
            recorded_tx.send(std::thread::current().id()).unwrap();
            let _ = released.recv_timeout(std::time::Duration::from_secs(10));
            drop(w);
            empty
        });
        let id = recorded
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        (h, release, id)
    }

    /// A thread that waits (through another) for the caller is left out; one
    /// that does not is kept; the record ends with its `Waiting`.
    #[test]
    fn a_wait_for_a_thread_that_waits_for_the_caller_is_not_made() {
        let me = std::thread::current().id();
        // `a` waits for me; `b` waits for `a`, so for me through it.
        let (ha, release_a, a) = holder(me);
        let (hb, release_b, b) = holder(a);
        let (hc, release_c, c) = holder(b);
        let other = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        assert!(wait_for([a]).is_empty());
        assert!(wait_for([c, b]).is_empty());
        assert!(wait_for([me]).is_empty());
        {
            let w = wait_for([b, other]);
            assert!(!w.is_empty());
            assert!(WAITS
                .lock()
                .iter()
                .any(|(t, _, w)| *t == me && w == &[other]));
        }
        assert!(!WAITS.lock().iter().any(|(t, _, _)| *t == me));
        for (h, release) in [(hc, release_c), (hb, release_b), (ha, release_a)] {
            release.send(()).unwrap();
            assert!(!h.join().unwrap(), "a holder's wait was left out");
        }
        // Once `a` no longer waits, a wait for it is made.
        assert!(!wait_for([a]).is_empty());
    }

    /// A wait on something ([`wait_on`]) no longer counts once the thread it waits
    /// for says it is over ([`over`]), though its waiter has not woken yet; one on
    /// something else still does.
    #[test]
    fn a_wait_that_is_over_no_longer_counts() {
        let me = std::thread::current().id();
        let (on, other_on) = (0x1000, 0x2000);
        let hold = |on: usize| {
            let (recorded_tx, recorded) = bounded(1);
            let (release, released) = bounded::<()>(1);
            let h = std::thread::spawn(move || {
                let w = wait_on(on, [me]);
                recorded_tx.send(std::thread::current().id()).unwrap();
                let _ = released.recv_timeout(std::time::Duration::from_secs(10));
                drop(w);
            });
            let id = recorded
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            (h, release, id)
        };
        let (ha, release_a, a) = hold(on);
        let (hb, release_b, b) = hold(other_on);
        assert!(wait_for([a]).is_empty());
        over(on, me);
        assert!(!wait_for([a]).is_empty(), "a's wait is over");
        assert!(wait_for([b]).is_empty(), "b's is not");
        for (h, release) in [(ha, release_a), (hb, release_b)] {
            release.send(()).unwrap();
            h.join().unwrap();
        }
    }
}
