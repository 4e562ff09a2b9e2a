//! The public handle: [`RtmClient`] (cheap clones of one client),
//! [`WeakRtmClient`], destroy-on-last-drop, the endpoint rules
//! (docs/porting.md, "Client, options and events"), the session methods as the user calls them,
//! and `call`, the one path every API method takes to the gate.

use std::any::Any;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use super::blocking::Deliverer;
use super::dedup::DuplicateFilter;
use super::dispatch::Dispatcher;
use super::dispatch::Run;
use super::driver::{Core, SessionLock};
use super::events::Events;
use super::machine::Event;
use super::mid::MidGenerator;
use super::{dur, Inner, RtmProcessor};
use crate::api::spec::{Resend, Spec};
use crate::error::{error_code, RtmError, SendError};
use crate::fpnn::{deadline_from, Method, RawReply, Reply, Unanswered};
use crate::types::RtmOptions;
use crate::value::Encoded;

/// Destroys the client when the last user handle is dropped.
struct DropGuard(Arc<Inner>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.destroy();
    }
}

/// The RTM client. Mirrors JavaScript `RTMClient`.
///
/// A cheap, cloneable handle (`Clone + Send + Sync`); every clone is the same
/// client. Dropping the last one destroys it: the connection closes and its
/// threads end. A handler that needs the client should hold a
/// [`WeakRtmClient`] ([`RtmClient::downgrade`]): a strong handle inside a
/// handler registered on the same client keeps it alive.
///
/// Every callback runs exactly once, never inside the call that registered
/// it and never while the SDK holds a lock; where it runs depends on
/// [`RtmOptions::dispatch`] (see [`Dispatch`](crate::Dispatch)).
#[derive(Clone)]
pub struct RtmClient {
    pub(crate) inner: Arc<Inner>,
    _guard: Arc<DropGuard>,
}

/// A handle that does not keep the client alive, for handlers that need the
/// client: a handler registered on a client and holding a strong
/// [`RtmClient`] keeps that client (and its threads) alive after every other
/// handle is dropped. Get one with [`RtmClient::downgrade`]. A Rust addition.
#[derive(Clone)]
pub struct WeakRtmClient {
    inner: Weak<Inner>,
    guard: Weak<DropGuard>,
}

impl WeakRtmClient {
    /// The client, if a strong handle still exists. A Rust addition, like
    /// [`WeakRtmClient`] itself.
    pub fn upgrade(&self) -> Option<RtmClient> {
        Some(RtmClient {
            _guard: self.guard.upgrade()?,
            inner: self.inner.upgrade()?,
        })
    }
}

impl std::fmt::Debug for WeakRtmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakRtmClient").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RtmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmClient")
            .field("endpoint", &self.inner.endpoint)
            .field("tls", &self.inner.tls)
            .field("pid", &self.inner.options.pid)
            .finish_non_exhaustive()
    }
}

/// Applies the endpoint rules (docs/porting.md, "Client, options and events").
fn choose_endpoint(o: &RtmOptions) -> Result<(String, bool), RtmError> {
    let (ep, tls) = match (&o.ssl_endpoint, &o.endpoint) {
        (Some(s), _) => (s.clone(), true),
        (None, Some(e)) => (e.clone(), false),
        (None, None) => {
            return Err(RtmError::new(
                error_code::RTM_EC_EMPTY_PARAMETER,
                "RtmOptions needs an endpoint or an ssl_endpoint (\"host:port\")",
            ))
        }
    };
    let parsed = crate::fpnn::Endpoint::parse(&ep, tls).ok_or_else(|| {
        RtmError::new(
            error_code::FPNN_EC_CORE_INVALID_CONNECTION,
            format!("invalid endpoint {ep:?}: expected \"host:port\""),
        )
    })?;
    if tls && !parsed.tls {
        // A `ws://` prefix must not turn the TLS endpoint into a plain one.
        return Err(RtmError::new(
            error_code::FPNN_EC_CORE_INVALID_CONNECTION,
            format!("invalid ssl_endpoint {ep:?}: a ws:// URL is not TLS"),
        ));
    }
    let port = if !parsed.tls && parsed.port == 13325 {
        13321
    } else {
        parsed.port
    };
    let host = if parsed.host.contains(':') {
        format!("[{}]", parsed.host)
    } else {
        parsed.host.clone()
    };
    Ok((format!("{host}:{port}"), parsed.tls))
}

