//! Where user code runs. Every callback and event of an [`RtmClient`] goes
//! through the client's queue, in arrival order. With `Dispatch::Threads` one
//! process-wide dispatcher thread (`rtm-dispatch`) drains the queues of all
//! clients, one job at a time, taking turns between clients (a few jobs each);
//! with `Dispatch::Queued` the application drains its client's queue by
//! calling `dispatch_pending()`. Either way no user code runs on a
//! connection's reader or writer thread, so a slow handler never delays
//! reading, writing, timeouts or the acknowledgement of pushes. In `Threads`
//! mode a slow handler delays the callbacks and events queued after it, of
//! every client in the process (docs/architecture.md).
//!
//! `Dispatch::Inline` is `Threads` with one shortcut: the reader thread,
//! holding no lock, runs an answer's callback, or a message push's
//! handlers, itself ([`Dispatcher::callback_on_reader`],
//! [`Dispatcher::events_on_reader`]) when nothing of the client is queued
//! or running; it marks the queue scheduled meanwhile, so what other threads
//! queue waits behind it, and hands the queue to the dispatcher thread after.
//! A push's handlers, and what the reader reads after them, wait in the
//! queue it holds until its write batch flushes (the push's answer goes out
//! first), and the reader runs them then ([`Dispatcher::drain_and_release`]).
//! Order and one-at-a-time hold as in `Threads`; no thread hand-off per
//! answer or push, at the price of the reader stalling while user code runs (and
//! `blocking()` refusing to run there, [`in_inline_callback`]). (One exception by
//! design: inside `blocking()`, the callback handed to the method completes
//! on the SDK thread that finishes the call; it is normally the `cb` that
//! `blocking()` itself made, which only wakes the waiting thread.)
//!
//! The dispatcher thread starts with the first job and ends when no client
//! in `Threads` or `Inline` mode is left (each is counted from its creation
//! to its destroy).
//!
//! Backpressure: a client's queue holds at most [`QUEUE_LIMIT`] jobs before
//! it counts as full (a `Dispatch::Queued` application that stops polling,
//! or a callback that blocks the dispatcher thread). While it is full, the
//! events that come per network message (pushes, pings, `kickoutroom`,
//! `ErrorRecorder`) are dropped, counted, and reported with one
//! `ErrorRecorder` (20011) once there is room again, or before the next
//! event queued, whichever comes first (queued past the limit, so never
//! dropped itself); new API calls fail at once with 20011
//! (`RtmClient::call`), and nothing is sent for them. Callbacks are never
//! dropped, and always queued, so they keep their order and their thread (the
//! dispatcher, or the caller of `dispatch_pending()`): the answers of quests
//! sent before the queue filled (at most as many as were in flight) and the
//! 20011 failures of calls made while it is full. Nor are the events of the
//! session's lifecycle (`SessionClosed`, the `ReloginCompleted` that ends a
//! relogin series, a connection's first kickout:
//! [`Dispatcher::lifecycle_event`]), queued past the limit in their order, a
//! few per session (a successful `ReloginCompleted` while another waits in
//! the full queue is dropped: [`Dispatcher::lifecycle_event_once`]). So the
//! queue holds at most the limit plus the callbacks the application is owed,
//! each of which holds no more than the closure the application passed, plus
//! those lifecycle events.
//!
//! [`RtmClient`]: crate::RtmClient

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

use parking_lot::{Condvar, Mutex};

use crate::fpnn::{guarded, Written};
use crate::types::Dispatch;
use crate::waits;

/// User code to run once: a closure, or a call's completion that carries
/// its own result (`Completion` in src/client/handle.rs: the answer is
/// decoded into the box the call allocated, and that same box is queued).
pub(crate) trait Run: Send + 'static {
    /// Runs it.
    fn run(self: Box<Self>);
}

impl<F: FnOnce() + Send + 'static> Run for F {
    fn run(self: Box<Self>) {
        (*self)()
    }
}

pub(crate) type Job = Box<dyn Run>;

/// How many jobs a client's queue holds before it counts as full.
pub(crate) const QUEUE_LIMIT: usize = 65_536;

/// The `ErrorRecorder` jobs reporting `n` dropped events, one per handler. The
/// dispatcher queues the report ([`Item::Dropped`]) itself, past the limit, and
/// makes these jobs when it runs: a report is never dropped, and making one
/// queues nothing (no event, so no report of a report).
pub(crate) type DropReport = Box<dyn Fn(u64) -> Vec<Job> + Send + Sync>;

/// What [`Dispatcher::claim_on_reader`] got.
enum Claim {
    /// Nothing: the job goes through the queue.
    No,
    /// The queue, already held by this thread ([`HELD`]), with nothing in it.
    Held,
    /// The queue, already held by this thread, with jobs waiting in it (a
    /// push's handlers, deferred to the flush): the job waits behind them,
    /// and this thread runs it there too ([`Dispatcher::drain_and_release`]).
    Behind,
    /// The queue, taken now: held or let go after the job.
    Taken,
}

enum Item {
    /// The completion of a call: it runs even while the client is destroyed,
    /// so every callback is called exactly once.
    Callback(Job),
    /// An event or push: dropped once the client is destroyed.
    Event(Job),
    /// The report of this many events dropped while the queue was full
    /// ([`DropReport`]), queued under the queue's lock when the count is
    /// taken, so in its place among the other jobs; as an event, dropped
    /// once the client is destroyed.
    Dropped(u64),
}

/// A client's queued jobs. Every change stores the new count in the
/// dispatcher's `queued`, where [`Dispatcher::is_full`], on every API call,
/// reads it without taking the queue's lock.
#[derive(Default)]
struct Items(VecDeque<Item>);

impl Items {
    fn push_back(&mut self, item: Item, queued: &AtomicUsize) {
        self.0.push_back(item);
        queued.store(self.0.len(), Ordering::Release);
    }

    fn pop_front(&mut self, queued: &AtomicUsize) -> Option<Item> {
        let item = self.0.pop_front();
        queued.store(self.0.len(), Ordering::Release);
        item
    }

    fn take(&mut self, queued: &AtomicUsize) -> VecDeque<Item> {
        queued.store(0, Ordering::Release);
        std::mem::take(&mut self.0)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Default)]
struct Queue {
    items: Items,
    /// In the dispatcher thread's ready list, or being drained by it.
    scheduled: bool,
    /// The dispatcher thread is running one of this client's jobs, or (in
    /// `Dispatch::Queued` mode) a `dispatch_pending` call on `runner` is.
    busy: bool,
    /// The thread running the job while `busy`: the dispatcher thread, the
    /// reader running an inline callback (or holding the queue after one), or
    /// the `dispatch_pending` caller. `shutdown` does not wait for it when it
    /// waits for the thread calling `shutdown` (src/waits.rs).
    busy_on: Option<ThreadId>,
    /// `Dispatch::Queued`: the thread whose `dispatch_pending` call is running
    /// this client's jobs. Another call meanwhile (a callback's, or another
    /// thread's) runs nothing, so they still run one at a time.
    runner: Option<ThreadId>,
    /// `shutdown` is done: the dispatcher thread no longer serves this
    /// client (`Threads` mode only).
    stopped: bool,
    /// `shutdown` waits only for the job running, to take the queue after
    /// it: the dispatcher thread ends its turn there, as does a
    /// `dispatch_pending` call.
    closing: bool,
    /// Calls on threads of their own that have not queued their callback yet
    /// ([`Owed`]); `shutdown` waits for them.
    owed: usize,
    /// `shutdown` calls waiting for the job running ([`Queue::not_busy`]).
    shutdowns: usize,
    /// Events dropped while the queue was full, not yet reported.
    dropped: u64,
    /// The connection whose reader left its ACK to this queue's next turn
    /// (`crate::fpnn::owe_ack`): settled when the turn's quests are written.
    ack: Option<Written>,
}

