//! The session driver: the thin layer between the pure machine
//! (`machine.rs`) and the world. It owns the session lock ([`Core`]: the
//! machine, the current connection and the connect in progress), feeds the
//! machine events from any thread ([`Inner::step`]), and performs its
//! actions: events and login callbacks are queued under the lock (queuing
//! runs no user code, and keeps them in the machine's order); connections
//! are closed, `auth` and `bye` sent after it is released (a closed
//! connection completes a quest on the calling thread, which steps again).
//! A connect runs on a thread of its own, which becomes the connection's
//! reader (`Connection::connect_then`); timers go to the process-wide timer
//! thread (`timers.rs`). So a client has no session thread of its own.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use rmpv::Value;

use super::dispatch::Job;
use super::machine::{Action, AuthAnswer, Config, Event, Machine};
use super::push::PushHandler;
use super::resend::{Settled, WaitingList};
use super::{dur, timers, Inner, SDK_VERSION};
use crate::error::{error_code, RtmError};
use crate::fpnn::{ConnectCancel, ConnectOptions, Connection, QuestSender, Reply, Unanswered};
use crate::types::RtmOptions;
use crate::value::{self, Encoded, MapBuilder};

/// The login callback, carried by the machine until it completes.
pub(super) type LoginCallback = Box<dyn FnOnce(bool, i32) + Send>;

/// The client's session lock: its [`Core`], and the version of what the
/// core holds. Every change of the session is made through
/// [`SessionLock::lock`], whose guard, once it has lent the core mutably,
/// takes a new version before it lets the lock go; so a thread that
/// looked the online connection up at one version may use it without
/// the lock for as long as the version stays the same
/// ([`Inner::with_online`]). A guard only read through takes none (the
/// resendable calls' lookup, `Inner::send_or_wait`, is one per call).
pub(crate) struct SessionLock {
    core: Mutex<Core>,
    version: AtomicU64,
}

/// Versions, unique in the process, so that one names one client's
/// session as it was at one moment.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

impl SessionLock {
    pub(super) fn new(core: Core) -> SessionLock {
        SessionLock {
            core: Mutex::new(core),
            version: AtomicU64::new(VERSIONS.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The session, to change it: a new version when the guard drops,
    /// if it was used mutably.
    pub(super) fn lock(&self) -> SessionGuard<'_> {
        SessionGuard {
            core: self.core.lock(),
            version: &self.version,
            changed: false,
        }
    }

    /// The session, to read it only (the version stays): the guard lends
    /// the core immutably, so a change cannot slip past the version.
    pub(super) fn read(&self) -> SessionRead<'_> {
        SessionRead(self.core.lock())
    }

    /// The version of what the session holds now.
    fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

/// [`SessionLock::read`]'s guard.
pub(super) struct SessionRead<'a>(MutexGuard<'a, Core>);

impl std::ops::Deref for SessionRead<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.0
    }
}

/// [`SessionLock::lock`]'s guard.
pub(super) struct SessionGuard<'a> {
    core: MutexGuard<'a, Core>,
    version: &'a AtomicU64,
    /// The core was lent mutably.
    changed: bool,
}

impl std::ops::Deref for SessionGuard<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl std::ops::DerefMut for SessionGuard<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        self.changed = true;
        &mut self.core
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        // Before the lock is let go (the fields drop after this body).
        if self.changed {
            let next = VERSIONS.fetch_add(1, Ordering::Relaxed);
            self.version.store(next, Ordering::Release);
        }
    }
}

thread_local! {
    /// The online connection's quest path as this thread looked it up in
    /// its current write batch, with the version it was read at
    /// ([`Inner::with_online`]); forgotten when the batch flushes.
    static ONLINE: RefCell<Option<(u64, Option<QuestSender>)>> = const { RefCell::new(None) };
}

/// Forgets this thread's [`ONLINE`] entry (the write batch's flush hook,
/// `super::batch_flushed`).
pub(super) fn forget_online() {
    let old = ONLINE
        .try_with(|cell| cell.try_borrow_mut().map(|mut e| e.take()))
        .ok();
    match old {
        // Dropped here, with no borrow held.
        Some(Ok(old)) => drop(old),
        // In use by a send on this thread (which does not flush): next time.
        Some(Err(_)) => {
            crate::fpnn::at_flush(super::batch_flushed);
        }
        None => {}
    }
}

/// The session, behind the client's session lock.
pub(crate) struct Core {
    machine: Machine<LoginCallback>,
    /// The connection of the machine's current attempt, once open.
    conn: Option<(u64, Connection)>,
    /// The connect in progress, to abort it.
    connecting: Option<(u64, ConnectCancel)>,
    /// Connections a step closed without waiting for their threads (a lost
    /// connection the session logs in again after), whose threads may still be
    /// completing a call they took out of the request table (a timeout on the
    /// writer, an answer on the reader). The step that ends the session (a
    /// `login` that replaces it too), or `destroy`, closes them again and waits
    /// for their threads, so that those callbacks are queued before
    /// `SessionClosed` (before the new login's callback; before `destroy` returns);
    /// those whose threads have ended are dropped from the list as it grows.
    retired: Vec<Connection>,
    /// Quests waiting for the next connection (`resend.rs`).
    waiting: WaitingList,
    /// The next resendable call's [`Unanswered::order`].
    next_order: u64,
}

impl Core {
    pub(super) fn new(o: &RtmOptions) -> Core {
        Core {
            machine: Machine::new(Config {
                max_ping: o.max_ping_interval(),
                strategy: o.regressive_strategy,
                auto_reconnect: o.auto_reconnect,
                delay_divisor: 1,
            }),
            conn: None,
            connecting: None,
            retired: Vec::new(),
            waiting: WaitingList::default(),
            next_order: 0,
        }
    }

    /// The connection API calls use: only once the session is online.
    pub(super) fn online_connection(&self) -> Option<Connection> {
        let serial = self.machine.online_serial()?;
        self.connection(serial)
    }

    /// [`Core::online_connection`]'s quest path (one reference count, where
    /// the connection and then its path would take two and give one back).
    fn online_sender(&self) -> Option<QuestSender> {
        let serial = self.machine.online_serial()?;
        self.connection_ref(serial).map(Connection::quest_sender)
    }

    /// The online connection and its serial.
    fn online(&self) -> Option<(u64, Connection)> {
        let serial = self.machine.online_serial()?;
        Some((serial, self.connection(serial)?))
    }

    /// Adds quests to the waiting list (beyond its limit they fail with
    /// 20011), then settles it.
    fn wait(
        &mut self,
        quests: Vec<(Unanswered, i32)>,
        generation: u64,
        from: u64,
        out: &mut Vec<Later>,
    ) {
        let mut fail = Vec::new();
        self.waiting.add(quests, generation, from, &mut fail);
        if !fail.is_empty() {
            out.push(Later::Fail(fail));
        }
        self.settle(out);
    }

    /// Settles the waiting list against the session as it is now: quests past their
    /// deadline or of an ended session fail. Those that can go out on the online
    /// connection stay listed: `Later::Resend` has a thread take and send them under
    /// [`Inner::send_order`] ([`Core::take_sendable`]).
    fn settle(&mut self, out: &mut Vec<Later>) {
        let mut s = Settled::default();
        self.waiting.settle(
            Instant::now(),
            self.machine.generation(),
            self.machine.session_alive(),
            None,
            &mut s,
        );
        if !s.fail.is_empty() {
            out.push(Later::Fail(s.fail));
        }
        if let Some(at) = s.wake {
            out.push(Later::Wake(at));
        }
        // (The connection itself is looked up by the thread that sends them.)
        if let Some(serial) = self.machine.online_serial() {
            if self.waiting.has_sendable(serial) {
                out.push(Later::Resend);
            }
        }
    }

    /// Takes the waiting quests that can go out on the online connection, in order,
    /// with it (only under [`Inner::send_order`], so that they are sent before any
    /// later call); the others are settled as by [`Core::settle`].
    fn take_sendable(&mut self, out: &mut Vec<Later>) -> Option<Sendable> {
        let online = self.online();
        let mut s = Settled::default();
        self.waiting.settle(
            Instant::now(),
            self.machine.generation(),
            self.machine.session_alive(),
            online.as_ref().map(|(serial, _)| *serial),
            &mut s,
        );
        if !s.fail.is_empty() {
            out.push(Later::Fail(s.fail));
        }
        if let Some(at) = s.wake {
            out.push(Later::Wake(at));
        }
        let (serial, conn) = online.filter(|_| !s.send.is_empty())?;
        Some(Sendable {
            conn,
            serial,
            generation: self.machine.generation(),
            quests: s.send,
        })
    }

    /// The uid of the last login.
    pub(super) fn uid(&self) -> Option<i64> {
        self.machine.uid()
    }

    pub(super) fn set_delay_divisor(&mut self, divisor: u32) {
        self.machine.set_delay_divisor(divisor);
    }

    fn connection(&self, serial: u64) -> Option<Connection> {
        self.connection_ref(serial).cloned()
    }

    /// The connection of attempt `serial`, if that is the current attempt.
    fn connection_ref(&self, serial: u64) -> Option<&Connection> {
        match &self.conn {
            Some((s, c)) if *s == serial => Some(c),
            _ => None,
        }
    }
}

