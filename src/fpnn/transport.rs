//! Sockets: connecting within one deadline (DNS, TCP, TLS and the WebSocket
//! upgrade), and splitting a connection into a read half for the reader
//! thread and a write half for the writer thread.
//!
//! With TLS both halves share one `rustls::ClientConnection` behind a mutex,
//! but neither holds it while blocked on the socket: the read half reads raw
//! bytes from its own clone of the TCP socket and only then locks to decrypt;
//! the write half locks to encrypt, unlocks, and then writes. Only the write
//! half ever takes TLS bytes out of the session, so records reach the socket
//! in the order they were sealed. When decrypting produces bytes to send
//! (alerts, key updates), the read half asks the writer to flush them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::ws::handshake;
use crate::ws::WsError;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `wss` when true.
    pub tls: bool,
}

impl Endpoint {
    /// Parses `host:port`, `[v6]:port`, or a `ws://` / `wss://` URL (its path
    /// is ignored). `tls` applies to the `host:port` form.
    pub fn parse(s: &str, tls: bool) -> Option<Endpoint> {
        let (rest, tls) = if let Some(r) = s.strip_prefix("wss://") {
            (r, true)
        } else if let Some(r) = s.strip_prefix("ws://") {
            (r, false)
        } else {
            (s, tls)
        };
        let hostport = rest.split('/').next().unwrap_or("");
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let (h, p) = r.split_once("]:")?;
            (h, p)
        } else {
            hostport.rsplit_once(':')?
        };
        if host.is_empty() || (host.contains(':') && !hostport.starts_with('[')) {
            return None;
        }
        let port: u16 = port.parse().ok()?;
        if port == 0 {
            return None;
        }
        Some(Endpoint {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "wss" } else { "ws" };
        write!(f, "{scheme}://{}", self.host_header())
    }
}

/// DNS and TCP connect, on a short-lived `rtm-dial` thread: neither the
/// standard resolver nor a blocking connect can be interrupted, so the caller
/// waits for the first of the thread's result, `deadline`, or a cancel. An
/// abandoned dial finishes on its own by `deadline` and drops its socket.
fn dial(ep: &Endpoint, deadline: Instant, cancel: &ConnectCancel) -> io::Result<TcpStream> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (host, port) = (ep.host.clone(), ep.port);
    std::thread::Builder::new()
        .name("rtm-dial".into())
        .spawn(move || {
            let connect = || -> io::Result<TcpStream> {
                let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => vec![SocketAddr::new(ip, port)],
                    Err(_) => (host.as_str(), port).to_socket_addrs()?.collect(),
                };
                let mut last = io::Error::new(io::ErrorKind::NotFound, "host has no address");
                for a in addrs {
                    match TcpStream::connect_timeout(&a, remaining(deadline)?) {
                        Ok(s) => return Ok(s),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            };
            let _ = tx.send(connect());
        })?;
    let stop = cancel.signal();
    crossbeam_channel::select! {
        recv(rx) -> r => r.unwrap_or_else(|_| Err(io::Error::other("the dial thread ended"))),
        recv(stop) -> _ => Err(io::Error::new(io::ErrorKind::Interrupted, "connect cancelled")),
        default(deadline.saturating_duration_since(Instant::now())) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timeout (DNS or TCP)",
        )),
    }
}

/// `timeout` from now. A timeout too large for `Instant` (`Duration::MAX`
/// as "no limit") is a century, where `+` would panic.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    deadline_from(Instant::now(), timeout)
}

/// `start + timeout`, saturating: a timeout too large for `Instant` means a
/// century, which is as good as never.
pub(crate) fn deadline_from(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(start)
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timeout",
        ))
    } else {
        Ok(left)
    }
}

/// What `open` hands the connection engine.
pub(crate) struct Opened {
    pub(crate) read: ReadHalf,
    pub(crate) write: WriteHalf,
    /// Bytes after the HTTP head: the start of the first frame.
    pub(crate) leftover: Vec<u8>,
    /// A clone of the socket, to shut it down from any thread.
    pub(crate) control: TcpStream,
}

/// Aborts a connect in progress from another thread: [`ConnectCancel::cancel`]
/// stops the wait for DNS and the TCP connect, and shuts the socket being
/// opened, which wakes a handshake blocked on a silent server at once. It has
/// no effect on a connection already opened.
///
/// [`Connection::connect`](super::Connection::connect) then fails with 20002
/// (`FPNN_EC_CORE_CONNECTION_CLOSED`).
#[derive(Debug, Clone)]
pub struct ConnectCancel(Arc<CancelInner>);

#[derive(Debug)]
struct CancelInner {
    state: Mutex<CancelState>,
    /// Disconnected by `cancel`, which wakes a waiting `dial`.
    signal: crossbeam_channel::Receiver<()>,
}

