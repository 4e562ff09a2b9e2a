//! The local RTM gate: an in-memory RTM server speaking the real wire
//! protocol (FPNN over WebSocket, msgpack), for tests, examples and for
//! applications that want to run without an RTM account or a network.
//! It is not a production server. Behaviour: `docs/gate.md`. Rust-only:
//! the JavaScript SDK has no local server.
//!
//! ```
//! use rtm_client::gate::Gate;
//!
//! let gate = Gate::builder().token(1001, "secret").start()?;
//! println!("gate at {}", gate.endpoint());
//! gate.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```

mod json;
mod server;
pub(crate) mod state;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmpv::Value;

use server::Server;

/// How a gate is configured (see [`GateBuilder`]).
#[derive(Debug, Clone)]
pub(crate) struct GateConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tokens: Option<HashMap<i64, String>>,
    pub(crate) ping_interval: Duration,
    pub(crate) strict_framing: bool,
    pub(crate) max_packet: usize,
    pub(crate) record_quests: bool,
    pub(crate) nodelay: bool,
    pub(crate) write_queue_limit: usize,
    pub(crate) file_port: u16,
    pub(crate) max_file: usize,
    pub(crate) file_store: usize,
    pub(crate) history_limit: usize,
    /// How long a write to a connection may make no progress ([`server::WRITE_STALL`];
    /// shorter in tests).
    pub(crate) write_stall: Duration,
    /// How long a new connection may take to send its request
    /// ([`server::HANDSHAKE_TIMEOUT`]; longer in a test that must see
    /// [`Gate::shutdown`] end it first).
    pub(crate) handshake_timeout: Duration,
}

/// A rewrite of the gate's answers (see [`Gate::rewrite_answers`]): the
/// method, the real answer's payload (`{code, ex}` for an error) and whether
/// it is an error in; the status byte (0 ok, 1 error) and the raw payload to
/// send instead out, or `None` for the real answer. Rust-only.
pub type Rewrite = dyn Fn(&str, &Value, bool) -> Option<(u8, Vec<u8>)> + Send + Sync;

/// Default of [`GateBuilder::history_limit`]: the gate keeps at least the newest
/// 100,000 messages of each conversation. Rust-only (the local gate; docs/gate.md).
pub const DEFAULT_HISTORY_LIMIT: usize = 100_000;

/// Default of [`GateBuilder::file_store_limit`]: the file proxy keeps the newest 256 MiB
/// of files. Rust-only (the local gate; docs/gate.md).
pub const DEFAULT_FILE_STORE: usize = 256 << 20;

/// Default of [`GateBuilder::write_queue_limit`]: 16 MiB. Rust-only (the local gate; docs/gate.md).
pub const DEFAULT_WRITE_QUEUE: usize = 16 * 1024 * 1024;

/// Builds and starts a [`Gate`]. Defaults: `127.0.0.1`, a free port, any
/// non-empty token accepted, a ping every 20 s, FPNN's 126-byte framing,
/// 8 MiB packets, TCP_NODELAY on, a 16 MiB write queue per connection.
/// Rust-only (the local gate; docs/gate.md).
#[derive(Debug, Clone)]
pub struct GateBuilder {
    config: GateConfig,
}

impl Default for GateBuilder {
    fn default() -> Self {
        GateBuilder {
            config: GateConfig {
                host: "127.0.0.1".into(),
                port: 0,
                tokens: None,
                ping_interval: Duration::from_secs(20),
                strict_framing: false,
                max_packet: crate::fpnn::packet::DEFAULT_MAX_PACKET,
                record_quests: false,
                nodelay: true,
                write_queue_limit: DEFAULT_WRITE_QUEUE,
                file_port: 0,
                max_file: state::DEFAULT_MAX_FILE,
                file_store: DEFAULT_FILE_STORE,
                history_limit: DEFAULT_HISTORY_LIMIT,
                write_stall: server::WRITE_STALL,
                handshake_timeout: server::HANDSHAKE_TIMEOUT,
            },
        }
    }
}

