//! One FPNN connection (docs/architecture.md has the whole picture). This
//! file owns the handle ([`Connection`]: connect, send, close) and its
//! options; `shared.rs` the state the handle, reader and writer share;
//! `reader.rs` and `writer.rs` the connection's two threads; `responder.rs`
//! the server's quests and their answers.

mod reader;
mod responder;
mod shared;
mod writer;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use crossbeam_channel::Receiver;
use parking_lot::MutexGuard;
use rmpv::Value;

use super::packet::{self, Kind};
use super::transport::{self, Endpoint};
use crate::error::{error_code, RtmError};
use crate::waits;
use crate::ws::frame::{FrameParser, Role};
use crate::ws::{WsError, WsReader};
use reader::reader_loop;
pub use responder::{Quest, QuestHandler, Responder};
pub(crate) use shared::guarded;
use shared::HandBack;
pub(crate) use shared::Unanswered;
use shared::{err, Pending, Shared};
use transport::ConnectCancel;
#[cfg(test)]
pub(crate) use writer::set_reader;
#[cfg(test)]
pub(crate) use writer::WriteBatch;
pub(crate) use writer::{at_flush, flush_write_batch, owe_ack, write_batch};
use writer::{writer_loop, Due};

/// The callback of a twoway quest: the answer's payload, or an error (the
/// server's error answer, 20003 timeout, 20002 connection closed).
pub type AnswerCallback = Box<dyn FnOnce(Result<Value, RtmError>) + Send + 'static>;

/// The callback of a twoway quest that decodes its answer itself: the
/// answer's msgpack payload, borrowed from the frame it came in (checked to
/// be a well-formed FPNN answer with status 0, not yet as msgpack), or an
/// error as for [`AnswerCallback`]. The RTM client's methods use it to
/// decode an answer once, straight into their result type.
pub(crate) type RawCallback = Box<dyn RawReply>;

/// What a [`RawCallback`] is: any such closure, or a type that keeps the
/// decoded answer in its own allocation (the client's calls,
/// `Completion` in src/client/handle.rs).
pub(crate) trait RawReply: Send + 'static {
    /// Completes the quest.
    fn answer(self: Box<Self>, r: Result<&[u8], RtmError>);

    /// Completes the quest with the answer the reader thread just read,
    /// called there with no lock held: the one place where a client in
    /// `Dispatch::Inline` mode may run the application's callback at once
    /// (src/client/dispatch.rs). Anywhere else (a timeout, a close) the
    /// quest completes through [`RawReply::answer`].
    fn answer_on_reader(self: Box<Self>, r: Result<&[u8], RtmError>) {
        self.answer(r)
    }
}

impl<F> RawReply for F
where
    F: for<'a> FnOnce(Result<&'a [u8], RtmError>) + Send + 'static,
{
    fn answer(self: Box<Self>, r: Result<&[u8], RtmError>) {
        (*self)(r)
    }
}

/// A pending quest's method name: borrowed when known at compile time.
pub(crate) type Method = std::borrow::Cow<'static, str>;

/// How a quest's answer reaches its owner.
pub(crate) enum Reply {
    /// As a decoded [`Value`] (the public [`Connection::send_quest`]).
    Value(AnswerCallback),
    /// As the payload's bytes ([`RawCallback`]).
    Raw(RawCallback),
}

impl Reply {
    /// Completes the quest with `e`.
    pub(crate) fn fail(self, e: RtmError) {
        match self {
            Reply::Value(cb) => cb(Err(e)),
            Reply::Raw(cb) => cb.answer(Err(e)),
        }
    }
}

/// The default [`ConnectOptions::write_queue_limit`]: 4 MiB.
pub const DEFAULT_WRITE_QUEUE_LIMIT: usize = 4 << 20;

