//! The RTM client: login, the session's life (relogin, ping watchdog,
//! kickout), pushes, and the one path every API method takes to the gate.
//!
//! Threads of a client: one dispatcher (unless `Dispatch::Queued`), one
//! session worker per login (connect, auth, watchdog, relogin waits), and the
//! reader and writer of the current connection.

mod dedup;
mod detached;
pub(crate) mod dispatch;
mod json;
mod mid;
mod processor;
mod schedule;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use parking_lot::{Mutex, RwLock};
use rmpv::Value;

use crate::error::{error_code, RtmError, SendError};
use crate::fpnn::{ConnectCancel, ConnectOptions, Connection, Quest, QuestHandler, Responder};
use crate::types::{push_event_for, PushKind, PushMessage, RtmOptions};
use crate::value::{self, MapBuilder};
use dedup::DuplicateFilter;
pub(crate) use detached::Detached;
use dispatch::Dispatcher;
use mid::MidGenerator;
pub use processor::RtmProcessor;

/// The `version` sent with `auth`.
pub const SDK_VERSION: &str = concat!("Rust_", env!("CARGO_PKG_VERSION"));

/// Default timeout of a call, when `timeout` is 0.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 20_000;

type ErrorHandler = Arc<dyn Fn(&RtmError) + Send + Sync>;
type ReloginHandler = Arc<dyn Fn(bool, bool, i32, u32) + Send + Sync>;
type ClosedHandler = Arc<dyn Fn(i32) + Send + Sync>;
type LoginCallback = Box<dyn FnOnce(bool, i32) + Send>;

#[derive(Default)]
struct Events {
    error_recorder: RwLock<Vec<ErrorHandler>>,
    relogin_completed: RwLock<Vec<ReloginHandler>>,
    session_closed: RwLock<Vec<ClosedHandler>>,
}

enum Cmd {
    Stop,
    /// The connection with this serial closed.
    Lost(u64),
    /// The gate kicked the connection with this serial out.
    Kickout(u64),
}

#[derive(Default)]
struct Session {
    /// Bumped by every login, close and destroy; a worker whose generation
    /// is no longer current stops without touching anything.
    gen: u64,
    /// A session exists: logging in, online, or waiting to relogin.
    active: bool,
    /// The session's login succeeded, so its end is a `SessionClosed`.
    established: bool,
    destroyed: bool,
    conn: Option<Connection>,
    worker: Option<Sender<Cmd>>,
    /// Aborts the connect the worker is in, if any.
    connecting: Option<ConnectCancel>,
    /// Serial of `conn`: quests from any other connection are stale.
    serial: u64,
    /// What `start_auto_reconnect` and relogins use.
    credentials: Option<(i64, String, u64)>,
    auto_reconnect: bool,
}

/// What a session gives up when it is replaced, closed or destroyed.
struct Retired {
    worker: Option<Sender<Cmd>>,
    conn: Option<Connection>,
    connecting: Option<ConnectCancel>,
}

impl Session {
    /// Ends the current generation: its worker, connection and connect in
    /// progress are handed back to be stopped outside the lock.
    fn retire(&mut self) -> Retired {
        self.gen += 1;
        self.serial = 0;
        Retired {
            worker: self.worker.take(),
            conn: self.conn.take(),
            connecting: self.connecting.take(),
        }
    }
}

impl Retired {
    /// Stops it all; with `join`, waits for the connection's threads.
    fn stop(self, join: bool) {
        if let Some(t) = self.worker {
            let _ = t.send(Cmd::Stop);
        }
        if let Some(c) = self.connecting {
            c.cancel();
        }
        match self.conn {
            Some(c) if join => c.close_and_join(),
            Some(c) => c.close(),
            None => {}
        }
    }
}

