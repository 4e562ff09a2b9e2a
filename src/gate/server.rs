//! The gate's network side: accepts WebSocket connections, decodes FPNN
//! packets, hands quests to [`GateState`], and delivers answers and pushes.
//! Faults for tests (pauses, delays, drops, refusals, raw bytes) live here.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use rmpv::Value;

use super::state::{Answer, ConnId, GateState, FILE_PATH};
use super::GateConfig;
use crate::fpnn::packet::{self, Kind, PacketRef};
use crate::ws::frame::{encode_frame, write_head, FrameParser, Opcode, Role};
use crate::ws::handshake::{self, Accepted};
use crate::ws::{IncomingRef, WsReader};

/// How many `auth` payloads the gate remembers for [`super::Gate::auth_requests`].
pub(crate) const AUTH_LOG_MAX: usize = 10_000;

/// How many bytes of `auth` payloads (msgpack-encoded) the gate remembers: with
/// payloads up to `max_packet` (8 MiB by default) a count alone let one connection
/// that never logs in make a long-running gate hold gigabytes.
pub(crate) const AUTH_LOG_BYTES: usize = 16 << 20;

/// The newest `auth` payloads, within [`AUTH_LOG_MAX`] entries and [`AUTH_LOG_BYTES`]
/// (the newest one is always kept, whatever its size). Kept encoded, so the bound is
/// on the memory held: a decoded tree of small values takes dozens of times its
/// encoding.
#[derive(Default)]
pub(crate) struct AuthLog {
    entries: std::collections::VecDeque<Vec<u8>>,
    bytes: usize,
}

impl AuthLog {
    /// Keeps `payload`, forgetting the oldest entries past the bounds.
    fn push(&mut self, payload: &Value) {
        let mut encoded = Vec::new();
        // Writing to a Vec does not fail.
        let _ = rmpv::encode::write_value(&mut encoded, payload);
        while self.entries.len() >= AUTH_LOG_MAX
            || (!self.entries.is_empty() && self.bytes + encoded.len() > AUTH_LOG_BYTES)
        {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.len();
        }
        self.bytes += encoded.len();
        self.entries.push_back(encoded);
    }

    /// The payloads kept, oldest first.
    pub(crate) fn payloads(&self) -> Vec<Value> {
        self.entries
            .iter()
            .map(|b| rmpv::decode::read_value(&mut &b[..]).unwrap_or(Value::Nil))
            .collect()
    }
}

/// The instant [`since_epoch`] counts from: the first time it was asked.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since [`EPOCH`] (a monotonic clock, as a number an atomic holds; u64
/// nanoseconds last 584 years).
fn since_epoch() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long the gate's writer may make no progress on a connection before
/// it closes it (a client that stopped reading); also bounds each write of a
/// handshake's answer and of a file the proxy serves
/// ([`GateConfig::write_stall`](super::GateConfig)).
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(10);

/// How long a new connection may take to send its request (the WebSocket upgrade,
/// or the file proxy's GET) before the gate closes it
/// ([`GateConfig::handshake_timeout`](super::GateConfig)).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes queued for a connection and not yet handed to its writer.
struct Outbox {
    buf: Vec<u8>,
    closed: bool,
    /// Whether to flush what is queued before the writer exits.
    drain: bool,
    writer_waiting: bool,
    /// Someone (the writer, or the reader flushing its own answers) is
    /// writing a batch taken from `buf`; only one at a time, so bytes keep
    /// their order.
    writing: bool,
}

/// One client connection as the gate sees it. Everything sent to it goes
/// through its bounded outbox, written by its own writer thread, so a client
/// that stops reading delays no other connection (docs/gate.md, "Writing").
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    out: Mutex<Outbox>,
    out_ready: Condvar,
    control: TcpStream,
    seq: AtomicU64,
    /// When the connection last sent anything: nanoseconds since [`EPOCH`] (an atomic,
    /// not a lock, as it is written for every read of the socket, `ConnReader`).
    last_heard: AtomicU64,
    /// The wall clock ([`now_ms`]) when the last read of the socket returned: the time
    /// of every quest that read completed (the clock is read once per read, not once per
    /// quest; written and read by the connection's reader only).
    read_ms: AtomicI64,
    quirk: bool,
    queue_limit: usize,
    /// A connection of the file proxy: only the proxy's quests are routed.
    proxy: bool,
}