/// Options of [`Connection::connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limit for DNS, TCP, TLS and the WebSocket upgrade together. Default 30 s.
    pub connect_timeout: Duration,
    /// Largest packet accepted or sent, header included. Default 8 MiB. A
    /// frame is refused from its header past this or past the largest packet
    /// an FPNN header can describe (`packet::LARGEST_PACKET`, 4 GiB + 271).
    pub max_packet_size: usize,
    /// Extra DER root certificates trusted for `wss` besides the usual web roots.
    pub extra_roots: Vec<Vec<u8>>,
    /// The WebSocket path. Default `/service/websocket`.
    pub path: String,
    /// Lets another thread abort the connect (see [`ConnectCancel`]). Default
    /// `None`.
    pub cancel: Option<ConnectCancel>,
    /// Most bytes of quests waiting to be written (the peer or the network
    /// slower than the caller). A quest that would pass it fails at once
    /// with 20011 (`FPNN_EC_CORE_WORK_QUEUE_FULL`) through its callback; a
    /// oneway quest with that error. Answers to the server's quests are never
    /// refused: one that passes twice the limit makes the reader stop reading
    /// until the writer has made room (backpressure on the server); pongs past it are
    /// kept to the latest ping's. Default 4 MiB. (Rust-only.)
    pub write_queue_limit: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(30),
            max_packet_size: packet::DEFAULT_MAX_PACKET,
            extra_roots: Vec::new(),
            path: "/service/websocket".to_owned(),
            cancel: None,
            write_queue_limit: DEFAULT_WRITE_QUEUE_LIMIT,
        }
    }
}

/// Why a connection ended, as given to the close handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Connection::close`] was called (or the last handle dropped).
    Local,
    /// The peer closed the connection.
    Peer,
    /// The connection failed; the text says how.
    Error(String),
}

/// What every clone of a [`Connection`] shares: the connection's state,
/// which it closes when the last user handle goes away. One `Arc` per
/// handle, so a clone costs one atomic increment.
struct CloseOnDrop(QuestSender);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0 .0.shut(CloseReason::Local);
    }
}

/// A connection's quest path without the close-on-drop of a [`Connection`]
/// handle: keeping one does not keep the connection open (a quest sent on
/// a closed connection fails with 20002). The client keeps one per thread
/// for the length of a write batch, so the sends of one batch look the
/// online connection up once (`Inner::with_online`, src/client/driver.rs).
#[derive(Clone)]
pub(crate) struct QuestSender(Arc<Shared>);

impl QuestSender {
    /// [`Connection::send_quest_bytes`] for the crate: `stored` is the
    /// method name the pending quest keeps for its logs and errors (a name
    /// known at compile time is not copied), and the answer may be handed
    /// over as bytes ([`Reply::Raw`]).
    pub(crate) fn send_reply(
        &self,
        method: &str,
        stored: Method,
        payload: &[u8],
        timeout: Duration,
        callback: Reply,
    ) {
        if let Err(e) = self.check(method, payload) {
            return callback.fail(e);
        }
        // Made by this connection's own reader (a callback it runs), the
        // deadline is given when the read's batch is flushed
        // (src/fpnn/table.rs): no clock read per quest. Only for an owner
        // that asked for it (`defer_deadlines`).
        let due = if self.0.defer_deadlines.load(Ordering::Relaxed)
            && writer::reading(&self.0.outbox.written)
        {
            Due::AtFlush(timeout)
        } else {
            Due::At(transport::deadline_after(timeout))
        };
        let pending = Pending {
            callback,
            method: stored,
            timeout_ms: shared::millis(timeout),
            resend: None,
        };
        if let Err(p) = self.enqueue(pending, method, due, payload) {
            p.callback.fail(err(
                error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
                "connection closed",
            ))
        }
    }

