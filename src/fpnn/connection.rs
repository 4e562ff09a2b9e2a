//! One FPNN connection: a reader thread, a writer thread, and the request
//! table they share. See docs/architecture.md for the whole picture.

use std::cell::RefCell;
use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use rmpv::Value;

use super::packet::{self, Kind, Packet};
use super::table::RequestTable;
use super::transport::{self, ConnectCancel, Endpoint, ReadHalf, WriteHalf};
use crate::error::{error_code, RtmError};
use crate::ws::frame::{self, FrameParser, Opcode, Role};
use crate::ws::{Incoming, MaskRng, WsError, WsReader};

/// The callback of a twoway quest: the answer's payload, or an error (the
/// server's error answer, 20003 timeout, 20002 connection closed).
pub type AnswerCallback = Box<dyn FnOnce(Result<Value, RtmError>) + Send + 'static>;

/// Options of [`Connection::connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limit for DNS, TCP, TLS and the WebSocket upgrade together. Default 30 s.
    pub connect_timeout: Duration,
    /// Largest packet accepted or sent, header included. Default 8 MiB.
    pub max_packet_size: usize,
    /// Extra DER root certificates trusted for `wss` besides the usual web roots.
    pub extra_roots: Vec<Vec<u8>>,
    /// The WebSocket path. Default `/service/websocket`.
    pub path: String,
    /// Lets another thread abort the connect (see [`ConnectCancel`]). Default
    /// `None`.
    pub cancel: Option<ConnectCancel>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(30),
            max_packet_size: packet::DEFAULT_MAX_PACKET,
            extra_roots: Vec::new(),
            path: "/service/websocket".to_owned(),
            cancel: None,
        }
    }
}

/// A quest the server sent us.
#[derive(Debug, Clone, PartialEq)]
pub struct Quest {
    /// Method name.
    pub method: String,
    /// Payload (an RTM payload is a map).
    pub payload: Value,
    /// Whether the server waits for an answer.
    pub twoway: bool,
}

/// Why a connection ended, as given to the close handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// [`Connection::close`] was called (or the last handle dropped).
    Local,
    /// The peer closed the connection.
    Peer,
    /// The connection failed; the text says how.
    Error(String),
}

/// Answers one server quest. A twoway quest is answered exactly once: by
/// [`Responder::answer`], [`Responder::error`], or, when the responder is
/// dropped unused, with the empty map. [`Responder::decline`] sends nothing
/// (for quests like `kickout` that RTM does not answer). Oneway quests are
/// never answered, whatever is called.
pub struct Responder {
    seq: u32,
    twoway: bool,
    shared: Option<Arc<Shared>>,
}

impl Responder {
    /// Answers with `payload` (status 0).
    /// An answer over the connection's packet limit is replaced by an error
    /// answer (10001) saying so.
    pub fn answer(mut self, payload: &Value) {
        if let Some(s) = self.take() {
            let mut body = Vec::new();
            packet::encode_payload(payload, &mut body);
            let len = packet::packet_len(Kind::Answer, 0, body.len());
            if len > s.max_packet || body.len() > u32::MAX as usize {
                log::debug!("answer of {len} bytes is over the packet limit");
                let e = Value::Map(vec![
                    (
                        Value::from("code"),
                        Value::from(error_code::FPNN_EC_PROTO_UNKNOWN_ERROR),
                    ),
                    (
                        Value::from("ex"),
                        Value::from("answer over the packet size limit"),
                    ),
                ]);
                body.clear();
                packet::encode_payload(&e, &mut body);
                return s.send_answer(self.seq, 1, &body);
            }
            s.send_answer(self.seq, 0, &body);
        }
    }

    /// Answers with an error (status 1, `{code, ex}`).
    pub fn error(mut self, code: i32, ex: &str) {
        if let Some(s) = self.take() {
            let v = Value::Map(vec![
                (Value::from("code"), Value::from(code)),
                (Value::from("ex"), Value::from(ex)),
            ]);
            let mut body = Vec::new();
            packet::encode_payload(&v, &mut body);
            s.send_answer(self.seq, 1, &body);
        }
    }