pub(crate) struct Inner {
    options: RtmOptions,
    endpoint: String,
    tls: bool,
    pub(crate) dispatcher: Arc<Dispatcher>,
    events: Events,
    processor: RtmProcessor,
    session: Mutex<Session>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    last_ping: Mutex<Instant>,
    dedup: Mutex<DuplicateFilter>,
    mids: Mutex<MidGenerator>,
    serial: AtomicU64,
}

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
    /// The client, if a strong handle still exists.
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

thread_local! {
    /// Set while [`blocking`] runs its closure, and taken by the first
    /// callback registered then: that one is delivered straight to the
    /// waiting thread instead of the queue, so a blocking call can never wait
    /// on a queue only its own thread drains. Later callbacks in the same
    /// closure take the normal path.
    static DIRECT: Cell<bool> = const { Cell::new(false) };
}

/// Turns any `(err, data)` method into a blocking call that returns
/// `Result<T, E>`: for synchronous applications, no channels needed.
///
/// ```no_run
/// # use rtm_client::{RtmClient, RtmOptions, blocking};
/// # let client = RtmClient::new(RtmOptions { endpoint: Some("127.0.0.1:13321".into()), ..Default::default() })?;
/// let answer = blocking(|cb| client.send_message(1002, 30, "hi", "", 0, 5000, cb))?;
/// println!("sent at {}", answer.payload.mtime);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// It returns when the callback runs, which every method guarantees by its
/// timeout. The answer goes straight to the calling thread, bypassing the
/// dispatch queue, so it works on any thread, including inside a callback
/// and on the thread that calls `dispatch_pending()` in `Dispatch::Queued`
/// mode. If the closure registers no callback at all (it did not call an API
/// method), it returns at once with error 20001 rather than waiting forever.
pub fn blocking<T, E>(f: impl FnOnce(Box<dyn FnOnce(Option<E>, Option<T>) + Send>)) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<RtmError>,
{
    let (tx, rx) = crossbeam_channel::bounded(1);
    let cb: Box<dyn FnOnce(Option<E>, Option<T>) + Send> = Box::new(move |e, d| {
        let _ = tx.send((e, d));
    });
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DIRECT.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DIRECT.with(|d| d.replace(true)));
    f(cb);
    match rx.recv() {
        Ok((_, Some(d))) => Ok(d),
        Ok((Some(e), None)) => Err(e),
        _ => Err(E::from(RtmError::new(
            error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
            "the closure did not call an API method with the callback",
        ))),
    }
}

fn dur(ms: u64) -> Duration {
    Duration::from_millis(if ms == 0 { DEFAULT_TIMEOUT_MS } else { ms })
}

