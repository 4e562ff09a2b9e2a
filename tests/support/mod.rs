//! A small scriptable FPNN-over-WebSocket server for the engine's
//! integration tests, built only from the crate's public pieces.
//!
//! Each accepted connection is a [`ServerConn`] that the test drives from its
//! own thread: read what the client sent, write answers and quests, write raw
//! bytes, fragment a message, use or skip the FPNN 126-byte framing quirk,
//! close TCP whenever it likes (mid-frame included). Every wait is bounded.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
#[path = "../shared/mod.rs"]
mod shared;
#[allow(unused_imports)] // not every test binary uses every helper
pub use shared::{silent_server, wait_until, WAIT};

use rmpv::Value;
use rtm_client::fpnn::packet::{self, Kind, Packet};
use rtm_client::fpnn::{CloseReason, ConnectOptions, Connection, Quest, QuestHandler, Responder};
use rtm_client::ws::frame::{encode_frame, FrameParser, Opcode, Role};
use rtm_client::ws::handshake::server_handshake;
use rtm_client::ws::{Incoming, WsError, WsReader};

/// Largest message the test server accepts from the client.
const SERVER_MAX: usize = 16 * 1024 * 1024;

type TlsStream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// The server side of one socket, plain or TLS. Clones share the socket.
enum Io {
    Plain(TcpStream),
    Tls(Arc<Mutex<TlsStream>>),
}

impl Io {
    fn try_clone(&self) -> io::Result<Io> {
        Ok(match self {
            Io::Plain(s) => Io::Plain(s.try_clone()?),
            Io::Tls(s) => Io::Tls(s.clone()),
        })
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.lock().unwrap().read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(buf),
            Io::Tls(s) => s.lock().unwrap().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => s.lock().unwrap().flush(),
        }
    }
}

/// Reads through to `inner` and keeps a copy of every (plaintext) byte, so
/// tests can look at the exact frames the client wrote.
struct Recorder {
    inner: Io,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.log.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How a connection ended, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A close frame, with its status code when it had one.
    CloseFrame(Option<u16>),
    /// TCP closed (or reset) without a close frame.
    Eof,
}

/// One accepted, upgraded connection, driven by the test.
pub struct ServerConn {
    reader: WsReader<Recorder>,
    io: Io,
    tcp: TcpStream,
    log: Arc<Mutex<Vec<u8>>>,
    /// The client's HTTP upgrade request, byte for byte (head and the blank line).
    pub request: String,
    /// Whether single-frame messages of exactly 126 bytes use the FPNN
    /// framing (no extended length). On by default, as on FPNN servers.
    pub quirk: bool,
    next_seq: u32,
}

impl ServerConn {
    /// The next thing the client sent, within [`WAIT`].
    pub fn incoming(&mut self) -> Incoming {
        match self.incoming_within(WAIT) {
            Ok(i) => i,
            Err(e) => panic!("test server: reading from the client failed: {e}"),
        }
    }