    /// Registers `pending` and queues its frame; a closed table gives it back.
    /// Inlined into its two callers: `pending` (64 bytes) and the arguments are
    /// not copied into a call of their own on every quest's way.
    #[inline(always)]
    fn enqueue(
        &self,
        pending: Pending,
        method: &str,
        due: Due,
        payload: &[u8],
    ) -> Result<(), Pending> {
        // Not matched in place: a match scrutinee keeps the lock guard alive
        // through the arms, and the caller's callback may send again. Alone in
        // flight, the quest is written at once by this thread (see writer.rs).
        let (inserted, alone) = {
            let mut table = self.0.table.lock();
            let r = match due {
                Due::At(d) => table.insert(pending, d),
                Due::AtFlush(timeout) => table.insert_unstamped(pending, timeout),
            };
            (r, table.len() == 1)
        };
        let seq = inserted?;
        log::trace!("quest {method} seq {seq} sent to {}", self.0.endpoint);
        // If the writer is gone the close path has completed the quest already.
        let queued = self
            .0
            .send_frame(Kind::Twoway, seq, (method, 0), payload, Some(due), alone);
        if queued.is_err() {
            // Not in the queue: nobody else completes it (unless it has just
            // been closed or has timed out, which took it from the table).
            let pending = self.0.table.lock().complete(seq);
            if let Some((p, _)) = pending {
                p.callback.fail(queue_full());
            }
        }
        Ok(())
    }

    fn check(&self, method: &str, payload: &[u8]) -> Result<(), RtmError> {
        if !packet::method_fits(method) {
            return Err(err(
                error_code::FPNN_EC_PROTO_UNKNOWN_ERROR,
                "method name must be 1 to 255 bytes",
            ));
        }
        if payload.is_empty() {
            return Err(err(
                error_code::FPNN_EC_PROTO_UNKNOWN_ERROR,
                "empty payload",
            ));
        }
        let len = packet::packet_len(Kind::Twoway, method.len(), payload.len());
        // psize is a u32 on the wire, whatever the configured limit.
        if len > self.0.max_packet || payload.len() > u32::MAX as usize {
            return Err(err(
                error_code::FPNN_EC_PROTO_UNKNOWN_ERROR,
                format!("quest is over the {} byte packet limit", self.0.max_packet),
            ));
        }
        Ok(())
    }
}

/// A client connection to an FPNN server over WebSocket (`ws` or `wss`).
///
/// Cheap to clone; every clone is the same connection, usable from any
/// thread. When the last clone is dropped the connection closes.
///
/// Threads: answers' callbacks and the [`QuestHandler`] run on the
/// connection's reader thread; timeouts' callbacks run on its writer thread;
/// callbacks completed by a close run on the thread that closed it. No lock
/// is held while any of them runs, so a callback may send quests or close the
/// connection. If the connection is already closed, [`Connection::send_quest`]
/// calls the callback (20002) before it returns.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<CloseOnDrop>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.shared().endpoint)
            .field("open", &self.is_open())
            .finish()
    }
}

impl Connection {
    /// The state the reader and writer threads share with the handles.
    fn shared(&self) -> &Arc<Shared> {
        &self.inner.0 .0
    }

    /// Connects to `endpoint` (`host:port`, or a `ws://`/`wss://` URL; `tls`
    /// chooses for the `host:port` form), blocking for at most
    /// `options.connect_timeout`. `handler` receives the server's quests;
    /// `on_close` runs once when the connection ends, whoever ends it.
    ///
    /// Errors: 20012 (`FPNN_EC_CORE_INVALID_CONNECTION`) when the endpoint
    /// cannot be parsed or reached, 20003 when the timeout ran out, 20002
    /// when `options.cancel` was cancelled.
    pub fn connect(
        endpoint: &str,
        tls: bool,
        options: &ConnectOptions,
        handler: impl QuestHandler,
        on_close: impl FnOnce(CloseReason) + Send + 'static,
    ) -> Result<Connection, RtmError> {
        let (ep, opened) = open(endpoint, tls, options)?;
        let (conn, reader) = Connection::start(ep, opened, options, Box::new(on_close))?;
        let handler: Arc<dyn QuestHandler> = Arc::new(handler);
        let shared = conn.shared().clone();
        match std::thread::Builder::new()
            .name("rtm-reader".into())
            .spawn(move || {
                shared.reader_started();
                reader_loop(shared, reader, handler)
            }) {
            Ok(h) => conn.adopt(h),
            Err(e) => {
                conn.shared()
                    .shut(CloseReason::Error(format!("cannot spawn thread: {e}")));
                return Err(err(error_code::FPNN_EC_CORE_UNKNOWN_ERROR, e.to_string()));
            }
        }
        Ok(conn)
    }