/// Applies the endpoint rules of PROTOCOL.md section 4.
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
    /// `host:port`. An endpoint on port 13325 (the TCP gate) is rewritten to
    /// 13321; `ssl_endpoint`, when set, wins and the client uses `wss`.
    pub fn new(options: RtmOptions) -> Result<RtmClient, RtmError> {
        let (endpoint, tls) = choose_endpoint(&options)?;
        let inner = Arc::new(Inner {
            dispatcher: Dispatcher::new(options.dispatch),
            session: Mutex::new(Session {
                auto_reconnect: options.auto_reconnect,
                ..Session::default()
            }),
            options,
            endpoint,
            tls,
            events: Events::default(),
            processor: RtmProcessor::default(),
            workers: Mutex::new(Vec::new()),
            last_ping: Mutex::new(Instant::now()),
            dedup: Mutex::new(DuplicateFilter::new()),
            mids: Mutex::new(MidGenerator::new()),
            serial: AtomicU64::new(0),
        });
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
    /// rules, and whether it uses TLS.
    pub fn endpoint(&self) -> (&str, bool) {
        (&self.inner.endpoint, self.inner.tls)
    }

    /// Logs in. Mirrors JavaScript `login(uid, token, callback, timeout)`.
    ///
    /// `callback(ok, error_code)`: accepted `(true, 0)`; token rejected
    /// `(false, 0)`; gate unreachable `(false, 20012)`; the auth quest failed
    /// `(false, code)` (20003 timeout, 20002 closed, or the gate's code).
    /// `timeout` (ms, 0 = 20 000) bounds the auth quest; the connection has
    /// its own `connection_timeout`. A login while a session exists replaces
    /// it (the old one ends without events; its pending login, if any,
    /// completes with 20002).
    pub fn login(
        &self,
        uid: i64,
        token: &str,
        callback: impl FnOnce(bool, i32) + Send + 'static,
        timeout: u64,
    ) {
        self.inner
            .clone()
            .start_session(uid, token.to_owned(), timeout, Some(Box::new(callback)));
    }

    /// Says goodbye to the gate (`bye`), then closes. Mirrors JavaScript `bye()`.
    pub fn bye(&self) {
        let (conn, gen) = {
            let s = self.inner.session.lock();
            (s.conn.clone(), s.gen)
        };
        match conn {
            Some(conn) => {
                let weak = Arc::downgrade(&self.inner);
                conn.send_quest("bye", &Value::Map(vec![]), dur(0), move |_| {
                    // Only the session `bye` was said on: a `login` since
                    // then has started another one.
                    if let Some(inner) = weak.upgrade() {
                        inner.close_if(Some(gen));
                    }
                });
            }
            None => self.inner.close(),
        }
    }

    /// Closes the session: no relogin follows, pending calls complete with
    /// 20002, a login in progress completes with `(false, 20002)`, and
    /// `SessionClosed(0)` is emitted if the session had logged in.
    /// Mirrors JavaScript `close()`. `login` may be called again afterwards.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Turns automatic relogin on (it is on by default unless
    /// `RtmOptions::auto_reconnect` is false), for the current session too.
    /// Mirrors JavaScript `startAutoReconnect()`.
    pub fn start_auto_reconnect(&self) {
        self.inner.session.lock().auto_reconnect = true;
    }

    /// Destroys the client. Mirrors JavaScript `destroy()`.
    ///
    /// Closes the connection, completes every pending call (with 20002, or
    /// with its answer if that had already arrived) before returning (on the
    /// dispatcher thread, or on the calling thread for what is left when that
    /// thread has stopped), and stops the client's dispatcher, session and
    /// connection threads. After it
    /// returns no event runs and no earlier callback runs; a call made later
    /// still completes, with 20012 (login: `(false, 20012)`), on a short-lived
    /// thread (`Dispatch::Threads`) or in `dispatch_pending()` (`Queued`).
    pub fn destroy(&self) {
        self.inner.destroy();
    }

    /// Runs the callbacks and events waiting in `Dispatch::Queued` mode on the
    /// calling thread, in arrival order, and returns how many ran. In
    /// `Dispatch::Threads` mode it does nothing and returns 0. A Rust
    /// addition for game loops (JavaScript has its own event loop).
    pub fn dispatch_pending(&self) -> usize {
        self.inner.dispatcher.run_pending()
    }

    /// Listens to `ErrorRecorder`: diagnostics (unknown pushes, malformed
    /// pushes, ping timeouts). Mirrors JavaScript `client.on('ErrorRecorder', fn)`.
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

    /// Sends `method` with `payload` and maps the answer: the one path every
    /// API method takes.
    pub(crate) fn call<T, E>(
        &self,
        method: &'static str,
        payload: Value,
        timeout: u64,
        map: impl FnOnce(Value) -> Result<T, RtmError> + Send + 'static,
        map_err: impl FnOnce(RtmError) -> E + Send + 'static,
        callback: impl FnOnce(Option<E>, Option<T>) + Send + 'static,
    ) where
        T: Send + 'static,
        E: Send + 'static,
    {
        let deliver = self.inner.deliverer();
        let complete = move |r: Result<T, RtmError>| {
            deliver(Box::new(move || match r {
                Ok(d) => callback(None, Some(d)),
                Err(e) => callback(Some(map_err(e)), None),
            }))
        };
        let conn = self.inner.session.lock().conn.clone();
        match conn {
            Some(conn) => conn.send_quest(method, &payload, dur(timeout), move |r| {
                complete(r.and_then(map))
            }),
            None => complete(Err(not_connected())),
        }
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
        let e = RtmError::new(error_code::RTM_EC_EMPTY_PARAMETER, ex);
        (self.inner.deliverer())(Box::new(move || callback(Some(map_err(e)), None)));
    }

    /// A fresh message id (PROTOCOL.md section 7).
    pub(crate) fn next_mid(&self) -> i64 {
        self.inner.mids.lock().next()
    }

    /// The error the send methods wrap.
    pub(crate) fn send_error(mid: i64) -> impl FnOnce(RtmError) -> SendError {
        move |e| SendError::new(mid, e)
    }
}