/// Session endings a thread is performing after the session lock: a step whose
/// actions close a connection, fail calls or emit `SessionClosed` ([`Later::Close`],
/// [`Later::Fail`], [`Later::Closed`]) is listed from under the lock until its
/// [`Inner::perform`] is done. `close()` and `destroy()` on another thread wait for
/// them ([`Closing::wait_for_others`]), so that they return only once what those
/// steps complete (the calls failed with 20002, the hand-back, `SessionClosed`) is
/// queued, as they do for their own.
#[derive(Default)]
pub(super) struct Closing {
    /// The endings being performed, in the order their steps were taken.
    list: Mutex<Vec<Ending>>,
    done: Condvar,
    next: AtomicU64,
    /// Threads waiting in [`Closing::wait_for_others`] or
    /// [`Closing::wait_for_sends`] (a test hook reads it).
    waiting: AtomicUsize,
    /// Sends in progress ([`Closing::send`]): threads that hold quests of the session
    /// outside its lock (taken from the waiting list, or a resendable call on its way
    /// to the online connection) until their failures, if any, are queued.
    sends: AtomicUsize,
    /// Threads in [`Closing::wait_for_sends`], so that the end of a send notifies
    /// them ([`Sending`]'s drop).
    send_waiters: AtomicUsize,
    /// Test hook: runs on a thread that sends resendable quests (`Inner::resend`,
    /// `Inner::send_or_wait`) once it holds them and the online connection, after
    /// the session lock and before the send.
    #[cfg(test)]
    resend_hook: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    /// Test hook: runs on a thread in [`Closing::wait_for_others`] once it is woken,
    /// with the list's lock let go, before it looks at the list again (where a
    /// thread that is slow to run again after its wake-up is).
    #[cfg(test)]
    woken_hook: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

/// A step's ending being performed, as [`Closing`] lists it.
struct Ending {
    ticket: u64,
    /// The thread that took the step.
    by: std::thread::ThreadId,
    /// The connections it closes.
    conns: Vec<Connection>,
    /// Whether it waits for those connections' threads (a step that ends a
    /// logged-in session, or `destroy`).
    joins: bool,
    /// What a step taken on one of those threads left while this ending is
    /// performed ([`Closing::defer`]), done when it is done.
    deferred: Vec<Deferred>,
}

/// What a step taken on a thread an ending joins leaves to that ending
/// ([`Closing::defer`]).
enum Deferred {
    /// A login callback to queue.
    Login(Job),
    /// A connect to start ([`Later::Connect`]).
    Connect(u64, ConnectCancel),
}

/// A step's ending being performed, listed in [`Closing`] until this is dropped:
/// the last item of its `later`, so after everything else the step performs.
struct Retiring {
    ticket: u64,
    inner: Arc<Inner>,
}

impl Drop for Retiring {
    fn drop(&mut self) {
        let closing = &self.inner.closing;
        let mut connects = Vec::new();
        let mut list = closing.list.lock();
        if let Some(at) = list.iter().position(|e| e.ticket == self.ticket) {
            let ending = list.remove(at);
            // Those waiting for the listed endings no longer wait for this thread
            // (src/waits.rs), unless it has another one listed.
            if !list.iter().any(|e| e.by == ending.by) {
                crate::waits::over(closing.key(), ending.by);
            }
            for d in ending.deferred {
                match d {
                    // Queued before the listing ends, so before a thread that
                    // waits for this ending (`Closing::wait_for_others`) goes on;
                    // queuing runs no user code.
                    Deferred::Login(job) => self.inner.dispatcher.callback(job),
                    Deferred::Connect(serial, cancel) => connects.push((serial, cancel)),
                }
            }
        }
        closing.done.notify_all();
        drop(list);
        // After the login callbacks (one of those connects may complete a login
        // fast); with no lock held, as a connect that cannot start steps again.
        for (serial, cancel) in connects {
            self.inner.connect(serial, cancel);
        }
    }
}

thread_local! {
    /// The sends in progress ([`Closing::send`]) this thread is in: the client's
    /// `Closing` (its address) and how many (a send's `perform` may start another,
    /// `Later::Resend`, of the same client; none runs user code, so never one of
    /// another client).
    static SENDING: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// A send in progress, counted in [`Closing::sends`] until this is dropped.
struct Sending<'a> {
    closing: &'a Closing,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        let _ = SENDING.try_with(|c| {
            let (at, n) = c.get();
            c.set((at, n.saturating_sub(1)));
        });
        let closing = self.closing;
        closing.sends.fetch_sub(1, Ordering::SeqCst);
        // A waiter counts itself before it reads `sends`, under the list's lock
        // (both `SeqCst`): either it sees this end, or this sees it and notifies it
        // once it waits.
        if closing.send_waiters.load(Ordering::SeqCst) > 0 {
            let _list = closing.list.lock();
            closing.done.notify_all();
        }
    }
}