#[derive(Debug)]
struct CancelState {
    cancelled: bool,
    socket: Option<TcpStream>,
    signal: Option<crossbeam_channel::Sender<()>>,
}

impl Default for ConnectCancel {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(1);
        ConnectCancel(Arc::new(CancelInner {
            state: Mutex::new(CancelState {
                cancelled: false,
                socket: None,
                signal: Some(tx),
            }),
            signal: rx,
        }))
    }
}

impl ConnectCancel {
    /// A fresh, uncancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Aborts the connect this token was given to (now, or as soon as it
    /// starts), whether it is resolving, connecting or handshaking.
    pub fn cancel(&self) {
        let mut s = self.0.state.lock();
        s.cancelled = true;
        s.signal = None;
        if let Some(t) = s.socket.take() {
            shutdown(&t);
        }
    }

    fn signal(&self) -> crossbeam_channel::Receiver<()> {
        self.0.signal.clone()
    }

    /// Whether [`ConnectCancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.state.lock().cancelled
    }

    fn check(&self) -> io::Result<()> {
        if self.is_cancelled() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "connect cancelled",
            ));
        }
        Ok(())
    }

    /// Watches `tcp` until [`ConnectCancel::detach`].
    fn attach(&self, tcp: &TcpStream) -> io::Result<()> {
        let mut s = self.0.state.lock();
        if s.cancelled {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "connect cancelled",
            ));
        }
        s.socket = Some(tcp.try_clone()?);
        Ok(())
    }

    fn detach(&self) {
        self.0.state.lock().socket = None;
    }
}

/// Opens TCP (and TLS) and performs the WebSocket upgrade, all before
/// `timeout` runs out, unless `cancel` stops it first.
pub(crate) fn open(
    ep: &Endpoint,
    path: &str,
    timeout: Duration,
    extra_roots: &[Vec<u8>],
    cancel: &ConnectCancel,
) -> Result<Opened, WsError> {
    let r = open_watched(ep, path, timeout, extra_roots, cancel);
    cancel.detach();
    match r {
        Err(_) if cancel.is_cancelled() => Err(WsError::Io(io::Error::new(
            io::ErrorKind::Interrupted,
            "connect cancelled",
        ))),
        r => r,
    }
}

fn open_watched(
    ep: &Endpoint,
    path: &str,
    timeout: Duration,
    extra_roots: &[Vec<u8>],
    cancel: &ConnectCancel,
) -> Result<Opened, WsError> {
    cancel.check()?;
    let deadline = deadline_after(timeout);
    let tcp = dial(ep, deadline, cancel)?;
    cancel.attach(&tcp)?;
    tcp.set_nodelay(true)?;
    let control = tcp.try_clone()?;
    if !ep.tls {
        let leftover =
            handshake::client_handshake(&mut Deadlined(&tcp, deadline), &ep.host_header(), path)?;
        tcp.set_read_timeout(None)?;
        tcp.set_write_timeout(Some(WRITE_POLL))?;
        let read = tcp.try_clone()?;
        return Ok(Opened {
            read: ReadHalf::Plain(read),
            write: WriteHalf::Plain(tcp),
            leftover,
            control,
        });
    }
    let config = tls_config(extra_roots)?;
    let name = ServerName::try_from(ep.host.clone())
        .map_err(|e| WsError::Handshake(format!("bad TLS server name: {e}")))?;
    let mut conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| WsError::Handshake(format!("TLS setup failed: {e}")))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut Deadlined(&tcp, deadline))?;
    }
    let leftover = {
        let mut io = Deadlined(&tcp, deadline);
        let mut stream = rustls::Stream::new(&mut conn, &mut io);
        handshake::client_handshake(&mut stream, &ep.host_header(), path)?
    };
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(Some(WRITE_POLL))?;
    let session = Arc::new(Mutex::new(conn));
    let read = TlsRead {
        tcp: tcp.try_clone()?,
        session: session.clone(),
        raw: vec![0u8; 32 * 1024],
        raw_start: 0,
        raw_end: 0,
        wants_flush: None,
    };
    Ok(Opened {
        read: ReadHalf::Tls(read),
        write: WriteHalf::Tls(TlsWrite {
            tcp,
            session,
            out: Vec::new(),
        }),
        leftover,
        control,
    })
}

/// The socket while connecting: each read or write may block only until the
/// connect deadline, so a peer that trickles its answer a byte at a time
/// cannot stretch the connect timeout.
struct Deadlined<'a>(&'a TcpStream, Instant);

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.set_read_timeout(Some(remaining(self.1)?))?;
        let mut s = self.0;
        s.read(buf)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.set_write_timeout(Some(remaining(self.1)?))?;
        let mut s = self.0;
        s.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.0;
        s.flush()
    }
}

/// How long one write may stall (the peer not reading) before the connection
/// is given up.
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(30);