impl RtmClient {
    /// Creates a client. Mirrors JavaScript `new RTMClient(options)`.
    ///
    /// Errors at once, instead of failing later: 200033 when neither
    /// `endpoint` nor `ssl_endpoint` is set, 20012 when the one in use is not
    /// `host:port` (an `ssl_endpoint` given as a `ws://` URL included), or an
    /// entry of `tls_root_certificates` is not a DER certificate. An endpoint
    /// on port 13325 (the TCP gate) is rewritten to 13321; `ssl_endpoint`,
    /// when set, wins and the client uses `wss`.
    pub fn new(options: RtmOptions) -> Result<RtmClient, RtmError> {
        let (endpoint, tls) = choose_endpoint(&options)?;
        crate::fpnn::add_roots(
            &mut rustls::RootCertStore::empty(),
            &options.tls_root_certificates,
        )
        .map_err(|e| RtmError::new(error_code::FPNN_EC_CORE_INVALID_CONNECTION, e))?;
        static IDS: AtomicU64 = AtomicU64::new(0);
        let inner = Arc::new(Inner {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            dispatcher: Dispatcher::new(options.dispatch),
            core: SessionLock::new(Core::new(&options)),
            options,
            endpoint,
            tls,
            events: Events::default(),
            processor: RtmProcessor::default(),
            dedup: Mutex::new(DuplicateFilter::new()),
            mids: Mutex::new(MidGenerator::new()),
            fence: Default::default(),
            closing: Default::default(),
            send_order: Mutex::new(()),
        });
        let weak = Arc::downgrade(&inner);
        inner.dispatcher.on_dropped(Box::new(move |n| {
            let Some(inner) = weak.upgrade() else {
                return Vec::new();
            };
            inner.error_jobs(RtmError::new(
                error_code::FPNN_EC_CORE_WORK_QUEUE_FULL,
                format!("{n} events dropped: the dispatch queue was full"),
            ))
        }));
        Ok(RtmClient {
            _guard: Arc::new(DropGuard(inner.clone())),
            inner,
        })
    }

    /// A handle that does not keep the client alive, for handlers that need
    /// the client (see [`WeakRtmClient`]). A Rust addition.
    pub fn downgrade(&self) -> WeakRtmClient {
        WeakRtmClient {
            inner: Arc::downgrade(&self.inner),
            guard: Arc::downgrade(&self._guard),
        }
    }

    /// The gate this client connects to, as `host:port` after the endpoint
    /// rules, and whether it uses TLS. A Rust addition (no JavaScript
    /// counterpart).
    pub fn endpoint(&self) -> (&str, bool) {
        (&self.inner.endpoint, self.inner.tls)
    }

