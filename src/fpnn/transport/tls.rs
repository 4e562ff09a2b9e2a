//! The two halves of an open connection (plain TCP or TLS) for the reader
//! and writer threads, writing patiently to a slow peer, and the TLS client
//! configuration. With TLS both halves share one session (see `mod.rs`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustls::pki_types::CertificateDer;

use crate::ws::WsError;

/// How long one write may stall (the peer not reading) before the connection
/// is given up. Also bounds the reader's wait for room in the outbox
/// (src/fpnn/connection/writer.rs, `Outbox::wait_for_room`).
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(30);

/// How long one blocked write waits before the writer looks at its deadlines
/// again: a peer that stops reading must not hold up quests' timeouts.
pub(super) const WRITE_POLL: Duration = Duration::from_millis(5);

/// What a patient write calls while it is not done: it may do other work (the
/// writer fires due timeouts), and an error gives the write up with that error
/// (the writer's close linger has run out).
pub(crate) type OnWait<'a> = &'a mut dyn FnMut() -> io::Result<()>;

/// Where a write may stop early: given how many bytes of its data are
/// committed (written, or sealed under TLS), `Some(end)` ends the write at
/// `end` (a frame boundary at or after them; the writer's close,
/// src/fpnn/connection/writer.rs); `None` goes on. Asked before each write.
pub(crate) type Stop<'a> = &'a mut dyn FnMut(usize) -> Option<usize>;

