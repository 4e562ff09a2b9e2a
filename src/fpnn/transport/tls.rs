//! The two halves of an open connection (plain TCP or TLS) for the reader
//! and writer threads, writing patiently to a slow peer, and the TLS client
//! configuration. With TLS both halves share one session (see `mod.rs`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustls::pki_types::CertificateDer;

use crate::ws::WsError;

/// How long one write may stall (the peer not reading) before the connection
/// is given up.
const WRITE_STALL: Duration = Duration::from_secs(30);

/// How long one blocked write waits before the writer looks at its deadlines
/// again: a peer that stops reading must not hold up quests' timeouts.
pub(super) const WRITE_POLL: Duration = Duration::from_millis(5);

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

pub(super) fn tls_config(extra_roots: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, WsError> {
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
    Plain(TcpStream, Option<fn()>, Written),
    Tls(TlsRead),
}

/// Whether this connection's socket was written to since its reader's last
/// read returned: writers mark it just before each write, the reader clears
/// it as each read returns and looks at it before the next
/// ([`before_socket_read`]).
#[derive(Clone, Default)]
pub(crate) struct Written(Arc<AtomicBool>);

impl Written {
    /// Called before a write to the socket (the writer thread, a caller's
    /// direct send). Returns whether it was marked already, for
    /// [`Written::take_back`].
    pub(crate) fn mark(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }

    /// Takes back the mark of a write that sent nothing (the caller's
    /// direct send would have blocked): that write carried no ACK. `was` is
    /// what its [`Written::mark`] returned: a mark an earlier write set is
    /// left, as that write did go out. Writes to a socket are made one at a
    /// time, so no other write marked in between; if the reader cleared the
    /// mark meanwhile, clearing it again changes nothing.
    pub(crate) fn take_back(&self, was: bool) {
        if !was {
            self.0.store(false, Ordering::SeqCst);
        }
    }

    /// Whether it is marked (for tests).
    #[cfg(test)]
    pub(crate) fn is_marked(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears it as a read returning does (for tests).
    #[cfg(test)]
    pub(crate) fn clear(&self) {
        after_socket_read(self);
    }
}

/// What the reader does before a read from the socket (which may wait):
/// the write batch's flush (`hook`), then TCP_QUICKACK re-armed (Linux) if
/// nothing was written since the last read returned. The kernel leaves
/// quick-ack mode on its own, and a delayed ACK of what we read stalls a
/// peer that leaves Nagle's algorithm on (FPNN servers do not set
/// TCP_NODELAY) by up to 40 ms: set here, it sends the ACK still owed for
/// the last read at once. When something was written since that read (an
/// answer's callback sent the next quest, a push was acknowledged), it
/// carried the ACK, and the kernel's own delayed-ACK mode lets the next
/// one ride on the next write too, as the bare floor's do: no `setsockopt`,
/// and no segment of its own for the ACK. A write marked before the read
/// returned does not count (it may have gone before the data came), nor
/// does one marked after: it is sent after the data came, so carries its
/// ACK.
fn before_socket_read(s: &TcpStream, hook: Option<fn()>, written: &Written) {
    if let Some(h) = hook {
        h();
    }
    if !written.0.load(Ordering::SeqCst) {
        quickack(s);
    }
}

/// After a read from the socket returned: later writes carry its ACK.
fn after_socket_read(written: &Written) {
    written.0.store(false, Ordering::SeqCst);
}

impl ReadHalf {
    /// `hook` runs before each read from the socket (which may wait).
    pub(crate) fn set_before_read(&mut self, hook: fn()) {
        match self {
            ReadHalf::Plain(_, h, _) => *h = Some(hook),
            ReadHalf::Tls(t) => t.before_read = Some(hook),
        }
    }

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
            ReadHalf::Plain(s, hook, written) => {
                before_socket_read(s, *hook, written);
                let n = s.read(buf);
                after_socket_read(written);
                n
            }
            ReadHalf::Tls(t) => t.read(buf),
        }
    }
}

/// Re-arms TCP_QUICKACK (Linux): sends an ACK that is owed at once, and
/// leaves delayed-ACK mode ([`before_socket_read`]).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn quickack(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quickack(_: &TcpStream) {}

pub(crate) struct TlsRead {
    pub(super) tcp: TcpStream,
    pub(super) session: Arc<Mutex<rustls::ClientConnection>>,
    pub(super) raw: Vec<u8>,
    pub(super) raw_start: usize,
    pub(super) raw_end: usize,
    pub(super) wants_flush: Option<Box<dyn Fn() + Send>>,
    pub(super) before_read: Option<fn()>,
    pub(super) written: Written,
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
            before_socket_read(&self.tcp, self.before_read, &self.written);
            let n = self.tcp.read(&mut self.raw);
            after_socket_read(&self.written);
            let n = n?;
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
    pub(super) tcp: TcpStream,
    pub(super) session: Arc<Mutex<rustls::ClientConnection>>,
    pub(super) out: Vec<u8>,
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