    /// Logs in. Mirrors JavaScript `login(uid, token, callback, timeout)`.
    ///
    /// `callback(ok, error_code)`: accepted `(true, 0)`; token rejected
    /// `(false, 0)`; gate unreachable `(false, 20012)`; the auth quest failed
    /// `(false, code)` (20003 timeout, 20002 closed, the gate's code, or
    /// 20001 when its error answer has no non-zero integer `code`: never 0).
    /// `timeout` (ms, 0 = 20 000) bounds the auth quest; the connection has
    /// its own `connection_timeout`. A login while a session exists replaces
    /// it (the old one ends without events; its pending login, if any,
    /// completes with 20002). Ending a logged-in session (online, or logging
    /// in again after a lost connection) waits, as `close` does, for the
    /// threads of its connection and of those it lost and logged in again
    /// after (and for a resendable call another thread is sending on the old
    /// connection), before the new connection is opened, so every callback of the
    /// old session comes before this login's (a login during a first login
    /// closes that connection without waiting). That wait is normally short,
    /// and at most the close's one-second linger against a peer that stops
    /// reading, plus a callback those threads are running; in
    /// `Dispatch::Threads` a login made in a callback holds every client's
    /// callbacks that long. A login while another thread's `close` (or a
    /// kickout) is still ending the session waits for it, so that session's
    /// `SessionClosed` comes before this login's callback (not when the login
    /// runs on a thread of the connection that ending is joining, an
    /// `Inline` callback: it cannot wait for itself), and no wait of a login
    /// is made for a thread that waits, itself or through other threads, for
    /// the calling one, as for `close`. While the dispatch queue is full (docs/reliability.md) it
    /// fails at once with `(false, 20011)`, as every call does: nothing is
    /// sent and the current session, if any, goes on.
    pub fn login(
        &self,
        uid: i64,
        token: &str,
        callback: impl FnOnce(bool, i32) + Send + 'static,
        timeout: u64,
    ) {
        if self.inner.dispatcher.is_full() {
            // After a close another thread began, as below: its `SessionClosed`
            // is queued first. Then queued past the limit, in order, as a refused
            // call's callback is.
            self.inner.closing.wait_for_others();
            let code = error_code::FPNN_EC_CORE_WORK_QUEUE_FULL;
            log::debug!("login of uid {uid} refused: the dispatch queue is full");
            return self
                .inner
                .dispatcher
                .callback(Box::new(move || callback(false, code)));
        }
        // After a close another thread began: its `SessionClosed` comes first.
        self.inner.step_after_others(Event::Login {
            uid,
            token: token.to_owned(),
            timeout,
            callback: Box::new(callback),
        });
    }

    /// Says goodbye to the gate (`bye`), then closes. Mirrors JavaScript `bye()`.
    pub fn bye(&self) {
        self.inner.step(Event::Bye);
    }

    /// Closes the session: no relogin follows, pending calls complete with
    /// 20002 (with `RtmOptions::resend_on_reconnect`, calls made while
    /// reconnecting and still waiting complete with 20012), a login in
    /// progress completes with `(false, 20002)`, and `SessionClosed(0)` is
    /// emitted if the session had logged in, after every callback and push of
    /// the session (it returns once the threads of the connection, and of
    /// those the session lost and logged in again after, have ended, and the
    /// resendable calls other threads were sending are completed; a close
    /// during a first login, which owes no `SessionClosed`, closes the
    /// connection being logged in without waiting for its threads). It does
    /// not wait for a thread that waits, itself or through other threads,
    /// for the calling one (callbacks of two clients, or a ring of them,
    /// running at the same time, that end each other's sessions:
    /// docs/architecture.md, "Threads"): that thread, in a callback, ends
    /// once the callback returns, and `SessionClosed` is queued behind that
    /// callback. Mirrors JavaScript `close()`. `login` may be called again
    /// afterwards.
    pub fn close(&self) {
        self.inner.step(Event::Close);
        // A close another thread began (a kickout, a concurrent `close`) ends first.
        self.inner.closing.wait_for_others();
    }

    /// Turns automatic relogin on (it is on by default unless
    /// `RtmOptions::auto_reconnect` is false), for the current session too.
    /// Mirrors JavaScript `startAutoReconnect()`.
    pub fn start_auto_reconnect(&self) {
        self.inner.step(Event::StartAutoReconnect);
    }

    /// Test hook, not part of the API: divides every wait of the relogin
    /// schedule by `divisor` (0 counts as 1), so that end-to-end tests can
    /// run a long series in milliseconds. The schedule itself is tested with
    /// time passed in (the session machine's unit tests). Rust-only (a test
    /// hook).
    #[doc(hidden)]
    pub fn scale_relogin_waits_for_tests(&self, divisor: u32) {
        self.inner.core.lock().set_delay_divisor(divisor);
    }