impl Conn {
    /// Appends bytes to the outbox with `fill`; closes the connection instead
    /// when that would take the queue over its limit (unless it was empty, so
    /// one frame of any accepted size can always go out). With `wake` the
    /// writer is woken; without, the bytes wait for the connection's reader
    /// to flush them before it next blocks (see [`ConnReader`]).
    fn enqueue(&self, wake: bool, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let mut o = self.out.lock();
        if o.closed {
            return Err(io::ErrorKind::NotConnected.into());
        }
        let before = o.buf.len();
        fill(&mut o.buf);
        if before > 0 && o.buf.len() > self.queue_limit {
            o.buf.truncate(before);
            drop(o);
            log::debug!(
                "gate: connection {} is not reading ({} bytes queued), closing",
                self.id,
                before
            );
            self.kill();
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if wake && o.writer_waiting {
            o.writer_waiting = false;
            self.out_ready.notify_one();
        }
        Ok(())
    }

    fn write_packet(
        &self,
        wake: bool,
        packet_len: usize,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> io::Result<()> {
        self.enqueue(wake, |buf| {
            write_head(buf, Opcode::Binary, true, packet_len, None, self.quirk);
            let start = buf.len();
            encode(buf);
            debug_assert_eq!(buf.len() - start, packet_len);
        })
    }

    pub(crate) fn write_raw(&self, bytes: &[u8]) -> io::Result<()> {
        self.enqueue(true, |buf| buf.extend_from_slice(bytes))
    }

    pub(crate) fn send_quest(&self, method: &str, payload: &Value, twoway: bool) {
        crate::value::with_spare(|body| {
            packet::encode_payload(payload, body);
            self.send_quest_encoded(method, body, twoway);
        });
    }

    /// [`Conn::send_quest`] with the payload's msgpack.
    pub(crate) fn send_quest_encoded(&self, method: &str, body: &[u8], twoway: bool) {
        let seq = if twoway {
            (self.seq.fetch_add(1, Ordering::Relaxed) as u32)
                .wrapping_add(1)
                .max(1)
        } else {
            0
        };
        let kind = if twoway { Kind::Twoway } else { Kind::Oneway };
        let len = packet::packet_len(kind, method.len(), body.len());
        let _ = self.write_packet(true, len, |buf| {
            packet::encode_quest(buf, twoway, seq, method, body)
        });
    }

    /// Queues an answer; `wake` as in [`Conn::enqueue`].
    fn send_answer(
        &self,
        seq: u32,
        answer: &Result<Answer, (i32, String)>,
        json: bool,
        wake: bool,
    ) {
        let err;
        let (status, a) = match answer {
            Ok(a) => (0, a),
            Err((code, ex)) => {
                err = Answer::Value(Value::Map(vec![
                    (Value::from("code"), Value::from(*code)),
                    (Value::from("ex"), Value::from(ex.as_str())),
                ]));
                (1, &err)
            }
        };
        crate::value::with_spare(|body| {
            if json {
                super::json::write(&a.as_value(), body);
            } else {
                a.encode(body);
            }
            let len = packet::packet_len(Kind::Answer, 0, body.len());
            let _ = self.write_packet(wake, len, |buf| {
                let start = buf.len();
                packet::encode_answer(buf, seq, status, body);
                if json {
                    buf[start + 5] = packet::FLAG_JSON;
                }
            });
        });
    }

    /// Queues an answer with this status byte and `body` as its payload, as
    /// is (test hook: [`super::Gate::rewrite_answers`]).
    fn send_answer_raw(&self, seq: u32, status: u8, body: &[u8]) {
        let len = packet::packet_len(Kind::Answer, 0, body.len());
        let _ = self.write_packet(true, len, |buf| {
            packet::encode_answer(buf, seq, status, body)
        });
    }

    /// Drops TCP abruptly (no close frame), as FPNN servers do; the writer
    /// stops with what is queued unsent.
    pub(crate) fn kill(&self) {
        let _ = self.control.shutdown(Shutdown::Both);
        self.close_outbox(false);
    }

    /// No more frames are queued; with `drain` the writer sends what is
    /// queued first.
    fn close_outbox(&self, drain: bool) {
        let mut o = self.out.lock();
        o.closed = true;
        o.drain = drain && o.drain;
        o.writer_waiting = false;
        self.out_ready.notify_one();
    }

    /// Takes what is queued unless someone is writing already; the caller
    /// writes it and then calls [`Conn::wrote`].
    fn take(&self, o: &mut Outbox, batch: &mut Vec<u8>) {
        o.writing = true;
        std::mem::swap(&mut o.buf, batch);
    }

    fn wrote(&self, batch: &mut Vec<u8>, r: io::Result<()>) -> io::Result<()> {
        batch.clear();
        if batch.capacity() > BATCH_KEEP {
            *batch = Vec::new();
        }
        if let Err(e) = r {
            log::debug!("gate: writing to connection {} failed: {e}", self.id);
            self.kill();
            return Err(e);
        }
        let mut o = self.out.lock();
        o.writing = false;
        if !o.buf.is_empty() && o.writer_waiting {
            o.writer_waiting = false;
            self.out_ready.notify_one();
        }
        Ok(())
    }

    /// The reader, about to block for more bytes, writes the answers it
    /// queued itself (all the answers to one read go out in one write, and
    /// no other thread is woken), unless the writer is busy and will.
    fn flush_from_reader(&self, stream: &TcpStream, batch: &mut Vec<u8>) -> io::Result<()> {
        {
            let mut o = self.out.lock();
            if o.buf.is_empty() || o.writing || o.closed {
                return Ok(());
            }
            self.take(&mut o, batch);
        }
        let r = (&mut &*stream).write_all(batch);
        self.wrote(batch, r)
    }

    /// The writer thread: takes everything queued at once and writes it in
    /// one call, so frames that pile up while it writes go out together.
    fn write_loop(&self, stream: TcpStream) {
        let mut batch = Vec::new();
        loop {
            {
                let mut o = self.out.lock();
                loop {
                    if o.closed && !o.drain {
                        return;
                    }
                    if !o.buf.is_empty() && !o.writing {
                        break;
                    }
                    if o.closed && !o.writing {
                        return;
                    }
                    o.writer_waiting = true;
                    self.out_ready.wait(&mut o);
                }
                self.take(&mut o, &mut batch);
            }
            let r = (&mut &stream).write_all(&batch);
            if self.wrote(&mut batch, r).is_err() {
                return;
            }
        }
    }
}

/// The reader's byte source: flushes the connection's own queued answers
/// each time the frame reader needs more bytes, that is just before it
/// would block.
struct ConnReader {
    stream: TcpStream,
    conn: Arc<Conn>,
    batch: Vec<u8>,
}

impl io::Read for ConnReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn.flush_from_reader(&self.stream, &mut self.batch)?;
        let n = (&mut &self.stream).read(buf)?;
        // Once per read rather than per frame: the frames of one read arrived together.
        self.conn.last_heard.store(since_epoch(), Ordering::Relaxed);
        self.conn.read_ms.store(now_ms(), Ordering::Relaxed);
        Ok(n)
    }
}