    /// Leaves the quest unanswered.
    pub fn decline(mut self) {
        self.shared = None;
    }

    /// Whether the server waits for an answer.
    pub fn is_twoway(&self) -> bool {
        self.twoway
    }

    fn take(&mut self) -> Option<Arc<Shared>> {
        if self.twoway {
            self.shared.take()
        } else {
            None
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(s) = self.take() {
            s.send_answer(self.seq, 0, packet::EMPTY_MAP);
        }
    }
}

/// Handles quests the server sends. Runs on the reader thread: return quickly
/// (hand long work to another thread), or answers to this connection wait.
pub trait QuestHandler: Send + Sync + 'static {
    /// One server quest. Answer it through `responder` (or let it drop).
    fn quest(&self, quest: Quest, responder: Responder);
}

impl<F: Fn(Quest, Responder) + Send + Sync + 'static> QuestHandler for F {
    fn quest(&self, quest: Quest, responder: Responder) {
        self(quest, responder)
    }
}

type CloseHandler = Box<dyn FnOnce(CloseReason) + Send>;

enum WriterCmd {
    Frame(Vec<u8>),
    /// The TLS session has bytes of its own to send.
    Flush,
    /// The last command: send a close frame with this status (none when the
    /// peer is already gone), then shut the socket. Exactly one is sent per
    /// connection, so at most one close frame goes out, as RFC 6455 requires.
    Close(Option<u16>),
}

struct Shared {
    table: Mutex<RequestTable<AnswerCallback>>,
    tx: Sender<WriterCmd>,
    open: AtomicBool,
    control: TcpStream,
    on_close: Mutex<Option<CloseHandler>>,
    max_packet: usize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    thread_ids: Mutex<Vec<ThreadId>>,
    endpoint: Endpoint,
}

thread_local! {
    static RNG: RefCell<MaskRng> = RefCell::new(MaskRng::new());
}

/// Builds a masked client frame holding one packet, without copying the
/// payload twice.
fn client_frame(kind: Kind, seq: u32, ss_or_method: (&str, u8), payload: &[u8]) -> Vec<u8> {
    let (method, status) = ss_or_method;
    let plen = packet::packet_len(kind, method.len(), payload.len());
    let mask = RNG.with(|r| r.borrow_mut().mask());
    let mut out = Vec::with_capacity(frame::header_len(plen, true, false) + plen);
    frame::write_head(&mut out, Opcode::Binary, true, plen, Some(mask), false);
    let start = out.len();
    match kind {
        Kind::Answer => packet::encode_answer(&mut out, seq, status, payload),
        k => packet::encode_quest(&mut out, k == Kind::Twoway, seq, method, payload),
    }
    frame::apply_mask(&mut out[start..], mask);
    out
}

fn control_frame(op: Opcode, payload: &[u8]) -> Vec<u8> {
    let mask = RNG.with(|r| r.borrow_mut().mask());
    let mut out = Vec::with_capacity(6 + payload.len());
    frame::encode_frame(&mut out, op, true, payload, Some(mask), false);
    out
}

fn err(code: i32, ex: impl Into<String>) -> RtmError {
    RtmError::new(code, ex)
}

impl Shared {
    fn send_answer(&self, seq: u32, status: u8, payload: &[u8]) {
        if self.open.load(Ordering::Acquire) {
            let _ = self.tx.send(WriterCmd::Frame(client_frame(
                Kind::Answer,
                seq,
                ("", status),
                payload,
            )));
        }
    }

    /// Ends the connection once: fails every pending quest with 20002 and
    /// tells the close handler why. Runs the callbacks on the calling thread
    /// with no lock held.
    fn shut(&self, reason: CloseReason) {
        let status = match reason {
            CloseReason::Local => Some(1000),
            _ => None,
        };
        self.shut_with(reason, status);
    }