    /// Test hook, not part of the API: lowers the dispatch queue's limit
    /// (docs/architecture.md, "Reliability"), so that a test can fill it
    /// quickly. Rust-only (a test hook).
    #[doc(hidden)]
    pub fn set_dispatch_limit_for_tests(&self, limit: usize) {
        self.inner.dispatcher.set_limit(limit);
    }

    /// Test hook, not part of the API: how many jobs wait in the dispatch
    /// queue. Rust-only (a test hook).
    #[doc(hidden)]
    pub fn dispatch_queue_len_for_tests(&self) -> usize {
        self.inner.dispatcher.len()
    }

    /// Test hook, not part of the API: how many threads wait for a session
    /// ending another thread is performing (`login`, `close`). Rust-only (a
    /// test hook).
    #[doc(hidden)]
    pub fn closing_waiters_for_tests(&self) -> usize {
        self.inner.closing_waiters()
    }

    /// Destroys the client. Mirrors JavaScript `destroy()`.
    ///
    /// Closes the connection, completes every pending call (with 20002, or
    /// with its answer if that had already arrived) before returning (on the
    /// dispatcher thread, or on the calling thread for what is left when the
    /// dispatcher no longer serves this client), waits for the connection's
    /// threads (and for those of connections the session lost and logged in
    /// again after), aborts a connect in progress, and drops the client's timer
    /// and its place on the shared dispatcher thread. After it
    /// returns no event runs and no earlier callback runs; a call made later
    /// still completes, with 20012 (login: `(false, 20012)`), on a short-lived
    /// thread (`Dispatch::Threads` and `Inline`) or in `dispatch_pending()`
    /// (`Queued`). As `close`, it does not wait for a thread that waits,
    /// itself or through other threads, for the calling one
    /// (docs/architecture.md, "Threads"): a connection thread of this client
    /// in such a wait ends on its own once its callback returns, and a
    /// callback of this client in such a wait (`Inline`, `Threads` or
    /// `Queued`) is not waited for: the remaining callbacks run on the
    /// calling thread meanwhile, as in a callback that destroys its own
    /// client, and that callback's later calls complete with 20012.
    pub fn destroy(&self) {
        self.inner.destroy();
    }

    /// Runs the callbacks and events waiting in `Dispatch::Queued` mode on the
    /// calling thread, in arrival order, and returns how many ran. In
    /// `Dispatch::Threads` and `Inline` mode it does nothing and returns 0. A Rust
    /// addition for game loops (JavaScript has its own event loop).
    ///
    /// The client's callbacks run one at a time: called from one of them, or on
    /// another thread while another call is running them, it runs nothing and
    /// returns 0. A [`destroy`](Self::destroy) on another thread waits for the
    /// callback running, then runs the remaining callbacks itself.
    pub fn dispatch_pending(&self) -> usize {
        self.inner.dispatcher.run_pending()
    }

    /// Listens to `ErrorRecorder`: diagnostics (unknown pushes, malformed
    /// pushes, ping timeouts, why a connect failed: TLS, DNS, TCP,
    /// handshake). Mirrors JavaScript `client.on('ErrorRecorder', fn)`.
    pub fn on_error_recorder(&self, handler: impl Fn(&RtmError) + Send + Sync + 'static) {
        self.inner
            .events
            .error_recorder
            .write()
            .push(Arc::new(handler));
    }

    /// Listens to `ReloginCompleted(successful, retry_again, error_code,
    /// retried_count)`, emitted after each automatic relogin attempt.
    /// Mirrors JavaScript `client.on('ReloginCompleted', fn)`.
    pub fn on_relogin_completed(
        &self,
        handler: impl Fn(bool, bool, i32, u32) + Send + Sync + 'static,
    ) {
        self.inner
            .events
            .relogin_completed
            .write()
            .push(Arc::new(handler));
    }