impl Closing {
    /// Counts a send in progress until the guard drops: taken under the session
    /// lock, when the thread takes quests of the session out of the waiting list or
    /// takes the online connection to send a resendable call on it, and dropped once
    /// the thread has sent them and performed what that left (failing those the
    /// connection, closed meanwhile, gave back). A step that ends the session is
    /// performed only once the sends that began before it are done
    /// ([`Closing::wait_for_sends`]).
    fn send(&self) -> Sending<'_> {
        self.sends.fetch_add(1, Ordering::SeqCst);
        let me = self as *const Closing as usize;
        let _ = SENDING.try_with(|c| {
            let n = match c.get() {
                (at, n) if at == me => n,
                _ => 0,
            };
            c.set((me, n + 1));
        });
        Sending { closing: self }
    }

    /// Waits until the sends in progress on other threads ([`Closing::send`]) are
    /// done, so that the calls they fail (20002: the connection closed under them)
    /// are queued before what the caller queues next (`SessionClosed`, the new
    /// login's callback). Bounded: a send takes no lock another thread holds while
    /// it waits here, and neither blocks on the socket nor runs user code (but for
    /// the callback of a call made inside `blocking()`, which a failed send
    /// delivers straight to its thread; an ending there does not wait for this one,
    /// [`Closing::wait_for_others`], and waits for the sends of other threads
    /// only). Those
    /// made after the step that ends the session find it not online: they send
    /// nothing and only fail quests past their deadline, so they cannot keep this
    /// waiting.
    fn wait_for_sends(&self) {
        let own = self.own_sends();
        let mut list = self.list.lock();
        self.send_waiters.fetch_add(1, Ordering::SeqCst);
        while self.sends.load(Ordering::SeqCst) > own {
            self.waiting.fetch_add(1, Ordering::Relaxed);
            self.done.wait(&mut list);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        self.send_waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// How many of the sends in progress ([`Closing::send`]) are this thread's.
    fn own_sends(&self) -> usize {
        let me = self as *const Closing as usize;
        SENDING
            .try_with(|c| match c.get() {
                (at, n) if at == me => n,
                _ => 0,
            })
            .unwrap_or(0)
    }

    /// Lists the ending in `later` (if it has one) as this thread's, under the
    /// session lock; the guard goes last in `later`. `joins`: the step waits for
    /// the threads of the connections it closes.
    fn start(&self, later: &mut Vec<Later>, joins: bool, inner: &Arc<Inner>) {
        if !later
            .iter()
            .any(|l| matches!(l, Later::Close(_) | Later::Fail(_) | Later::Closed(_)))
        {
            return;
        }
        let conns = later
            .iter()
            .filter_map(|l| match l {
                Later::Close(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let me = std::thread::current().id();
        self.list.lock().push(Ending {
            ticket,
            by: me,
            conns,
            joins,
            deferred: Vec::new(),
        });
        // Those waiting for the listed endings now wait for this thread too:
        // woken, they record that before this thread may come to wait for
        // them (src/waits.rs).
        self.done.notify_all();
        later.push(Later::Done(Retiring {
            ticket,
            inner: inner.clone(),
        }));
    }

    /// A login callback a step completes, or a connect it starts (under the
    /// session lock): handed back, to be done now, unless this thread is a reader
    /// or writer of a connection whose threads an ending on another thread waits
    /// for. That ending cannot be waited for here (it joins this thread,
    /// [`Closing::wait_for_others`]), so a step taken here (a `close()` or
    /// `login()` in a `Dispatch::Inline` callback) would otherwise queue the login
    /// callback it ends (20002) ahead of what the ending queues only once it has
    /// joined this thread (the callbacks of the connections it joins after this
    /// one, its `SessionClosed`), and a login's connect could complete it ahead of
    /// them too: both are kept in that ending's listing and done when it is done
    /// ([`Retiring`]'s drop), in the machine's order (docs/architecture.md,
    /// "`SessionClosed` last"), unless `destroy` takes them back first
    /// ([`Closing::take_deferred`]).
    fn defer(&self, d: Deferred) -> Option<Deferred> {
        let me = std::thread::current().id();
        let mut list = self.list.lock();
        let joining = list
            .iter_mut()
            .find(|e| e.joins && e.by != me && e.conns.iter().any(Connection::is_own_thread));
        match joining {
            Some(ending) => {
                ending.deferred.push(d);
                None
            }
            None => Some(d),
        }
    }

    /// Takes back what steps left to the endings still listed ([`Closing::defer`]):
    /// `destroy` queues the login callbacks itself, before it stops the dispatcher,
    /// as it promises that no earlier callback runs once it returns, and an ending it
    /// could not wait for (one joining this thread, or one whose thread waits for
    /// it) may end only after that. Their connects are dropped: the client is gone.
    fn take_deferred(&self) -> Vec<Job> {
        let mut list = self.list.lock();
        list.iter_mut()
            .flat_map(|e| std::mem::take(&mut e.deferred))
            .filter_map(|d| match d {
                Deferred::Login(job) => Some(job),
                Deferred::Connect(..) => None,
            })
            .collect()
    }

    /// This `Closing`'s address: what its waiters wait on (src/waits.rs).
    fn key(&self) -> usize {
        self as *const Closing as usize
    }

    /// Runs [`Closing::resend_hook`], if set.
    #[cfg(test)]
    fn in_resend_for_tests(&self) {
        let hook = self.resend_hook.lock().clone();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Waits until the endings other threads are performing are done, but
    /// not for those that wait for this thread: its own (user code run
    /// inside one), or one closing a connection whose reader or writer this
    /// is (its close joins this thread). Each is bounded (a close by the
    /// writer's close linger, `CLOSE_LINGER` in src/fpnn/connection/writer.rs),
    /// and the other thread holds no lock this one
    /// holds. Nor for any while this thread is in a send of the session
    /// ([`Closing::send`]): an ending waits for that send first
    /// ([`Closing::wait_for_sends`]), and user code may run inside one (a call
    /// made inside `blocking()`, whose callback a failed send delivers straight
    /// to this thread). Nor for an ending whose thread waits, itself or through
    /// other threads, for this one (src/waits.rs): a `Dispatch::Inline` callback
    /// whose reader that ending is joining, which ends the session of a client
    /// whose ending, on this thread, joins that reader or waits for it; its
    /// ending completes once this thread's wait is over.
    pub(super) fn wait_for_others(&self) {
        if self.own_sends() > 0 {
            return;
        }
        let me = std::thread::current().id();
        let mut list = self.list.lock();
        loop {
            let others: Vec<std::thread::ThreadId> = list
                .iter()
                .filter(|e| e.by != me && !e.conns.iter().any(Connection::is_own_thread))
                .map(|e| e.by)
                .collect();
            if others.is_empty() {
                return;
            }
            // Recorded again after every wake-up: an ending listed meanwhile
            // wakes this (`Closing::start`).
            let waiting = crate::waits::wait_on(self.key(), others);
            if waiting.is_empty() {
                return;
            }
            self.waiting.fetch_add(1, Ordering::Relaxed);
            self.done.wait(&mut list);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            #[cfg(test)]
            {
                let hook = self.woken_hook.lock().clone();
                if let Some(hook) = hook {
                    MutexGuard::unlocked(&mut list, || hook());
                }
            }
            drop(waiting);
        }
    }
}

/// Waiting quests taken to be sent on connection `serial` of session `generation`,
/// each with the code it fails with when the session ends ([`Core::take_sendable`]).
struct Sendable {
    conn: Connection,
    serial: u64,
    generation: u64,
    quests: Vec<(Unanswered, i32)>,
}

/// An action to perform once the session lock is released.
enum Later {
    Close(Connection),
    Cancel(ConnectCancel),
    Send {
        conn: Connection,
        method: &'static str,
        payload: Encoded,
        timeout: u64,
        on_answer: Box<dyn FnOnce(Result<Value, crate::RtmError>) + Send>,
    },
    Connect(u64, ConnectCancel),
    Wake(Instant),
    /// Send the waiting quests that can go out on the online connection
    /// ([`Inner::resend`]).
    Resend,
    /// Complete quests with an error.
    Fail(Vec<(Reply, RtmError)>),
    /// Emit `SessionClosed(code)`: last, after the session's connection is
    /// closed and its quests completed (those another thread was sending
    /// included, [`Closing::wait_for_sends`]), so no callback or push of the
    /// session is queued after it.
    Closed(i32),
    /// The step ends a logged-in session without `SessionClosed` (a `login`
    /// that replaces it): as for `Closed`, the sends in progress, the
    /// connections it closes, and those the session lost before
    /// ([`Core::retired`]), are waited for, so the old session's callbacks are
    /// queued before the new login's.
    Replaced,
    /// The step's ending is performed: dropping it ends its listing in
    /// [`Closing`] (after `Closed`), and does what a step on one of the threads
    /// it joined left to it meanwhile ([`Closing::defer`]).
    Done(Retiring),
}

impl Later {
    /// Whether the step ends a logged-in session ([`Later::Closed`],
    /// [`Later::Replaced`]), so that its closes wait for the threads.
    fn ends_session(&self) -> bool {
        matches!(self, Later::Closed(_) | Later::Replaced)
    }
}

impl Inner {
    /// Runs `f` with the online connection's quest path (`None` when the
    /// session is not online). Inside a write batch (a turn of callbacks, a
    /// reader's read) the path is looked up once, under the session lock,
    /// and the batch's later calls use it with no lock and no reference
    /// count for as long as the session's version stays the same
    /// ([`SessionLock`]); it is forgotten when the batch flushes, so it
    /// never outlives the batch. `f` must not flush the batch (sending a
    /// quest or completing one with an error does not).
    pub(super) fn with_online(&self, f: impl FnOnce(Option<&QuestSender>)) {
        let version = self.core.version();
        let mut f = Some(f);
        let _ = ONLINE.try_with(|cell| {
            if let Ok(entry) = cell.try_borrow() {
                if let Some((g, sender)) = &*entry {
                    if *g == version {
                        if let Some(f) = f.take() {
                            f(sender.as_ref());
                        }
                    }
                }
            }
        });
        let Some(f) = f else {
            return;
        };
        let (version, sender) = {
            let core = self.core.read();
            let sender = core.online_sender();
            (self.core.version(), sender)
        };
        f(sender.as_ref());
        if crate::fpnn::at_flush(super::batch_flushed) {
            let mut entry = Some((version, sender));
            let old = ONLINE
                .try_with(|cell| {
                    cell.try_borrow_mut()
                        .ok()
                        .and_then(|mut e| std::mem::replace(&mut *e, entry.take()))
                })
                .ok()
                .flatten();
            // Dropped with no borrow held.
            drop(old);
            drop(entry);
        }
    }

    /// Feeds the machine one event and performs its actions.
    pub(super) fn step(self: &Arc<Self>, event: Event<LoginCallback>) {
        let later = self.step_locked(event, |_| {});
        self.perform(later, false);
    }

    /// [`Inner::step`] for `login`: an ending another thread began before
    /// this step (a `close`, a kickout, the watchdog), whose `SessionClosed`
    /// is queued once its connection's threads have ended, is waited for
    /// before this step's work starts, so that `SessionClosed` comes before
    /// the new session's login callback, in the machine's order. The step's
    /// own ending of a logged-in session ([`Later::Replaced`]) waits for the
    /// resendable sends other threads have in progress and for that session's
    /// connections' threads before the new connect starts, so their callbacks
    /// come before it too.
    pub(super) fn step_after_others(self: &Arc<Self>, event: Event<LoginCallback>) {
        let later = self.step_locked(event, |_| {});
        self.closing.wait_for_others();
        self.perform(later, false);
    }

    /// A tick of the session timer thread (src/client/timers.rs), which
    /// serves every client and must not block. A tick that ends the session
    /// (the ping watchdog with automatic relogin off) waits for the
    /// connection's threads, and so for an inline handler the reader may be
    /// running (`Dispatch::Inline`): that ending is performed on a
    /// short-lived thread of its own (on this one if none can be started).
    pub(super) fn tick(self: &Arc<Self>) {
        let later = self.step_locked(Event::Tick, |_| {});
        if !later.iter().any(|l| matches!(l, Later::Closed(_))) {
            return self.perform(later, false);
        }
        let slot = Arc::new(Mutex::new(Some(later)));
        let (this, theirs) = (self.clone(), slot.clone());
        let spawned = std::thread::Builder::new()
            .name("rtm-close".into())
            .spawn(move || {
                if let Some(later) = theirs.lock().take() {
                    this.perform(later, false);
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start a thread to end the session: {e}");
            if let Some(later) = slot.lock().take() {
                self.perform(later, false);
            }
        }
    }

    /// Test hook: how many threads wait for another thread's ending.
    pub(super) fn closing_waiters(&self) -> usize {
        self.closing.waiting.load(Ordering::Relaxed)
    }

    /// [`Inner::step`], running `prepare` on the session first, under the
    /// same lock.
    fn step_locked(
        self: &Arc<Self>,
        event: Event<LoginCallback>,
        prepare: impl FnOnce(&mut Core),
    ) -> Vec<Later> {
        let mut later = Vec::new();
        let destroy = matches!(event, Event::Destroy);
        let mut core = self.core.lock();
        prepare(&mut core);
        // A login that ends a logged-in session (online, or logging in again).
        if matches!(event, Event::Login { .. }) && core.machine.session_alive() {
            later.push(Later::Replaced);
        }
        let actions = core.machine.handle(event, Instant::now());
        for action in actions {
            self.act(&mut core, action, &mut later);
        }
        core.settle(&mut later);
        // A session that ends (or a destroy) waits for the connections it lost
        // too; another step remembers those it closes without waiting.
        let ending = destroy || later.iter().any(Later::ends_session);
        if ending {
            // Joined before the session's own connection (sorted below).
            let retired = std::mem::take(&mut core.retired);
            later.splice(0..0, retired.into_iter().map(Later::Close));
        } else {
            let closed: Vec<Connection> = later
                .iter()
                .filter_map(|l| match l {
                    Later::Close(c) => Some(c.clone()),
                    _ => None,
                })
                .collect();
            if !closed.is_empty() {
                core.retired.retain(|c| !c.threads_ended());
                core.retired.extend(closed);
            }
        }
        // Pushes check this fence (under its read lock) before they are
        // queued; taking the write lock waits for those already past it, so
        // none of a session that ended here is queued after its
        // `SessionClosed`.
        *self.fence.write() = super::Fence {
            serial: core.machine.session_serial(),
            uid: core.machine.uid(),
        };
        // A new connect after the old session's ending (a login's callback
        // comes after the connections it waits for), `SessionClosed` after
        // everything else. An ending joins its connections after its other
        // work (the waiting quests' failures), the lost ones first and the
        // current connection last. A reader of one of them may be running a
        // `Dispatch::Inline` callback that calls `close()` or `login()`, which
        // cannot wait for this ending (it joins that thread,
        // `Closing::wait_for_others`): the login callback that call completes
        // (the next login's, 20002) is left to this ending, which queues it
        // once it is done (`Closing::defer`; docs/architecture.md,
        // "`SessionClosed` last").
        later.sort_by_key(|l| match l {
            Later::Close(_) if ending => 1,
            Later::Connect(..) => 2,
            Later::Closed(_) => 3,
            _ => 0,
        });
        // Listed while the lock is held, so a `close` or `destroy` whose step
        // comes after this one sees it.
        self.closing.start(&mut later, ending, self);
        drop(core);
        later
    }

    /// Takes back quests that connection `from` of session `generation`
    /// could not get answered (its hand-back, or a send that found it
    /// closed), each with the code it fails with when the session ends: they
    /// wait for the next connection, or fail at once when the session is over.
    pub(super) fn requeue(
        self: &Arc<Self>,
        quests: Vec<(Unanswered, i32)>,
        generation: u64,
        from: u64,
    ) {
        let mut later = Vec::new();
        self.core.lock().wait(quests, generation, from, &mut later);
        self.perform(later, false);
    }

    /// Takes the waiting quests that can go out on the online connection and sends
    /// them, under [`Inner::send_order`] (`Later::Resend`): a send in progress
    /// ([`Closing::send`]) until what it leaves is performed.
    fn resend(self: &Arc<Self>) {
        let order = self.send_order.lock();
        let mut later = Vec::new();
        let mut core = self.core.lock();
        let taken = core.take_sendable(&mut later);
        // Quests of the session held outside its lock: a send in progress.
        let sending = (taken.is_some() || fails(&later)).then(|| self.closing.send());
        drop(core);
        if let Some(taken) = taken {
            #[cfg(test)]
            self.closing.in_resend_for_tests();
            self.send_in_order(taken, &mut later);
        }
        drop(order);
        self.perform(later, false);
        drop(sending);
    }

    /// Sends quests taken from the waiting list, with [`Inner::send_order`] held. One
    /// the connection did not take (it had closed) was not sent: it goes back to the
    /// list (before the lock is let go, so no later call is sent ahead of it) with its
    /// code (20012 if made while logging in again).
    fn send_in_order(self: &Arc<Self>, taken: Sendable, later: &mut Vec<Later>) {
        let Sendable {
            conn,
            serial,
            generation,
            quests,
        } = taken;
        let back: Vec<(Unanswered, i32)> = quests
            .into_iter()
            .filter_map(|(q, code)| conn.send_unanswered(q).err().map(|q| (q, code)))
            .collect();
        if !back.is_empty() {
            self.core.lock().wait(back, generation, serial, later);
        }
    }

    /// Sends a quest that may wait for the next connection
    /// (`RtmOptions::resend_on_reconnect`): on the online connection (after the
    /// waiting quests that can go there, and never ahead of a send of them in
    /// progress: [`Inner::send_order`]), in the waiting list while the session logs
    /// in again, or it fails with 20012 when there is no session. Sending, or
    /// failing waiting quests, it is a send in progress ([`Closing::send`]) until
    /// what it leaves is performed, so that an ending waits for it.
    pub(super) fn send_or_wait(self: &Arc<Self>, mut q: Unanswered) {
        let order = self.send_order.lock();
        let mut core = self.core.lock();
        q.order = core.next_order;
        core.next_order += 1;
        let generation = core.machine.generation();
        let mut later = Vec::new();
        // The quest, or those it is sent after, held outside the session lock: a
        // send in progress until what it leaves is performed.
        let mut sending = None;
        match core.online() {
            Some((serial, conn)) if !core.waiting.has_sendable(serial) => {
                sending = Some(self.closing.send());
                drop(core);
                #[cfg(test)]
                self.closing.in_resend_for_tests();
                if let Err(q) = conn.send_unanswered(q) {
                    let code = error_code::FPNN_EC_CORE_CONNECTION_CLOSED;
                    self.core
                        .lock()
                        .wait(vec![(q, code)], generation, serial, &mut later);
                }
            }
            // Behind the waiting quests that can go out: in the list (as if sent,
            // 20002 if the session ends first), then all of them, in order.
            Some(_) => {
                let mut fail = Vec::new();
                let code = error_code::FPNN_EC_CORE_CONNECTION_CLOSED;
                core.waiting.add(vec![(q, code)], generation, 0, &mut fail);
                if !fail.is_empty() {
                    later.push(Later::Fail(fail));
                }
                let taken = core.take_sendable(&mut later);
                sending = Some(self.closing.send());
                drop(core);
                if let Some(taken) = taken {
                    #[cfg(test)]
                    self.closing.in_resend_for_tests();
                    self.send_in_order(taken, &mut later);
                }
            }
            None if core.machine.session_alive() => {
                let code = error_code::FPNN_EC_CORE_INVALID_CONNECTION;
                core.wait(vec![(q, code)], generation, 0, &mut later);
                if fails(&later) {
                    sending = Some(self.closing.send());
                }
            }
            None => {
                drop(core);
                drop(order);
                return q.callback.fail(super::handle::not_connected());
            }
        }
        drop(order);
        self.perform(later, false);
        drop(sending);
    }

    fn act(
        self: &Arc<Self>,
        core: &mut Core,
        action: Action<LoginCallback>,
        later: &mut Vec<Later>,
    ) {
        log::trace!("session: {action:?}");
        match action {
            Action::CompleteLogin { callback, ok, code } => {
                log::debug!("login of uid {:?} completed: ({ok}, {code})", core.uid());
                // Always through the queue: `blocking()`'s direct path is for
                // the one `(err, data)` callback it wraps. On a thread an ending
                // joins, once that ending is done.
                let job: Job = Box::new(move || callback(ok, code));
                if let Some(Deferred::Login(job)) = self.closing.defer(Deferred::Login(job)) {
                    self.dispatcher.callback(job);
                }
            }
            Action::ErrorRecorder { code, ex } => self.emit_error(crate::RtmError::new(code, ex)),
            Action::ReloginCompleted {
                ok,
                again,
                code,
                attempt,
            } => self.emit_relogin(ok, again, code, attempt),
            Action::SessionClosed { code } => later.push(Later::Closed(code)),
            Action::CloseConnection { serial } => {
                if matches!(core.conn, Some((s, _)) if s == serial) {
                    if let Some((_, c)) = core.conn.take() {
                        later.push(Later::Close(c));
                    }
                }
            }
            Action::CancelConnect { serial } => {
                if matches!(core.connecting, Some((s, _)) if s == serial) {
                    if let Some((_, c)) = core.connecting.take() {
                        later.push(Later::Cancel(c));
                    }
                }
            }
            Action::Connect { serial } => {
                let cancel = ConnectCancel::new();
                core.connecting = Some((serial, cancel.clone()));
                // On a thread an ending joins, once that ending is done.
                if let Some(Deferred::Connect(serial, cancel)) =
                    self.closing.defer(Deferred::Connect(serial, cancel))
                {
                    later.push(Later::Connect(serial, cancel));
                }
            }
            Action::WakeAt(at) => later.push(Later::Wake(at)),
            Action::SendAuth {
                serial,
                uid,
                token,
                timeout,
            } => {
                let Some(conn) = core.connection(serial) else {
                    return;
                };
                let payload = MapBuilder::new()
                    .put("pid", self.options.pid)
                    .put("uid", uid)
                    .put("token", token.as_str())
                    .put("version", SDK_VERSION)
                    .put_opt("attrs", self.options.attrs.as_ref().map(value::string_map))
                    .build();
                let weak = Arc::downgrade(self);
                later.push(Later::Send {
                    conn,
                    method: "auth",
                    payload,
                    timeout,
                    on_answer: Box::new(move |r| {
                        let answer = match r {
                            Ok(v)
                                if value::map_get(&v, "ok").and_then(value::as_bool)
                                    == Some(true) =>
                            {
                                AuthAnswer::Accepted
                            }
                            Ok(_) => AuthAnswer::Rejected,
                            Err(e) => AuthAnswer::Failed(e.code),
                        };
                        log::debug!("auth of uid {uid} answered: {answer:?}");
                        if let Some(inner) = weak.upgrade() {
                            inner.step(Event::AuthAnswered { serial, answer });
                        }
                    }),
                });
            }
            Action::SendBye { serial, generation } => {
                let Some(conn) = core.connection(serial) else {
                    return;
                };
                let weak = Arc::downgrade(self);
                later.push(Later::Send {
                    conn,
                    method: "bye",
                    payload: MapBuilder::new().build(),
                    timeout: 0,
                    on_answer: Box::new(move |_| {
                        if let Some(inner) = weak.upgrade() {
                            inner.step(Event::ByeAnswered { generation });
                        }
                    }),
                });
            }
        }
    }

    /// Performs what [`Inner::act`] left for after the lock. The threads of
    /// the connections closed are waited for when the session ends (the
    /// writer's linger, `CLOSE_LINGER` in src/fpnn/connection/writer.rs, sends
    /// the close frame first: `SessionClosed`, or a login that replaces the
    /// session) or for `destroy` (the socket shut at once); before anything,
    /// such a step waits for the sends other threads have in progress
    /// ([`Closing::wait_for_sends`]).
    fn perform(self: &Arc<Self>, later: Vec<Later>, destroy: bool) {
        // A session that ends waits for its connection's threads, and for those
        // of the connections it lost before ([`Core::retired`]), so an answer or
        // a timeout being delivered right now is queued before `SessionClosed`,
        // or before the callback of the login that replaced the session (not
        // from those threads themselves: `close_and_join` skips them).
        let join = destroy || later.iter().any(Later::ends_session);
        if join {
            // A thread sending quests of the session it took before this step (the
            // timer's resend, a resendable call) fails those the close below leaves
            // it (20002) on that thread: that is queued first.
            self.closing.wait_for_sends();
        }
        for l in later {
            match l {
                Later::Close(c) if destroy => c.shut_and_join(),
                Later::Close(c) if join => c.close_and_join(),
                Later::Close(c) => c.close(),
                Later::Cancel(c) => c.cancel(),
                Later::Send {
                    conn,
                    method,
                    payload,
                    timeout,
                    on_answer,
                } => conn.send_quest_bytes(method, payload.bytes(), dur(timeout), on_answer),
                Later::Connect(serial, cancel) => self.connect(serial, cancel),
                Later::Wake(at) => timers::wake(self, at),
                Later::Resend => self.resend(),
                Later::Fail(quests) => {
                    for (callback, e) in quests {
                        callback.fail(e);
                    }
                }
                Later::Closed(code) => self.emit_closed(code),
                Later::Replaced => {}
                Later::Done(listed) => drop(listed),
            }
        }
    }

    /// Opens the connection of attempt `serial`, on the thread that becomes
    /// its reader.
    fn connect(self: &Arc<Self>, serial: u64, cancel: ConnectCancel) {
        let options = ConnectOptions {
            connect_timeout: self.options.connect_timeout(),
            extra_roots: self.options.tls_root_certificates.clone(),
            cancel: Some(cancel),
            ..ConnectOptions::default()
        };
        let handler = PushHandler {
            inner: Arc::downgrade(self),
            serial,
            kicked: Default::default(),
        };
        let weak = Arc::downgrade(self);
        log::debug!(
            "connecting to {} ({}), connection #{serial}",
            self.endpoint,
            if self.tls { "wss" } else { "ws" }
        );
        let on_close = move |_| {
            if let Some(inner) = weak.upgrade() {
                inner.step(Event::ConnectionLost { serial });
            }
        };
        let weak = Arc::downgrade(self);
        let started = Connection::connect_then(
            self.endpoint.clone(),
            self.tls,
            options,
            handler,
            on_close,
            move |r| {
                if let Some(inner) = weak.upgrade() {
                    inner.connected(serial, r);
                }
            },
        );
        if let Err(e) = started {
            log::error!("cannot start a connection thread: {e}");
            self.step(Event::ConnectFailed { serial });
        }
    }

    /// The connect of attempt `serial` is done, one way or the other.
    fn connected(self: &Arc<Self>, serial: u64, r: Result<Connection, crate::RtmError>) {
        let later = match r {
            Ok(conn) => {
                log::debug!("connected to {} (connection #{serial})", self.endpoint);
                // Calls made by its reader (`Inline` callbacks, push handling)
                // take their deadlines when the read's batch is flushed: a
                // callback waiting for their completion would never end either
                // way, as the client's callbacks run in order.
                conn.defer_deadlines();
                let resend = self.options.resend_on_reconnect;
                let mut stale = None;
                let later = self.step_locked(Event::Connected { serial }, |core| {
                    if matches!(core.connecting, Some((s, _)) if s == serial) {
                        core.connecting = None;
                    }
                    // The machine closes it at once if the attempt is stale;
                    // one that finishes while a newer connection is in
                    // place is closed here.
                    match core.conn {
                        None => {
                            if resend {
                                let generation = core.machine.generation();
                                let weak = Arc::downgrade(self);
                                conn.on_unanswered(Box::new(move |quests| {
                                    hand_back(&weak, quests, generation, serial)
                                }));
                            }
                            core.conn = Some((serial, conn))
                        }
                        Some(_) => stale = Some(conn),
                    }
                });
                if let Some(c) = stale {
                    c.close();
                }
                later
            }
            Err(e) => {
                log::debug!("cannot connect to {}: {e}", self.endpoint);
                self.step_locked(Event::ConnectFailed { serial }, |core| {
                    if matches!(core.connecting, Some((s, _)) if s == serial) {
                        core.connecting = None;
                        // The only place the reason reaches the application:
                        // the login and relogin callbacks carry just the code
                        // (20012). Only for the attempt still current: one
                        // that `close`, `login` or `destroy` cancelled belongs
                        // to no session (and may end after its SessionClosed).
                        self.emit_error(e);
                    }
                })
            }
        };
        self.perform(later, false);
    }

    /// `destroy()`: ends the session, waits for the connection's threads (and
    /// the retired ones', [`Core::retired`]),
    /// drops the pending timer (after `mark_destroyed`, which `timers::wake`
    /// checks), then stops the dispatcher
    /// (docs/architecture.md). A connect in progress is aborted; its thread
    /// ends on its own.
    pub(super) fn destroy(self: &Arc<Self>) {
        self.dispatcher.mark_destroyed();
        let later = self.step_locked(Event::Destroy, |_| {});
        self.perform(later, true);
        self.closing.wait_for_others();
        // With no lock held: queuing runs no user code, and the dispatcher is not
        // stopped yet, so `shutdown` runs them.
        for job in self.closing.take_deferred() {
            self.dispatcher.callback(job);
        }
        timers::cancel(self.id);
        self.dispatcher.shutdown();
    }
}

/// Whether `later` fails quests ([`Later::Fail`]).
fn fails(later: &[Later]) -> bool {
    later.iter().any(|l| matches!(l, Later::Fail(_)))
}

/// A connection's unanswered resendable quests go back to the session's
/// waiting list; with the client gone they fail as they would have.
fn hand_back(weak: &std::sync::Weak<Inner>, quests: Vec<Unanswered>, generation: u64, serial: u64) {
    let code = error_code::FPNN_EC_CORE_CONNECTION_CLOSED;
    match weak.upgrade() {
        Some(inner) => {
            let quests = quests.into_iter().map(|q| (q, code)).collect();
            inner.requeue(quests, generation, serial)
        }
        None => {
            for q in quests {
                q.callback.fail(RtmError::new(code, "connection closed"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::types::Dispatch;
    use crate::{RtmClient, RtmError, RtmOptions};

    /// Only the current attempt's connect failure reaches `ErrorRecorder`: one that
    /// `close`, `login` or `destroy` cancelled (no longer the session's attempt) ends
    /// silently, so nothing of it follows the session's `SessionClosed`.
    #[test]
    fn a_stale_connect_failure_is_not_reported() {
        let client = RtmClient::new(RtmOptions {
            endpoint: Some("127.0.0.1:1".into()),
            dispatch: Dispatch::Queued,
            auto_reconnect: false,
            ..Default::default()
        })
        .unwrap();
        let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let s = seen.clone();
        client.on_error_recorder(move |e| s.lock().push(e.code));
        let inner = &client.inner;
        // No attempt in progress: attempt 7 is stale.
        inner.connected(7, Err(RtmError::new(20002, "connect cancelled")));
        client.dispatch_pending();
        assert!(seen.lock().is_empty(), "{:?}", seen.lock());
        // The current attempt's failure is reported (port 1 refuses).
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(1, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        crate::testing::wait_until("the login fails", || {
            client.dispatch_pending();
            !rx.is_empty()
        });
        assert_eq!(rx.recv().unwrap(), (false, 20012));
        assert_eq!(seen.lock().len(), 1, "{:?}", seen.lock());
        client.destroy();
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ran {
        Callback(Option<i32>),
        Closed(i32),
        Login(bool, i32),
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// A client of `gate` (uid 1 logs in with any token there).
    fn gate_client(gate: &crate::gate::Gate, dispatch: Dispatch) -> RtmClient {
        RtmClient::new(RtmOptions {
            endpoint: Some(gate.endpoint()),
            pid: 1,
            dispatch,
            ..Default::default()
        })
        .unwrap()
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    type RanLog = std::sync::Arc<parking_lot::Mutex<Vec<Ran>>>;

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// A client of `gate` whose resendable calls wait across reconnects
    /// (`RtmOptions::resend_on_reconnect`), logged in as uid 1: its login's callback
    /// is checked and taken out of `log`.
    fn resending_client_online(
        gate: &crate::gate::Gate,
        dispatch: Dispatch,
        log: &RanLog,
        pump: impl Fn(&RtmClient),
    ) -> RtmClient {
        let client = RtmClient::new(RtmOptions {
            endpoint: Some(gate.endpoint()),
            pid: 1,
            dispatch,
            resend_on_reconnect: true,
            ..Default::default()
        })
        .unwrap();
        login_logged(&client, 1, log);
        crate::testing::wait_until("the first login", || {
            pump(&client);
            !log.lock().is_empty()
        });
        assert_eq!(log.lock().pop(), Some(Ran::Login(true, 0)), "{dispatch:?}");
        client
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Holds the next resendable call in the window in which `Inner::send_or_wait`
    /// holds it outside the session lock (`Closing::resend_hook`): a `get_user_info`
    /// made on a thread of its own, whose callback `log` records. Returns once it is
    /// held: the sender that releases it, and that thread.
    fn hold_a_resendable_call(
        client: &RtmClient,
        log: &RanLog,
    ) -> (crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>) {
        let (held, release) = arm_resend_hook(client);
        let (c, l) = (client.clone(), log.clone());
        let caller = std::thread::spawn(move || {
            c.get_user_info(0, move |e, _| {
                l.lock().push(Ran::Callback(e.map(|e| e.code)))
            });
        });
        crate::testing::wait_until("the call is held", || !held.is_empty());
        (release, caller)
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Arms `Closing::resend_hook` for the next thread that sends resendable quests
    /// of `client`: once it holds them it reports its name on the receiver returned
    /// and waits until the sender returned releases it.
    fn arm_resend_hook(
        client: &RtmClient,
    ) -> (
        crossbeam_channel::Receiver<Option<String>>,
        crossbeam_channel::Sender<()>,
    ) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (held_tx, held) = crossbeam_channel::bounded(1);
        let (release, released) = crossbeam_channel::bounded::<()>(1);
        let armed = AtomicBool::new(true);
        *client.inner.closing.resend_hook.lock() = Some(std::sync::Arc::new(move || {
            if armed.swap(false, Ordering::SeqCst) {
                let _ = held_tx.try_send(std::thread::current().name().map(str::to_owned));
                let _ = released.recv_timeout(crate::testing::WAIT);
            }
        }));
        (held, release)
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Releases a send held by [`arm_resend_hook`] (through `release`) from a thread of
    /// its own, once an ending of `client` waits for it, or `or` holds (the ending
    /// went on without waiting).
    fn release_once_waited_for(
        client: &RtmClient,
        release: crossbeam_channel::Sender<()>,
        or: impl Fn() -> bool + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let c = client.clone();
        std::thread::spawn(move || {
            crate::testing::wait_until("the ending's wait, or the ending", || {
                c.inner.closing_waiters() > 0 || or()
            });
            release.send(()).unwrap();
        })
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Waits until nothing of `client` is queued or running, so that (in
    /// `Dispatch::Inline` mode) the next answer's callback runs on its
    /// connection's reader: a callback that waits there for a login to join that
    /// reader would, queued behind the login's callback or a relogin's event on
    /// the dispatcher thread, wait for a join that never comes (and hold the
    /// dispatcher thread, which every `Threads` client of the test process
    /// shares, for as long).
    fn callbacks_on_the_reader_next(client: &RtmClient) {
        crate::testing::wait_until("the client's queue settled", || {
            client.inner.dispatcher.settled_for_tests()
        });
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Makes a call on `client` (`Dispatch::Inline`, online) whose callback, on the
    /// online connection's reader, logs itself in `log`, waits until a login joins
    /// that reader, then runs `then`; returns that connection once the callback
    /// runs.
    fn an_inline_callback_waiting_for_a_join(
        client: &RtmClient,
        log: &RanLog,
        then: impl FnOnce(&RtmClient, &RanLog) + Send + 'static,
    ) -> crate::fpnn::Connection {
        let online = client.inner.core.read().online_connection().unwrap();
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (c, l, o) = (client.clone(), log.clone(), online.clone());
        callbacks_on_the_reader_next(client);
        client.get_user_info(0, move |e, _| {
            l.lock().push(Ran::Callback(e.map(|e| e.code)));
            let _ = started_tx.send(());
            crate::testing::wait_until("the login joins the reader", || o.joining_for_tests() > 0);
            then(&c, &l);
        });
        started.recv_timeout(crate::testing::WAIT).unwrap();
        online
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Logs `client` in as uid 2 (its callback logged in `log`), a `login` that
    /// replaces the session, and sends on `release` once that login joins `conn`'s
    /// threads (or has returned without).
    fn login_releasing_once_joined(
        client: &RtmClient,
        log: &RanLog,
        conn: &crate::fpnn::Connection,
        release: crossbeam_channel::Sender<()>,
    ) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let ended = std::sync::Arc::new(AtomicBool::new(false));
        let (joined, done) = (conn.clone(), ended.clone());
        let releaser = std::thread::spawn(move || {
            crate::testing::wait_until("the login joins the connection", || {
                joined.joining_for_tests() > 0 || done.load(Ordering::SeqCst)
            });
            release.send(()).unwrap();
        });
        login_logged(client, 2, log);
        ended.store(true, Ordering::SeqCst);
        releaser.join().unwrap();
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Loses `client`'s connection with the gate refusing new ones, makes two calls
    /// (logged in `log`), which wait in the session's list, takes them out of it,
    /// and lets the session log in again: returns them, to be put back
    /// (`Core::waiting`) when the test wants the session to hold them. `pump` runs
    /// what waits in the queue (`Queued`).
    fn park_two_waiting_calls(
        client: &RtmClient,
        gate: &crate::gate::Gate,
        log: &RanLog,
        pump: impl Fn(),
    ) -> crate::client::resend::WaitingList {
        gate.refuse_connections(true);
        assert_eq!(gate.drop_user(1, 1), 1);
        crate::testing::wait_until("the connection lost", || {
            pump();
            let core = client.inner.core.read();
            core.machine.online_serial().is_none() && core.machine.session_alive()
        });
        for _ in 0..2 {
            let l = log.clone();
            client.get_user_info(0, move |e, _| {
                l.lock().push(Ran::Callback(e.map(|e| e.code)))
            });
        }
        let parked = std::mem::take(&mut client.inner.core.lock().waiting);
        assert_eq!(parked.len(), 2, "the calls wait");
        gate.refuse_connections(false);
        crate::testing::wait_until("the relogin", || {
            pump();
            client
                .inner
                .core
                .read()
                .online_connection()
                .is_some_and(|c| c.is_open())
        });
        parked
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// `client.login(uid, "t", ..)`, its callback logged in `log`.
    fn login_logged(client: &RtmClient, uid: i64, log: &RanLog) {
        let l = log.clone();
        client.login(
            uid,
            "t",
            move |ok, code| l.lock().push(Ran::Login(ok, code)),
            0,
        );
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Makes a call time out with the online connection's writer held once it has
    /// taken the quest from the request table, before it completes it; returns
    /// that connection and the sender that releases the writer. `pump` runs what
    /// waits in the queue (`Queued`).
    fn hold_a_timeout(
        client: &RtmClient,
        gate: &crate::gate::Gate,
        log: &RanLog,
        pump: impl Fn(),
    ) -> (crate::fpnn::Connection, crossbeam_channel::Sender<()>) {
        let old = client.inner.core.read().online_connection().unwrap();
        let (held_tx, held) = crossbeam_channel::bounded(1);
        let (release, released) = crossbeam_channel::bounded::<()>(1);
        old.before_timeouts_for_tests(move || {
            let _ = held_tx.try_send(());
            let _ = released.recv_timeout(crate::testing::WAIT);
        });
        gate.pause(std::time::Duration::from_secs(60));
        let l = log.clone();
        client.get_user_info(50, move |e, _| {
            l.lock().push(Ran::Callback(e.map(|e| e.code)))
        });
        crate::testing::wait_until("the quest times out", || {
            pump();
            !held.is_empty()
        });
        gate.resume();
        (old, release)
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Drops the online connection `old` at the gate and waits until the session
    /// has logged in again on another one.
    fn lose_and_relogin(
        client: &RtmClient,
        gate: &crate::gate::Gate,
        old: &crate::fpnn::Connection,
        pump: impl Fn(),
    ) {
        assert_eq!(gate.drop_user(1, 1), 1);
        crate::testing::wait_until("the relogin", || {
            pump();
            !old.is_open()
                && client
                    .inner
                    .core
                    .read()
                    .online_connection()
                    .is_some_and(|c| c.is_open())
        });
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// A connection the session lost and replaced (automatic relogin) may still be
    /// delivering a call's callback on one of its threads: here its writer has taken
    /// a timed-out quest from the request table and is held before it completes it.
    /// `close()` then queues that callback before `SessionClosed`, and `destroy()`
    /// has run it when it returns (docs/reliability.md, "Every callback exactly
    /// once"): both wait for the lost connection's threads.
    #[test]
    fn a_lost_connections_callback_comes_before_the_session_ends() {
        for destroy in [false, true] {
            let gate = crate::gate::Gate::builder().start().expect("gate");
            let client = gate_client(&gate, Dispatch::Threads);
            client.scale_relogin_waits_for_tests(1000);
            let log = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
            let l = log.clone();
            client.on_session_closed(move |code| l.lock().push(Ran::Closed(code)));
            let (tx, rx) = crossbeam_channel::bounded(1);
            client.login(1, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
            assert_eq!(rx.recv_timeout(crate::testing::WAIT), Ok((true, 0)));

            // The writer holds the timed-out quest until released.
            let (old, release) = hold_a_timeout(&client, &gate, &log, || {});
            // The connection is lost; the session logs in again on another one.
            lose_and_relogin(&client, &gate, &old, || {});

            // The session ends while the old writer still holds the callback: it is
            // released once the ending has returned, or waits for that writer.
            let (done_tx, done) = crossbeam_channel::bounded(1);
            let (c, l) = (client.clone(), log.clone());
            let ender = std::thread::spawn(move || {
                if destroy {
                    c.destroy();
                } else {
                    c.close();
                }
                done_tx.send(l.lock().clone()).unwrap();
            });
            crate::testing::wait_until("the session ending", || {
                !done.is_empty() || old.joining_for_tests() > 0
            });
            release.send(()).unwrap();
            let at_return = done.recv_timeout(crate::testing::WAIT).unwrap();
            ender.join().unwrap();
            let timed_out = Ran::Callback(Some(crate::error_code::FPNN_EC_CORE_TIMEOUT));
            if destroy {
                assert_eq!(at_return, vec![timed_out], "when destroy() returned");
            } else {
                crate::testing::wait_until("the callback and SessionClosed", || {
                    log.lock().len() >= 2
                });
                assert_eq!(*log.lock(), vec![timed_out, Ran::Closed(0)]);
                client.destroy();
            }
            gate.shutdown();
        }
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// A login while a session exists ends it without events (online, or logging in
    /// again after a lost connection), and a connection of that session may still be
    /// completing a call's callback on one of its threads: here its writer has taken a
    /// timed-out quest from the request table and is held before it completes it. The
    /// new login's callback comes after it, in every dispatch mode: the login waits for
    /// the old session's connections' threads, those it lost before included
    /// (docs/reliability.md, "Every callback exactly once").
    #[test]
    fn an_old_sessions_callback_comes_before_a_new_logins_callback() {
        for dispatch in [Dispatch::Threads, Dispatch::Inline, Dispatch::Queued] {
            for lost in [false, true] {
                let case = format!("{dispatch:?}, lost connection: {lost}");
                let gate = crate::gate::Gate::builder().start().expect("gate");
                let client = gate_client(&gate, dispatch);
                client.scale_relogin_waits_for_tests(1000);
                // Runs what waits in the queue (`Queued` only).
                let pump = || {
                    client.dispatch_pending();
                };
                let log = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
                login_logged(&client, 1, &log);
                crate::testing::wait_until("the first login", || {
                    pump();
                    !log.lock().is_empty()
                });
                assert_eq!(log.lock().pop(), Some(Ran::Login(true, 0)), "{case}");

                // The writer holds the timed-out quest until released.
                let (old, release) = hold_a_timeout(&client, &gate, &log, pump);
                if lost {
                    // The connection is lost; the session logs in again on another one.
                    lose_and_relogin(&client, &gate, &old, pump);
                }

                // A new login while the old writer still holds the callback: it is
                // released once the new login has been called back, or waits for
                // that writer.
                let (c, l) = (client.clone(), log.clone());
                let login = std::thread::spawn(move || {
                    c.login(
                        2,
                        "t",
                        move |ok, code| l.lock().push(Ran::Login(ok, code)),
                        0,
                    );
                });
                crate::testing::wait_until("the new login, or its wait for the old writer", || {
                    pump();
                    log.lock().contains(&Ran::Login(true, 0)) || old.joining_for_tests() > 0
                });
                release.send(()).unwrap();
                login.join().unwrap();
                crate::testing::wait_until("the callback and the new login's", || {
                    pump();
                    log.lock().len() >= 2
                });
                let timed_out = Ran::Callback(Some(crate::error_code::FPNN_EC_CORE_TIMEOUT));
                assert_eq!(*log.lock(), vec![timed_out, Ran::Login(true, 0)], "{case}");
                client.destroy();
                gate.shutdown();
            }
        }
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// A resendable call (`RtmOptions::resend_on_reconnect`) is held on its thread
    /// once it has taken the online connection, before it sends (the window in
    /// which `Inner::send_or_wait`, and `Inner::resend` on the timer thread, hold
    /// quests of the session outside its lock): a `login` that replaces the session
    /// meanwhile must still queue that call's callback before its own, in every
    /// dispatch mode, whether it is made on another thread or in a callback (on the
    /// dispatcher, an `Inline` reader of the old connection, the thread that pumps
    /// the queue). Another thread releases the held call once the login waits for
    /// it, or has logged in without waiting.
    #[test]
    fn a_resendable_call_in_progress_comes_before_a_new_logins_callback() {
        for dispatch in [Dispatch::Threads, Dispatch::Inline, Dispatch::Queued] {
            for in_callback in [false, true] {
                let case = format!("{dispatch:?}, login in a callback: {in_callback}");
                let gate = crate::gate::Gate::builder().start().expect("gate");
                // Runs what waits in the queue (`Queued` only).
                let pump = |c: &RtmClient| {
                    c.dispatch_pending();
                };
                let log = RanLog::default();
                let client = resending_client_online(&gate, dispatch, &log, pump);
                let pump = || pump(&client);
                let old = client.inner.core.read().machine.online_serial();

                // The next resendable call is held in the window until released.
                let (release, caller) = hold_a_resendable_call(&client, &log);

                // Released once the new login waits for it, or is online without.
                let c = client.clone();
                let releaser = release_once_waited_for(&client, release, move || {
                    let now = c.inner.core.read().machine.online_serial();
                    now.is_some() && now != old
                });
                let l = log.clone();
                let new_login = move |ok, code| l.lock().push(Ran::Login(ok, code));
                if in_callback {
                    // `adddebuglog` is never resent: it does not meet the hook.
                    let c = client.clone();
                    client.add_debug_log("m", "a", 0, move |_, _| c.login(2, "t", new_login, 0));
                } else {
                    client.login(2, "t", new_login, 0);
                }
                crate::testing::wait_until("the call's and the new login's callbacks", || {
                    pump();
                    log.lock().len() >= 2
                });
                releaser.join().unwrap();
                caller.join().unwrap();
                let got = log.lock().clone();
                assert!(
                    matches!(got[..], [Ran::Callback(_), Ran::Login(true, 0)]),
                    "{case}: {got:?}"
                );
                client.destroy();
                gate.shutdown();
            }
        }
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// As [`a_resendable_call_in_progress_comes_before_a_new_logins_callback`], with
    /// `close()` ending the session: the held call's callback comes before
    /// `SessionClosed` (docs/architecture.md, "`SessionClosed` last").
    #[test]
    fn a_resendable_call_in_progress_comes_before_session_closed() {
        use std::sync::atomic::{AtomicBool, Ordering};
        for dispatch in [Dispatch::Threads, Dispatch::Inline, Dispatch::Queued] {
            let gate = crate::gate::Gate::builder().start().expect("gate");
            let pump = |c: &RtmClient| {
                c.dispatch_pending();
            };
            let log = RanLog::default();
            let client = resending_client_online(&gate, dispatch, &log, pump);
            let pump = || pump(&client);
            let l = log.clone();
            client.on_session_closed(move |code| l.lock().push(Ran::Closed(code)));
            let (release, caller) = hold_a_resendable_call(&client, &log);

            // Released once the close waits for it, or has returned without.
            let closed = std::sync::Arc::new(AtomicBool::new(false));
            let done = closed.clone();
            let releaser =
                release_once_waited_for(&client, release, move || done.load(Ordering::SeqCst));
            client.close();
            closed.store(true, Ordering::SeqCst);
            crate::testing::wait_until("the call's callback and SessionClosed", || {
                pump();
                log.lock().len() >= 2
            });
            releaser.join().unwrap();
            caller.join().unwrap();
            let got = log.lock().clone();
            assert!(
                matches!(got[..], [Ran::Callback(_), Ran::Closed(0)]),
                "{dispatch:?}: {got:?}"
            );
            client.destroy();
            gate.shutdown();
        }
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// Resendable calls that wait in the session's waiting list while it logs in
    /// again (the gate refuses connections) are taken, once it is online again, by
    /// the session timer thread's resend (`Inner::resend` on `rtm-session`,
    /// src/client/timers.rs), which is held in `Closing::resend_hook` with them:
    /// `close()`, or a `login` that replaces the session, must queue their callbacks
    /// before `SessionClosed` (the new login's callback), in every dispatch mode
    /// (docs/architecture.md, "`SessionClosed` last"). The calls are out of the list
    /// while the session comes back online, so that the relogin's own resend (on the
    /// new connection's reader) finds none, and back in once it is: the timer's tick
    /// then takes them, as when it comes between the step that goes online and that
    /// step's resend.
    #[test]
    fn resendable_calls_the_timer_is_sending_come_before_the_sessions_end() {
        use std::sync::atomic::{AtomicBool, Ordering};
        for dispatch in [Dispatch::Threads, Dispatch::Inline, Dispatch::Queued] {
            for by_login in [false, true] {
                let case = format!("{dispatch:?}, ended by a login: {by_login}");
                let gate = crate::gate::Gate::builder().start().expect("gate");
                // Runs what waits in the queue (`Queued` only).
                let pump = |c: &RtmClient| {
                    c.dispatch_pending();
                };
                let log = RanLog::default();
                let client = resending_client_online(&gate, dispatch, &log, pump);
                let pump = || pump(&client);
                client.scale_relogin_waits_for_tests(1000);
                let l = log.clone();
                client.on_session_closed(move |code| l.lock().push(Ran::Closed(code)));

                // The connection is lost and no new one is accepted: calls made while
                // the session logs in again wait; they are kept out of the list until
                // the session is online again.
                let parked = park_two_waiting_calls(&client, &gate, &log, pump);

                // The next take is held (the thread that takes them reported) until
                // released.
                let (held, release) = arm_resend_hook(&client);
                client.inner.core.lock().waiting = parked;
                crate::client::timers::wake(&client.inner, std::time::Instant::now());
                let taken_by = held.recv_timeout(crate::testing::WAIT);
                assert_eq!(taken_by, Ok(Some("rtm-session".to_owned())), "{case}");

                // Released once the ending waits for it, or has returned without.
                let ended = std::sync::Arc::new(AtomicBool::new(false));
                let done = ended.clone();
                let releaser =
                    release_once_waited_for(&client, release, move || done.load(Ordering::SeqCst));
                if by_login {
                    login_logged(&client, 2, &log);
                } else {
                    client.close();
                }
                ended.store(true, Ordering::SeqCst);
                crate::testing::wait_until("the calls' callbacks and the ending's", || {
                    pump();
                    log.lock().len() >= 3
                });
                releaser.join().unwrap();
                let got = log.lock().clone();
                let last = if by_login {
                    Ran::Login(true, 0)
                } else {
                    Ran::Closed(0)
                };
                assert!(
                    matches!(got[..], [Ran::Callback(_), Ran::Callback(_), end] if end == last),
                    "{case}: {got:?}"
                );
                client.destroy();
                gate.shutdown();
            }
        }
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// `Dispatch::Inline`: a `login` that replaces the session joins the online
    /// connection's reader while that reader runs an answer's callback which calls
    /// `close()`; that `close()` ends the new login (its callback, 20002) without
    /// waiting for the login's step (it closes the reader's connection, so joins this
    /// thread). A connection the session lost before (its writer holding a timed-out
    /// call's callback) is joined by that step after the reader: the old session's
    /// callbacks, that one too, must still come before the login's callback.
    #[test]
    fn a_close_in_an_inline_callback_the_login_joins_comes_after_the_old_sessions_callbacks() {
        let gate = crate::gate::Gate::builder().start().expect("gate");
        let client = gate_client(&gate, Dispatch::Inline);
        client.scale_relogin_waits_for_tests(1000);
        let log = RanLog::default();
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(1, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        assert_eq!(rx.recv_timeout(crate::testing::WAIT), Ok((true, 0)));
        // A lost connection whose writer holds a timed-out call's callback.
        let (lost, release) = hold_a_timeout(&client, &gate, &log, || {});
        lose_and_relogin(&client, &gate, &lost, || {});

        // A call whose callback, on the online connection's reader, waits until a
        // login joins that reader, then calls `close()`.
        an_inline_callback_waiting_for_a_join(&client, &log, |c, _| c.close());
        // The lost connection's writer is released once the login joins it.
        login_releasing_once_joined(&client, &log, &lost, release);
        crate::testing::wait_until("the callbacks and the login's", || log.lock().len() >= 3);
        let got = log.lock().clone();
        let timed_out = Ran::Callback(Some(crate::error_code::FPNN_EC_CORE_TIMEOUT));
        assert!(
            matches!(got[..], [Ran::Callback(None), t, Ran::Login(false, _)] if t == timed_out),
            "{got:?}"
        );
        client.destroy();
        gate.shutdown();
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// `Dispatch::Inline`, two clients: an answer's callback on client 2's reader calls
    /// `client1.close()` while the main thread is closing client 1, so it waits for the
    /// main thread's ending (`Closing::wait_for_others`, recorded in src/waits.rs).
    /// Once that ending is done the main thread closes client 2, which joins that
    /// reader: the reader no longer waits for the main thread (it is only slow to run
    /// again after its wake-up, `Closing::woken_hook`), so there is no cycle, and
    /// `close()` must wait for that callback to end, not skip the join on the
    /// strength of the reader's old record.
    #[test]
    fn a_wait_that_is_over_does_not_make_another_thread_skip_its_join() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let gate = crate::gate::Gate::builder().start().expect("gate");
        let (client1, client2) = (
            gate_client(&gate, Dispatch::Inline),
            gate_client(&gate, Dispatch::Inline),
        );
        for (client, uid) in [(&client1, 1), (&client2, 2)] {
            let (tx, rx) = crossbeam_channel::bounded(1);
            client.login(uid, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
            assert_eq!(rx.recv_timeout(crate::testing::WAIT), Ok((true, 0)));
        }
        let conn1 = client1.inner.core.read().online_connection().unwrap();
        let conn2 = client2.inner.core.read().online_connection().unwrap();
        let main_returned = Arc::new(AtomicBool::new(false));
        let callback_ended = Arc::new(AtomicBool::new(false));

        // Client 1's reader runs a callback until client 2's reader waits for the
        // main thread's ending of client 1.
        let (started1_tx, started1) = crossbeam_channel::bounded(1);
        let c1 = client1.clone();
        client1.get_user_info(0, move |_, _| {
            let _ = started1_tx.send(());
            crate::testing::wait_until("client 2's reader waits", || {
                c1.closing_waiters_for_tests() > 0
            });
        });
        started1.recv_timeout(crate::testing::WAIT).unwrap();
        // Client 2's reader closes client 1 once the main thread is ending it.
        let (started2_tx, started2) = crossbeam_channel::bounded(1);
        let (c1, o1, ended) = (client1.clone(), conn1.clone(), callback_ended.clone());
        client2.get_user_info(0, move |_, _| {
            let _ = started2_tx.send(());
            crate::testing::wait_until("the main thread ends client 1", || {
                o1.joining_for_tests() > 0
            });
            c1.close();
            ended.store(true, Ordering::SeqCst);
        });
        started2.recv_timeout(crate::testing::WAIT).unwrap();
        // Woken, client 2's reader runs again only once the main thread's close of
        // client 2 has returned or is joining it.
        let me = std::thread::current().id();
        let (done, o2) = (main_returned.clone(), conn2.clone());
        *client1.inner.closing.woken_hook.lock() = Some(Arc::new(move || {
            if std::thread::current().id() == me {
                return;
            }
            let deadline = std::time::Instant::now() + crate::testing::WAIT;
            while !done.load(Ordering::SeqCst)
                && o2.joining_for_tests() == 0
                && std::time::Instant::now() < deadline
            {
                std::thread::yield_now();
            }
        }));

        client1.close();
        client2.close();
        main_returned.store(true, Ordering::SeqCst);
        assert!(
            callback_ended.load(Ordering::SeqCst),
            "client 2's close() returned while its reader still ran a callback"
        );
        client1.destroy();
        client2.destroy();
        gate.shutdown();
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// `Dispatch::Inline`: a `login` that replaces the session joins the online
    /// connection's reader while that reader runs an answer's callback which calls
    /// `destroy()` (after a `close()`, or alone). That ends the new login without
    /// waiting for the login's step (it joins this thread), and `destroy` promises that
    /// no earlier callback runs once it returns: the login's callback must run before
    /// `destroy()` returns, not be left to the login's step (`Closing::defer`), whose
    /// end comes only after this callback returns and then finds the dispatcher
    /// stopped.
    #[test]
    fn a_destroy_in_an_inline_callback_the_login_joins_completes_the_login_before_it_returns() {
        for close_first in [false, true] {
            let case = format!("close first: {close_first}");
            let gate = crate::gate::Gate::builder().start().expect("gate");
            let client = gate_client(&gate, Dispatch::Inline);
            let log = RanLog::default();
            let (tx, rx) = crossbeam_channel::bounded(1);
            client.login(1, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
            assert_eq!(rx.recv_timeout(crate::testing::WAIT), Ok((true, 0)));

            // A call whose callback, on the online connection's reader, waits until a
            // login joins that reader, then destroys the client.
            an_inline_callback_waiting_for_a_join(&client, &log, move |c, l| {
                if close_first {
                    c.close();
                }
                c.destroy();
                // Marks where `destroy()` returned.
                l.lock().push(Ran::Closed(-1));
            });
            login_logged(&client, 2, &log);
            crate::testing::wait_until("the callbacks and the login's", || log.lock().len() >= 3);
            let got = log.lock().clone();
            assert!(
                matches!(
                    got[..],
                    [Ran::Callback(None), Ran::Login(false, _), Ran::Closed(-1)]
                ),
                "{case}: {got:?}"
            );
            gate.shutdown();
        }
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// As [`a_close_in_an_inline_callback_the_login_joins_comes_after_the_old_sessions_callbacks`],
    /// with quests in the session's waiting list when the login ends it
    /// (`RtmOptions::resend_on_reconnect`: two calls made while it logs in again, which
    /// the gate refuses, kept out of the list until it is online again, as in
    /// [`resendable_calls_the_timer_is_sending_come_before_the_sessions_end`], and put
    /// back just before the login). The login's step fails them (20012) and then joins
    /// the online connection's reader, whose callback's `close()` ends the login
    /// (20002) without waiting for that step: their callbacks must still come first
    /// (`Inner::step_locked` puts an ending's `Later::Fail` before its closes).
    #[test]
    fn waiting_quests_fail_before_a_close_in_an_inline_callback_the_login_joins() {
        let gate = crate::gate::Gate::builder().start().expect("gate");
        let log = RanLog::default();
        let client = resending_client_online(&gate, Dispatch::Inline, &log, |_| {});
        client.scale_relogin_waits_for_tests(1000);

        // Calls made while the session logs in again wait in the list; they are
        // kept out of it until the session is online again.
        let parked = park_two_waiting_calls(&client, &gate, &log, || {});

        // A call whose callback, on the online connection's reader, waits until a
        // login joins that reader, then calls `close()`.
        an_inline_callback_waiting_for_a_join(&client, &log, |c, _| c.close());

        // The waiting quests are back in the list when the login ends the session.
        client.inner.core.lock().waiting = parked;
        login_logged(&client, 2, &log);
        crate::testing::wait_until("the callbacks and the login's", || log.lock().len() >= 4);
        let got = log.lock().clone();
        let waited = Ran::Callback(Some(crate::error_code::FPNN_EC_CORE_INVALID_CONNECTION));
        let closed = crate::error_code::FPNN_EC_CORE_CONNECTION_CLOSED;
        assert_eq!(
            got,
            vec![
                Ran::Callback(None),
                waited,
                waited,
                Ran::Login(false, closed)
            ]
        );
        client.destroy();
        gate.shutdown();
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// The mirror of
    /// [`a_close_in_an_inline_callback_the_login_joins_comes_after_the_old_sessions_callbacks`]:
    /// `Dispatch::Inline`, an answer's callback runs on a connection's reader while
    /// that connection is declared lost (closed from another thread) and the session
    /// logs in again on another one, so the session keeps it (`Core::retired`). A
    /// `login` that replaces the session joins that reader first, and the callback
    /// then calls `close()` (or `login()` again), which ends the new login (20002)
    /// without waiting for the login's step (it joins this thread). The online
    /// connection's writer holds a timed-out call's callback, which the step queues
    /// only once it has joined that connection, after the lost one: the old session's
    /// callbacks, that one too, must still come before the login's callback (and the
    /// next login's after it), as `Closing::defer` leaves them to the login's step.
    #[test]
    fn a_close_in_an_inline_callback_on_a_lost_connection_the_login_joins_comes_after_the_old_sessions_callbacks(
    ) {
        for login_again in [false, true] {
            let case = format!("login again in the callback: {login_again}");
            let gate = crate::gate::Gate::builder().start().expect("gate");
            let client = gate_client(&gate, Dispatch::Inline);
            client.scale_relogin_waits_for_tests(1000);
            let log = RanLog::default();
            let (tx, rx) = crossbeam_channel::bounded(1);
            client.login(1, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
            assert_eq!(rx.recv_timeout(crate::testing::WAIT), Ok((true, 0)));

            // A call whose callback, on the online connection's reader, waits until a
            // login joins that reader, then calls `close()` or `login()`.
            let lost = an_inline_callback_waiting_for_a_join(&client, &log, move |c, l| {
                if login_again {
                    login_logged(c, 3, l);
                } else {
                    c.close();
                }
            });
            // Meanwhile that connection ends (its close handler declares it lost), and
            // the session logs in again on another one.
            lost.close();
            crate::testing::wait_until("the relogin", || {
                client
                    .inner
                    .core
                    .read()
                    .online_connection()
                    .is_some_and(|c| c.is_open())
            });
            let retired = client.inner.core.read().retired.len();
            assert_eq!(retired, 1, "{case}: the lost connection is kept");

            // The online connection's writer holds a timed-out call's callback,
            // released once the login joins that connection.
            let (online, release) = hold_a_timeout(&client, &gate, &log, || {});
            login_releasing_once_joined(&client, &log, &online, release);
            let timed_out = Ran::Callback(Some(crate::error_code::FPNN_EC_CORE_TIMEOUT));
            let closed = crate::error_code::FPNN_EC_CORE_CONNECTION_CLOSED;
            let mut want = vec![Ran::Callback(None), timed_out, Ran::Login(false, closed)];
            if login_again {
                want.push(Ran::Login(true, 0));
            }
            crate::testing::wait_until("the callbacks and the logins'", || {
                log.lock().len() >= want.len()
            });
            assert_eq!(*log.lock(), want, "{case}");
            client.destroy();
            gate.shutdown();
        }
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// A resendable call held in its send (as in
    /// [`a_resendable_call_in_progress_comes_before_session_closed`]) fails there (its
    /// payload is over the packet limit), and its callback, the closure handed to the
    /// method inside `blocking()`, runs on that thread (delivered straight to the
    /// waiting thread) and calls `close()`, while a `close()` on another thread waits for
    /// that send (`Closing::wait_for_sends`). The inner `close()` must not wait for the
    /// ending waiting for its own thread: both would wait for ever.
    #[test]
    fn a_close_in_a_failing_resendable_sends_callback_does_not_wait_for_the_ending_waiting_for_it()
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        let gate = crate::gate::Gate::builder().start().expect("gate");
        let client = RtmClient::new(RtmOptions {
            endpoint: Some(gate.endpoint()),
            pid: 1,
            resend_on_reconnect: true,
            ..Default::default()
        })
        .unwrap();
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(1, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        assert_eq!(rx.recv_timeout(crate::testing::WAIT), Ok((true, 0)));

        let (held_tx, held) = crossbeam_channel::bounded(1);
        let (release, released) = crossbeam_channel::bounded::<()>(1);
        let armed = AtomicBool::new(true);
        *client.inner.closing.resend_hook.lock() = Some(std::sync::Arc::new(move || {
            if armed.swap(false, Ordering::SeqCst) {
                let _ = held_tx.try_send(());
                let _ = released.recv_timeout(crate::testing::WAIT);
            }
        }));
        let (sent_tx, sent) = crossbeam_channel::bounded(1);
        let c = client.clone();
        std::thread::spawn(move || {
            let big = "x".repeat(crate::fpnn::packet::DEFAULT_MAX_PACKET + 1);
            let c2 = c.clone();
            let r = crate::blocking(|cb| {
                c.send_message(2, 30, &big, "", 0, 0, move |e, d| {
                    c2.close();
                    cb(e, d)
                })
            });
            let _ = sent_tx.send(r.map(|_| ()).map_err(|e| e.error.code));
        });
        crate::testing::wait_until("the call is held", || !held.is_empty());

        let closed = std::sync::Arc::new(AtomicBool::new(false));
        let (c, done) = (client.clone(), closed.clone());
        let releaser = std::thread::spawn(move || {
            crate::testing::wait_until("the close, or its wait", || {
                c.inner.closing_waiters() > 0 || done.load(Ordering::SeqCst)
            });
            release.send(()).unwrap();
        });
        let (closed_tx, closed_rx) = crossbeam_channel::bounded(1);
        let c = client.clone();
        std::thread::spawn(move || {
            c.close();
            let _ = closed_tx.send(());
        });
        let outcome = (
            closed_rx.recv_timeout(crate::testing::WAIT).is_ok(),
            sent.recv_timeout(crate::testing::WAIT).ok(),
        );
        closed.store(true, Ordering::SeqCst);
        releaser.join().unwrap();
        assert!(outcome.0, "close() never returned: {outcome:?}");
        assert!(
            matches!(outcome.1, Some(Err(_))),
            "the call never completed: {outcome:?}"
        );
        client.destroy();
        gate.shutdown();
    }

    #[cfg(feature = "gate")] // the tests below start the local gate
    /// A `bye` whose answer does not come in time: its timeout is completed on
    /// the connection's writer thread, and that callback ends the session
    /// (`Event::ByeAnswered`, as `Action::SendBye`'s callback does; the real
    /// `bye` waits the default 20 s, shortened here). The ending joins the
    /// connection's threads from the writer: `SessionClosed` must still come,
    /// although the writer is the thread that would write the close frame and
    /// shut the socket that ends the reader.
    #[test]
    fn a_bye_that_times_out_ends_the_session() {
        let gate = crate::gate::Gate::builder().start().expect("gate");
        let client = gate_client(&gate, Dispatch::Threads);
        let (closed_tx, closed) = crossbeam_channel::bounded(1);
        client.on_session_closed(move |code| {
            let _ = closed_tx.try_send(code);
        });
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(1, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        assert_eq!(rx.recv_timeout(crate::testing::WAIT), Ok((true, 0)));

        let conn = client.inner.core.read().online_connection().unwrap();
        let generation = client.inner.core.read().machine.generation();
        gate.pause(std::time::Duration::from_secs(60));
        let weak = std::sync::Arc::downgrade(&client.inner);
        let (on_tx, on) = crossbeam_channel::bounded(1);
        conn.send_quest_bytes(
            "bye",
            crate::value::MapBuilder::new().build().bytes(),
            std::time::Duration::from_millis(100),
            Box::new(move |r| {
                let thread = std::thread::current().name().unwrap_or("").to_owned();
                let _ = on_tx.send((thread, r.is_err()));
                if let Some(inner) = weak.upgrade() {
                    inner.step(super::Event::ByeAnswered { generation });
                }
            }),
        );
        assert_eq!(
            on.recv_timeout(crate::testing::WAIT).unwrap(),
            ("rtm-writer".to_owned(), true),
            "the bye timed out on the writer"
        );
        let ended = closed.recv_timeout(crate::testing::WAIT);
        // Unblocks a stuck ending (the gate closes the socket) before asserting.
        gate.shutdown();
        assert_eq!(
            ended,
            Ok(0),
            "no SessionClosed: the ending on the writer waits for the reader"
        );
        client.destroy();
    }
}