    /// [`Shared::shut`], telling the peer why with close status `status`.
    /// Without a status the socket is shut at once (the peer is gone or the
    /// link failed); with one, the writer shuts it after the close frame.
    fn shut_with(&self, reason: CloseReason, status: Option<u16>) {
        if !self.open.swap(false, Ordering::AcqRel) {
            return;
        }
        match &reason {
            CloseReason::Error(e) => log::debug!("connection to {} failed: {e}", self.endpoint),
            r => log::debug!("connection to {} closed: {r:?}", self.endpoint),
        }
        let pending = self.table.lock().close();
        if status.is_none() {
            transport::shutdown(&self.control);
        }
        let _ = self.tx.send(WriterCmd::Close(status));
        let ex = match &reason {
            CloseReason::Error(e) => format!("connection closed: {e}"),
            _ => "connection closed".to_owned(),
        };
        for cb in pending {
            let e = err(error_code::FPNN_EC_CORE_CONNECTION_CLOSED, ex.clone());
            guarded("close callback", || cb(Err(e)));
        }
        let handler = self.on_close.lock().take();
        if let Some(h) = handler {
            guarded("close handler", || h(reason));
        }
    }
}

/// Closes the connection when the last user handle goes away.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.shut(CloseReason::Local);
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
    shared: Arc<Shared>,
    _guard: Arc<CloseOnDrop>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.shared.endpoint)
            .field("open", &self.is_open())
            .finish()
    }
}