/// Writes `buf` up to where `stop` ends it (all of it by default) and returns
/// that end. While the socket is full it calls `on_wait` every
/// [`WRITE_POLL`], and after each write that left some unwritten (a peer
/// that reads slowly); it gives up when `on_wait` fails, or after
/// [`WRITE_STALL`] without progress.
fn write_patiently(
    tcp: &mut TcpStream,
    buf: &[u8],
    on_wait: OnWait<'_>,
    stop: Stop<'_>,
) -> io::Result<usize> {
    let mut off = 0;
    let mut end = buf.len();
    let mut stalled_since: Option<Instant> = None;
    loop {
        if let Some(e) = stop(off) {
            end = e.clamp(off, end);
        }
        if off >= end {
            return Ok(end);
        }
        match tcp.write(&buf[off..end]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                off += n;
                stalled_since = None;
                if off < end {
                    on_wait()?;
                }
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
                on_wait()?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Adds the extra roots (`RtmOptions::tls_root_certificates`, DER) to `roots`; the
/// error names the entry that is not a usable certificate.
pub(crate) fn add_roots(
    roots: &mut rustls::RootCertStore,
    extra_roots: &[Vec<u8>],
) -> Result<(), String> {
    for (i, der) in extra_roots.iter().enumerate() {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| format!("tls_root_certificates[{i}] is not a DER certificate: {e}"))?;
    }
    Ok(())
}

pub(super) fn tls_config(extra_roots: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, WsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    add_roots(&mut roots, extra_roots).map_err(WsError::Handshake)?;
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
    Plain(PlainRead),
    Tls(TlsRead),
}

/// The plain socket's reader: see [`PlainRead::read`].
pub(crate) struct PlainRead {
    tcp: TcpStream,
    before_read: Option<fn()>,
    written: Written,
    /// The socket's receive timeout is [`ACK_WAIT`] (not none).
    timed: bool,
}

/// How long a read waits for data while the ACK of what was read before is
/// left to the dispatcher thread ([`Written::owe`]), before the reader sends
/// it itself: the longest a callback that is slow, or waits, can hold the
/// ACK back (a delayed ACK holds a peer that leaves Nagle's algorithm on).
const ACK_WAIT: Duration = Duration::from_millis(1);

impl PlainRead {
    pub(crate) fn new(tcp: TcpStream, written: Written) -> PlainRead {
        PlainRead {
            tcp,
            before_read: None,
            written,
            timed: false,
        }
    }
}

/// What the reader's TCP_QUICKACK decision ([`before_socket_read`]) knows
/// of its connection: whether the socket was written to since the reader's
/// last read returned (writers mark it just before each write, the reader
/// clears it as each read returns), and whether the ACK owed for what was
/// read is left to the dispatcher thread ([`Written::owe`]). Holds the plain
/// socket (none with TLS), for callers' direct sends
/// (src/fpnn/connection/writer.rs) and for [`Written::settle`].
#[derive(Clone, Default)]
pub(crate) struct Written(Arc<AckState>);

#[derive(Default)]
struct AckState {
    flags: AtomicU8,
    socket: Option<TcpStream>,
}

/// Written to since the last read returned: that write carried the ACK.
const WRITTEN: u8 = 1;
/// The ACK is left to [`Written::settle`], which is sure to come.
const OWED: u8 = 2;

impl Written {
    /// With the plain socket, or `None` (TLS): then nothing is ever
    /// [`Written::owe`]d.
    pub(crate) fn new(socket: Option<TcpStream>) -> Written {
        Written(Arc::new(AckState {
            flags: AtomicU8::new(0),
            socket,
        }))
    }

    /// The plain socket, if any.
    pub(crate) fn socket(&self) -> Option<&TcpStream> {
        self.0.socket.as_ref()
    }

    /// Whether `other` is this connection's.
    pub(crate) fn same(&self, other: &Written) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Called before a write to the socket (the writer thread, a caller's
    /// direct send). Returns whether it was marked already, for
    /// [`Written::take_back`].
    pub(crate) fn mark(&self) -> bool {
        self.0.flags.fetch_or(WRITTEN, Ordering::SeqCst) & WRITTEN != 0
    }

    /// Takes back the mark of a write that sent nothing (the caller's
    /// direct send would have blocked): that write carried no ACK. `was` is
    /// what its [`Written::mark`] returned: a mark an earlier write set is
    /// left, as that write did go out. Writes to a socket are made one at a
    /// time, so no other write marked in between; if the reader cleared the
    /// mark meanwhile, clearing it again changes nothing.
    pub(crate) fn take_back(&self, was: bool) {
        if !was {
            self.0.flags.fetch_and(!WRITTEN, Ordering::SeqCst);
        }
    }

    /// Called by the reader thread as it hands a callback or event to the
    /// dispatcher thread, before that thread can run it: the reader leaves
    /// the ACK of what it read to [`Written::settle`], which the dispatcher
    /// calls after the callbacks it ran have written (or not). Most send the
    /// next quest, which carries the ACK: no `setsockopt` and no segment of
    /// its own. Without a plain socket, or where quick-ack cannot be set,
    /// nothing: returns whether the ACK is left to [`Written::settle`].
    pub(crate) fn owe(&self) -> bool {
        if self.0.socket.is_none() || !QUICKACK {
            return false;
        }
        let flags = &self.0.flags;
        if flags.load(Ordering::SeqCst) & OWED == 0 {
            flags.fetch_or(OWED, Ordering::SeqCst);
        }
        true
    }

    /// The dispatcher thread, after a turn of callbacks (their quests
    /// written): if the ACK was left to it and nothing was written since
    /// the last read returned, re-arms TCP_QUICKACK, which sends the ACK
    /// now. Once the mark is cleared the reader decides for itself again;
    /// so a settle that comes before some of the callbacks left to it ran
    /// at worst sends an ACK early.
    pub(crate) fn settle(&self) {
        let flags = self.0.flags.fetch_and(!OWED, Ordering::SeqCst);
        if flags & (OWED | WRITTEN) == OWED {
            if let Some(s) = &self.0.socket {
                quickack(s);
            }
        }
    }

    /// Whether it is marked written (for tests).
    #[cfg(test)]
    pub(crate) fn is_marked(&self) -> bool {
        self.0.flags.load(Ordering::SeqCst) & WRITTEN != 0
    }

    /// Whether the ACK is left to [`Written::settle`] (for tests).
    #[cfg(test)]
    pub(crate) fn is_owed(&self) -> bool {
        self.0.flags.load(Ordering::SeqCst) & OWED != 0
    }

    /// Clears the written mark as a read returning does (for tests).
    #[cfg(test)]
    pub(crate) fn clear(&self) {
        after_socket_read(self);
    }
}

/// What the reader does before a read from the socket (which may wait):
/// the write batch's flush (`hook`), then TCP_QUICKACK re-armed (Linux) if
/// nothing was written since the last read returned and the ACK is not left
/// to the dispatcher thread ([`Written::owe`]). The kernel leaves
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
    if written.0.flags.load(Ordering::SeqCst) & (WRITTEN | OWED) == 0 {
        quickack(s);
    }
}

/// After a read from the socket returned: later writes carry its ACK.
fn after_socket_read(written: &Written) {
    written.0.flags.fetch_and(!WRITTEN, Ordering::SeqCst);
}

impl ReadHalf {
    /// `hook` runs before each read from the socket (which may wait).
    pub(crate) fn set_before_read(&mut self, hook: fn()) {
        match self {
            ReadHalf::Plain(p) => p.before_read = Some(hook),
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
            ReadHalf::Plain(p) => p.read(buf),
            ReadHalf::Tls(t) => t.read(buf),
        }
    }
}

impl Read for PlainRead {
    /// [`before_socket_read`], then a read from the socket. While the ACK
    /// is left to the dispatcher thread ([`Written::owe`]) the read waits at
    /// most [`ACK_WAIT`] for data: if none came, and no write carried the
    /// ACK, the reader re-arms quick-ack itself, whatever the dispatcher is
    /// doing (a slow callback, one waiting in `blocking()`), and waits on
    /// without a timeout. The timeout stays set while data keeps coming, so
    /// a busy connection makes no `setsockopt` per read for it; only a
    /// quiet spell costs one wake-up and one `setsockopt`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        before_socket_read(&self.tcp, self.before_read, &self.written);
        let flags = &self.written.0.flags;
        if !self.timed && flags.load(Ordering::SeqCst) & (WRITTEN | OWED) == OWED {
            self.timed = self.tcp.set_read_timeout(Some(ACK_WAIT)).is_ok();
            if !self.timed {
                // No bound on the wait: the reader sends the ACK now.
                flags.fetch_and(!OWED, Ordering::SeqCst);
                quickack(&self.tcp);
            }
        }
        loop {
            let r = self.tcp.read(buf);
            match r {
                Err(e)
                    if self.timed
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    // No data for ACK_WAIT: the ACK is the reader's again.
                    let f = flags.fetch_and(!OWED, Ordering::SeqCst);
                    if f & WRITTEN == 0 {
                        quickack(&self.tcp);
                    }
                    self.timed = false;
                    self.tcp.set_read_timeout(None)?;
                }
                r => {
                    after_socket_read(&self.written);
                    return r;
                }
            }
        }
    }
}

