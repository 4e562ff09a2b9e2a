//! The cancellable dial: DNS and TCP connect on a short-lived thread the
//! caller need not wait for, and [`ConnectCancel`], which aborts a connect in
//! progress from another thread.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::{remaining, shutdown, Endpoint};

/// DNS and TCP connect, on a short-lived `rtm-dial` thread: neither the
/// standard resolver nor a blocking connect can be interrupted, so the caller
/// waits for the first of the thread's result, `deadline`, or a cancel. An
/// abandoned dial finishes on its own by `deadline` and drops its socket.
pub(super) fn dial(
    ep: &Endpoint,
    deadline: Instant,
    cancel: &ConnectCancel,
) -> io::Result<TcpStream> {
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

/// Aborts a connect in progress from another thread: [`ConnectCancel::cancel`]
/// stops the wait for DNS and the TCP connect, and shuts the socket being
/// opened, which wakes a handshake blocked on a silent server at once. It has
/// no effect on a connection already opened.
///
/// [`Connection::connect`](crate::fpnn::Connection::connect) then fails with 20002
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

    pub(super) fn check(&self) -> io::Result<()> {
        if self.is_cancelled() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "connect cancelled",
            ));
        }
        Ok(())
    }

    /// Watches `tcp` until [`ConnectCancel::detach`].
    pub(super) fn attach(&self, tcp: &TcpStream) -> io::Result<()> {
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

    pub(super) fn detach(&self) {
        self.0.state.lock().socket = None;
    }
}