impl Queue {
    /// The job running on `busy_on` (or the reader's hold after one) is over:
    /// a `shutdown` waiting for it no longer waits for that thread, even before
    /// it wakes up (src/waits.rs; `key`: the dispatcher's).
    fn not_busy(&mut self, key: usize) {
        if self.shutdowns > 0 {
            if let Some(t) = self.busy_on {
                waits::over(key, t);
            }
        }
        self.busy = false;
        self.busy_on = None;
    }
}

/// A callback that a call running on a thread of its own (the file sends,
/// src/api/files.rs) still owes the queue: `shutdown` (so `destroy`) waits
/// until it is dropped, which the call does once its callback is queued or
/// has started, so that it runs before `destroy` returns.
pub(crate) struct Owed(Arc<Dispatcher>);

impl Drop for Owed {
    fn drop(&mut self) {
        self.0.queue.lock().owed -= 1;
        self.0.idle.notify_all();
    }
}

/// One client's queue.
pub(crate) struct Dispatcher {
    mode: Dispatch,
    queue: Mutex<Queue>,
    /// Signalled when `busy` turns false.
    idle: Condvar,
    /// Test hook: how many times `shutdown` waited for `busy` or `owed`.
    #[cfg(test)]
    shutdown_waits: AtomicUsize,
    destroyed: AtomicBool,
    /// Counted among the clients the dispatcher thread serves.
    registered: AtomicBool,
    /// The limit (a test hook may lower it).
    limit: AtomicUsize,
    /// How many jobs `queue` holds, as of its last change ([`Items`]).
    queued: AtomicUsize,
    /// Reports dropped events (set by the client).
    report: Mutex<Option<Arc<DropReport>>>,
}

impl Dispatcher {
    pub(crate) fn new(mode: Dispatch) -> Arc<Dispatcher> {
        let threads = mode != Dispatch::Queued;
        if threads {
            POOL.lock().clients += 1;
        }
        Arc::new(Dispatcher {
            mode,
            queue: Mutex::new(Queue::default()),
            idle: Condvar::new(),
            #[cfg(test)]
            shutdown_waits: AtomicUsize::new(0),
            destroyed: AtomicBool::new(false),
            registered: AtomicBool::new(threads),
            limit: AtomicUsize::new(QUEUE_LIMIT),
            queued: AtomicUsize::new(0),
            report: Mutex::new(None),
        })
    }

    /// Sets how dropped events are reported.
    pub(crate) fn on_dropped(&self, report: DropReport) {
        *self.report.lock() = Some(Arc::new(report));
    }