impl GateBuilder {
    /// Address to listen on (`--host`). Rust-only (the local gate; docs/gate.md).
    pub fn host(mut self, host: &str) -> Self {
        self.config.host = host.to_owned();
        self
    }

    /// Port to listen on; 0 picks a free one (`--port`). Rust-only (the local gate; docs/gate.md).
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// Lets `uid` log in with `token` (`--token UID:TOKEN`). Once any token is
    /// given only the given pairs log in. Rust-only (the local gate; docs/gate.md).
    pub fn token(mut self, uid: i64, token: &str) -> Self {
        self.config
            .tokens
            .get_or_insert_with(HashMap::new)
            .insert(uid, token.to_owned());
        self
    }

    /// Time between `ping` quests to each authenticated connection; zero
    /// turns pings off (`--ping-interval`). A connection silent for three
    /// intervals is closed. Rust-only (the local gate; docs/gate.md).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// Frames 126-byte payloads as RFC 6455 says instead of the way FPNN
    /// servers do (`--strict-framing`). Rust-only (the local gate; docs/gate.md).
    pub fn strict_framing(mut self, strict: bool) -> Self {
        self.config.strict_framing = strict;
        self
    }

    /// Largest packet accepted; larger ones close the connection (`--max-packet`).
    /// Rust-only (the local gate; docs/gate.md).
    pub fn max_packet(mut self, bytes: usize) -> Self {
        self.config.max_packet = bytes;
        self
    }

    /// Whether accepted sockets set TCP_NODELAY (default `true`). Real FPNN
    /// servers leave it off, so their small answers can wait for the
    /// client's delayed ACK; `false` (`--no-nodelay`) reproduces that.
    /// Rust-only (a gate setting, no JavaScript counterpart).
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.config.nodelay = nodelay;
        self
    }

    /// Most bytes queued for one connection before the gate decides the
    /// client has stopped reading and closes it (default
    /// [`DEFAULT_WRITE_QUEUE`]); the batch being written is not counted, so a
    /// connection holds at most about twice this. A frame is always queued when the queue is
    /// empty, whatever its size. A connection whose writes make no progress
    /// for 10 s is closed too. Rust-only; not a command-line option.
    pub fn write_queue_limit(mut self, bytes: usize) -> Self {
        self.config.write_queue_limit = bytes;
        self
    }

    /// Test hook: records every quest the gate reads (method and payload),
    /// for [`Gate::quest_log`] and [`Gate::received`]. Off by default, since
    /// the log grows with every quest; not a command-line option. Rust-only (a test hook).
    pub fn record_quests(mut self, record: bool) -> Self {
        self.config.record_quests = record;
        self
    }

    /// Port of the file proxy, the gate's second listener on the same host; 0 picks a
    /// free one (`--file-port`). See docs/gate.md, "Files".
    /// Rust-only (the local gate; docs/gate.md).
    pub fn file_port(mut self, port: u16) -> Self {
        self.config.file_port = port;
        self
    }

    /// Largest file the file proxy stores, in bytes; larger uploads are answered 200031.
    /// Default 4 MiB (the packet limit applies first). Not a command-line option.
    /// Rust-only (the local gate; docs/gate.md).
    pub fn max_file_size(mut self, bytes: usize) -> Self {
        self.config.max_file = bytes;
        self
    }

    /// Total size of the files the file proxy keeps, in bytes: when an upload takes the
    /// total over it, the oldest files are dropped (their URLs then answer 404, and
    /// [`Gate::file`] gives `None`); the newest file is always kept. Default
    /// [`DEFAULT_FILE_STORE`] (256 MiB). Not a command-line option. Rust-only (a gate
    /// setting, no JavaScript counterpart).
    pub fn file_store_limit(mut self, bytes: usize) -> Self {
        self.config.file_store = bytes;
        self
    }

    /// How many messages of each conversation (a p2p pair, a group, a room, the
    /// broadcasts) the gate keeps: at least the newest `messages`, at most twice that;
    /// older ones are dropped from history, unread counts, `getmsg`, `delmsg` and resend
    /// detection, so a long run's memory stays bounded (`--history-limit`). Default
    /// [`DEFAULT_HISTORY_LIMIT`] (100,000); 0 keeps every message. Rust-only (a gate
    /// setting, no JavaScript counterpart).
    pub fn history_limit(mut self, messages: usize) -> Self {
        self.config.history_limit = messages;
        self
    }

    /// Starts the gate in this process. Rust-only (the local gate; docs/gate.md).
    pub fn start(self) -> io::Result<Gate> {
        let server = Server::new(self.config);
        {
            let mut st = server.state.lock();
            st.set_max_file(server.config.max_file);
            st.set_file_store(server.config.file_store);
            st.set_history_limit(server.config.history_limit);
        }
        let host = bracket(&server.config.host);
        let addr = server.listen(&format!("{host}:{}", server.config.port))?;
        let file_addr = match server.listen_proxy(&format!("{host}:{}", server.config.file_port)) {
            Ok(a) => a,
            Err(e) => {
                server.stop();
                return Err(e);
            }
        };
        Ok(Gate {
            server: Mutex::new(server),
            addr,
            file_addr,
        })
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// A running local gate. Dropping it (or [`Gate::shutdown`]) stops it and
/// frees its port. Many gates may run in one process.
///
/// Besides serving RTM clients, the handle drives what tests need: pushes and
/// kickouts on demand, and faults (dropped connections, a silent gate,
/// delayed answers, refused connections, restarts, raw bytes).
/// Rust-only (the local gate; docs/gate.md).
pub struct Gate {
    server: Mutex<Arc<Server>>,
    addr: SocketAddr,
    file_addr: SocketAddr,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("addr", &self.addr).finish()
    }
}