    /// Listens to `SessionClosed(error_code)`, emitted once when a session
    /// ends for good: 0 after `close`, `bye` or a kickout; 20001 when the
    /// connection was lost and auto-reconnect is off; 200027 (or another
    /// fatal code) when a relogin was refused. Mirrors JavaScript
    /// `client.on('SessionClosed', fn)`.
    pub fn on_session_closed(&self, handler: impl Fn(i32) + Send + Sync + 'static) {
        self.inner
            .events
            .session_closed
            .write()
            .push(Arc::new(handler));
    }

    /// Where pushes are delivered. Mirrors JavaScript `client.processor`.
    pub fn processor(&self) -> &RtmProcessor {
        &self.inner.processor
    }

    /// Sends `spec`'s method with `payload` and maps the answer: the one path
    /// every API method takes.
    ///
    /// With `RtmOptions::resend_on_reconnect`, a `Resend::Safe` quest may
    /// wait for the next connection (`resend.rs`).
    pub(crate) fn call<T, E>(
        &self,
        spec: &'static Spec,
        payload: Encoded,
        timeout: u64,
        map: impl FnOnce(&[u8]) -> Result<T, RtmError> + Send + 'static,
        map_err: impl FnOnce(RtmError) -> E + Send + 'static,
        callback: impl FnOnce(Option<E>, Option<T>) + Send + 'static,
    ) where
        T: Send + 'static,
        E: Send + 'static,
    {
        let deliver = self.inner.delivery();
        if deliver.queue_full() {
            let e = RtmError::new(
                error_code::FPNN_EC_CORE_WORK_QUEUE_FULL,
                format!("{}: the dispatch queue is full", spec.method),
            );
            return deliver.deliver(Box::new(move || callback(Some(map_err(e)), None)));
        }
        let done = boxed(Completion {
            deliver: Some(deliver),
            state: State::Waiting(map),
            call: Some((map_err, callback)),
        });
        let method = spec.method;
        if spec.resend == Resend::Safe && self.inner.options.resend_on_reconnect {
            let timeout = dur(timeout);
            return self.inner.send_or_wait(Unanswered {
                method: Method::Borrowed(method),
                payload: payload.into_bytes().into(),
                deadline: deadline_from(Instant::now(), timeout),
                timeout,
                callback: Reply::Raw(done),
                order: 0,
            });
        }
        self.inner.with_online(|conn| match conn {
            Some(conn) => conn.send_reply(
                method,
                Method::Borrowed(method),
                payload.bytes(),
                dur(timeout),
                Reply::Raw(done),
            ),
            None => done.answer(Err(not_connected())),
        });
    }

    /// Completes `callback` with an invalid-argument error (200033) without
    /// sending anything.
    pub(crate) fn reject<T, E>(
        &self,
        ex: &str,
        map_err: impl FnOnce(RtmError) -> E + Send + 'static,
        callback: impl FnOnce(Option<E>, Option<T>) + Send + 'static,
    ) where
        T: Send + 'static,
        E: Send + 'static,
    {
        self.reject_with(error_code::RTM_EC_EMPTY_PARAMETER, ex, map_err, callback);
    }

    /// Completes `callback` with the error `code` without sending anything: for a
    /// check the gate makes too, with the code the gate answers (a too-long data value
    /// is 200030 on both sides, docs/Data.md).
    pub(crate) fn reject_with<T, E>(
        &self,
        code: i32,
        ex: &str,
        map_err: impl FnOnce(RtmError) -> E + Send + 'static,
        callback: impl FnOnce(Option<E>, Option<T>) + Send + 'static,
    ) where
        T: Send + 'static,
        E: Send + 'static,
    {
        let e = RtmError::new(code, ex);
        (self.inner.deliverer())(Box::new(move || callback(Some(map_err(e)), None)));
    }

    /// A fresh message id (docs/Messages.md, "Ids, mids and bodies").
    pub(crate) fn next_mid(&self) -> i64 {
        self.inner.mids.lock().next()
    }