/// Re-arms TCP_QUICKACK (Linux): sends an ACK that is owed at once, and
/// leaves delayed-ACK mode ([`before_socket_read`]).
/// Whether this platform has TCP_QUICKACK.
const QUICKACK: bool = cfg!(any(target_os = "linux", target_os = "android"));

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
    pub(crate) fn send(&mut self, data: &[u8], on_wait: OnWait<'_>) -> io::Result<()> {
        self.send_until(data, on_wait, &mut |_| None).map(|_| ())
    }

    /// [`WriteHalf::send`], which `stop` may end early ([`Stop`]); returns
    /// where it ended. Under TLS, what the session has sealed is written
    /// whole (a part of at most its buffer limit, 64 KiB): `stop` is asked
    /// before each part is sealed.
    pub(crate) fn send_until(
        &mut self,
        data: &[u8],
        on_wait: OnWait<'_>,
        stop: Stop<'_>,
    ) -> io::Result<usize> {
        match self {
            WriteHalf::Plain(s) => write_patiently(s, data, on_wait, stop),
            WriteHalf::Tls(t) => {
                // The session takes at most its buffer limit (64 KiB) of
                // plaintext at a time: seal a part, send it, repeat.
                let mut off = 0;
                let mut end = data.len();
                loop {
                    if let Some(e) = stop(off) {
                        end = e.clamp(off, end);
                    }
                    {
                        let mut s = t.session.lock();
                        off += s.writer().write(&data[off..end])?;
                        while s.wants_write() {
                            s.write_tls(&mut t.out)?;
                        }
                    }
                    let r = write_patiently(&mut t.tcp, &t.out, on_wait, &mut |_| None);
                    t.out.clear();
                    if t.out.capacity() > 1 << 20 {
                        t.out.shrink_to(64 * 1024);
                    }
                    r?;
                    if off >= end {
                        return Ok(end);
                    }
                }
            }
        }
    }

    /// Sends whatever the TLS session has queued (nothing for plain TCP).
    pub(crate) fn flush_session(&mut self, on_wait: OnWait<'_>) -> io::Result<()> {
        self.send(&[], on_wait)
    }

    /// Sends TLS close_notify (plain TCP: nothing), for as long as `on_wait`
    /// lets it.
    pub(crate) fn close_notify(&mut self, on_wait: OnWait<'_>) {
        if let WriteHalf::Tls(t) = self {
            t.session.lock().send_close_notify();
            let _ = self.flush_session(on_wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::wait_until;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (tcp, listener.accept().unwrap().0)
    }

    /// A plain read half with its `Written`, a clone of its socket to look
    /// at the socket's options and buffer, and the peer.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn plain_read() -> (PlainRead, Written, TcpStream, TcpStream) {
        let (tcp, peer) = pair();
        let probe = tcp.try_clone().unwrap();
        let written = Written::new(Some(tcp.try_clone().unwrap()));
        (PlainRead::new(tcp, written.clone()), written, probe, peer)
    }

    /// Without a plain socket (TLS) nothing is left to the dispatcher: the
    /// reader could not be sure the ACK is ever sent.
    #[test]
    fn only_a_plain_socket_leaves_its_ack_to_the_dispatcher() {
        let none = Written::default();
        assert!(!none.owe());
        assert!(!none.is_owed());
        let (tcp, _peer) = pair();
        let plain = Written::new(Some(tcp));
        assert_eq!(plain.owe(), QUICKACK);
        assert_eq!(plain.is_owed(), QUICKACK);
        plain.settle();
        assert!(!plain.is_owed(), "a settle takes the ACK back");
    }

    /// A read that waits while the ACK is left to the dispatcher thread
    /// takes the ACK back itself after `ACK_WAIT` (the dispatcher may be
    /// stuck in a slow callback), then waits on without a timeout: a quiet
    /// connection does not wake its reader every millisecond.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_read_waiting_on_an_owed_ack_takes_it_back_then_waits_untimed() {
        let (mut read, written, probe, mut peer) = plain_read();
        assert!(written.owe());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            let n = read.read(&mut buf).unwrap();
            (buf[..n].to_vec(), read.timed)
        });
        wait_until("the reader to take the ACK back", || !written.is_owed());
        wait_until("the timeout to be cleared", || {
            probe.read_timeout().unwrap().is_none()
        });
        assert!(!reader.is_finished(), "the read returned without data");
        peer.write_all(b"data").unwrap();
        let (got, timed) = reader.join().unwrap();
        assert_eq!(got, b"data");
        assert!(!timed);
    }

    /// While data keeps coming the timeout stays set (no `setsockopt` per
    /// read); with the ACK carried by a write, none is set at all.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_read_timeout_is_set_only_while_an_ack_is_owed() {
        let (mut read, written, probe, mut peer) = plain_read();
        let mut buf = [0u8; 8];
        // Each read finds its byte already there, so no timeout can expire
        // however slowly the machine runs.
        let mut send = |b: &[u8]| {
            peer.write_all(b).unwrap();
            wait_until("the byte to arrive", || {
                matches!(probe.peek(&mut [0u8; 1]), Ok(1))
            });
        };
        send(b"a");
        let _ = written.mark();
        written.owe();
        assert_eq!(read.read(&mut buf).unwrap(), 1);
        assert!(!read.timed, "a write carried the ACK: no timeout");
        send(b"b");
        written.owe();
        assert_eq!(read.read(&mut buf).unwrap(), 1);
        assert!(read.timed, "the ACK is owed: the read is timed");
        assert!(written.is_owed(), "data came in time: still owed");
        send(b"c");
        assert_eq!(read.read(&mut buf).unwrap(), 1);
        assert!(read.timed, "the timeout stays while data comes");
    }
}