fn not_connected() -> RtmError {
    RtmError::new(error_code::FPNN_EC_CORE_INVALID_CONNECTION, "not logged in")
}

impl Inner {
    /// How a completion reaches user code: through the queue, or straight to
    /// a thread waiting in [`blocking`].
    fn deliverer(&self) -> impl FnOnce(dispatch::Job) + Send + 'static {
        let direct = DIRECT.with(|d| d.replace(false));
        let dispatcher = self.dispatcher.clone();
        move |job| {
            if direct {
                job()
            } else {
                dispatcher.callback(job)
            }
        }
    }

    fn emit_error(&self, e: RtmError) {
        log::debug!("ErrorRecorder: {e}");
        for h in self.events.error_recorder.read().iter().cloned() {
            let e = e.clone();
            self.dispatcher.event(Box::new(move || h(&e)));
        }
    }

    fn emit_relogin(&self, ok: bool, again: bool, code: i32, n: u32) {
        log::debug!("ReloginCompleted({ok}, {again}, {code}, {n})");
        for h in self.events.relogin_completed.read().iter().cloned() {
            self.dispatcher
                .event(Box::new(move || h(ok, again, code, n)));
        }
    }

    fn emit_closed(&self, code: i32) {
        log::debug!("SessionClosed({code})");
        for h in self.events.session_closed.read().iter().cloned() {
            self.dispatcher.event(Box::new(move || h(code)));
        }
    }

    fn start_session(
        self: Arc<Self>,
        uid: i64,
        token: String,
        timeout: u64,
        cb: Option<LoginCallback>,
    ) {
        // The login callback always goes through the queue: `blocking()`'s
        // direct path is for the one `(err, data)` callback it wraps.
        let dispatcher = self.dispatcher.clone();
        let deliver = move |job: dispatch::Job| dispatcher.callback(job);
        let (tx, rx) = crossbeam_channel::unbounded();
        let (gen, retired) = {
            let mut s = self.session.lock();
            if s.destroyed {
                drop(s);
                if let Some(cb) = cb {
                    deliver(Box::new(move || {
                        cb(false, error_code::FPNN_EC_CORE_INVALID_CONNECTION)
                    }));
                }
                return;
            }
            let retired = s.retire();
            s.active = true;
            s.established = false;
            s.credentials = Some((uid, token.clone(), timeout));
            s.worker = Some(tx.clone());
            (s.gen, retired)
        };
        retired.stop(false);
        let me = self.clone();
        let worker = Worker {
            inner: me,
            gen,
            uid,
            token,
            timeout,
            tx,
            rx,
        };
        // The callback waits in a slot the worker empties, so that it is
        // still called if the worker cannot be started.
        let slot = Arc::new(Mutex::new(cb));
        let worker_slot = slot.clone();
        let dispatcher = self.dispatcher.clone();
        let spawned = std::thread::Builder::new()
            .name("rtm-session".into())
            .spawn(move || {
                let cb = worker_slot.lock().take();
                worker.run(cb, dispatcher)
            });
        match spawned {
            Ok(h) => {
                let mut w = self.workers.lock();
                w.retain(|h| !h.is_finished());
                w.push(h);
            }
            Err(e) => {
                log::error!("cannot start the session thread: {e}");
                self.if_current(gen, |s| {
                    s.active = false;
                    s.worker = None;
                });
                if let Some(cb) = slot.lock().take() {
                    deliver(Box::new(move || {
                        cb(false, error_code::FPNN_EC_CORE_UNKNOWN_ERROR)
                    }));
                }
            }
        }
    }

    fn close(&self) {
        self.close_if(None);
    }

    /// Closes the session, or with `Some(gen)` only if that generation is
    /// still the current one.
    fn close_if(&self, gen: Option<u64>) {
        let (retired, was_active) = {
            let mut s = self.session.lock();
            if gen.is_some_and(|g| g != s.gen) {
                return;
            }
            let was = std::mem::replace(&mut s.active, false) && s.established;
            (s.retire(), was)
        };
        retired.stop(false);
        if was_active {
            self.emit_closed(0);
        }
    }

    fn destroy(&self) {
        self.dispatcher.mark_destroyed();
        let retired = {
            let mut s = self.session.lock();
            s.active = false;
            s.destroyed = true;
            s.retire()
        };
        retired.stop(true);
        let me = std::thread::current().id();
        let workers: Vec<_> = std::mem::take(&mut *self.workers.lock());
        for h in workers {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
        self.dispatcher.shutdown();
    }

    /// Only for a worker of generation `gen`: runs `f` on the session.
    fn if_current<R>(&self, gen: u64, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let mut s = self.session.lock();
        (s.gen == gen).then(|| f(&mut s))
    }

    fn on_push(&self, kind: PushKind, payload: &Value) {
        let m = match parse_push(kind, payload) {
            Some(m) => m,
            None => {
                self.emit_error(RtmError::new(
                    error_code::FPNN_EC_PROTO_TYPE_CONVERT,
                    format!("malformed {kind:?} push: {payload}"),
                ));
                return;
            }
        };
        let uid = self.session.lock().credentials.as_ref().map(|c| c.0);
        if let (Some(uid), Some(ex)) = (uid, json::excluded_uids(&m.attrs)) {
            if ex.contains(&uid) {
                return;
            }
        }
        let target = m.gid.or(m.rid).unwrap_or(0);
        if !self
            .dedup
            .lock()
            .admit((kind.code(), m.mid, m.from, target), Instant::now())
        {
            log::debug!("duplicate push {kind:?} mid {} dropped", m.mid);
            return;
        }
        let event = push_event_for(kind, m.mtype);
        let handlers = self.processor.push_handlers(event);
        if handlers.is_empty() {
            return;
        }
        let m = Arc::new(m);
        for h in handlers {
            let m = m.clone();
            self.dispatcher.event(Box::new(move || h(&m)));
        }
    }
}