    /// Test hook: another limit.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// How many jobs wait.
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().items.len()
    }

    /// Whether the queue is at its limit: new calls fail with 20011. Read
    /// without the lock (a plain load, where a lock would be two atomic
    /// read-modify-writes per call): a call racing with a job being queued
    /// or run may see the count just before it, as it could with the lock
    /// taken a moment earlier.
    pub(crate) fn is_full(&self) -> bool {
        self.queued.load(Ordering::Relaxed) >= self.limit.load(Ordering::Relaxed)
    }

    /// Test hook: whether nothing of this client is queued, scheduled or
    /// running, so that in `Dispatch::Inline` mode the next answer's callback
    /// runs on its reader ([`Dispatcher::callback_on_reader`]), not behind a
    /// job the dispatcher thread still holds (a login's callback, an event).
    #[cfg(all(test, feature = "gate"))]
    pub(crate) fn settled_for_tests(&self) -> bool {
        let q = self.queue.lock();
        !q.scheduled && !q.busy && q.items.is_empty()
    }

    pub(crate) fn callback(self: &Arc<Self>, job: Job) {
        let Err(job) = self.push(Item::Callback(job)) else {
            return;
        };
        // The client was destroyed, but a call made afterwards is still owed
        // its callback, and not inside the call itself.
        late(job);
    }

    /// A callback handed over by a connection's reader thread with no lock
    /// held (`RawReply::answer_on_reader`). In `Dispatch::Inline` mode it
    /// runs here and now when nothing of this client is queued or running
    /// (so the client's callbacks keep their order and never run two at a
    /// time); otherwise, and in the other modes, it is queued.
    ///
    /// Running one marks the queue scheduled and busy, so what other threads
    /// queue meanwhile waits behind it. Inside a write batch (the reader
    /// thread is in one while it handles what one read brought) the marks
    /// stay until the batch flushes, before the thread waits for the socket
    /// ([`HELD`], `crate::fpnn::at_flush`): the next answers of that read
    /// run with no lock taken, as long as nothing was queued meanwhile and
    /// the client is not destroyed. Then, or without a batch after each
    /// callback, the queue is let go ([`Dispatcher::release`]): handed to
    /// the dispatcher thread if something is queued. `self` is the call's
    /// own reference (its `Deliverer`'s), which a hold keeps: holding takes
    /// no reference count of its own.
    pub(crate) fn callback_on_reader(self: Arc<Self>, job: Job) {
        match self.claim_on_reader() {
            Claim::No => self.callback(job),
            Claim::Behind => self.defer([Item::Callback(job)]),
            Claim::Held => self.run_inline("callback", job),
            Claim::Taken => {
                self.run_inline("callback", job);
                Self::hold_or_release(self);
            }
        }
    }

    /// A push's handlers handed over by a connection's reader thread
    /// (src/client/push.rs): in `Dispatch::Inline` mode they run here, one
    /// after the other, when nothing of this client is queued or running,
    /// as [`Dispatcher::callback_on_reader`] runs an answer's callback;
    /// otherwise, and in the other modes, each is queued as an event
    /// ([`Dispatcher::event`]). Events of a destroyed client are dropped.
    ///
    /// `unlock` is called once, after the queue is taken or the jobs are
    /// queued, and before any job runs: it drops the caller's hold on the
    /// session's fence, under which a push must be taken or queued (so that
    /// nothing of an ended session comes after its `SessionClosed`) but
    /// under which no handler may run (a handler may close the client,
    /// which takes the fence's write lock). A job queued after the take
    /// waits behind these, so the order is the same either way.
    pub(crate) fn events_on_reader(
        self: &Arc<Self>,
        jobs: impl IntoIterator<Item = Job>,
        unlock: impl FnOnce(),
    ) {
        if self.is_destroyed() {
            return unlock();
        }
        match self.claim_on_reader() {
            Claim::No => {
                for job in jobs {
                    self.event(job);
                }
                unlock();
            }
            claim => {
                // Inside a write batch (the reader's, for what one read
                // brought) the handlers wait in the held queue until it
                // flushes: the answers to the read's pushes go out first,
                // and then the handlers run on this thread
                // ([`Dispatcher::drain_and_release`]; docs/protocol.md,
                // "Answer first"). Queued before the fence is let go.
                if matches!(claim, Claim::Behind) || crate::fpnn::at_flush(super::batch_flushed) {
                    self.defer(jobs.into_iter().map(Item::Event));
                    unlock();
                    if let Claim::Taken = claim {
                        Self::hold_or_release(self.clone());
                    }
                    return;
                }
                unlock();
                for job in jobs {
                    // A handler may destroy the client: the next are dropped,
                    // as queued events are (`Dispatcher::run`).
                    if self.is_destroyed() {
                        break;
                    }
                    self.run_inline("event handler", job);
                }
                if let Claim::Taken = claim {
                    Self::hold_or_release(self.clone());
                }
            }
        }
    }

    /// Takes this client's queue for user code run on this (a reader)
    /// thread, when in `Dispatch::Inline` mode nothing of the client is
    /// queued or running and it is not being destroyed. Nor while dropped
    /// events wait to be reported: jobs then go through the queue, where
    /// the next event reports them first ([`Dispatcher::event`]). (Events
    /// dropped while a reader holds the queue, full of what it deferred and
    /// what other threads queued, are reported when its drain lets the
    /// queue go, [`Dispatcher::drain_and_release`].)
    fn claim_on_reader(&self) -> Claim {
        if self.mode != Dispatch::Inline {
            return Claim::No;
        }
        let held = HELD.with(|h| {
            h.borrow()
                .as_ref()
                .map(|d| std::ptr::eq(Arc::as_ptr(d), self))
        });
        match held {
            // Jobs waiting in the held queue (deferred push handlers, or
            // what other threads queued meanwhile) run first, at the flush.
            Some(true) if !self.is_destroyed() => {
                return match self.queued.load(Ordering::Acquire) {
                    0 => Claim::Held,
                    _ => Claim::Behind,
                };
            }
            // The client is being destroyed, or another client's queue is
            // held: let go, to the dispatcher thread.
            Some(_) => {
                if let Some(d) = HELD.with(|h| h.borrow_mut().take()) {
                    d.release();
                }
            }
            None => {}
        }
        let mut q = self.queue.lock();
        if q.scheduled
            || q.stopped
            || q.closing
            || !q.items.is_empty()
            || q.dropped > 0
            || self.is_destroyed()
        {
            return Claim::No;
        }
        q.scheduled = true;
        q.busy = true;
        q.busy_on = Some(std::thread::current().id());
        Claim::Taken
    }

    /// After user code ran on a queue [`Claim::Taken`]: holds it until the
    /// write batch flushes ([`HELD`]), or lets it go now without a batch.
    fn hold_or_release(this: Arc<Self>) {
        if crate::fpnn::at_flush(super::batch_flushed) {
            // Nothing else is held here (let go in the claim); were
            // something, it is let go now rather than stay held for ever.
            if let Some(other) = HELD.with(|h| h.borrow_mut().replace(this)) {
                other.release();
            }
        } else {
            this.release();
        }
    }

    /// Queues `items` behind the jobs of the queue this thread holds
    /// ([`HELD`]), without scheduling it: this thread runs them when its
    /// write batch flushes ([`Dispatcher::drain_and_release`]). Should the
    /// client have been stopped meanwhile, a callback still runs, on a
    /// thread of its own, and an event is dropped.
    fn defer(&self, items: impl IntoIterator<Item = Item>) {
        let mut q = self.queue.lock();
        for item in items {
            match item {
                Item::Callback(job) if q.stopped => late(job),
                Item::Event(_) if q.stopped => {}
                item => q.items.push_back(item, &self.queued),
            }
        }
    }

    /// Ends a hold when the reader's write batch flushes, after the frames
    /// went out: runs here, in order, the jobs waiting in the queue at
    /// that moment (the handlers of the pushes just answered, the callbacks
    /// behind them, what other threads queued meanwhile), each marked as
    /// an inline callback, then lets the queue go ([`Dispatcher::release`]):
    /// what was queued since goes to the dispatcher thread. Stops early
    /// when the client is being shut down (`shutdown` waits for the job
    /// running, then takes the rest).
    fn drain_and_release(self: &Arc<Self>) {
        let n = self.queued.load(Ordering::Acquire);
        for _ in 0..n {
            let item = {
                let mut q = self.queue.lock();
                if q.stopped || q.closing {
                    break;
                }
                q.items.pop_front(&self.queued)
            };
            let Some(item) = item else {
                break;
            };
            let outer = INLINE.replace(self.key());
            self.run(item);
            INLINE.set(outer);
        }
        // The ACK a job queued from this reader left to the queue's next turn
        // (`crate::fpnn::owe_ack`): the drain is that turn. Room again: what
        // was dropped meanwhile is reported now (`release` hands the report
        // to the dispatcher thread), as at the end of a dispatcher turn, not
        // only when the next event comes, which may never happen.
        let ack = {
            let mut q = self.queue.lock();
            if q.items.len() < self.limit.load(Ordering::Relaxed) && !q.stopped {
                self.report_dropped(&mut q);
            }
            q.ack.take()
        };
        self.release();
        settle(ack);
    }

    /// Runs `job` on this thread, marked as an inline callback ([`INLINE`]).
    fn run_inline(&self, what: &str, job: Job) {
        let outer = INLINE.replace(self.key());
        guarded(what, || job.run());
        INLINE.set(outer);
    }

    /// Ends what [`Dispatcher::callback_on_reader`] marked: the queue is no
    /// longer busy, and goes to the dispatcher thread if something waits.
    fn release(self: &Arc<Self>) {
        let mut q = self.queue.lock();
        q.not_busy(self.key());
        self.idle.notify_all();
        if q.items.is_empty() || q.stopped {
            q.scheduled = false;
            return;
        }
        drop(q);
        if !schedule(self.clone()) {
            self.stop_and_drain_on_late_threads();
        }
    }

    /// This dispatcher's [`INLINE`] mark.
    fn key(&self) -> usize {
        self as *const Dispatcher as usize
    }

    /// Queues an event or push that arrives per network message (a push, a
    /// ping, a `kickoutroom`, most `ErrorRecorder`s); dropped (and counted
    /// for the report) while the queue is full. The events of the session's
    /// lifecycle go through [`Dispatcher::lifecycle_event`] instead.
    pub(crate) fn event(self: &Arc<Self>, job: Job) {
        if self.is_destroyed() {
            return;
        }
        let mut q = self.queue.lock();
        if self.drop_if_full(&mut q) {
            return;
        }
        self.report_dropped(&mut q);
        let _ = self.push_locked(q, Item::Event(job));
    }

    /// Whether the queue is full: then an event is dropped, and counted for the
    /// report.
    fn drop_if_full(&self, q: &mut Queue) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        if q.items.len() < limit {
            return false;
        }
        q.dropped += 1;
        if q.dropped == 1 {
            log::warn!("dispatch queue full ({limit} jobs): events are dropped");
        }
        true
    }

    /// Queues an event of the session's lifecycle (`SessionClosed`, the
    /// `ReloginCompleted` that ends a relogin series, the first kickout of a
    /// connection): never dropped, queued past the limit when the queue is
    /// full, in order with everything else (as callbacks are), after the
    /// report of the events dropped before it (so that the report of a
    /// session's dropped pushes comes before its `SessionClosed`). Dropped
    /// only once the client is destroyed, as every event.
    ///
    /// Why this keeps the queue bounded: these events come a few per
    /// session, not per network message. A session ends once (one
    /// `SessionClosed`, after at most one kickout handled this way,
    /// src/client/push.rs), and a new session needs a `login`, which fails
    /// at once with 20011 while the queue is full (`RtmClient::call`). What
    /// goes on while it is full is the relogin series: the one that ends the
    /// session (`retry_again` false) comes this way; a successful one, of
    /// which a connection lost after each relogin makes one per
    /// authenticated connection, comes this way only while no other waits
    /// in the full queue ([`Dispatcher::lifecycle_event_once`]). The
    /// `ReloginCompleted` of each failed attempt that will be retried is
    /// dropped as a push is (src/client/events.rs): with
    /// `max_interval_seconds: 0` nothing paces the attempts, so they may
    /// come as fast as a server refuses connections. So past the limit the
    /// queue grows by at most a few small jobs per session, while every
    /// event that comes per network message, per refused attempt or per
    /// relogin is dropped.
    pub(crate) fn lifecycle_event(self: &Arc<Self>, job: Job) {
        if self.is_destroyed() {
            return;
        }
        let mut q = self.queue.lock();
        self.report_dropped(&mut q);
        let _ = self.push_locked(q, Item::Event(job));
    }

    /// [`Dispatcher::lifecycle_event`] for one that may come again and again
    /// with the same news while the application does not run the queue: the
    /// successful `ReloginCompleted` (a connection lost right after each
    /// relogin makes a series per authenticated connection, the first attempt
    /// of each made at once by the default strategy). While the queue is full
    /// and one queued this way has not run yet (`waiting`, set from its queuing
    /// until it starts), it is dropped and counted as a push is: the one
    /// waiting tells the same, and the report says that events were dropped
    /// after it. `jobs` are the event's handlers: kept or dropped together, so at
    /// most one such event (a job per handler) waits past the limit.
    pub(crate) fn lifecycle_event_once(
        self: &Arc<Self>,
        jobs: Vec<Job>,
        waiting: &Arc<AtomicBool>,
    ) {
        if jobs.is_empty() || self.is_destroyed() {
            return;
        }
        {
            let mut q = self.queue.lock();
            if waiting.load(Ordering::Acquire)
                && q.items.len() >= self.limit.load(Ordering::Relaxed)
            {
                // Dropped whole, each handler's job counted, as `event` counts them.
                for _ in &jobs {
                    self.drop_if_full(&mut q);
                }
                return;
            }
            waiting.store(true, Ordering::Release);
        }
        // Kept whole: every handler's job (the caller, the session, queues its
        // events one at a time, under its lock).
        for job in jobs {
            let w = waiting.clone();
            self.lifecycle_event(Box::new(move || {
                w.store(false, Ordering::Release);
                job.run()
            }));
        }
    }

    /// Queues the report of the events dropped so far (none: nothing), past
    /// the limit ([`Item::Dropped`]), under the queue's lock: whatever is
    /// queued after it comes after it. The caller schedules the queue.
    fn report_dropped(&self, q: &mut Queue) {
        let n = std::mem::take(&mut q.dropped);
        if n == 0 {
            return;
        }
        log::warn!("{n} events dropped: the dispatch queue was full");
        // A stopped queue runs no event (`push_locked`).
        if self.mode == Dispatch::Queued || !q.stopped {
            q.items.push_back(Item::Dropped(n), &self.queued);
        }
    }

    /// Queues `item`; gives a callback back when no one will run the queue.
    fn push(self: &Arc<Self>, item: Item) -> Result<(), Job> {
        self.push_locked(self.queue.lock(), item)
    }

    /// [`Dispatcher::push`], with the queue's lock already taken.
    fn push_locked(
        self: &Arc<Self>,
        mut q: parking_lot::MutexGuard<'_, Queue>,
        item: Item,
    ) -> Result<(), Job> {
        if self.mode != Dispatch::Queued {
            // Checked and queued under the lock: `shutdown` sets `stopped`
            // under it before its final drain, so a job queued here is
            // always run by one of them.
            if q.stopped {
                return match item {
                    Item::Callback(job) => Err(job),
                    Item::Event(_) | Item::Dropped(_) => Ok(()),
                };
            }
            // On a reader thread, the ACK of what it read may ride on the
            // quests this job sends: left to the turn that runs it.
            crate::fpnn::owe_ack(&mut q.ack);
            q.items.push_back(item, &self.queued);
            if !q.scheduled {
                q.scheduled = true;
                drop(q);
                if !schedule(self.clone()) {
                    // No dispatcher thread: run on threads of their own
                    // rather than never.
                    self.stop_and_drain_on_late_threads();
                }
            }
        } else {
            q.items.push_back(item, &self.queued);
        }
        Ok(())
    }

    /// Counts a callback owed by a call on a thread of its own until the
    /// returned [`Owed`] is dropped.
    pub(crate) fn owe(self: &Arc<Self>) -> Owed {
        self.queue.lock().owed += 1;
        Owed(self.clone())
    }

    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// Queued mode: runs what is waiting now (not what those jobs queue in
    /// turn, so a handler that re-queues cannot trap the caller). While it
    /// runs a job the queue is busy, so `shutdown` (`destroy` on another
    /// thread) waits for that job and then takes the rest, which this call
    /// leaves. Runs nothing (returns 0) while another call is running this
    /// client's jobs: from a callback it runs, or on another thread.
    pub(crate) fn run_pending(self: &Arc<Self>) -> usize {
        if self.mode != Dispatch::Queued {
            return 0;
        }
        let n = {
            let mut q = self.queue.lock();
            if q.runner.is_some() {
                return 0;
            }
            q.runner = Some(std::thread::current().id());
            q.busy = true;
            q.busy_on = q.runner;
            q.items.len()
        };
        let mut ran = 0;
        let _batch = crate::fpnn::write_batch();
        for _ in 0..n {
            let item = {
                let mut q = self.queue.lock();
                if q.closing {
                    break;
                }
                q.items.pop_front(&self.queued)
            };
            match item {
                Some(item) => ran += self.run(item),
                None => break,
            }
        }
        // Room again: what was dropped meanwhile is reported now (it runs
        // with the next call).
        let limit = self.limit.load(Ordering::Relaxed);
        let mut q = self.queue.lock();
        q.runner = None;
        q.not_busy(self.key());
        self.idle.notify_all();
        if q.items.len() < limit {
            self.report_dropped(&mut q);
        }
        ran
    }

    /// Runs one item; how many jobs ran (an event of a destroyed client runs
    /// none, a report one per `ErrorRecorder` handler).
    fn run(&self, item: Item) -> usize {
        match item {
            Item::Callback(job) => guarded("callback", || job.run()),
            _ if self.is_destroyed() => return 0,
            Item::Event(job) => guarded("event handler", || job.run()),
            Item::Dropped(n) => {
                let jobs = self.drop_report(n);
                let ran = jobs.len();
                for job in jobs {
                    guarded("event handler", || job.run());
                }
                return ran;
            }
        }
        1
    }

    /// The `ErrorRecorder` jobs reporting `n` dropped events ([`DropReport`]).
    fn drop_report(&self, n: u64) -> Vec<Job> {
        let report = self.report.lock().clone();
        report.map(|r| r(n)).unwrap_or_default()
    }

    /// Stops delivering events; from now on only callbacks run.
    pub(crate) fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::Release);
    }

    /// Stops serving this client and runs every callback still queued on the
    /// calling thread (events are dropped), after the one the dispatcher
    /// thread may be running (unless that is the calling thread, or a thread
    /// that waits, itself or through others, for the calling thread:
    /// src/waits.rs; that job stays suspended in its wait until this returns)
    /// and after
    /// the owed ones are queued ([`Owed`]; their calls see the client
    /// destroyed and end). Nothing of this client runs on the dispatcher
    /// thread after this returns.
    pub(crate) fn shutdown(&self) {
        self.mark_destroyed();
        let me = std::thread::current().id();
        let (items, ack, before) = {
            let mut q = self.queue.lock();
            // Called from the job that is running (a callback that
            // destroys its client): nothing to wait for.
            let mut running_here = match self.mode {
                Dispatch::Queued => q.runner == Some(me),
                _ => INLINE.get() == self.key() || POOL.lock().thread == Some(me),
            };
            loop {
                // Once no owed call is left, only the running job is waited
                // for: the dispatcher thread ends its turn after it. While
                // owed calls are left it goes on serving the queue (an owed
                // call may wait for a callback queued here).
                q.closing = q.owed == 0;
                if (running_here || !q.busy) && q.owed == 0 {
                    break;
                }
                // Not for a job whose thread waits, itself or through others,
                // for this one (src/waits.rs): a callback that ends the
                // session of a client whose callback, running on this thread
                // at the same time, destroys this one. That job is held in
                // its wait until this returns, as when it runs here.
                let waiting = match q.busy_on {
                    Some(t) if q.busy && !running_here => Some(waits::wait_on(self.key(), [t])),
                    _ => None,
                };
                if waiting.as_ref().is_some_and(waits::Waiting::is_empty) {
                    running_here = true;
                    continue;
                }
                #[cfg(test)]
                self.shutdown_waits.fetch_add(1, Ordering::SeqCst);
                q.shutdowns += 1;
                self.idle.wait(&mut q);
                q.shutdowns -= 1;
                drop(waiting);
            }
            let before = (q.busy, q.runner, q.busy_on);
            if self.mode == Dispatch::Queued {
                // The queue stays served by `dispatch_pending` (a call made
                // later completes there), but not before what is taken here
                // has run: meanwhile this thread is its runner.
                q.closing = false;
                q.busy = true;
                q.runner = Some(me);
                q.busy_on = Some(me);
            } else {
                q.stopped = true;
            }
            (q.items.take(&self.queued), q.ack.take(), before)
        };
        for item in items {
            if let Item::Callback(job) = item {
                guarded("callback", || job.run());
            }
        }
        settle(ack);
        if self.mode == Dispatch::Queued {
            let mut q = self.queue.lock();
            (q.busy, q.runner, q.busy_on) = before;
            self.idle.notify_all();
        }
        self.unregister();
    }

    /// No dispatcher thread could be started: hands what is queued, and
    /// every later callback, to threads of their own.
    fn stop_and_drain_on_late_threads(&self) {
        let (items, ack) = {
            let mut q = self.queue.lock();
            q.stopped = true;
            q.scheduled = false;
            (q.items.take(&self.queued), q.ack.take())
        };
        settle(ack);
        for item in items {
            match item {
                Item::Callback(job) | Item::Event(job) => late(job),
                Item::Dropped(n) => self.drop_report(n).into_iter().for_each(late),
            }
        }
        self.unregister();
    }

    fn unregister(&self) {
        if self.registered.swap(false, Ordering::AcqRel) {
            let mut p = POOL.lock();
            p.clients -= 1;
            POOL_CHANGED.notify_all();
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.unregister();
    }
}