impl Connection {
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
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            table: Mutex::new(RequestTable::new()),
            tx,
            open: AtomicBool::new(true),
            control: opened.control,
            on_close: Mutex::new(Some(Box::new(on_close))),
            max_packet: options.max_packet_size,
            threads: Mutex::new(Vec::new()),
            thread_ids: Mutex::new(Vec::new()),
            endpoint: ep,
        });
        let mut read = opened.read;
        let flush_tx = shared.tx.clone();
        read.set_flush_hook(Box::new(move || {
            let _ = flush_tx.send(WriterCmd::Flush);
        }));
        // The frame limit is the packet limit: one packet per message.
        let parser = FrameParser::new(Role::Client, options.max_packet_size, true);
        let reader = WsReader::new(read, &opened.leftover, parser);
        let handler: Arc<dyn QuestHandler> = Arc::new(handler);
        let s1 = shared.clone();
        let r = std::thread::Builder::new()
            .name("rtm-reader".into())
            .spawn(move || reader_loop(s1, reader, handler));
        let s2 = shared.clone();
        let w = std::thread::Builder::new()
            .name("rtm-writer".into())
            .spawn(move || writer_loop(s2, opened.write, rx));
        let conn = Connection {
            _guard: Arc::new(CloseOnDrop(shared.clone())),
            shared,
        };
        for t in [r, w] {
            match t {
                Ok(h) => {
                    conn.shared.thread_ids.lock().push(h.thread().id());
                    conn.shared.threads.lock().push(h);
                }
                Err(e) => {
                    conn.shared
                        .shut(CloseReason::Error(format!("cannot spawn thread: {e}")));
                    return Err(err(error_code::FPNN_EC_CORE_UNKNOWN_ERROR, e.to_string()));
                }
            }
        }
        Ok(conn)
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
        if let Err(e) = self.check(method, payload) {
            return callback(Err(e));
        }
        let deadline = transport::deadline_after(timeout);
        // Not matched in place: a match scrutinee keeps the lock guard alive
        // through the arms, and the callback below may send again.
        let inserted = self.shared.table.lock().insert(callback, deadline);
        let seq = match inserted {
            Ok(seq) => seq,
            Err(cb) => {
                return cb(Err(err(
                    error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
                    "connection closed",
                )))
            }
        };
        let f = client_frame(Kind::Twoway, seq, (method, 0), payload);
        // If the writer is gone the close path has completed the quest already.
        let _ = self.shared.tx.send(WriterCmd::Frame(f));
    }

    /// Sends a oneway quest (no answer). Fails with 20002 when closed.
    pub fn send_oneway(&self, method: &str, payload: &Value) -> Result<(), RtmError> {
        let mut body = Vec::new();
        packet::encode_payload(payload, &mut body);
        self.check(method, &body)?;
        if !self.is_open() {
            return Err(err(
                error_code::FPNN_EC_CORE_CONNECTION_CLOSED,
                "connection closed",
            ));
        }
        let f = client_frame(Kind::Oneway, 0, (method, 0), &body);
        let _ = self.shared.tx.send(WriterCmd::Frame(f));
        Ok(())
    }

    fn check(&self, method: &str, payload: &[u8]) -> Result<(), RtmError> {
        if method.is_empty() || method.len() > 255 {
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
        if len > self.shared.max_packet || payload.len() > u32::MAX as usize {
            return Err(err(
                error_code::FPNN_EC_PROTO_UNKNOWN_ERROR,
                format!(
                    "quest is over the {} byte packet limit",
                    self.shared.max_packet
                ),
            ));
        }
        Ok(())
    }

    /// Closes the connection: pending quests complete with 20002 on this
    /// thread, a close frame is sent, the socket is shut, the close handler
    /// runs with [`CloseReason::Local`]. Idempotent.
    pub fn close(&self) {
        self.shared.shut(CloseReason::Local);
    }

    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Number of quests waiting for an answer.
    pub fn pending(&self) -> usize {
        self.shared.table.lock().len()
    }

    /// The endpoint connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    /// Closes the connection and waits for its threads to end. Called from
    /// one of the connection's own threads it does not wait for that thread.
    pub fn close_and_join(&self) {
        self.close();
        // The writer shuts the socket after its close frame; do it here too
        // in case it is stalled on a peer that does not read.
        transport::shutdown(&self.shared.control);
        let me = std::thread::current().id();
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.shared.threads.lock());
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }

    /// Whether the calling thread is this connection's reader or writer.
    pub fn is_own_thread(&self) -> bool {
        let me = std::thread::current().id();
        self.shared.thread_ids.lock().contains(&me)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn reader_loop(
    shared: Arc<Shared>,
    mut reader: WsReader<ReadHalf>,
    handler: Arc<dyn QuestHandler>,
) {
    loop {
        let msg = match reader.read() {
            Ok(m) => m,
            Err(e) => {
                let status = e.close_code();
                let reason = match e {
                    WsError::Eof { mid_frame: false } => CloseReason::Peer,
                    e => CloseReason::Error(e.to_string()),
                };
                shared.shut_with(reason, status);
                return;
            }
        };
        match msg {
            Incoming::Binary(data) => {
                if let Err(e) = on_packet(&shared, &data, handler.as_ref()) {
                    shared.shut(CloseReason::Error(e));
                    return;
                }
            }
            Incoming::Text(_) => {
                shared.shut(CloseReason::Error("server sent a text message".into()));
                return;
            }
            Incoming::Ping(p) => {
                let _ = shared
                    .tx
                    .send(WriterCmd::Frame(control_frame(Opcode::Pong, &p)));
            }
            Incoming::Pong(_) => {}
            Incoming::Close(_) => {
                shared.shut(CloseReason::Peer);
                return;
            }
        }
        if !shared.open.load(Ordering::Acquire) {
            return;
        }
    }
}

fn on_packet(shared: &Arc<Shared>, data: &[u8], handler: &dyn QuestHandler) -> Result<(), String> {
    let p = Packet::decode(data, shared.max_packet).map_err(|e| e.to_string())?;
    match p.kind {
        Kind::Answer => {
            let result = match packet::decode_payload_within(&p.payload, shared.max_packet) {
                Err(e) => Err(err(error_code::FPNN_EC_CORE_DECODING, e)),
                Ok(v) if p.status == 0 => Ok(v),
                Ok(v) => Err(error_answer(&v)),
            };
            let cb = shared.table.lock().complete(p.seq);
            match cb {
                Some(cb) => guarded("answer callback", || cb(result)),
                None => log::debug!("late or unknown answer seq {} dropped", p.seq),
            }
        }
        Kind::Twoway | Kind::Oneway => {
            // A quest read just as the connection closed is not delivered:
            // after `close` returns, the handler hears nothing more.
            if !shared.open.load(Ordering::Acquire) {
                return Ok(());
            }
            let twoway = p.kind == Kind::Twoway;
            let responder = Responder {
                seq: p.seq,
                twoway,
                shared: Some(shared.clone()),
            };
            match packet::decode_payload_within(&p.payload, shared.max_packet) {
                Ok(payload) => {
                    let quest = Quest {
                        method: p.method,
                        payload,
                        twoway,
                    };
                    guarded("quest handler", || handler.quest(quest, responder));
                }
                Err(e) => {
                    log::debug!("server quest {} has a bad payload: {e}", p.method);
                    responder.error(error_code::FPNN_EC_CORE_DECODING, &e);
                }
            }
        }
    }
    Ok(())
}

/// `{code, ex}` of an error answer; anything else becomes 20001 with the text.
fn error_answer(v: &Value) -> RtmError {
    let field = |k: &str| {
        v.as_map()
            .and_then(|m| m.iter().find(|(key, _)| key.as_str() == Some(k)))
            .map(|(_, val)| val)
    };
    let code = field("code")
        .and_then(|c| c.as_i64())
        .and_then(|c| i32::try_from(c).ok());
    let ex = field("ex")
        .and_then(|e| e.as_str())
        .unwrap_or("")
        .to_owned();
    match code {
        Some(code) => RtmError::new(code, ex),
        None => RtmError::new(
            error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
            format!("malformed error answer: {v}"),
        ),
    }
}

/// Runs code the SDK does not own (a callback, a handler). A panic in it is
/// logged and contained, so it cannot take an SDK thread, and with it every
/// later answer or timeout, down.
pub(crate) fn guarded(what: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log::error!("a {what} panicked; the SDK thread carries on");
    }
}