fn parse_push(kind: PushKind, p: &Value) -> Option<PushMessage> {
    p.as_map()?;
    let id = |k: &str| value::map_get(p, k).and_then(value::as_i64);
    let (msg, binary) = value::text_and_bytes(value::get_or_nil(p, "msg"));
    Some(PushMessage {
        from: id("from")?,
        gid: if kind == PushKind::Group {
            Some(id("gid")?)
        } else {
            None
        },
        rid: if kind == PushKind::Room {
            Some(id("rid")?)
        } else {
            None
        },
        mtype: value::map_get(p, "mtype").and_then(value::as_u8)?,
        mid: id("mid").unwrap_or(0),
        msg,
        binary,
        attrs: value::as_string_lossy(value::get_or_nil(p, "attrs")),
        mtime: id("mtime").unwrap_or(0),
    })
}

/// Receives the gate's quests on a connection's reader thread. Acknowledges
/// first, then filters and queues the user's handlers.
struct PushHandler {
    inner: Weak<Inner>,
    tx: Sender<Cmd>,
    serial: u64,
}

impl QuestHandler for PushHandler {
    fn quest(&self, q: Quest, r: Responder) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        // Anything from a connection the session has let go of (closed or
        // replaced) is answered (by dropping `r`) and otherwise ignored.
        if inner.session.lock().serial != self.serial {
            return;
        }
        match q.method.as_str() {
            "ping" => {
                drop(r);
                *inner.last_ping.lock() = Instant::now();
                for h in inner.processor.ping_handlers() {
                    inner.dispatcher.event(Box::new(move || h()));
                }
            }
            "kickout" => {
                r.decline();
                for h in inner.processor.kickout_handlers() {
                    inner.dispatcher.event(Box::new(move || h()));
                }
                let _ = self.tx.send(Cmd::Kickout(self.serial));
            }
            "kickoutroom" => {
                r.decline();
                match value::map_get(&q.payload, "rid").and_then(value::as_i64) {
                    Some(rid) => {
                        for h in inner.processor.kickout_room_handlers() {
                            inner.dispatcher.event(Box::new(move || h(rid)));
                        }
                    }
                    None => inner.emit_error(RtmError::new(
                        error_code::FPNN_EC_PROTO_TYPE_CONVERT,
                        format!("kickoutroom without a rid: {}", q.payload),
                    )),
                }
            }
            m => {
                drop(r);
                match PushKind::from_method(m) {
                    Some(kind) => inner.on_push(kind, &q.payload),
                    None => inner.emit_error(RtmError::new(
                        error_code::FPNN_EC_CORE_UNKNOWN_METHOD,
                        format!("unknown push method {m:?}, answered and ignored"),
                    )),
                }
            }
        }
    }
}