    /// [`Connection::connect`] on a new thread, which then becomes the
    /// connection's reader: the caller does not block, and no thread waits
    /// for the dial. `on_result` runs on that thread, before the first read.
    /// Fails only when the thread cannot be started.
    pub(crate) fn connect_then(
        endpoint: String,
        tls: bool,
        options: ConnectOptions,
        handler: impl QuestHandler,
        on_close: impl FnOnce(CloseReason) + Send + 'static,
        on_result: impl FnOnce(Result<Connection, RtmError>) + Send + 'static,
    ) -> io::Result<()> {
        let (htx, hrx) = crossbeam_channel::bounded::<JoinHandle<()>>(1);
        let h = std::thread::Builder::new()
            .name("rtm-reader".into())
            .spawn(move || {
                let started = open(&endpoint, tls, &options).and_then(|(ep, opened)| {
                    Connection::start(ep, opened, &options, Box::new(on_close))
                });
                match started {
                    Err(e) => on_result(Err(e)),
                    Ok((conn, reader)) => {
                        let shared = conn.shared().clone();
                        // Before `on_result`, which may close the connection.
                        shared.reader_started();
                        // Sent right after the spawn: so close_and_join
                        // waits for this thread too.
                        if let Ok(h) = hrx.recv() {
                            conn.adopt(h);
                        }
                        on_result(Ok(conn));
                        reader_loop(shared, reader, Arc::new(handler));
                    }
                }
            })?;
        let _ = htx.send(h);
        Ok(())
    }

    /// Builds the connection around an opened socket and starts its writer;
    /// the caller runs the reader.
    fn start(
        ep: Endpoint,
        opened: transport::Opened,
        options: &ConnectOptions,
        on_close: shared::CloseHandler,
    ) -> Result<(Connection, WsReader<transport::ReadHalf>), RtmError> {
        let shared = Arc::new(Shared::new(
            ep,
            opened.control,
            opened.written.clone(),
            options.write_queue_limit,
            options.max_packet_size,
            Some(on_close),
        ));
        let mut read = opened.read;
        // The reader thread batches what it sends (see writer.rs) and sends
        // it before it waits for the socket.
        read.set_before_read(writer::flush_write_batch);
        let weak = Arc::downgrade(&shared);
        read.set_flush_hook(Box::new(move || {
            if let Some(s) = weak.upgrade() {
                s.outbox.flush();
            }
        }));
        let parser = FrameParser::new(
            Role::Client,
            packet::frame_limit(options.max_packet_size),
            true,
        );
        let reader = WsReader::new(read, &opened.leftover, parser);
        let s = shared.clone();
        let w = std::thread::Builder::new()
            .name("rtm-writer".into())
            .spawn(move || writer_loop(s, opened.write));
        let conn = Connection {
            inner: Arc::new(CloseOnDrop(QuestSender(shared))),
        };
        match w {
            Ok(h) => conn.adopt(h),
            Err(e) => {
                conn.shared()
                    .shut(CloseReason::Error(format!("cannot spawn thread: {e}")));
                return Err(err(error_code::FPNN_EC_CORE_UNKNOWN_ERROR, e.to_string()));
            }
        }
        Ok((conn, reader))
    }

    /// Counts `h` as one of the connection's threads, to join.
    fn adopt(&self, h: JoinHandle<()>) {
        let mut threads = self.shared().threads.lock();
        threads.ids.push(h.thread().id());
        threads.handles.push(h);
    }

    /// Sends a twoway quest. `callback` runs exactly once: with the answer's
    /// payload, the server's error answer, 20003 when `timeout` passes first,
    /// or 20002 when the connection closes first.
    pub fn send_quest(
        &self,
        method: &str,
        payload: &Value,
        timeout: Duration,
        callback: impl FnOnce(Result<Value, RtmError>) + Send + 'static,
    ) {
        let mut body = Vec::new();
        packet::encode_payload(payload, &mut body);
        self.send_quest_bytes(method, &body, timeout, Box::new(callback));
    }