/// A writer keeps a batch buffer up to this size between writes.
const BATCH_KEEP: usize = 256 * 1024;

/// State shared by the gate's threads and its handle.
pub(crate) struct Server {
    pub(crate) config: GateConfig,
    pub(crate) state: Arc<Mutex<GateState>>,
    pub(crate) conns: Mutex<HashMap<ConnId, Arc<Conn>>>,
    /// Connections still in their handshake (or being served a file), by the id they
    /// will get: [`Server::stop`] shuts their sockets down, as it kills `conns`.
    handshaking: Mutex<HashMap<ConnId, TcpStream>>,
    /// The threads serving a connection, until their cleanup is done (logout recorded,
    /// connection forgotten): [`Server::stop`] waits for them (see [`Serving`]).
    serving: Mutex<Vec<ThreadId>>,
    served: Condvar,
    pub(crate) next_conn: Arc<AtomicU64>,
    pub(crate) paused_until: Mutex<Option<Instant>>,
    pub(crate) answer_delay: Mutex<Duration>,
    pub(crate) refusing: AtomicBool,
    /// TCP connections accepted, refused ones included (test hook:
    /// [`Gate::connection_attempts`](super::Gate::connection_attempts)).
    pub(crate) attempts: AtomicU64,
    /// Rewrites successful answers into raw payloads (test hook:
    /// [`Gate::rewrite_answers`](super::Gate::rewrite_answers)).
    pub(crate) rewrite: Mutex<Option<Arc<super::Rewrite>>>,
    /// Whether a test hook that the read loop consults for every quest (`paused_until`,
    /// `answer_delay`, `rewrite`) has ever been set on this server: until then the read
    /// loop skips their three locks. Set after the hook's value (see [`Server::hooked`]).
    hooks: AtomicBool,
    stopping: AtomicBool,
    pub(crate) auth_log: Mutex<AuthLog>,
    /// Every quest read, `(method, payload)` in arrival order, when
    /// `config.record_quests` is on; kept across [`Gate::restart`](super::Gate::restart).
    pub(crate) quest_log: Arc<Mutex<Vec<(String, Value)>>>,
    listener_addr: Mutex<Option<SocketAddr>>,
    /// The file proxy's listener (docs/gate.md, "Files").
    proxy_addr: Mutex<Option<SocketAddr>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    wake: Condvar,
    wake_lock: Mutex<()>,
}