enum LoginFail {
    /// `ok: false`.
    Rejected,
    /// The connection could not be opened.
    Unreachable(RtmError),
    /// The auth quest failed.
    Auth(RtmError),
    /// Stopped by close, login or destroy.
    Stopped,
}

struct Worker {
    inner: Arc<Inner>,
    gen: u64,
    uid: i64,
    token: String,
    timeout: u64,
    tx: Sender<Cmd>,
    rx: Receiver<Cmd>,
}

impl Worker {
    fn run(self, mut cb: Option<LoginCallback>, dispatcher: Arc<Dispatcher>) {
        let first = self.connect_and_auth();
        let (result, serial) = match first {
            Ok((conn, serial)) => {
                // Queued under the session lock, so a racing `close` queues
                // its SessionClosed after the login's success, not before.
                let installed = self.inner.if_current(self.gen, |s| {
                    s.conn = Some(conn.clone());
                    s.serial = serial;
                    s.established = true;
                    if let Some(cb) = cb.take() {
                        dispatcher.callback(Box::new(move || cb(true, 0)));
                    }
                });
                if installed.is_none() {
                    conn.close();
                    ((false, error_code::FPNN_EC_CORE_CONNECTION_CLOSED), None)
                } else {
                    ((true, 0), Some(serial))
                }
            }
            Err(f) => {
                self.inner.if_current(self.gen, |s| {
                    s.active = false;
                    s.worker = None;
                });
                let code = match f {
                    LoginFail::Rejected => 0,
                    LoginFail::Unreachable(e) => {
                        log::debug!("login: {e}");
                        error_code::FPNN_EC_CORE_INVALID_CONNECTION
                    }
                    LoginFail::Auth(e) => e.code,
                    LoginFail::Stopped => error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
                };
                ((false, code), None)
            }
        };
        if let Some(cb) = cb {
            dispatcher.callback(Box::new(move || cb(result.0, result.1)));
        }
        if let Some(serial) = serial {
            self.online(serial);
        }
    }