    /// The next thing the client sent; an `Io` error of kind `TimedOut`
    /// when nothing came within `wait`.
    pub fn incoming_within(&mut self, wait: Duration) -> Result<Incoming, WsError> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WsError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing from the client in time",
                )));
            }
            self.tcp.set_read_timeout(Some(left)).unwrap();
            match self.reader.read() {
                Err(WsError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                r => return r,
            }
        }
    }

    /// The next packet the client sent (it must be a binary message).
    pub fn packet(&mut self) -> Packet {
        match self.incoming() {
            Incoming::Binary(b) => Packet::decode(&b, SERVER_MAX)
                .unwrap_or_else(|e| panic!("client sent a bad packet: {e}")),
            other => panic!("expected a binary message, got {other:?}"),
        }
    }

    /// The next packet, with its payload decoded.
    pub fn packet_value(&mut self) -> (Packet, Value) {
        let p = self.packet();
        let v = packet::decode_payload(&p.payload).expect("client payload is not msgpack");
        (p, v)
    }

    /// The next packet, which must be a twoway quest.
    pub fn quest(&mut self) -> (Packet, Value) {
        let (p, v) = self.packet_value();
        assert_eq!(p.kind, Kind::Twoway, "expected a twoway quest, got {p:?}");
        (p, v)
    }

    /// Reads until the client's close frame or the end of TCP and says which
    /// came first. Binary messages and pongs on the way are skipped.
    pub fn ending(&mut self) -> Ending {
        loop {
            match self.incoming_within(WAIT) {
                Ok(Incoming::Close(c)) => return Ending::CloseFrame(c.map(|(code, _)| code)),
                Ok(_) => continue,
                Err(WsError::Eof { .. }) => return Ending::Eof,
                Err(WsError::Io(e)) if e.kind() != io::ErrorKind::TimedOut => return Ending::Eof,
                Err(e) => panic!("the client did not end the connection: {e}"),
            }
        }
    }

    /// Reads until TCP ends (after any close frame).
    pub fn eof(&mut self) {
        loop {
            match self.incoming_within(WAIT) {
                Ok(_) => continue,
                Err(WsError::Eof { .. }) => return,
                Err(WsError::Io(e)) if e.kind() != io::ErrorKind::TimedOut => return,
                Err(e) => panic!("the client did not close TCP: {e}"),
            }
        }
    }

    /// Every byte the client sent after its HTTP request (plaintext under TLS).
    pub fn raw_received(&self) -> Vec<u8> {
        self.log.lock().unwrap()[self.request.len()..].to_vec()
    }

    /// Writes bytes as they are.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes)?;
        self.io.flush()
    }

    /// A clone of the plain socket, to write from another thread while this
    /// one reads (panics under TLS).
    pub fn raw_writer(&self) -> TcpStream {
        match &self.io {
            Io::Plain(s) => s.try_clone().expect("test server: socket clone failed"),
            Io::Tls(_) => panic!("test server: raw_writer is for plain sockets"),
        }
    }

    /// Writes bytes as they are; panics on failure.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes).expect("test server write failed")
    }

    /// One frame, with an explicit choice of the 126-byte quirk.
    pub fn send_frame(&mut self, op: Opcode, fin: bool, payload: &[u8], quirk: bool) {
        let mut out = Vec::new();
        encode_frame(&mut out, op, fin, payload, None, quirk);
        self.send_raw(&out);
    }

    /// A whole message in one binary frame (quirk per [`ServerConn::quirk`]).
    pub fn send_message(&mut self, msg: &[u8]) {
        let q = self.quirk;
        self.send_frame(Opcode::Binary, true, msg, q);
    }

    /// A message cut into `n` frames (binary, then continuations), written
    /// RFC-style. Every frame but possibly the last is non-empty.
    pub fn send_fragmented(&mut self, msg: &[u8], n: usize) {
        let frames = fragments(msg, n);
        let mut out = Vec::new();
        for (i, part) in frames.iter().enumerate() {
            let op = if i == 0 {
                Opcode::Binary
            } else {
                Opcode::Continuation
            };
            encode_frame(&mut out, op, i + 1 == frames.len(), part, None, false);
        }
        self.send_raw(&out);
    }

    /// An answer with raw payload bytes.
    pub fn answer_bytes(&mut self, seq: u32, status: u8, payload: &[u8]) {
        let mut out = Vec::new();
        packet::encode_answer(&mut out, seq, status, payload);
        self.send_message(&out);
    }

    /// An ok answer.
    pub fn answer(&mut self, seq: u32, payload: &Value) {
        self.answer_bytes(seq, 0, &encode(payload));
    }

    /// An error answer `{code, ex}` (status 1, as FPNN servers send).
    pub fn error(&mut self, seq: u32, code: i64, ex: &str) {
        let v = Value::Map(vec![
            (Value::from("code"), Value::from(code)),
            (Value::from("ex"), Value::from(ex)),
        ]);
        self.answer_bytes(seq, 1, &encode(&v));
    }

    /// A twoway quest from the server's own seq counter; returns its seq.
    pub fn send_twoway(&mut self, method: &str, payload: &Value) -> u32 {
        self.next_seq += 1;
        let seq = self.next_seq;
        let mut out = Vec::new();
        packet::encode_quest(&mut out, true, seq, method, &encode(payload));
        self.send_message(&out);
        seq
    }

    /// A oneway quest.
    pub fn send_oneway(&mut self, method: &str, payload: &Value) {
        let mut out = Vec::new();
        packet::encode_quest(&mut out, false, 0, method, &encode(payload));
        self.send_message(&out);
    }

    /// Closes TCP both ways without a close frame.
    pub fn close_tcp(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

/// Splits `msg` into exactly `n` nearly equal, non-empty parts
/// (`1 <= n <= msg.len()`).
pub fn fragments(msg: &[u8], n: usize) -> Vec<&[u8]> {
    assert!(
        n >= 1 && n <= msg.len(),
        "cannot cut {} bytes into {n} frames",
        msg.len()
    );
    let (base, extra) = (msg.len() / n, msg.len() % n);
    let mut parts = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        parts.push(&msg[at..at + len]);
        at += len;
    }
    parts
}