/// Completes every quest whose deadline has passed with 20003.
fn fire_expired(shared: &Shared, expired: &mut Vec<AnswerCallback>) {
    shared.table.lock().expire(Instant::now(), expired);
    for cb in expired.drain(..) {
        guarded("timeout callback", || {
            cb(Err(err(
                error_code::FPNN_EC_CORE_TIMEOUT,
                "quest timed out",
            )))
        });
    }
}

fn writer_loop(shared: Arc<Shared>, mut write: WriteHalf, rx: Receiver<WriterCmd>) {
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut expired = Vec::new();
    let mut waiting = Vec::new();
    loop {
        let next = shared.table.lock().next_deadline();
        let cmd = match next {
            Some(d) => rx.recv_deadline(d),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let mut close: Option<Option<u16>> = None;
        match cmd {
            Ok(WriterCmd::Frame(f)) => {
                batch.extend_from_slice(&f);
                // Coalesce what is already queued into one write.
                while batch.len() < 256 * 1024 {
                    match rx.try_recv() {
                        Ok(WriterCmd::Frame(f)) => batch.extend_from_slice(&f),
                        Ok(WriterCmd::Flush) => {}
                        Ok(WriterCmd::Close(status)) => {
                            close = Some(status);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            Ok(WriterCmd::Flush) => {
                if let Err(e) = write.flush_session(&mut || fire_expired(&shared, &mut waiting)) {
                    shared.shut(CloseReason::Error(format!("write failed: {e}")));
                }
            }
            Ok(WriterCmd::Close(status)) => close = Some(status),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => close = Some(None),
        }
        if !batch.is_empty() {
            let r = write.send(&batch, &mut || fire_expired(&shared, &mut waiting));
            batch.clear();
            if batch.capacity() > 1 << 20 {
                batch.shrink_to(64 * 1024);
            }
            if let Err(e) = r {
                shared.shut(CloseReason::Error(format!("write failed: {e}")));
                close = Some(None);
            }
        }
        if let Some(status) = close {
            // Best effort: the one close frame, then close_notify.
            if let Some(code) = status {
                let _ = write.send(
                    &control_frame(Opcode::Close, &code.to_be_bytes()),
                    &mut || {},
                );
            }
            write.close_notify();
            transport::shutdown(&shared.control);
            shared.shut(CloseReason::Local);
            return;
        }
        fire_expired(&shared, &mut expired);
    }
}