    /// Opens a connection and authenticates; interruptible by `Cmd::Stop`
    /// while waiting for the answer.
    fn connect_and_auth(&self) -> Result<(Connection, u64), LoginFail> {
        let inner = &self.inner;
        let serial = inner.serial.fetch_add(1, Ordering::Relaxed) + 1;
        let cancel = ConnectCancel::new();
        if inner
            .if_current(self.gen, |s| s.connecting = Some(cancel.clone()))
            .is_none()
        {
            return Err(LoginFail::Stopped);
        }
        let options = ConnectOptions {
            connect_timeout: Duration::from_millis(inner.options.connection_timeout.max(1)),
            extra_roots: inner.options.tls_root_certificates.clone(),
            cancel: Some(cancel.clone()),
            ..ConnectOptions::default()
        };
        let handler = PushHandler {
            inner: Arc::downgrade(inner),
            tx: self.tx.clone(),
            serial,
        };
        let lost = self.tx.clone();
        let conn = Connection::connect(&inner.endpoint, inner.tls, &options, handler, move |_| {
            let _ = lost.send(Cmd::Lost(serial));
        });
        // From now on quests from this connection are the session's: a push
        // right after the auth answer must not be taken for a stale one.
        inner.if_current(self.gen, |s| {
            s.connecting = None;
            if conn.is_ok() {
                s.serial = serial;
            }
        });
        let conn = conn.map_err(|e| {
            if cancel.is_cancelled() {
                LoginFail::Stopped
            } else {
                LoginFail::Unreachable(e)
            }
        })?;
        *inner.last_ping.lock() = Instant::now();
        let payload = MapBuilder::new()
            .put("pid", inner.options.pid)
            .put("uid", self.uid)
            .put("token", self.token.as_str())
            .put("version", SDK_VERSION)
            .put_opt("attrs", inner.options.attrs.as_ref().map(value::string_map))
            .build();
        let (atx, arx) = crossbeam_channel::bounded(1);
        conn.send_quest("auth", &payload, dur(self.timeout), move |r| {
            let _ = atx.send(r);
        });
        // A loss or kickout of this connection that `select!` happens to
        // pick before the (already arrived) answer must reach `online`.
        let mut held = Vec::new();
        loop {
            select! {
                recv(arx) -> r => {
                    return match r {
                        Ok(Ok(v)) if value::map_get(&v, "ok").and_then(value::as_bool) == Some(true) => {
                            for cmd in held {
                                let _ = self.tx.send(cmd);
                            }
                            Ok((conn, serial))
                        }
                        Ok(Ok(_)) => { conn.close(); Err(LoginFail::Rejected) }
                        Ok(Err(e)) => { conn.close(); Err(LoginFail::Auth(e)) }
                        Err(_) => { conn.close(); Err(LoginFail::Stopped) }
                    };
                }
                recv(self.rx) -> cmd => match cmd {
                    Ok(Cmd::Stop) | Err(_) => { conn.close_and_join(); return Err(LoginFail::Stopped); }
                    Ok(cmd @ (Cmd::Lost(s) | Cmd::Kickout(s))) if s == serial => held.push(cmd),
                    // Leftovers of an earlier connection.
                    Ok(_) => {}
                },
            }
        }
    }

    /// Watches an online session until it ends or is lost; relogs in after a
    /// loss.
    fn online(&self, mut serial: u64) {
        let max_ping = Duration::from_secs(self.inner.options.max_ping_interval_seconds.max(1));
        loop {
            let deadline = crate::fpnn::deadline_from(*self.inner.last_ping.lock(), max_ping);
            let lost = match self.rx.recv_deadline(deadline) {
                Ok(Cmd::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                Ok(Cmd::Lost(s)) if s == serial => true,
                Ok(Cmd::Kickout(s)) if s == serial => {
                    let conn = self.inner.if_current(self.gen, |s| {
                        s.active = false;
                        s.worker = None;
                        self.inner.emit_closed(0);
                        s.conn.take()
                    });
                    if let Some(Some(c)) = conn {
                        c.close();
                    }
                    return;
                }
                Ok(_) => false,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    let silent = self.inner.last_ping.lock().elapsed();
                    if silent >= max_ping {
                        self.inner.emit_error(RtmError::new(
                            error_code::FPNN_EC_CORE_TIMEOUT,
                            format!(
                                "no ping from the gate for {} ms: connection considered dead",
                                silent.as_millis()
                            ),
                        ));
                        true
                    } else {
                        false
                    }
                }
            };
            if !lost {
                continue;
            }
            let again = self.inner.if_current(self.gen, |s| {
                if !s.auto_reconnect {
                    s.active = false;
                    s.worker = None;
                    self.inner
                        .emit_closed(error_code::FPNN_EC_CORE_UNKNOWN_ERROR);
                }
                (s.conn.take(), s.auto_reconnect)
            });
            let again = again.map(|(conn, again)| {
                if let Some(c) = conn {
                    c.close();
                }
                again
            });
            match again {
                None => return,
                Some(false) => return,
                Some(true) => match self.relogin() {
                    Some(s) => serial = s,
                    None => return,
                },
            }
        }
    }