    /// [`Connection::send_quest`] with a payload already encoded as msgpack.
    pub fn send_quest_bytes(
        &self,
        method: &str,
        payload: &[u8],
        timeout: Duration,
        callback: AnswerCallback,
    ) {
        let stored = Method::Owned(method.into());
        self.quests()
            .send_reply(method, stored, payload, timeout, Reply::Value(callback));
    }

    /// This connection's quest path, to keep without keeping the
    /// connection open ([`QuestSender`]).
    pub(crate) fn quest_sender(&self) -> QuestSender {
        self.inner.0.clone()
    }

    fn quests(&self) -> &QuestSender {
        &self.inner.0
    }

    /// Sends a quest that may be sent again on another connection: if this
    /// one ends before the answer, the quest goes to the hand-back
    /// ([`Connection::on_unanswered`]) instead of failing with 20002. A
    /// connection already closed gives it back at once, uncalled; a quest
    /// this connection cannot send (bad method, over the packet limit) fails
    /// through its callback.
    pub(crate) fn send_unanswered(&self, q: Unanswered) -> Result<(), Unanswered> {
        if let Err(e) = self.quests().check(&q.method, &q.payload) {
            q.callback.fail(e);
            return Ok(());
        }
        let method = q.method.clone();
        let payload = q.payload.clone();
        let pending = Pending {
            callback: q.callback,
            method: q.method,
            timeout_ms: shared::millis(q.timeout),
            resend: Some(Box::new(shared::Resendable {
                payload: q.payload,
                deadline: q.deadline,
                order: q.order,
            })),
        };
        match self
            .quests()
            .enqueue(pending, &method, Due::At(q.deadline), &payload)
        {
            // A resendable quest keeps its payload, so `unanswered` gives it.
            Err(p) => p.unanswered().map_or(Ok(()), Err),
            Ok(()) => Ok(()),
        }
    }

    /// From now on, a quest made by this connection's own reader thread (a
    /// callback or handler it runs, inside its read's write batch) gets its
    /// deadline when that batch is flushed and the quest sent, with one clock
    /// read for the whole batch, so its timeout counts from then. A batch that
    /// never ends means no deadline, so only an owner whose reader-run
    /// callbacks cannot wait for such a quest's completion asks for it:
    /// `RtmClient`, whose completions run in order after the callback that
    /// waits (so that wait never ends either way). Quests made on any other
    /// thread (another client's callbacks, a dispatcher's turn, a poller) get
    /// their deadline at the call, and so do all of a plain `Connection`'s,
    /// whose handler may wait for its own quest's answer (tests/timeouts.rs).
    pub(crate) fn defer_deadlines(&self) {
        self.shared().defer_deadlines.store(true, Ordering::Relaxed);
    }

    /// Asks for the resendable quests ([`Connection::send_unanswered`]) still
    /// pending when this connection ends: `f` receives them, in the order
    /// they were sent, on the thread that ends the connection, before the
    /// close handler runs. Without it they fail with 20002 like the others.
    pub(crate) fn on_unanswered(&self, f: HandBack) {
        *self.shared().hand_back.lock() = Some(f);
    }

    /// Sends a oneway quest (no answer). Fails with 20002 when closed.
    pub fn send_oneway(&self, method: &str, payload: &Value) -> Result<(), RtmError> {
        let mut body = Vec::new();
        packet::encode_payload(payload, &mut body);
        self.quests().check(method, &body)?;
        if !self.is_open() {
            return Err(err(
                error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
                "connection closed",
            ));
        }
        self.shared()
            .send_frame(Kind::Oneway, 0, (method, 0), &body, None, true)
            .map_err(|_| queue_full())
    }