/// A new connection's socket while it sends its request: each read waits only for what
/// is left of [`GateConfig::handshake_timeout`](super::GateConfig), so a client that
/// trickles its request a byte at a time is closed after that long in all.
struct Deadline<'a> {
    stream: &'a TcpStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&mut &*self.stream).flush()
    }
}

/// Takes a connection out of [`Server::handshaking`] however its handshake ends.
struct Handshaking<'a> {
    server: &'a Server,
    id: ConnId,
}

impl Drop for Handshaking<'_> {
    fn drop(&mut self) {
        self.server.handshaking.lock().remove(&self.id);
    }
}

/// Lists the thread serving a connection in [`Server::serving`] until it ends, however
/// it ends (a panic in a test hook's closure included).
struct Serving<'a> {
    server: &'a Server,
}

impl<'a> Serving<'a> {
    fn new(server: &'a Server) -> Self {
        server.serving.lock().push(std::thread::current().id());
        Serving { server }
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut serving = self.server.serving.lock();
        serving.retain(|t| *t != me);
        self.server.served.notify_all();
    }
}

impl Server {
    pub(crate) fn new(config: GateConfig) -> Arc<Server> {
        let state = Arc::new(Mutex::new(GateState::new(config.tokens.clone())));
        Self::with_state(config, state, Arc::new(AtomicU64::new(1)), Arc::default())
    }

    /// A server over existing state: a restarted gate keeps its messages and
    /// its quest log, and connection ids stay unique across the restart.
    pub(crate) fn with_state(
        config: GateConfig,
        state: Arc<Mutex<GateState>>,
        next_conn: Arc<AtomicU64>,
        quest_log: Arc<Mutex<Vec<(String, Value)>>>,
    ) -> Arc<Server> {
        Arc::new(Server {
            state,
            config,
            conns: Mutex::new(HashMap::new()),
            handshaking: Mutex::new(HashMap::new()),
            serving: Mutex::new(Vec::new()),
            served: Condvar::new(),
            next_conn,
            paused_until: Mutex::new(None),
            answer_delay: Mutex::new(Duration::ZERO),
            refusing: AtomicBool::new(false),
            attempts: AtomicU64::new(0),
            rewrite: Mutex::new(None),
            hooks: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            auth_log: Mutex::new(AuthLog::default()),
            quest_log,
            listener_addr: Mutex::new(None),
            proxy_addr: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
        })
    }