    /// The relogin series; `None` when the session ended.
    fn relogin(&self) -> Option<u64> {
        let strategy = self.inner.options.regressive_strategy;
        let divisor = self.inner.options.relogin_delay_divisor.max(1);
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let wait = schedule::relogin_delay(&strategy, attempt) / divisor;
            let until = crate::fpnn::deadline_from(Instant::now(), wait);
            loop {
                match self.rx.recv_deadline(until) {
                    Ok(Cmd::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        return None
                    }
                    Ok(_) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
                }
            }
            let r = self.connect_and_auth();
            // Events are queued under the session lock (queuing runs no user
            // code), so a racing `close` or `login` sees them in order.
            let end = |code: i32| {
                self.inner.if_current(self.gen, |s| {
                    s.active = false;
                    s.worker = None;
                    self.inner.emit_relogin(false, false, code, attempt);
                    self.inner.emit_closed(code);
                });
                None
            };
            match r {
                Ok((conn, serial)) => {
                    // Queued under the session lock, so a concurrent `close`
                    // either prevents it or queues SessionClosed after it.
                    let ok = self.inner.if_current(self.gen, |s| {
                        s.conn = Some(conn.clone());
                        s.serial = serial;
                        self.inner.emit_relogin(true, false, 0, attempt);
                    });
                    if ok.is_none() {
                        conn.close();
                        return None;
                    }
                    return Some(serial);
                }
                Err(LoginFail::Stopped) => return None,
                Err(LoginFail::Rejected) => return end(error_code::RTM_EC_INVALID_AUTH_TOEKN),
                Err(LoginFail::Auth(e)) if error_code::is_fatal_relogin_code(e.code) => {
                    return end(e.code)
                }
                Err(LoginFail::Auth(e)) => {
                    self.inner.if_current(self.gen, |_| {
                        self.inner.emit_relogin(false, true, e.code, attempt)
                    })?;
                }
                Err(LoginFail::Unreachable(e)) => {
                    log::debug!("relogin attempt {attempt}: {e}");
                    // As the login callback: the connection could not be opened.
                    let code = error_code::FPNN_EC_CORE_INVALID_CONNECTION;
                    self.inner.if_current(self.gen, |_| {
                        self.inner.emit_relogin(false, true, code, attempt)
                    })?;
                }
            }
        }
    }
}

impl From<RtmError> for SendError {
    fn from(e: RtmError) -> SendError {
        SendError::new(0, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn pushes_parse_text_and_binary_bodies() {
        let p = MapBuilder::new()
            .put("from", 7)
            .put("gid", 9)
            .put("mtype", 30)
            .put("mid", 5)
            .put("msg", Value::Binary(vec![0xff, 0x00]))
            .put("attrs", "a")
            .put("mtime", 11)
            .build();
        let m = parse_push(PushKind::Group, &p).unwrap();
        assert_eq!(
            (m.from, m.gid, m.rid, m.mtype, m.mid, m.mtime),
            (7, Some(9), None, 30, 5, 11)
        );
        assert_eq!((m.msg, m.binary), (None, vec![0xff, 0]));
        assert!(
            parse_push(PushKind::Room, &p).is_none(),
            "room push without rid"
        );
        assert!(parse_push(PushKind::P2p, &Value::from(3)).is_none());
    }
}