    /// Closes the connection: pending quests complete with 20002 on this
    /// thread, the close handler runs with [`CloseReason::Local`], and the
    /// writer thread sends what was queued except twoway quests (answers to
    /// the server's quests, oneway quests, a pong), then a close frame, and
    /// shuts the socket, giving up the writes after one second (a peer that
    /// does not read), which ends the connection's threads. The twoway quests
    /// not yet written are dropped (a frame partly written is finished
    /// first), so a quest whose callback got 20002 does not reach the server
    /// after it; a oneway quest [`Connection::send_oneway`] accepted has no
    /// callback to fail, and is written. Idempotent.
    pub fn close(&self) {
        self.shared().shut(CloseReason::Local);
    }

    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        self.shared().open.load(Ordering::Acquire)
    }

    /// A receiver that is disconnected once the connection has ended (at once if it
    /// has): for a thread that waits on a channel of its own and must also notice the
    /// end without polling (the file sends, src/api/files.rs). Nothing is ever sent on
    /// it. All receivers share one channel, made on the first call.
    pub(crate) fn closed_signal(&self) -> Receiver<()> {
        let mut signal = self.shared().close_signal.lock();
        // `shut` turns `open` false before it drops the channel under this lock, so
        // a channel made here while open is dropped by it.
        if !self.is_open() {
            return crossbeam_channel::bounded(0).1;
        }
        signal
            .get_or_insert_with(|| crossbeam_channel::bounded(0))
            .1
            .clone()
    }

    /// Number of quests waiting for an answer.
    pub fn pending(&self) -> usize {
        self.shared().table.lock().len()
    }

    /// Test hook, not part of the API: how many times the reader has stopped
    /// reading until the writer made room, because answers to the server's
    /// quests took the write queue past twice its limit (src/fpnn/connection/writer.rs,
    /// `Outbox::wait_for_room`). Rust-only (a test hook).
    #[doc(hidden)]
    pub fn reads_held_back_for_tests(&self) -> usize {
        self.shared().outbox.held_back()
    }

    /// The endpoint connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared().endpoint
    }

    /// Closes the connection ([`Connection::close`]) and waits for its threads
    /// to end: the writer's linger (at most `CLOSE_LINGER`, 1 s, in
    /// src/fpnn/connection/writer.rs) writes what the close keeps (answers to
    /// the server's quests, oneway quests, a pong) and the close frame, then
    /// shuts the socket, which ends the reader; so it returns within about
    /// that long, plus whatever callback those threads are running. A second
    /// call, on another thread, waits for the threads the first is joining.
    /// Called from one of the connection's own threads it waits neither for
    /// that thread nor for another call's join (which may be waiting for
    /// it): it joins only the other thread, if no call has taken it yet.
    /// From the writer it shuts the socket at once (no close frame), since the
    /// writer cannot linger while it waits for the reader. Nor does it wait
    /// for a thread of the connection that waits, itself or through other
    /// threads, for the calling thread (src/waits.rs: a `Dispatch::Inline`
    /// callback on the reader that ends the session of the client the caller
    /// is ending, at the same time): that thread ends on its own once the
    /// wait it is in is over and its callback returns.
    pub fn close_and_join(&self) {
        self.close();
        // On the writer (a quest's timeout callback) nobody is left to write the
        // close frame and shut the socket, which ends the reader it joins.
        if self.shared().on_writer() {
            transport::shutdown(&self.shared().control);
        }
        self.join_threads();
    }

    /// [`Connection::close_and_join`] without the linger: the socket is shut
    /// at once, whatever the peer does, so nothing more is written (the close
    /// frame included) and the threads end at once, but for a callback they
    /// run. `RtmClient::destroy` (and the drop of its last handle) closes so
    /// (docs/security.md, "Dropping the client").
    pub(crate) fn shut_and_join(&self) {
        self.close();
        transport::shutdown(&self.shared().control);
        self.join_threads();
    }

    /// Waits for the connection's threads ([`Connection::close_and_join`]),
    /// but not for one that waits, itself or through other threads, for the
    /// calling thread (src/waits.rs): a `Dispatch::Inline` callback on this
    /// connection's reader that closes, destroys or logs in the client whose
    /// ending the caller performs, or a ring of such callbacks. That thread's
    /// handle stays, for a later join (or is let go with the connection), and
    /// the thread ends on its own once the wait it is in (for this caller)
    /// and its callback are over: the connection is closed.
    fn join_threads(&self) {
        let shared = self.shared();
        let me = std::thread::current().id();
        let own = self.is_own_thread();
        let mut threads = shared.threads.lock();
        loop {
            // All of them, this thread's too: so that the other thread, closing
            // meanwhile, finds none to join (it would wait for this one).
            let taken = std::mem::take(&mut threads.handles);
            if !taken.is_empty() {
                threads.joining += 1;
                shared.joining.fetch_add(1, Ordering::SeqCst);
                let (left, skipped) = MutexGuard::unlocked(&mut threads, || {
                    let mut left = Vec::new();
                    let mut skipped = false;
                    for h in taken {
                        if h.thread().id() == me {
                            left.push(h);
                            continue;
                        }
                        let waiting = waits::wait_for([h.thread().id()]);
                        if waiting.is_empty() {
                            skipped = true;
                            left.push(h);
                            continue;
                        }
                        let _ = h.join();
                    }
                    (left, skipped)
                });
                shared.joining.fetch_sub(1, Ordering::SeqCst);
                // Back, for a call on another thread to join.
                threads.handles.extend(left);
                threads.joining -= 1;
                shared.joined.notify_all();
                if own || skipped {
                    return;
                }
                continue;
            }
            if own || threads.joining == 0 {
                return;
            }
            // Another caller is joining them: this one waits for them too.
            let ids: Vec<ThreadId> = threads.ids.iter().copied().filter(|t| *t != me).collect();
            let waiting = waits::wait_for(ids);
            if waiting.is_empty() {
                return;
            }
            shared.joining.fetch_add(1, Ordering::SeqCst);
            shared.joined.wait(&mut threads);
            shared.joining.fetch_sub(1, Ordering::SeqCst);
            drop(waiting);
        }
    }

    /// Whether the connection's reader and writer threads have both ended
    /// (and no [`Connection::close_and_join`] is still joining them).
    pub(crate) fn threads_ended(&self) -> bool {
        let threads = self.shared().threads.lock();
        threads.joining == 0 && threads.handles.iter().all(JoinHandle::is_finished)
    }

    /// Test hook, not part of the API: how many callers of
    /// [`Connection::close_and_join`] are waiting for a thread of this
    /// connection to end. Rust-only (a test hook).
    #[doc(hidden)]
    pub fn joining_for_tests(&self) -> usize {
        self.shared().joining.load(Ordering::SeqCst)
    }

    /// Test hook: `f` runs on the writer thread whenever quests have timed
    /// out, after they left the request table and before their callbacks run.
    /// (Its tests, in src/client/driver.rs, start the local gate.)
    #[cfg(all(test, feature = "gate"))]
    pub(crate) fn before_timeouts_for_tests(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.shared().before_timeouts.lock() = Some(Arc::new(f));
    }

    /// Whether the calling thread is this connection's reader or writer.
    pub fn is_own_thread(&self) -> bool {
        self.shared().on_own_thread()
    }
}