    /// The error the send methods wrap.
    pub(crate) fn send_error(mid: i64) -> impl FnOnce(RtmError) -> SendError {
        move |e| SendError::new(mid, e)
    }
}

/// One call's completion in one allocation, from the answer's bytes to the
/// application's callback: the connection's reader hands it the answer
/// ([`RawReply`]), it decodes it with `map` and keeps the result, and the
/// same box is then queued as the job that calls back ([`Run`]). Once run,
/// the emptied box is kept for this thread's next call of the same type
/// ([`boxed`]).
struct Completion<T, M, ME, CB> {
    /// Taken when the answer is in.
    deliver: Option<Deliverer>,
    state: State<M, T>,
    /// Taken when it runs.
    call: Option<(ME, CB)>,
}

enum State<M, T> {
    Waiting(M),
    Done(Result<T, RtmError>),
    Taken,
}

thread_local! {
    /// The box of the last completion this thread ran, emptied (nothing left in
    /// it to drop): the next call of the same type made on this thread fills it
    /// again instead of allocating ([`boxed`]). A callback that makes the next
    /// call (the usual way to keep calls in flight) finds its own completion's
    /// box here, so such a chain allocates and frees nothing per call
    /// (docs/performance-history.md, "Round 14").
    static SPARE: Cell<Option<Box<dyn Any + Send>>> = const { Cell::new(None) };
}

/// Completions larger than this are not kept as the spare: one call with a large
/// closure does not pin its memory to the thread.
const SPARE_MAX: usize = 256;

/// `c` in a box: this thread's spare ([`SPARE`]) when it has `c`'s type, or a new one.
fn boxed<T, M, ME, CB>(c: Completion<T, M, ME, CB>) -> Box<Completion<T, M, ME, CB>>
where
    Completion<T, M, ME, CB>: Any + Send,
{
    // `try_with`: a call made while the thread ends gets a new box.
    if let Ok(Some(spare)) = SPARE.try_with(Cell::take) {
        match spare.downcast::<Completion<T, M, ME, CB>>() {
            Ok(mut b) => {
                // The spare is emptied (`keep_spare`): nothing in it to drop.
                std::mem::forget(std::mem::replace(&mut *b, c));
                return b;
            }
            // Another type's: kept for a call of that type.
            Err(other) => {
                let _ = SPARE.try_with(|s| s.set(Some(other)));
            }
        }
    }
    Box::new(c)
}

/// Keeps `b` as this thread's spare ([`boxed`]) when it is emptied (its
/// callback and result taken, its deliverer used) and not large.
fn keep_spare<T, M, ME, CB>(b: Box<Completion<T, M, ME, CB>>)
where
    Completion<T, M, ME, CB>: Any + Send,
{
    let emptied = b.deliver.is_none() && b.call.is_none() && matches!(b.state, State::Taken);
    if emptied && std::mem::size_of::<Completion<T, M, ME, CB>>() <= SPARE_MAX {
        // `try_with`: a box dropped while the thread ends is not kept.
        let _ = SPARE.try_with(|s| s.set(Some(b)));
    }
}

impl<T, E, M, ME, CB> RawReply for Completion<T, M, ME, CB>
where
    T: Send + 'static,
    M: FnOnce(&[u8]) -> Result<T, RtmError> + Send + 'static,
    ME: FnOnce(RtmError) -> E + Send + 'static,
    CB: FnOnce(Option<E>, Option<T>) + Send + 'static,
{
    fn answer(self: Box<Self>, r: Result<&[u8], RtmError>) {
        self.complete(r, false)
    }

    fn answer_on_reader(self: Box<Self>, r: Result<&[u8], RtmError>) {
        self.complete(r, true)
    }
}