/// How long one blocked write waits before the writer looks at its deadlines
/// again: a peer that stops reading must not hold up quests' timeouts.
const WRITE_POLL: Duration = Duration::from_millis(5);

/// Writes all of `buf`. While the socket is full it calls `on_wait` every
/// [`WRITE_POLL`], and gives up after [`WRITE_STALL`] without progress.
fn write_patiently(tcp: &mut TcpStream, buf: &[u8], on_wait: &mut dyn FnMut()) -> io::Result<()> {
    let mut off = 0;
    let mut stalled_since: Option<Instant> = None;
    while off < buf.len() {
        match tcp.write(&buf[off..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                off += n;
                stalled_since = None;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= WRITE_STALL {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the peer stopped reading: write stalled for 30 s",
                    ));
                }
                on_wait();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tls_config(extra_roots: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, WsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| WsError::Handshake(format!("bad root certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WsError::Handshake(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The reader thread's half.
pub(crate) enum ReadHalf {
    Plain(TcpStream),
    Tls(TlsRead),
}

impl ReadHalf {
    /// Called by the TLS half when the session has bytes to send.
    pub(crate) fn set_flush_hook(&mut self, hook: Box<dyn Fn() + Send>) {
        if let ReadHalf::Tls(t) = self {
            t.wants_flush = Some(hook);
        }
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadHalf::Plain(s) => s.read(buf),
            ReadHalf::Tls(t) => t.read(buf),
        }
    }
}

pub(crate) struct TlsRead {
    tcp: TcpStream,
    session: Arc<Mutex<rustls::ClientConnection>>,
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    wants_flush: Option<Box<dyn Fn() + Send>>,
}

impl Read for TlsRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut s = self.session.lock();
                match s.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                // Feed ciphertext we already hold before reading more.
                if self.raw_start < self.raw_end {
                    let mut slice = &self.raw[self.raw_start..self.raw_end];
                    let n = s.read_tls(&mut slice)?;
                    self.raw_start += n;
                    let state = s.process_new_packets().map_err(io::Error::other)?;
                    let _ = state;
                    if s.wants_write() {
                        if let Some(h) = &self.wants_flush {
                            h();
                        }
                    }
                    continue;
                }
            }
            // Block on the socket without holding the session lock.
            let n = self.tcp.read(&mut self.raw)?;
            if n == 0 {
                return Ok(0);
            }
            self.raw_start = 0;
            self.raw_end = n;
        }
    }
}

/// The writer thread's half.
pub(crate) enum WriteHalf {
    Plain(TcpStream),
    Tls(TlsWrite),
}

pub(crate) struct TlsWrite {
    tcp: TcpStream,
    session: Arc<Mutex<rustls::ClientConnection>>,
    out: Vec<u8>,
}

impl WriteHalf {
    /// Writes `data` (plaintext) to the peer; `on_wait` runs while the
    /// socket is full (see [`write_patiently`]).
    pub(crate) fn send(&mut self, data: &[u8], on_wait: &mut dyn FnMut()) -> io::Result<()> {
        match self {
            WriteHalf::Plain(s) => write_patiently(s, data, on_wait),
            WriteHalf::Tls(t) => {
                // The session takes at most its buffer limit (64 KiB) of
                // plaintext at a time: seal a part, send it, repeat.
                let mut rest = data;
                loop {
                    {
                        let mut s = t.session.lock();
                        let n = s.writer().write(rest)?;
                        rest = &rest[n..];
                        while s.wants_write() {
                            s.write_tls(&mut t.out)?;
                        }
                    }
                    let r = write_patiently(&mut t.tcp, &t.out, on_wait);
                    t.out.clear();
                    if t.out.capacity() > 1 << 20 {
                        t.out.shrink_to(64 * 1024);
                    }
                    r?;
                    if rest.is_empty() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Sends whatever the TLS session has queued (nothing for plain TCP).
    pub(crate) fn flush_session(&mut self, on_wait: &mut dyn FnMut()) -> io::Result<()> {
        self.send(&[], on_wait)
    }

    /// Sends TLS close_notify (plain TCP: nothing).
    pub(crate) fn close_notify(&mut self) {
        if let WriteHalf::Tls(t) = self {
            t.session.lock().send_close_notify();
            let _ = self.flush_session(&mut || {});
        }
    }
}

/// Shuts a socket down both ways, waking a reader blocked on it.
pub(crate) fn shutdown(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("example.com:13321", false).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("example.com", 13321, false)
        );
        assert!(Endpoint::parse("wss://h:1/service/x", false).unwrap().tls);
        let v6 = Endpoint::parse("[::1]:80", true).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 80));
        assert_eq!(v6.host_header(), "[::1]:80");
        for bad in [
            "", "host", "host:", ":80", "h:0", "h:99999", "::1:80", "h:x",
        ] {
            assert_eq!(Endpoint::parse(bad, false), None, "{bad}");
        }
    }
}