thread_local! {
    /// The dispatcher whose callback this thread runs in `Dispatch::Inline`
    /// mode (its [`Dispatcher::key`]); 0 when none.
    static INLINE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The client whose queue this thread holds between inline callbacks
    /// ([`Dispatcher::callback_on_reader`]) until its write batch flushes.
    static HELD: std::cell::RefCell<Option<Arc<Dispatcher>>> =
        const { std::cell::RefCell::new(None) };
}

/// Lets go of the queue this thread holds ([`HELD`]), if any, after
/// running the jobs deferred to this moment
/// ([`Dispatcher::drain_and_release`]): the write batch's flush hook. Not
/// while an inline callback runs (a flush inside one would let a second
/// callback of that client start): the hook is then set again for the
/// next flush.
pub(super) fn release_held() {
    if INLINE.get() != 0 && crate::fpnn::at_flush(super::batch_flushed) {
        return;
    }
    if let Some(d) = HELD.with(|h| h.borrow_mut().take()) {
        d.drain_and_release();
    }
}

/// Whether this thread is running a `Dispatch::Inline` callback, so is a
/// connection's reader thread (`blocking()` refuses to wait there).
pub(crate) fn in_inline_callback() -> bool {
    INLINE.get() != 0
}

/// Runs a callback no queue will run on a short-lived thread of its own.
fn late(job: Job) {
    if let Err(e) = std::thread::Builder::new()
        .name("rtm-late-callback".into())
        .spawn(move || guarded("callback", || job.run()))
    {
        log::error!("cannot run a late callback: {e}");
    }
}