impl Gate {
    /// A builder with the defaults of [`GateBuilder`]. Rust-only (the local gate; docs/gate.md).
    pub fn builder() -> GateBuilder {
        GateBuilder::default()
    }

    /// Starts a gate with the defaults on a free port. Rust-only (the local gate; docs/gate.md).
    pub fn start() -> io::Result<Gate> {
        GateBuilder::default().start()
    }

    fn srv(&self) -> Arc<Server> {
        self.server.lock().clone()
    }

    /// `host:port` to give `RtmOptions::endpoint`. Rust-only (the local gate; docs/gate.md).
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// The port listened on. Rust-only (the local gate; docs/gate.md).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `host:port` of the file proxy (give it `RtmOptions::file_endpoint`; clients of
    /// a gate on an IP address find it in the `filetoken` answer without it).
    /// Rust-only (the local gate; docs/gate.md).
    pub fn file_endpoint(&self) -> String {
        self.file_addr.to_string()
    }

    /// The bytes of the file that a file message's URL (its body) names, if this gate's
    /// file proxy stored it. Rust-only (the local gate; docs/gate.md).
    pub fn file(&self, url: &str) -> Option<Vec<u8>> {
        let file = self.srv().state.lock().file(url);
        file.map(|f| f.to_vec())
    }

    /// Open WebSocket connections (authenticated or not). Rust-only (the local gate; docs/gate.md).
    pub fn connection_count(&self) -> usize {
        self.srv().conns.lock().len()
    }

    /// Authenticated connections of a user. Rust-only (the local gate; docs/gate.md).
    pub fn connections_of(&self, pid: i64, uid: i64) -> usize {
        self.srv().conns_of(pid, uid).len()
    }

    /// The `auth` payloads received, oldest first, those read while paused included:
    /// the newest 10,000, within 16 MiB msgpack-encoded (the newest always kept).
    /// Rust-only (a test hook).
    pub fn auth_requests(&self) -> Vec<Value> {
        self.srv().auth_log.lock().payloads()
    }

    /// Every quest the gate has read from any connection, as `(method,
    /// payload)` in arrival order (including `auth` and quests ignored during a
    /// [`Gate::pause`]; answers to the gate's own quests, such as `ping`,
    /// are not quests). Only recorded when the
    /// gate was built with [`GateBuilder::record_quests`]; empty otherwise.
    /// Lets a test check what a client put on the wire. Rust-only (the local gate; docs/gate.md).
    pub fn quest_log(&self) -> Vec<(String, Value)> {
        self.srv().quest_log.lock().clone()
    }

