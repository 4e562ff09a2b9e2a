//! Where user code runs. Every callback and event of an [`RtmClient`] goes
//! through one queue, in arrival order. With `Dispatch::Threads` the client's
//! dispatcher thread drains it; with `Dispatch::Queued` the application does,
//! by calling `dispatch_pending()`. Either way no user code runs on a
//! connection's reader or writer thread, so a slow handler never delays
//! reading, writing, timeouts or the acknowledgement of pushes; it delays
//! only the callbacks and events queued behind it. (One exception by design:
//! inside `blocking()`, the callback handed to the method completes on the
//! SDK thread that finishes the call; it is normally the `cb` that
//! `blocking()` itself made, which only wakes the waiting thread.)
//!
//! [`RtmClient`]: crate::RtmClient

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::fpnn::guarded;
use crate::types::Dispatch;

pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) enum Item {
    /// The completion of a call: it runs even while the client is destroyed,
    /// so every callback is called exactly once.
    Callback(Job),
    /// An event or push: dropped once the client is destroyed.
    Event(Job),
    Stop,
}

pub(crate) struct Dispatcher {
    tx: Sender<Item>,
    rx: Receiver<Item>,
    mode: Dispatch,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: Mutex<Option<ThreadId>>,
    destroyed: Arc<AtomicBool>,
    /// Set by `shutdown` once the dispatcher thread has ended, under this
    /// lock, so no callback can slip into the queue after the final drain.
    stopped: Mutex<bool>,
}

impl Dispatcher {
    pub(crate) fn new(mode: Dispatch) -> Arc<Dispatcher> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let d = Arc::new(Dispatcher {
            tx,
            rx,
            mode,
            thread: Mutex::new(None),
            thread_id: Mutex::new(None),
            destroyed: Arc::new(AtomicBool::new(false)),
            stopped: Mutex::new(false),
        });
        if mode == Dispatch::Threads {
            let rx = d.rx.clone();
            let destroyed = d.destroyed.clone();
            match std::thread::Builder::new()
                .name("rtm-dispatch".into())
                .spawn(move || {
                    while let Ok(item) = rx.recv() {
                        match item {
                            Item::Callback(job) => guarded("callback", job),
                            Item::Event(job) => {
                                if !destroyed.load(Ordering::Acquire) {
                                    guarded("event handler", job)
                                }
                            }
                            Item::Stop => return,
                        }
                    }
                }) {
                Ok(h) => {
                    *d.thread_id.lock() = Some(h.thread().id());
                    *d.thread.lock() = Some(h);
                }
                Err(e) => {
                    // Without the thread, each callback gets a thread of its
                    // own (as after destroy) rather than never running.
                    log::error!("cannot start the dispatcher thread: {e}");
                    *d.stopped.lock() = true;
                }
            }
        }
        d
    }

    pub(crate) fn callback(&self, job: Job) {
        {
            // Checked and queued under the lock: `shutdown` sets the flag
            // only after its thread ended and before its final drain, so a
            // job queued here is always run by one of them.
            let stopped = self.stopped.lock();
            if !(*stopped && self.mode == Dispatch::Threads) {
                let _ = self.tx.send(Item::Callback(job));
                return;
            }
        }
        // The dispatcher thread is gone (the client was destroyed), but a
        // call made afterwards is still owed its callback, and not inside
        // the call itself.
        if let Err(e) = std::thread::Builder::new()
            .name("rtm-late-callback".into())
            .spawn(move || guarded("callback", job))
        {
            log::error!("cannot run a callback after destroy: {e}");
        }
    }

    pub(crate) fn event(&self, job: Job) {
        if !self.destroyed.load(Ordering::Acquire) {
            let _ = self.tx.send(Item::Event(job));
        }
    }

    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// Queued mode: runs what is waiting now (not what those jobs queue in
    /// turn, so a handler that re-queues cannot trap the caller).
    pub(crate) fn run_pending(&self) -> usize {
        if self.mode != Dispatch::Queued {
            return 0;
        }
        let n = self.rx.len();
        let mut ran = 0;
        for _ in 0..n {
            match self.rx.try_recv() {
                Ok(Item::Callback(job)) => {
                    guarded("callback", job);
                    ran += 1;
                }
                Ok(Item::Event(job)) => {
                    if !self.is_destroyed() {
                        guarded("event handler", job);
                        ran += 1;
                    }
                }
                Ok(Item::Stop) | Err(_) => break,
            }
        }
        ran
    }

    /// Stops delivering events; from now on only callbacks run.
    pub(crate) fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::Release);
    }

    /// Ends the dispatcher thread and runs every callback still queued on the
    /// calling thread (events are dropped). Nothing runs after this returns.
    pub(crate) fn shutdown(&self) {
        self.mark_destroyed();
        let me = std::thread::current().id();
        let own = *self.thread_id.lock() == Some(me);
        let handle = self.thread.lock().take();
        if let (Some(h), false) = (handle, own) {
            let _ = self.tx.send(Item::Stop);
            let _ = h.join();
        }
        *self.stopped.lock() = true;
        while let Ok(item) = self.rx.try_recv() {
            if let Item::Callback(job) = item {
                guarded("callback", job);
            }
        }
        if own {
            // We are the dispatcher thread (destroy called from a handler):
            // it ends when the current job returns.
            let _ = self.tx.send(Item::Stop);
        }
    }
}