/// The process-wide dispatcher thread's state.
struct Pool {
    /// Clients with queued jobs, in turn.
    ready: VecDeque<Arc<Dispatcher>>,
    /// `Threads`-mode clients not yet destroyed.
    clients: usize,
    running: bool,
    thread: Option<ThreadId>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    ready: VecDeque::new(),
    clients: 0,
    running: false,
    thread: None,
});
static POOL_CHANGED: Condvar = Condvar::new();

/// How many jobs of one client run before the next client's turn.
const TURN: usize = 64;

/// Puts `d` in the ready list, starting the thread if needed; false when it
/// cannot be started.
fn schedule(d: Arc<Dispatcher>) -> bool {
    let mut p = POOL.lock();
    p.ready.push_back(d);
    POOL_CHANGED.notify_one();
    if !p.running {
        match std::thread::Builder::new()
            .name("rtm-dispatch".into())
            .spawn(serve)
        {
            Ok(h) => {
                p.running = true;
                p.thread = Some(h.thread().id());
            }
            Err(e) => {
                log::error!("cannot start the dispatcher thread: {e}");
                p.ready.pop_back();
                return false;
            }
        }
    }
    true
}

/// The dispatcher thread.
fn serve() {
    loop {
        let d = {
            let mut p = POOL.lock();
            loop {
                if let Some(d) = p.ready.pop_front() {
                    break d;
                }
                if p.clients == 0 {
                    p.running = false;
                    p.thread = None;
                    return;
                }
                POOL_CHANGED.wait(&mut p);
            }
        };
        // The quests this turn's callbacks send go out together, when the
        // batch ends; then the ACK left to the turn is settled.
        let batch = crate::fpnn::write_batch();
        let ack = turn(d);
        drop(batch);
        settle(ack);
    }
}

/// Runs up to [`TURN`] jobs of `d` and hands it back to the ready list if
/// more wait; returns the ACK left to the turn (`Queue::ack`).
fn turn(d: Arc<Dispatcher>) -> Option<Written> {
    let mut more = false;
    // One lock round trip per job: the one that ends a job takes the
    // next (the lock is let go only while a job runs).
    let mut q = d.queue.lock();
    for _ in 0..TURN {
        if q.stopped || q.closing {
            break;
        }
        let Some(item) = q.items.pop_front(&d.queued) else {
            break;
        };
        q.busy = true;
        q.busy_on = Some(std::thread::current().id());
        drop(q);
        d.run(item);
        q = d.queue.lock();
        q.not_busy(d.key());
        d.idle.notify_all();
        more = !q.items.is_empty() && !q.stopped && !q.closing;
        if !more {
            break;
        }
    }
    // Room again: what was dropped meanwhile is reported now (queued past
    // the limit, it runs in a later turn), not only when the next event
    // comes, which may never happen.
    if q.items.len() < d.limit.load(Ordering::Relaxed) && !q.stopped {
        d.report_dropped(&mut q);
    }
    let ack = q.ack.take();
    if more || (!q.items.is_empty() && !q.stopped && !q.closing) {
        drop(q);
        POOL.lock().ready.push_back(d);
    } else {
        q.scheduled = false;
    }
    ack
}

