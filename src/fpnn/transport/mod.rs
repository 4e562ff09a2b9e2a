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
//!
//! This file owns `open` (the whole connect under one deadline) and the
//! deadline helpers; `endpoint.rs` parses endpoints, `dial.rs` is the
//! cancellable DNS and TCP dial, `tls.rs` the halves and TLS.

mod dial;
mod endpoint;
mod tls;

use dial::dial;
pub use dial::ConnectCancel;
pub use endpoint::Endpoint;
pub(crate) use tls::{add_roots, OnWait, PlainRead, ReadHalf, WriteHalf, Written, WRITE_STALL};
use tls::{tls_config, TlsRead, TlsWrite, WRITE_POLL};

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustls::pki_types::ServerName;

use crate::ws::handshake;
use crate::ws::WsError;

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
    /// Marked by whoever writes to the socket; the reader's TCP_QUICKACK
    /// decision (`tls::before_socket_read`), which a reader may leave to
    /// the dispatcher thread (`Written::owe`). Holds the plain socket, for
    /// callers' direct sends and for that thread's `setsockopt`.
    pub(crate) written: Written,
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
        let written = Written::new(Some(tcp.try_clone()?));
        return Ok(Opened {
            read: ReadHalf::Plain(PlainRead::new(read, written.clone())),
            write: WriteHalf::Plain(tcp),
            leftover,
            control,
            written,
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
        before_read: None,
        written: Written::default(),
    };
    let written = read.written.clone();
    Ok(Opened {
        read: ReadHalf::Tls(read),
        write: WriteHalf::Tls(TlsWrite {
            tcp,
            session,
            out: Vec::new(),
        }),
        leftover,
        control,
        written,
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
        s.read(buf).map_err(timed_out)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.set_write_timeout(Some(remaining(self.1)?))?;
        let mut s = self.0;
        s.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.0;
        s.flush()
    }
}

/// A socket timeout (EAGAIN on Unix) while connecting is the connect deadline.
fn timed_out(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, "connection timeout")
        }
        _ => e,
    }
}

/// Shuts a socket down both ways, waking a reader blocked on it.
pub(crate) fn shutdown(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Both);
}