/// Parses `endpoint` and opens it (TCP, TLS, WebSocket upgrade).
fn open(
    endpoint: &str,
    tls: bool,
    options: &ConnectOptions,
) -> Result<(Endpoint, transport::Opened), RtmError> {
    let ep = Endpoint::parse(endpoint, tls).ok_or_else(|| {
        err(
            error_code::FPNN_EC_CORE_INVALID_CONNECTION,
            format!("invalid endpoint {endpoint:?}: expected host:port"),
        )
    })?;
    let cancel = options.cancel.clone().unwrap_or_default();
    let opened = transport::open(
        &ep,
        &options.path,
        options.connect_timeout,
        &options.extra_roots,
        &cancel,
    )
    .map_err(|e| {
        let code = match &e {
            _ if cancel.is_cancelled() => error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
            WsError::Io(io) if is_timeout(io) => error_code::FPNN_EC_CORE_TIMEOUT,
            _ => error_code::FPNN_EC_CORE_INVALID_CONNECTION,
        };
        err(code, format!("cannot connect to {ep}: {e}"))
    })?;
    Ok((ep, opened))
}

/// The 20011 of a quest refused by a full write queue.
fn queue_full() -> RtmError {
    err(
        error_code::FPNN_EC_CORE_WORK_QUEUE_FULL,
        "the write queue is full: the peer or the network is slower than the caller",
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}