/// Sends the ACK a reader left to the dispatcher (`Written::settle`), if
/// no write carried it.
fn settle(ack: Option<Written>) {
    if let Some(a) = ack {
        a.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{wait_until, WAIT};

    #[test]
    fn shutdown_waits_for_owed_callbacks_and_runs_them_before_returning() {
        for mode in [Dispatch::Threads, Dispatch::Queued] {
            let d = Dispatcher::new(mode);
            let owed = d.owe();
            let (tx, rx) = crossbeam_channel::unbounded();
            let d2 = d.clone();
            // A call on a thread of its own: it ends once it sees the client destroyed.
            let call = std::thread::spawn(move || {
                wait_until("the client destroyed", || d2.is_destroyed());
                d2.callback(Box::new(move || tx.send("owed").unwrap()));
                drop(owed);
            });
            d.shutdown();
            assert_eq!(rx.try_recv(), Ok("owed"), "{mode:?}");
            call.join().unwrap();
            // Nothing owed: shutdown does not wait.
            Dispatcher::new(mode).shutdown();
        }
    }

    /// `Dispatch::Queued`: `shutdown` (a `destroy`) on another thread waits for the
    /// callback a `dispatch_pending` call is running, then runs the rest itself; that
    /// call stops after its job, no two callbacks run at once, and a later callback
    /// still runs in `dispatch_pending`.
    #[test]
    fn queued_shutdown_waits_for_the_callback_dispatch_pending_runs() {
        let d = Dispatcher::new(Dispatch::Queued);
        let log = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicUsize::new(0));
        let returned = Arc::new(AtomicBool::new(false));
        let (d1, l, r, ret) = (d.clone(), log.clone(), running.clone(), returned.clone());
        d.callback(Box::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
            // Until `shutdown` waits for this callback (or, were it not to, returns).
            wait_until("shutdown to wait or return", || {
                d1.shutdown_waits.load(Ordering::SeqCst) > 0 || ret.load(Ordering::SeqCst)
            });
            l.lock().push("first ends");
            r.fetch_sub(1, Ordering::SeqCst);
        }));
        for name in ["second", "third"] {
            let (l, r) = (log.clone(), running.clone());
            d.callback(Box::new(move || {
                let alone = r.load(Ordering::SeqCst) == 0;
                l.lock().push(if alone { name } else { "two at once" });
            }));
        }
        let poller = {
            let d = d.clone();
            std::thread::spawn(move || d.run_pending())
        };
        wait_until("the first callback runs", || {
            running.load(Ordering::SeqCst) == 1
        });
        let (d2, l) = (d.clone(), log.clone());
        std::thread::spawn(move || {
            d2.shutdown();
            l.lock().push("shutdown returned");
            returned.store(true, Ordering::SeqCst);
        })
        .join()
        .unwrap();
        assert_eq!(
            poller.join().unwrap(),
            1,
            "dispatch_pending stopped after its job"
        );
        assert_eq!(
            *log.lock(),
            ["first ends", "second", "third", "shutdown returned"]
        );
        let l = log.clone();
        d.callback(Box::new(move || l.lock().push("late")));
        assert_eq!(d.run_pending(), 1);
        assert_eq!(log.lock().last(), Some(&"late"));
    }

    /// `Dispatch::Queued`: a callback that destroys its client, run by
    /// `dispatch_pending`, does not wait for itself; the rest run inside its
    /// `shutdown`, and a nested `dispatch_pending` runs nothing.
    #[test]
    fn queued_shutdown_from_a_callback_runs_the_rest_in_it() {
        let d = Dispatcher::new(Dispatch::Queued);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (d1, l) = (d.clone(), log.clone());
        d.callback(Box::new(move || {
            l.lock().push(format!("nested ran {}", d1.run_pending()));
            d1.shutdown();
            l.lock().push("shutdown returned".into());
        }));
        let l = log.clone();
        d.callback(Box::new(move || l.lock().push("second".into())));
        assert_eq!(d.run_pending(), 1);
        assert_eq!(*log.lock(), ["nested ran 0", "second", "shutdown returned"]);
        assert_eq!(d.shutdown_waits.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn clients_sharing_the_thread_each_keep_their_order() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let clients: Vec<_> = (0..8).map(|_| Dispatcher::new(Dispatch::Threads)).collect();
        for n in 0..200 {
            for (c, d) in clients.iter().enumerate() {
                let tx = tx.clone();
                let job: Job = Box::new(move || {
                    let _ = tx.send((c, n, std::thread::current().id()));
                });
                if n % 2 == 0 {
                    d.callback(job)
                } else {
                    d.event(job)
                }
            }
        }
        let mut next = [0; 8];
        let mut thread = None;
        for _ in 0..8 * 200 {
            let (c, n, t) = rx.recv_timeout(WAIT).expect("every job runs");
            assert_eq!(n, next[c], "client {c} out of order");
            next[c] += 1;
            assert_eq!(*thread.get_or_insert(t), t, "one dispatcher thread");
        }
        for d in &clients {
            d.shutdown();
        }
    }

    #[test]
    fn shutdown_waits_for_the_running_job_then_runs_queued_callbacks_here() {
        let d = Dispatcher::new(Dispatch::Threads);
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (release, release_rx) = crossbeam_channel::bounded::<()>(1);
        let (done_tx, done) = crossbeam_channel::unbounded();
        let t = done_tx.clone();
        d.callback(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            t.send(("slow", std::thread::current().id())).unwrap();
        }));
        started.recv_timeout(WAIT).unwrap();
        let t = done_tx.clone();
        d.callback(Box::new(move || {
            t.send(("queued", std::thread::current().id())).unwrap()
        }));
        let t = done_tx.clone();
        d.event(Box::new(move || {
            t.send(("event", std::thread::current().id())).unwrap()
        }));
        let d2 = d.clone();
        let stopper = std::thread::spawn(move || {
            d2.shutdown();
            std::thread::current().id()
        });
        // Shutdown has marked the queue closing, which it does just before it
        // waits for the running job; one that did not wait would go on to run
        // "queued" before "slow", which the order check below catches.
        wait_until("shutdown to reach its wait", || d.queue.lock().closing);
        assert!(!stopper.is_finished(), "shutdown waits for the running job");
        release.send(()).unwrap();
        let stopper = stopper.join().unwrap();
        let ran: Vec<_> = done.try_iter().collect();
        assert_eq!(ran.len(), 2, "{ran:?}");
        assert_eq!(ran[0].0, "slow");
        assert_eq!(ran[1], ("queued", stopper), "the rest runs on the caller");
        // After shutdown a callback still runs, on a thread of its own.
        let t = done_tx.clone();
        d.callback(Box::new(move || {
            t.send(("late", std::thread::current().id())).unwrap()
        }));
        assert_eq!(done.recv_timeout(WAIT).unwrap().0, "late");
    }

    type Ran = crossbeam_channel::Sender<(&'static str, ThreadId)>;

    fn job(tx: &Ran, name: &'static str) -> Job {
        let tx = tx.clone();
        Box::new(move || tx.send((name, std::thread::current().id())).unwrap())
    }

    /// An `Inline` dispatcher whose queue this thread holds, as a reader
    /// does: inside a write batch (returned), after running job "a" inline.
    fn holding() -> (
        Arc<Dispatcher>,
        Ran,
        crossbeam_channel::Receiver<(&'static str, ThreadId)>,
        crate::fpnn::WriteBatch,
    ) {
        let d = Dispatcher::new(Dispatch::Inline);
        let (tx, rx) = crossbeam_channel::unbounded();
        let batch = crate::fpnn::write_batch();
        d.clone().callback_on_reader(job(&tx, "a"));
        assert_eq!(
            rx.try_recv().unwrap(),
            ("a", std::thread::current().id()),
            "inline, at once"
        );
        (d, tx, rx, batch)
    }

    /// A reader thread in its write batch keeps the client's queue between
    /// inline callbacks: what another thread queues meanwhile is not
    /// scheduled, and the next answer does not jump it: it waits behind, and
    /// both run on the reader, in order, when its batch flushes.
    #[test]
    fn an_inline_hold_keeps_the_queue_and_later_answers_run_after_queued_jobs() {
        let (d, tx, rx, batch) = holding();
        let me = std::thread::current().id();
        // Held: a callback queued by another thread is not scheduled.
        let (d2, tx2) = (d.clone(), tx.clone());
        std::thread::spawn(move || d2.callback(job(&tx2, "queued")))
            .join()
            .unwrap();
        assert_eq!(d.len(), 1);
        assert!(rx.try_recv().is_err(), "nothing ran");
        // The next answer finds it and waits behind it, until the flush.
        d.clone().callback_on_reader(job(&tx, "b"));
        assert!(rx.try_recv().is_err(), "nothing ran before the flush");
        assert_eq!(d.len(), 2);
        drop(batch);
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(got, [("queued", me), ("b", me)], "in order, on the reader");
        assert_eq!(d.len(), 0);
        d.shutdown();
    }

    /// Without a write batch nothing would let a hold go: each inline
    /// callback lets the queue go when it returns.
    #[test]
    fn outside_a_write_batch_an_inline_callback_holds_nothing() {
        let d = Dispatcher::new(Dispatch::Inline);
        let (tx, rx) = crossbeam_channel::unbounded();
        d.clone().callback_on_reader(job(&tx, "a"));
        assert_eq!(rx.try_recv().unwrap().0, "a");
        d.callback(job(&tx, "queued"));
        let q = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(q.0, "queued");
        assert_ne!(q.1, std::thread::current().id());
        d.shutdown();
    }

    /// A flush inside an inline callback (its own write batch ending) does
    /// not let the queue go while the callback runs: a job queued meanwhile
    /// still waits for the reader's flush.
    #[test]
    fn a_flush_inside_an_inline_callback_keeps_the_hold() {
        let (d, tx, rx, batch) = holding();
        let (d2, tx2) = (d.clone(), tx.clone());
        // Seen inside the callback, asserted here: a panic in a callback is
        // caught (and only logged) by the SDK.
        let (seen_tx, seen) = crossbeam_channel::bounded(1);
        d.clone().callback_on_reader(Box::new(move || {
            d2.callback(job(&tx2, "queued"));
            crate::fpnn::flush_write_batch();
            let held = HELD.with(|h| h.borrow().is_some());
            seen_tx.send((held, d2.len())).unwrap();
        }));
        assert_eq!(seen.try_recv(), Ok((true, 1)), "held through the flush");
        assert_eq!(d.len(), 1, "still held after the callback");
        drop(batch);
        assert_eq!(rx.recv_timeout(WAIT).unwrap().0, "queued");
        d.shutdown();
    }

    /// A flush inside an inline callback returns, though `release_held` sets
    /// itself as the hook again there (`flush_write_batch` goes round again
    /// only for frames its hook queued; it span for ever while a hook was set).
    /// Run on a thread of its own so that a regression fails within `WAIT`
    /// instead of hanging the test binary.
    #[test]
    fn a_flush_inside_an_inline_callback_returns() {
        let (done_tx, done) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let (d, _tx, _rx, batch) = holding();
            d.clone().callback_on_reader(Box::new(move || {
                crate::fpnn::flush_write_batch();
                let _ = done_tx.send(());
            }));
            drop(batch);
            d.shutdown();
        });
        assert!(
            done.recv_timeout(WAIT).is_ok(),
            "flush_write_batch inside an inline callback never returned"
        );
    }

    /// Starts `d.shutdown()` on a thread of its own and returns once it has
    /// marked the client destroyed; the receiver hears when it returns.
    fn shutdown_elsewhere(d: &Arc<Dispatcher>) -> crossbeam_channel::Receiver<()> {
        let d2 = d.clone();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            d2.shutdown();
            done_tx.send(()).unwrap();
        });
        wait_until("the client destroyed", || d.is_destroyed());
        done
    }

    /// `shutdown` on another thread waits for a held queue to be let go;
    /// an answer read meanwhile runs exactly once, and shutdown returns.
    #[test]
    fn shutdown_waits_for_a_held_queue_and_every_callback_runs_once() {
        let (d, tx, rx, batch) = holding();
        let done = shutdown_elsewhere(&d);
        // Destroyed: this answer is not run under the hold.
        assert!(done.try_recv().is_err(), "shutdown waits for the hold");
        d.clone().callback_on_reader(job(&tx, "b"));
        drop(batch);
        done.recv_timeout(WAIT).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap().0, "b");
        assert!(rx.try_recv().is_err(), "once each");
    }

    /// While `shutdown` waits for an owed call, the dispatcher thread goes
    /// on running what is queued (the owed call may be waiting for it).
    #[test]
    fn while_shutdown_waits_for_owed_calls_the_queue_still_runs() {
        let d = Dispatcher::new(Dispatch::Threads);
        let owed = d.owe();
        let (tx, rx) = crossbeam_channel::unbounded();
        let done = shutdown_elsewhere(&d);
        d.callback(job(&tx, "queued"));
        let ran = rx.recv_timeout(WAIT).expect("ran while shutdown waits");
        assert_eq!(ran.0, "queued");
        assert!(
            done.try_recv().is_err(),
            "shutdown still waits for the owed call"
        );
        drop(owed);
        done.recv_timeout(WAIT).unwrap();
    }

    /// A job a connection's reader hands to the dispatcher thread leaves
    /// the ACK of what the reader read to that thread (`Written::owe`),
    /// which settles it after the turn that ran the job, its quests written.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_readers_hand_off_leaves_its_ack_to_the_turn_that_runs_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _peer = listener.accept().unwrap();
        let written = Written::new(Some(tcp));
        let d = Dispatcher::new(Dispatch::Threads);
        let (go_tx, go) = crossbeam_channel::bounded::<()>(1);
        let (owed_tx, owed) = crossbeam_channel::bounded(1);
        let w = written.clone();
        // This thread acts as the connection's reader.
        crate::fpnn::set_reader(Some(written.clone()));
        d.callback(Box::new(move || {
            owed_tx.send(w.is_owed()).unwrap();
            go.recv_timeout(WAIT).unwrap();
        }));
        crate::fpnn::set_reader(None);
        assert_eq!(
            owed.recv_timeout(WAIT),
            Ok(true),
            "not owed while the job runs"
        );
        go_tx.send(()).unwrap();
        wait_until("the turn to settle the ACK", || !written.is_owed());
        d.shutdown();
    }

    /// `is_full` reads a mirrored count, not the queue: every way a job
    /// enters or leaves the queue must update it.
    #[test]
    fn is_full_follows_every_change_of_the_queue() {
        // Queued: pushed, run by `run_pending`, taken by `shutdown`.
        let d = Dispatcher::new(Dispatch::Queued);
        d.set_limit(2);
        let (tx, rx) = crossbeam_channel::unbounded();
        let push = |d: &Arc<Dispatcher>, n: u32| {
            let tx = tx.clone();
            d.callback(Box::new(move || tx.send(n).unwrap()));
        };
        push(&d, 1);
        assert!(!d.is_full());
        push(&d, 2);
        assert!(d.is_full());
        assert_eq!(d.run_pending(), 2);
        assert!(!d.is_full());
        push(&d, 3);
        push(&d, 4);
        assert!(d.is_full());
        d.shutdown();
        assert!(!d.is_full());
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2, 3, 4]);

        // Threads: popped by the dispatcher thread.
        let d = Dispatcher::new(Dispatch::Threads);
        d.set_limit(1);
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (release, release_rx) = crossbeam_channel::bounded::<()>(1);
        d.callback(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv_timeout(WAIT).unwrap();
        }));
        started.recv_timeout(WAIT).unwrap();
        // The running job has left the queue.
        assert!(!d.is_full());
        push(&d, 5);
        assert!(d.is_full());
        release.send(()).unwrap();
        // Popped before it ran (the channel orders the store before this).
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), 5);
        assert!(!d.is_full());
        d.shutdown();
    }

    /// Records the counts `d` reports dropped (its report runs no job).
    fn record_drops(d: &Dispatcher) -> Arc<Mutex<Vec<u64>>> {
        let reported = Arc::new(Mutex::new(Vec::new()));
        let r = reported.clone();
        d.on_dropped(Box::new(move |n| {
            r.lock().push(n);
            Vec::new()
        }));
        reported
    }

    #[test]
    fn a_full_queue_drops_and_reports_events_but_never_callbacks() {
        let d = Dispatcher::new(Dispatch::Queued);
        d.set_limit(3);
        let reported = record_drops(&d);
        let (tx, rx) = crossbeam_channel::unbounded();
        for n in 0..5 {
            let tx = tx.clone();
            d.event(Box::new(move || tx.send(("event", n)).unwrap()));
        }
        assert!(d.is_full());
        assert_eq!(d.len(), 3);
        for n in 0..2 {
            let tx = tx.clone();
            d.callback(Box::new(move || tx.send(("failure", n)).unwrap()));
        }
        // Callbacks are queued past the limit: in order, on this thread.
        assert_eq!(d.len(), 5);
        assert!(rx.try_recv().is_err(), "nothing ran elsewhere");
        // An answer too.
        let t = tx.clone();
        d.callback(Box::new(move || t.send(("answer", 0)).unwrap()));
        assert_eq!(d.len(), 6);
        assert!(reported.lock().is_empty());
        assert_eq!(d.run_pending(), 6);
        let ran: Vec<_> = rx.try_iter().collect();
        assert_eq!(
            ran,
            [
                ("event", 0),
                ("event", 1),
                ("event", 2),
                ("failure", 0),
                ("failure", 1),
                ("answer", 0)
            ]
        );
        // The report is queued at the end of that call (there is room again), and
        // made and run with the next one.
        assert!(reported.lock().is_empty());
        assert_eq!(d.len(), 1);
        assert_eq!(d.run_pending(), 0, "the report's closure made no job");
        assert_eq!(
            *reported.lock(),
            [2],
            "the 2 dropped events are reported once"
        );
        d.shutdown();
    }

    /// An event of the session's lifecycle is queued past the limit, never dropped,
    /// behind the report of the events dropped before it (queued with it, under one
    /// lock), and an event after it is dropped as before: the queue grows by the
    /// lifecycle events only.
    #[test]
    fn a_full_queue_queues_lifecycle_events_after_the_report_of_the_dropped_ones() {
        let d = Dispatcher::new(Dispatch::Queued);
        d.set_limit(2);
        let (tx, rx) = crossbeam_channel::unbounded();
        let t = tx.clone();
        d.on_dropped(Box::new(move |n| {
            let t = t.clone();
            vec![Box::new(move || t.send(format!("{n} dropped")).unwrap()) as Job]
        }));
        let ev = |name: &str| -> Job {
            let (t, name) = (tx.clone(), name.to_string());
            Box::new(move || t.send(name).unwrap())
        };
        for n in 0..5 {
            d.event(ev(&format!("push {n}")));
        }
        d.lifecycle_event(ev("relogin"));
        d.event(ev("push 5"));
        d.lifecycle_event(ev("closed"));
        assert_eq!(
            d.len(),
            6,
            "2 pushes, 2 lifecycle events, each after a report"
        );
        assert_eq!(d.run_pending(), 6);
        assert_eq!(d.run_pending(), 0, "nothing reported after the last event");
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            [
                "push 0",
                "push 1",
                "3 dropped",
                "relogin",
                "1 dropped",
                "closed"
            ]
        );
        d.shutdown();
    }

    /// A successful `ReloginCompleted` (`lifecycle_event_once`) is queued past the
    /// limit while none waits, and dropped and counted as a push while one queued
    /// before has not run: a series per connection cannot grow a full queue.
    #[test]
    fn a_full_queue_keeps_one_repeated_lifecycle_event_waiting() {
        let d = Dispatcher::new(Dispatch::Queued);
        d.set_limit(1);
        let reported = record_drops(&d);
        let (tx, rx) = crossbeam_channel::unbounded();
        let waiting = Arc::new(AtomicBool::new(false));
        let ev = |n: u32| -> Job {
            let tx = tx.clone();
            Box::new(move || tx.send(n).unwrap())
        };
        d.event(ev(0));
        for n in 1..=3 {
            d.lifecycle_event_once(vec![ev(n)], &waiting);
        }
        assert_eq!(d.len(), 2, "the push and the first relogin");
        assert_eq!(d.run_pending(), 2);
        assert!(!waiting.load(Ordering::Acquire), "cleared when it ran");
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1]);
        // The report of the two dropped is queued; room again, so the next is queued.
        d.lifecycle_event_once(vec![ev(4)], &waiting);
        assert_eq!(d.run_pending(), 1);
        assert_eq!(*reported.lock(), [2]);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [4]);
        d.shutdown();
    }

    /// `Dispatch::Inline`: events dropped while a reader held the full queue are
    /// reported once its drain at the flush made room, also when no later event comes
    /// (only a later event reported them: the drain, a turn like the dispatcher
    /// thread's, let the queue go idle with the count still waiting).
    #[test]
    fn events_dropped_while_a_reader_holds_the_queue_are_reported_after_its_drain() {
        let (d, tx, rx, batch) = holding();
        d.set_limit(1);
        let (reported_tx, reported) = crossbeam_channel::unbounded();
        d.on_dropped(Box::new(move |n| {
            let _ = reported_tx.send(n);
            Vec::new()
        }));
        // Held by this thread: queued, not scheduled; the queue is full.
        d.callback(job(&tx, "queued"));
        d.event(job(&tx, "dropped"));
        assert_eq!(d.len(), 1);
        drop(batch);
        assert_eq!(rx.try_recv().unwrap().0, "queued", "run at the flush");
        assert_eq!(
            reported.recv_timeout(WAIT),
            Ok(1),
            "the dropped event was never reported"
        );
        assert!(rx.try_recv().is_err(), "the dropped event never runs");
        d.shutdown();
    }
}