    /// Binds and starts the accept and ping threads.
    pub(crate) fn listen(self: &Arc<Self>, addr: &str) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        *self.listener_addr.lock() = Some(local);
        self.stopping.store(false, Ordering::SeqCst);
        let s = self.clone();
        let accept = std::thread::Builder::new()
            .name("rtm-gate-accept".into())
            .spawn(move || s.accept_loop(listener, false))?;
        let s = self.clone();
        let pinger = std::thread::Builder::new()
            .name("rtm-gate-ping".into())
            .spawn(move || s.ping_loop())?;
        self.threads.lock().extend([accept, pinger]);
        Ok(local)
    }

    /// Binds the file proxy's listener and starts its accept thread; its connections
    /// answer only the proxy's quests.
    pub(crate) fn listen_proxy(self: &Arc<Self>, addr: &str) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        *self.proxy_addr.lock() = Some(local);
        self.state.lock().set_file_proxy(&local.to_string());
        let s = self.clone();
        let accept = std::thread::Builder::new()
            .name("rtm-gate-file-accept".into())
            .spawn(move || s.accept_loop(listener, true))?;
        self.threads.lock().push(accept);
        Ok(local)
    }

    /// Stops listening and drops every connection; waits for the gate's
    /// accept and ping threads.
    pub(crate) fn stop(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        for addr in [*self.listener_addr.lock(), *self.proxy_addr.lock()]
            .into_iter()
            .flatten()
        {
            // Wake the blocking accept.
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        {
            let _g = self.wake_lock.lock();
            self.wake.notify_all();
        }
        self.drop_where(|_| true);
        for stream in self.handshaking.lock().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Until their logouts are recorded: after a restart the state has no connection
        // of the old server (`Gate::connections_of` and the unread marks agree). Their
        // sockets are shut down, so each ends at once; a hook's closure calling this
        // from a connection's own thread does not wait for itself, and one that blocks
        // (a test's `rewrite_answers` waiting for something) is waited for only so long.
        let me = std::thread::current().id();
        let until = Instant::now() + self.config.write_stall;
        let mut serving = self.serving.lock();
        while serving.iter().any(|t| *t != me) {
            if self.served.wait_until(&mut serving, until).timed_out() {
                log::warn!("gate stopped with a connection's thread still busy");
                break;
            }
        }
        drop(serving);
        let threads: Vec<_> = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }

    pub(crate) fn drop_where(&self, pred: impl Fn(&Conn) -> bool) -> usize {
        let victims: Vec<Arc<Conn>> = self
            .conns
            .lock()
            .values()
            .filter(|c| pred(c))
            .cloned()
            .collect();
        for c in &victims {
            c.kill();
        }
        victims.len()
    }

    pub(crate) fn conns_of(&self, pid: i64, uid: i64) -> Vec<Arc<Conn>> {
        let ids = self.state.lock().conns_of(pid, uid);
        let conns = self.conns.lock();
        ids.iter().filter_map(|id| conns.get(id).cloned()).collect()
    }

    pub(crate) fn deliver(&self, pushes: Vec<super::state::Push>) {
        if pushes.is_empty() {
            return;
        }
        let conns = self.conns.lock();
        let targets: Vec<_> = pushes
            .into_iter()
            .filter_map(|p| conns.get(&p.conn).cloned().map(|c| (c, p)))
            .collect();
        drop(conns);
        for (c, p) in targets {
            let twoway = p.twoway();
            c.send_quest_encoded(p.method, &p.payload, twoway);
        }
    }

    /// A test hook consulted by the read loop was just set (its value first, then this).
    pub(crate) fn hooked(&self) {
        self.hooks.store(true, Ordering::SeqCst);
    }

    fn paused(&self) -> bool {
        let mut p = self.paused_until.lock();
        match *p {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *p = None;
                false
            }
            None => false,
        }
    }

    fn accept_loop(self: Arc<Self>, listener: TcpListener, proxy: bool) {
        // Whether the last accept failed: logged once per run of failures.
        let mut failing = false;
        for stream in listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let stream = match stream {
                Ok(stream) => {
                    failing = false;
                    stream
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE) an accept fails again at once:
                    // a pause, not a spin at full CPU, until a connection ends.
                    if !failing {
                        log::warn!("gate: accept failed: {e}; retrying every 10 ms");
                    }
                    failing = true;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if self.refusing.load(Ordering::SeqCst) {
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
            let s = self.clone();
            let _ = std::thread::Builder::new()
                .name("rtm-gate-conn".into())
                .spawn(move || {
                    if let Err(e) = s.serve(stream, proxy) {
                        log::debug!("gate connection ended: {e}");
                    }
                });
        }
    }

    fn serve(self: &Arc<Self>, stream: TcpStream, proxy: bool) -> io::Result<()> {
        let _serving = Serving::new(self);
        let _ = stream.set_nodelay(self.config.nodelay);
        // Also before the handshake: a client that does not read a file it asked for
        // (below) holds this thread for at most this long without progress.
        stream.set_write_timeout(Some(self.config.write_stall))?;
        // Until it is in `conns`, `stop` reaches the connection through here. Registered
        // before `stopping` is read, as `stop` sets it before it shuts these down: one
        // of the two sees the other.
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.handshaking.lock().insert(id, stream.try_clone()?);
        let registered = Handshaking { server: self, id };
        if self.stopping.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // The file proxy also serves its file URLs over plain HTTP (docs/gate.md, "Files"):
        // under the state's lock, only the file's reference count changes.
        let serve = |path: &str| {
            let file = path.strip_prefix(FILE_PATH).filter(|_| proxy)?;
            Some(self.state.lock().file_numbered(file))
        };
        let mut deadlined = Deadline {
            stream: &stream,
            until: Instant::now() + self.config.handshake_timeout,
        };
        let up = match handshake::server_handshake_or_serve(&mut deadlined, serve) {
            Ok(Accepted::Upgrade(up)) => up,
            Ok(Accepted::Served) => return Ok(()),
            Err(e) => return Err(io::Error::other(e.to_string())),
        };
        stream.set_read_timeout(None)?;
        let conn = Arc::new(Conn {
            id,
            out: Mutex::new(Outbox {
                buf: Vec::new(),
                closed: false,
                drain: true,
                writer_waiting: false,
                writing: false,
            }),
            out_ready: Condvar::new(),
            control: stream.try_clone()?,
            seq: AtomicU64::new(0),
            last_heard: AtomicU64::new(since_epoch()),
            read_ms: AtomicI64::new(now_ms()),
            quirk: !self.config.strict_framing,
            queue_limit: self.config.write_queue_limit,
            proxy,
        });
        let w = conn.clone();
        let wstream = stream.try_clone()?;
        let writer = std::thread::Builder::new()
            .name("rtm-gate-write".into())
            .stack_size(64 * 1024)
            .spawn(move || w.write_loop(wstream))?;
        self.conns.lock().insert(id, conn.clone());
        drop(registered);
        if self.stopping.load(Ordering::SeqCst) {
            conn.kill();
        }
        let parser = FrameParser::new(
            Role::Server,
            packet::frame_limit(self.config.max_packet),
            false,
        );
        let source = ConnReader {
            stream,
            conn: conn.clone(),
            batch: Vec::new(),
        };
        let mut reader = WsReader::new(source, &up.leftover, parser);
        // A panic in the read loop (a test hook's closure, `Gate::rewrite_answers`, or
        // a bug of the gate's) ends this connection as an error would: its cleanup
        // below still runs, so no connection is left registered without a reader.
        let result =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.read_loop(&conn, &mut reader)))
                .unwrap_or_else(|_| Err(io::Error::other("the connection's reader panicked")));
        // What is queued (the answer to `bye`, or answers to the quests read
        // before a bad packet) goes out before the connection closes; the
        // writer gives up after `write_stall` on a client that does not read.
        conn.close_outbox(true);
        let _ = writer.join();
        conn.kill();
        // State first: once the connection is gone from the map, the handle
        // reports the user offline, so the logout must already be recorded.
        self.state.lock().disconnect(id, now_ms());
        self.conns.lock().remove(&id);
        result
    }

    fn read_loop(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        reader: &mut WsReader<ConnReader>,
    ) -> io::Result<()> {
        // The index of each short payload's map (`packet::check_map_index`), in one
        // buffer for all of them.
        let mut index = Vec::new();
        loop {
            // The message is read in place (not copied out of the reader's
            // buffer), as the client's reader does.
            let msg = reader
                .read_ref()
                .map_err(|e| io::Error::other(e.to_string()))?;
            let data = match msg {
                IncomingRef::Binary(d) => d,
                IncomingRef::Ping(p) => {
                    let mut out = Vec::new();
                    encode_frame(&mut out, Opcode::Pong, true, p, None, false);
                    conn.write_raw(&out)?;
                    continue;
                }
                IncomingRef::Pong(_) => continue,
                // FPNN servers drop TCP on a close frame, without answering it.
                IncomingRef::Close(_) => return Ok(()),
                IncomingRef::Text(_) => return Err(io::Error::other("text message")),
            };
            // A JSON payload (FPNN's flag 0x40) is converted to its msgpack
            // form and answered in JSON, as FPNN servers do.
            let json = data.len() > 5 && data[5] == packet::FLAG_JSON;
            let patched;
            let data = if json {
                let mut d = data.to_vec();
                d[5] = packet::FLAG_MSGPACK;
                patched = d;
                &patched[..]
            } else {
                data
            };
            let p = PacketRef::parse(data, self.config.max_packet)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if p.kind == Kind::Answer {
                continue;
            }
            // A short payload is read key by key from its bytes (`GateState::handle_bytes`,
            // the same answers); the others, and those the logs keep, are decoded whole.
            let by_bytes = !json
                && !conn.proxy
                && !self.config.record_quests
                && p.method != "auth"
                && p.payload.len() <= packet::FIELDS_MAX;
            // Checked (as every payload), and indexed when it is a map, in one walk.
            let mut indexed = false;
            let payload = if by_bytes {
                indexed = packet::check_map_index(p.payload, self.config.max_packet, &mut index)
                    .map_err(io::Error::other)?;
                None
            } else if json {
                Some(
                    super::json::parse(p.payload, self.config.max_packet)
                        .map_err(io::Error::other)?,
                )
            } else {
                Some(
                    packet::decode_payload_within(p.payload, self.config.max_packet)
                        .map_err(io::Error::other)?,
                )
            };
            if let (true, Some(payload)) = (self.config.record_quests, &payload) {
                self.quest_log
                    .lock()
                    .push((p.method.to_owned(), payload.clone()));
            }
            // Logged even while paused, as the quest log is: every auth received.
            if let (true, Some(payload)) = (p.method == "auth", &payload) {
                // Bounded, for a long-running rtm-gate: the newest entries.
                self.auth_log.lock().push(payload);
            }
            let hooks = self.hooks.load(Ordering::SeqCst);
            if hooks && self.paused() {
                continue;
            }
            // The time the quest's last bytes were read (`Conn::read_ms`).
            let now = conn.read_ms.load(Ordering::Relaxed);
            let mut state = self.state.lock();
            let outcome = match &payload {
                None => {
                    let index = indexed.then_some(&index[..]);
                    state.handle_bytes(conn.id, p.method, p.payload, index, now)
                }
                Some(payload) => state.handle_decoded(conn.proxy, conn.id, p.method, payload, now),
            };
            let answer = outcome.answer.map_err(|e| (e.code, e.ex));
            let (rewrite, delay) = if hooks {
                (self.rewrite.lock().clone(), *self.answer_delay.lock())
            } else {
                (None, Duration::ZERO)
            };
            // An accepted `auth` makes the connection a target for pushes as
            // soon as the state is released; its answer is queued first, so
            // no push overtakes it (a client is online only once answered,
            // and a push that came first would tell it nothing it can use).
            let early = p.method == "auth"
                && p.kind == Kind::Twoway
                && rewrite.is_none()
                && delay.is_zero();
            if early {
                conn.send_answer(p.seq, &answer, json, false);
            }
            drop(state);
            let raw = match (&rewrite, &answer) {
                (Some(f), Ok(a)) if p.kind == Kind::Twoway => f(p.method, &a.as_value(), false),
                (Some(f), Err((code, ex))) if p.kind == Kind::Twoway => {
                    let v = Value::Map(vec![
                        (Value::from("code"), Value::from(*code)),
                        (Value::from("ex"), Value::from(ex.as_str())),
                    ]);
                    f(p.method, &v, true)
                }
                _ => None,
            };
            if let Some((status, body)) = raw {
                conn.send_answer_raw(p.seq, status, &body);
            } else if p.kind == Kind::Twoway && !early {
                if delay.is_zero() {
                    conn.send_answer(p.seq, &answer, json, false);
                } else {
                    let c = conn.clone();
                    let seq = p.seq;
                    std::thread::spawn(move || {
                        std::thread::sleep(delay);
                        c.send_answer(seq, &answer, json, true);
                    });
                }
            }
            self.deliver(outcome.pushes);
            if outcome.close_after {
                return Ok(());
            }
        }
    }

    fn ping_loop(self: Arc<Self>) {
        let interval = self.config.ping_interval;
        loop {
            {
                let mut g = self.wake_lock.lock();
                let wait = if interval.is_zero() {
                    Duration::from_secs(3600)
                } else {
                    interval
                };
                if self.stopping.load(Ordering::SeqCst) {
                    return;
                }
                self.wake.wait_for(&mut g, wait);
            }
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if interval.is_zero() || self.paused() {
                continue;
            }
            let conns: Vec<Arc<Conn>> = self.conns.lock().values().cloned().collect();
            for c in conns {
                let heard = c.last_heard.load(Ordering::Relaxed);
                if Duration::from_nanos(since_epoch().saturating_sub(heard)) > interval * 3 {
                    log::debug!(
                        "gate: connection {} silent for 3 ping intervals, closing",
                        c.id
                    );
                    c.kill();
                    continue;
                }
                if self.state.lock().uid_of(c.id).is_some() {
                    c.send_quest("ping", &Value::Map(vec![]), true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::gate::Gate;
    use crate::testing::wait_until;

    /// A client that asks the proxy for a file and does not read it holds the thread
    /// serving it (which keeps the gate's state alive) for no longer than a write may
    /// make no progress: then the gate closes the connection, cutting the file short.
    #[test]
    fn a_file_get_whose_client_does_not_read_ends_after_the_write_stall() {
        let mut builder = Gate::builder();
        builder.config.write_stall = Duration::from_millis(200);
        let gate = builder.start().expect("gate");
        let srv = gate.srv();
        // More than the kernel buffers of both ends hold (the client's kept small).
        let len = 32 << 20;
        let url = srv.state.lock().put_file(&vec![7; len]);
        let path = url
            .split_once(FILE_PATH)
            .map(|(_, n)| n)
            .expect("a file URL");
        let baseline = Arc::strong_count(&srv);
        let addr: SocketAddr = gate.file_endpoint().parse().expect("an address");
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.connect(&addr.into()).expect("connect");
        let mut client: TcpStream = socket.into();
        write!(client, "GET {FILE_PATH}{path} HTTP/1.1\r\nHost: h\r\n\r\n").expect("GET");
        // The thread serving the GET holds the server while it runs.
        wait_until("the GET is being served", || {
            Arc::strong_count(&srv) > baseline
        });
        wait_until("the thread serving the GET gave up", || {
            Arc::strong_count(&srv) == baseline
        });
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got);
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(
            got.len() < len,
            "{} bytes: the file was cut short",
            got.len()
        );
    }

    /// The handshake timeout bounds the whole request, not each read: a client that
    /// sends its request a byte at a time, each within the timeout, is closed once the
    /// timeout has passed since it connected.
    #[test]
    fn a_trickled_handshake_is_closed_after_the_timeout() {
        let mut builder = Gate::builder();
        builder.config.handshake_timeout = Duration::from_millis(300);
        let gate = builder.start().expect("gate");
        let mut client = TcpStream::connect(gate.endpoint()).expect("connect");
        let started = Instant::now();
        // One byte of a request that never ends, then a wait for the close as long as
        // a tenth of the timeout, until the gate closes it or the test's bound passes.
        client
            .set_read_timeout(Some(Duration::from_millis(30)))
            .expect("timeout");
        let closed = loop {
            assert!(
                started.elapsed() < crate::testing::WAIT,
                "still open: the timeout bounds each read only"
            );
            if client.write_all(b"G").is_err() {
                break started.elapsed();
            }
            match client.read(&mut [0; 16]) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                // EOF, a reset, or an answer (there is none to a request never ended).
                _ => break started.elapsed(),
            }
        };
        assert!(closed >= Duration::from_millis(300), "{closed:?}");
    }

    /// `Gate::shutdown` also ends the connections that have not finished their handshake
    /// (silent ones, on the gate's port and the proxy's) and a file being served to a
    /// client that does not read it, at once rather than after their timeouts (an hour
    /// here): until then their threads keep the server alive.
    /// `restart` (and `shutdown`, drop) waits for the connections' threads to record
    /// their logouts, but not forever for one blocked in a test hook's closure: for at
    /// most the write stall.
    #[test]
    fn restart_does_not_wait_forever_for_a_connection_blocked_in_a_hook() {
        let mut builder = Gate::builder();
        builder.config.write_stall = Duration::from_millis(200);
        let gate = builder.start().expect("gate");
        let (entered_tx, entered) = crossbeam_channel::bounded(1);
        let (release, released) = crossbeam_channel::bounded::<()>(1);
        gate.rewrite_answers(Some(Box::new(move |_: &str, _: &Value, _| {
            let _ = entered_tx.try_send(());
            let _ = released.recv_timeout(Duration::from_secs(600));
            None
        })));
        let conn = crate::fpnn::Connection::connect(
            &gate.endpoint(),
            false,
            &crate::fpnn::ConnectOptions::default(),
            |_q: crate::fpnn::Quest, _r: crate::fpnn::Responder| {},
            |_| {},
        )
        .expect("connect");
        conn.send_quest(
            "anything",
            &Value::Map(vec![]),
            Duration::from_secs(600),
            |_| {},
        );
        entered
            .recv_timeout(crate::testing::WAIT)
            .expect("the hook runs");
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let g = std::thread::spawn(move || {
            let r = gate.restart();
            let _ = done_tx.send(r.is_ok());
            gate
        });
        assert_eq!(
            done.recv_timeout(crate::testing::WAIT),
            Ok(true),
            "restart returned"
        );
        let _ = release.send(());
        drop(g.join().expect("restart thread"));
    }

    #[test]
    fn shutdown_ends_connections_still_in_their_handshake() {
        let mut builder = Gate::builder();
        builder.config.handshake_timeout = Duration::from_secs(3600);
        builder.config.write_stall = Duration::from_secs(3600);
        let gate = builder.start().expect("gate");
        let srv = gate.srv();
        let url = srv.state.lock().put_file(&vec![7; 32 << 20]);
        let path = url
            .split_once(FILE_PATH)
            .map(|(_, n)| n.to_owned())
            .expect("a file URL");
        let mut silent = [gate.endpoint(), gate.file_endpoint()]
            .map(|addr| TcpStream::connect(addr).expect("connect"));
        let mut getter = TcpStream::connect(gate.file_endpoint()).expect("connect");
        write!(getter, "GET {FILE_PATH}{path} HTTP/1.1\r\nHost: h\r\n\r\n").expect("GET");
        wait_until("three connections in their handshake", || {
            srv.handshaking.lock().len() == 3
        });
        gate.shutdown();
        wait_until("their threads let go of the server", || {
            Arc::strong_count(&srv) == 1
        });
        assert!(srv.handshaking.lock().is_empty());
        for stream in &mut silent {
            let mut buf = [0; 16];
            assert_eq!(
                stream
                    .read(&mut buf)
                    .expect("a closed connection reads EOF"),
                0
            );
        }
    }
}