/// A msgpack value as bytes.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    packet::encode_payload(v, &mut out);
    out
}

/// A map `{"d": bin}` whose msgpack encoding is exactly `len` bytes
/// (`len` >= 4).
pub fn payload_of_len(len: usize) -> Value {
    // 0x81, fixstr "d" (2 bytes), then bin8/16/32 header (2/3/5) and data.
    for head in [2usize, 3, 5] {
        if len < 3 + head {
            continue;
        }
        let n = len - 3 - head;
        let fits = match head {
            2 => n <= 0xff,
            3 => n > 0xff && n <= 0xffff,
            _ => n > 0xffff,
        };
        if fits {
            let v = Value::Map(vec![(Value::from("d"), Value::Binary(vec![0xa5; n]))]);
            assert_eq!(encode(&v).len(), len);
            return v;
        }
    }
    panic!("no payload of {len} bytes")
}

/// A TCP listener on 127.0.0.1 that upgrades every connection (with TLS
/// when asked) and hands it to the test.
pub struct TestServer {
    addr: SocketAddr,
    conns: Receiver<Result<ServerConn, String>>,
    /// DER of the CA that signed the server certificate, when TLS.
    pub ca_der: Option<Vec<u8>>,
}

impl TestServer {
    /// A plain `ws` server.
    pub fn start() -> TestServer {
        TestServer::spawn(None)
    }

    /// A `wss` server for "localhost" with a certificate made now.
    pub fn start_tls() -> TestServer {
        let (config, ca_der) = tls_config();
        let mut s = TestServer::spawn(Some(config));
        s.ca_der = Some(ca_der);
        s
    }

    fn spawn(tls: Option<Arc<rustls::ServerConfig>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("test-server-accept".into())
            .spawn(move || accept_loop(listener, tls, tx))
            .unwrap();
        TestServer {
            addr,
            conns: rx,
            ca_der: None,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What to pass to `Connection::connect`: `127.0.0.1:port`, or
    /// `localhost:port` under TLS so the certificate name matches.
    pub fn endpoint(&self) -> String {
        if self.ca_der.is_some() {
            format!("localhost:{}", self.addr.port())
        } else {
            self.addr.to_string()
        }
    }

    /// Whether this is a `wss` server.
    pub fn is_tls(&self) -> bool {
        self.ca_der.is_some()
    }

    /// Default options, trusting the server's CA under TLS.
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            connect_timeout: WAIT,
            extra_roots: self.ca_der.iter().cloned().collect(),
            ..ConnectOptions::default()
        }
    }

    /// The next upgraded connection, within [`WAIT`].
    pub fn accept(&self) -> ServerConn {
        match self.conns.recv_timeout(WAIT) {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!("test server: handshake failed: {e}"),
            Err(_) => panic!("test server: no connection in time"),
        }
    }

    /// Connects a client whose quests and closes are recorded in the
    /// returned [`Client`], and accepts it.
    pub fn connect(&self) -> (Client, ServerConn) {
        self.connect_with(self.options())
    }

    /// [`TestServer::connect`] with explicit options.
    pub fn connect_with(&self, options: ConnectOptions) -> (Client, ServerConn) {
        let (qtx, qrx) = crossbeam_channel::unbounded();
        let client = Client::connect(
            &self.endpoint(),
            self.is_tls(),
            &options,
            move |q: Quest, r: Responder| {
                let _ = qtx.send((q, r));
            },
            Some(qrx),
        );
        let server = self.accept();
        (client, server)
    }

    /// Connects with a custom quest handler.
    pub fn connect_handler(&self, handler: impl QuestHandler) -> (Client, ServerConn) {
        self.connect_handler_with(self.options(), handler)
    }

    /// [`TestServer::connect_handler`] with the given options.
    pub fn connect_handler_with(
        &self,
        options: ConnectOptions,
        handler: impl QuestHandler,
    ) -> (Client, ServerConn) {
        let client = Client::connect(&self.endpoint(), self.is_tls(), &options, handler, None);
        let server = self.accept();
        (client, server)
    }
}

fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    tx: Sender<Result<ServerConn, String>>,
) {
    for stream in listener.incoming() {
        let Ok(tcp) = stream else { continue };
        let tls = tls.clone();
        let tx = tx.clone();
        // Upgrade on a thread of its own: a client that never sends its
        // request must not hold up the next one.
        std::thread::spawn(move || {
            let _ = tx.send(upgrade(tcp, tls));
        });
    }
}