    /// The payloads of the recorded quests (see [`Gate::quest_log`]) with this
    /// method, oldest first. Rust-only (the local gate; docs/gate.md).
    pub fn received(&self, method: &str) -> Vec<Value> {
        let srv = self.srv();
        let log = srv.quest_log.lock();
        log.iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Forgets the recorded quests. Rust-only (the local gate; docs/gate.md).
    pub fn clear_quest_log(&self) {
        self.srv().quest_log.lock().clear();
    }

    /// Sends `kickout {}` to every connection of the user (the session ends
    /// on the client's side). Rust-only (the local gate; docs/gate.md).
    pub fn kickout(&self, pid: i64, uid: i64) -> usize {
        let srv = self.srv();
        let pushes = srv.state.lock().kickout(pid, uid);
        let n = pushes.len();
        srv.deliver(pushes);
        n
    }

    /// Removes the user from a room and sends it `kickoutroom {rid}`.
    /// Rust-only (the local gate; docs/gate.md).
    pub fn kickout_room(&self, pid: i64, uid: i64, rid: i64) {
        let srv = self.srv();
        let pushes = srv.state.lock().kickout_room(pid, uid, rid);
        srv.deliver(pushes);
    }

    /// Sends a broadcast message from `from` to every user of `pid`, and
    /// stores it in broadcast history. Rust-only (the local gate; docs/gate.md).
    pub fn broadcast(&self, pid: i64, from: i64, mtype: u8, msg: &str, attrs: &str) {
        let srv = self.srv();
        let pushes =
            srv.state
                .lock()
                .broadcast(pid, from, mtype, Value::from(msg), attrs, server::now_ms());
        srv.deliver(pushes);
    }

    /// Stores and pushes a message as if `from` had sent it, with a body of
    /// raw bytes (sent as msgpack bin). `kind`: 1 p2p to uid `target`, 2 group
    /// `target`, 3 room `target`. Returns the message's mtime.
    /// Rust-only (the local gate; docs/gate.md).
    #[allow(clippy::too_many_arguments)]
    pub fn inject_message(
        &self,
        pid: i64,
        kind: u8,
        from: i64,
        target: i64,
        mid: i64,
        mtype: u8,
        body: &[u8],
        attrs: &str,
    ) -> Result<i64, crate::RtmError> {
        let srv = self.srv();
        let r = srv.state.lock().inject(
            pid,
            kind,
            from,
            target,
            mid,
            mtype,
            Value::Binary(body.to_vec()),
            attrs,
            server::now_ms(),
        );
        match r {
            Ok((mtime, pushes)) => {
                srv.deliver(pushes);
                Ok(mtime)
            }
            Err(e) => Err(crate::RtmError::new(e.code, e.ex)),
        }
    }

    /// Sends a quest to every connection of the user; returns how many. The method's
    /// name must be 1 to 255 bytes (an FPNN header holds its length in one byte):
    /// another is sent to no connection, and 0 is returned. Rust-only (a test hook).
    pub fn send_quest(
        &self,
        pid: i64,
        uid: i64,
        method: &str,
        payload: Value,
        twoway: bool,
    ) -> usize {
        if !crate::fpnn::packet::method_fits(method) {
            log::warn!(
                "gate: send_quest with a method of {} bytes: not sent",
                method.len()
            );
            return 0;
        }
        let conns = self.srv().conns_of(pid, uid);
        for c in &conns {
            c.send_quest(method, &payload, twoway);
        }
        conns.len()
    }

    /// Writes raw bytes to every connection of the user; returns how many.
    /// Rust-only (the local gate; docs/gate.md).
    pub fn send_raw(&self, pid: i64, uid: i64, bytes: &[u8]) -> usize {
        let conns = self.srv().conns_of(pid, uid);
        for c in &conns {
            let _ = c.write_raw(bytes);
        }
        conns.len()
    }

    /// Drops every connection of the user abruptly (no close frame, as a
    /// crashed link would); returns how many. Rust-only (the local gate; docs/gate.md).
    pub fn drop_user(&self, pid: i64, uid: i64) -> usize {
        let conns = self.srv().conns_of(pid, uid);
        for c in &conns {
            c.kill();
        }
        conns.len()
    }

    /// Drops every connection abruptly; returns how many. Rust-only (the local gate; docs/gate.md).
    pub fn drop_all(&self) -> usize {
        self.srv().drop_where(|_| true)
    }

    /// Stops answering quests and sending pings for `duration` (a half-open
    /// link). Quests received meanwhile are never answered.
    /// Rust-only (the local gate; docs/gate.md).
    pub fn pause(&self, duration: Duration) {
        let srv = self.srv();
        *srv.paused_until.lock() = Some(Instant::now() + duration);
        srv.hooked();
    }

    /// Ends a [`Gate::pause`] early. Rust-only (the local gate; docs/gate.md).
    pub fn resume(&self) {
        let srv = self.srv();
        *srv.paused_until.lock() = None;
        srv.hooked();
    }

    /// Delays every answer by `delay` (zero: no delay). Rust-only (the local gate; docs/gate.md).
    pub fn set_answer_delay(&self, delay: Duration) {
        let srv = self.srv();
        *srv.answer_delay.lock() = delay;
        srv.hooked();
    }

    /// Refuses new connections (accepts and drops them at once) while set.
    /// Rust-only (the local gate; docs/gate.md).
    pub fn refuse_connections(&self, refuse: bool) {
        self.srv()
            .refusing
            .store(refuse, std::sync::atomic::Ordering::SeqCst);
    }

    /// TCP connections the gate has accepted since it started (or since the
    /// last [`Gate::restart`]), those dropped by [`Gate::refuse_connections`]
    /// included: lets a test count a client's connection attempts. Rust-only
    /// test hook.
    pub fn connection_attempts(&self) -> u64 {
        self.srv()
            .attempts
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Passes every later answer to a two-way quest to `rewrite` with its
    /// method (see [`Rewrite`]): when it returns a status and bytes, the gate
    /// sends them as the answer's status and raw payload instead; `None`
    /// keeps the real answer. The quest still takes
    /// effect. Lets a test answer any method with bad msgpack, wrong types or
    /// truncated payloads. `rewrite_answers(None)` turns it off; not kept across
    /// [`Gate::restart`]. A panic in `rewrite` closes that connection, as a read
    /// error would. Rust-only test hook, for hostile-input tests.
    pub fn rewrite_answers(&self, rewrite: Option<Box<Rewrite>>) {
        let srv = self.srv();
        *srv.rewrite.lock() = rewrite.map(Arc::from);
        srv.hooked();
    }

    /// Drops every connection and stops listening, then listens again on the
    /// same port, as a restarted gate would. Stored messages are kept. Returns once
    /// the dropped connections' logouts are recorded. Rust-only (the local gate; docs/gate.md).
    pub fn restart(&self) -> io::Result<()> {
        let old = self.srv();
        old.stop();
        let config = GateConfig {
            port: self.addr.port(),
            ..old.config.clone()
        };
        let fresh = Server::with_state(
            config,
            old.state.clone(),
            old.next_conn.clone(),
            old.quest_log.clone(),
        );
        // The old listener's port can take a moment to be free again.
        let deadline = Instant::now() + Duration::from_secs(5);
        for (addr, proxy) in [(self.addr, false), (self.file_addr, true)] {
            loop {
                let r = if proxy {
                    fresh.listen_proxy(&addr.to_string())
                } else {
                    fresh.listen(&addr.to_string())
                };
                match r {
                    Ok(_) => break,
                    Err(e) if Instant::now() < deadline && e.kind() == io::ErrorKind::AddrInUse => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        *self.server.lock() = fresh;
        Ok(())
    }

    /// Stops the gate, closes every connection (those still in their handshake too) and
    /// frees its port. Rust-only (the local gate; docs/gate.md).
    pub fn shutdown(self) {
        self.srv().stop();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.srv().stop();
    }
}