impl<T, E, M, ME, CB> Completion<T, M, ME, CB>
where
    T: Send + 'static,
    M: FnOnce(&[u8]) -> Result<T, RtmError> + Send + 'static,
    ME: FnOnce(RtmError) -> E + Send + 'static,
    CB: FnOnce(Option<E>, Option<T>) + Send + 'static,
{
    /// Decodes `r` into the box and delivers it; `on_reader`: see
    /// [`RawReply::answer_on_reader`].
    fn complete(mut self: Box<Self>, r: Result<&[u8], RtmError>, on_reader: bool) {
        let result = match std::mem::replace(&mut self.state, State::Taken) {
            // Decoding runs the crate's own code on the network's bytes; were
            // it ever to panic, the call still completes, with an error.
            State::Waiting(map) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.and_then(map)))
                    .unwrap_or_else(|_| {
                        log::error!("decoding an answer panicked");
                        Err(RtmError::new(
                            error_code::FPNN_EC_PROTO_TYPE_CONVERT,
                            "the answer could not be decoded",
                        ))
                    })
            }
            // Answered once only: the request table hands a quest out once.
            done => done_twice(done),
        };
        self.state = State::Done(result);
        if let Some(d) = self.deliver.take() {
            if on_reader {
                d.deliver_on_reader(self);
            } else {
                d.deliver(self);
            }
        }
    }
}

impl<T, E, M, ME, CB> Run for Completion<T, M, ME, CB>
where
    T: Send + 'static,
    M: Send + 'static,
    ME: FnOnce(RtmError) -> E + Send + 'static,
    CB: FnOnce(Option<E>, Option<T>) + Send + 'static,
{
    fn run(mut self: Box<Self>) {
        let state = std::mem::replace(&mut self.state, State::Taken);
        let call = self.call.take();
        // Emptied, the box is this thread's spare before the callback runs:
        // the call the callback makes next reuses it.
        keep_spare(self);
        // Run once only: it is queued once.
        let Some((map_err, callback)) = call else {
            return log::error!("a call's completion ran twice");
        };
        let result = match state {
            State::Done(r) => r,
            // Queued only once done (above).
            other => done_twice(other),
        };
        match result {
            Ok(d) => callback(None, Some(d)),
            Err(e) => callback(Some(map_err(e)), None),
        }
    }
}

/// A completion in a state it cannot be in: logged, and the callback still
/// called once, with an error, rather than a panic on an SDK thread.
fn done_twice<M, T>(_: State<M, T>) -> Result<T, RtmError> {
    log::error!("a call's completion was used out of order");
    Err(RtmError::new(
        error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
        "completion used out of order",
    ))
}

pub(super) fn not_connected() -> RtmError {
    RtmError::new(error_code::FPNN_EC_CORE_INVALID_CONNECTION, "not logged in")
}