fn upgrade(tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>) -> Result<ServerConn, String> {
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    let ctl = tcp.try_clone().map_err(|e| e.to_string())?;
    let io = match tls {
        None => Io::Plain(tcp),
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
            Io::Tls(Arc::new(Mutex::new(rustls::StreamOwned::new(conn, tcp))))
        }
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut rec = Recorder {
        inner: io.try_clone().map_err(|e| e.to_string())?,
        log: log.clone(),
    };
    let up = server_handshake(&mut rec).map_err(|e| e.to_string())?;
    let request = {
        let all = log.lock().unwrap();
        let head_len = all.len() - up.leftover.len();
        String::from_utf8(all[..head_len].to_vec()).map_err(|e| e.to_string())?
    };
    let reader = WsReader::new(
        rec,
        &up.leftover,
        FrameParser::new(Role::Server, SERVER_MAX, false),
    );
    Ok(ServerConn {
        reader,
        io,
        tcp: ctl,
        log,
        request,
        quirk: true,
        next_seq: 0,
    })
}

/// A server config with a leaf for "localhost" signed by a fresh CA, and the
/// CA's DER for the client's `extra_roots`.
fn tls_config() -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (Arc::new(config), ca.der().to_vec())
}

/// A connected client plus what it reported: close reasons (and how many
/// times the close handler ran) and, with the default handler, server quests.
pub struct Client {
    pub conn: Connection,
    pub closes: Receiver<CloseReason>,
    pub close_count: Arc<AtomicUsize>,
    pub quests: Option<Receiver<(Quest, Responder)>>,
}

impl Client {
    fn connect(
        endpoint: &str,
        tls: bool,
        options: &ConnectOptions,
        handler: impl QuestHandler,
        quests: Option<Receiver<(Quest, Responder)>>,
    ) -> Client {
        let (ctx, crx) = crossbeam_channel::unbounded();
        let count = Arc::new(AtomicUsize::new(0));
        let c2 = count.clone();
        let conn = Connection::connect(endpoint, tls, options, handler, move |reason| {
            c2.fetch_add(1, Ordering::SeqCst);
            let _ = ctx.send(reason);
        })
        .unwrap_or_else(|e| panic!("connect to {endpoint} failed: {e}"));
        Client {
            conn,
            closes: crx,
            close_count: count,
            quests,
        }
    }

    /// The close reason, waiting at most [`WAIT`]; checks the handler ran once.
    pub fn closed(&self) -> CloseReason {
        let r = self
            .closes
            .recv_timeout(WAIT)
            .expect("the close handler did not run in time");
        assert!(!self.conn.is_open(), "closed but is_open() says open");
        assert_eq!(
            self.close_count.load(Ordering::SeqCst),
            1,
            "close handler ran more than once"
        );
        r
    }

    /// The next server quest the default handler saw.
    pub fn quest(&self) -> (Quest, Responder) {
        self.quests
            .as_ref()
            .expect("client has a custom handler")
            .recv_timeout(WAIT)
            .expect("no server quest in time")
    }
}

/// A twoway quest whose result arrives on the returned channel.
pub fn send(
    conn: &Connection,
    method: &str,
    payload: &Value,
    timeout: Duration,
) -> Receiver<Result<Value, rtm_client::RtmError>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    conn.send_quest(method, payload, timeout, move |r| {
        let _ = tx.send(r);
    });
    rx
}

/// Waits for a quest's result.
pub fn result(
    rx: &Receiver<Result<Value, rtm_client::RtmError>>,
) -> Result<Value, rtm_client::RtmError> {
    rx.recv_timeout(WAIT)
        .expect("quest callback did not run in time")
}

/// The empty map.
pub fn empty() -> Value {
    Value::Map(vec![])
}

/// `{key: value}`.
pub fn map1(key: &str, value: impl Into<Value>) -> Value {
    Value::Map(vec![(Value::from(key), value.into())])
}

/// The value of `key` in a map.
pub fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(key)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Counts how many times each of `n` callbacks ran.
pub struct Counters(pub Arc<Vec<AtomicUsize>>);

impl Counters {
    pub fn new(n: usize) -> Counters {
        Counters(Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect()))
    }

    pub fn total(&self) -> usize {
        self.0.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    pub fn all_exactly_once(&self) -> bool {
        self.0.iter().all(|c| c.load(Ordering::SeqCst) == 1)
    }
}