impl From<RtmError> for SendError {
    fn from(e: RtmError) -> SendError {
        SendError::new(0, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Dispatch;

    #[test]
    fn a_completion_whose_decoder_panics_still_calls_back_once() {
        let d = Dispatcher::new(Dispatch::Queued);
        let (tx, rx) = std::sync::mpsc::channel();
        let done: Box<dyn RawReply> = Box::new(Completion {
            deliver: Some(Deliverer::queued(d.clone())),
            state: State::Waiting(|_: &[u8]| -> Result<u8, RtmError> { panic!("a decoder bug") }),
            call: Some((
                |e: RtmError| e.code,
                move |e: Option<i32>, v: Option<u8>| tx.send((e, v)).unwrap(),
            )),
        });
        done.answer(Ok(&[0xc0]));
        assert!(rx.try_recv().is_err(), "called back before the queue ran");
        assert_eq!(d.run_pending(), 1);
        assert_eq!(rx.try_recv().unwrap(), (Some(10010), None));
        assert!(rx.try_recv().is_err());
        d.shutdown();
    }

    /// A completion of the type made here, delivered through `d`'s queue.
    #[allow(clippy::type_complexity)]
    fn completion(
        d: &Arc<Dispatcher>,
        tx: std::sync::mpsc::Sender<Option<u8>>,
    ) -> Box<
        Completion<
            u8,
            impl FnOnce(&[u8]) -> Result<u8, RtmError> + Send + 'static,
            impl FnOnce(RtmError) -> i32 + Send + 'static,
            impl FnOnce(Option<i32>, Option<u8>) + Send + 'static,
        >,
    > {
        boxed(Completion {
            deliver: Some(Deliverer::queued(d.clone())),
            state: State::Waiting(|b: &[u8]| Ok(b[0])),
            call: Some((
                |e: RtmError| e.code,
                move |_: Option<i32>, v: Option<u8>| tx.send(v).unwrap(),
            )),
        })
    }

    #[test]
    fn a_completion_that_ran_lends_its_box_to_the_next_call_of_its_type() {
        let d = Dispatcher::new(Dispatch::Queued);
        let (tx, rx) = std::sync::mpsc::channel();
        let first = completion(&d, tx.clone());
        let at = &*first as *const _ as usize;
        let size = std::mem::size_of_val(&*first);
        first.answer(Ok(&[7]));
        assert_eq!(d.run_pending(), 1);
        assert_eq!(rx.try_recv().unwrap(), Some(7));
        // Were the box freed, this would most likely take its memory.
        let other = Vec::<u8>::with_capacity(size);
        // The spare: the same box, filled again, and its callback runs once.
        let second = completion(&d, tx.clone());
        assert_eq!(&*second as *const _ as usize, at);
        // Taken: a third call while the second is pending gets a box of its own.
        let third = completion(&d, tx);
        assert_ne!(&*third as *const _ as usize, at);
        second.answer(Ok(&[8]));
        third.answer(Err(RtmError::new(20003, "timed out")));
        assert_eq!(d.run_pending(), 2);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [Some(8), None]);
        drop(other);
        d.shutdown();
    }

    /// The report of dropped events reaches every `ErrorRecorder` handler even with the
    /// queue at its limit: its jobs are queued past the limit, and making them queues no
    /// event (no report dropped in turn, no second read of the handler list).
    #[test]
    fn the_report_of_dropped_events_reaches_every_handler_past_the_limit() {
        let client = RtmClient::new(RtmOptions {
            endpoint: Some("127.0.0.1:1".into()),
            dispatch: Dispatch::Queued,
            ..Default::default()
        })
        .unwrap();
        client.set_dispatch_limit_for_tests(1);
        let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
        for h in 0..3 {
            let got = got.clone();
            client.on_error_recorder(move |e| got.lock().push((h, e.code, e.ex.clone())));
        }
        // One handler's job fills the queue; the other two are dropped.
        client.inner.emit_error(RtmError::new(7, "first"));
        assert_eq!(client.dispatch_pending(), 1);
        assert_eq!(client.dispatch_pending(), 3);
        assert_eq!(client.dispatch_pending(), 0);
        let report = |h| {
            (
                h,
                20011,
                "2 events dropped: the dispatch queue was full".into(),
            )
        };
        assert_eq!(
            *got.lock(),
            [(0, 7, "first".into()), report(0), report(1), report(2)]
        );
        client.destroy();
    }

    #[test]
    fn endpoint_rules() {
        let o = |e: Option<&str>, s: Option<&str>| RtmOptions {
            endpoint: e.map(Into::into),
            ssl_endpoint: s.map(Into::into),
            ..Default::default()
        };
        assert_eq!(
            choose_endpoint(&o(Some("h:13325"), None)).unwrap(),
            ("h:13321".into(), false)
        );
        assert_eq!(
            choose_endpoint(&o(Some("h:1"), Some("s:2"))).unwrap(),
            ("s:2".into(), true)
        );
        assert_eq!(choose_endpoint(&o(None, None)).unwrap_err().code, 200033);
        assert_eq!(
            choose_endpoint(&o(Some("nope"), None)).unwrap_err().code,
            20012
        );
        assert_eq!(
            choose_endpoint(&o(Some("[::1]:13325"), None)).unwrap(),
            ("[::1]:13321".into(), false)
        );
    }
}
