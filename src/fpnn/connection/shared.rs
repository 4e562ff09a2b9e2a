//! What a connection's handles, reader and writer share: the request table,
//! the writer's outbox, the open flag and the close path ([`Shared::shut`]),
//! and building client frames.

use std::cell::RefCell;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use super::writer::{Due, Full, Outbox};
use super::{CloseReason, Method, Reply};
use crate::error::{error_code, RtmError};
use crate::fpnn::packet::{self, Kind};
use crate::fpnn::table::RequestTable;
use crate::fpnn::transport::{self, Endpoint};
use crate::ws::frame::{self, Opcode};
use crate::ws::MaskRng;

/// A twoway quest waiting for its answer: its callback, and what the logs
/// and a timeout's error say about it. Kept small (64 bytes): every quest in
/// flight has one in the request table (docs/performance.md, "Memory").
pub(super) struct Pending {
    pub(super) callback: Reply,
    pub(super) method: Method,
    /// The timeout it was sent with, in ms (the deadline is the table's;
    /// sent = deadline - timeout).
    pub(super) timeout_ms: u64,
    /// The encoded payload, deadline and order of a quest its owner may send
    /// again on another connection ([`Unanswered`]); `None` for the others.
    pub(super) resend: Option<Box<Resendable>>,
}

/// What a resendable quest keeps beside its [`Pending`] entry to be handed back.
pub(super) struct Resendable {
    pub(super) payload: Arc<[u8]>,
    pub(super) deadline: Instant,
    pub(super) order: u64,
}

/// A quest the connection ended before it was answered, handed back whole to
/// the owner that asked for it ([`Connection::on_unanswered`]) instead of
/// failing with 20002, so that it can be sent again on the next connection
/// with the same payload (a send keeps its mid) and the same deadline.
///
/// [`Connection::on_unanswered`]: super::Connection::on_unanswered
pub(crate) struct Unanswered {
    pub(crate) method: Method,
    /// The msgpack payload, as first encoded.
    pub(crate) payload: Arc<[u8]>,
    /// When it fails with 20003, wherever it waits.
    pub(crate) deadline: Instant,
    /// The timeout it was made with (for the 20003's text).
    pub(crate) timeout: Duration,
    pub(crate) callback: Reply,
    /// The owner's order among its resendable quests (the order they were made),
    /// carried as is: the client's waiting list keeps them in this order
    /// (src/client/resend.rs).
    pub(crate) order: u64,
}

/// Receives the resendable quests of a connection that ended.
pub(crate) type HandBack = Box<dyn FnOnce(Vec<Unanswered>) + Send>;

/// A timeout in whole ms, rounded up (a quest never times out sooner than
/// asked), saturating. Whole seconds are whole ms, so only the sub-second
/// part rounds; in 64 bits (every quest computes it, and 128-bit division
/// is a library call).
pub(super) fn millis(timeout: Duration) -> u64 {
    timeout
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(timeout.subsec_nanos().div_ceil(1_000_000)))
}

impl Pending {
    /// The 20003 of a quest whose timeout ran out.
    pub(super) fn timed_out(self) -> (Reply, RtmError) {
        let e = err(
            error_code::FPNN_EC_CORE_TIMEOUT,
            format!("{} timed out after {} ms", self.method, self.timeout_ms),
        );
        log::debug!("{}", e.ex);
        (self.callback, e)
    }

    /// The quest as handed back, when it may be sent again.
    pub(super) fn unanswered(self) -> Option<Unanswered> {
        let Resendable {
            payload,
            deadline,
            order,
        } = *self.resend?;
        Some(Unanswered {
            method: self.method,
            payload,
            deadline,
            timeout: Duration::from_millis(self.timeout_ms),
            callback: self.callback,
            order,
        })
    }
}

pub(super) type CloseHandler = Box<dyn FnOnce(CloseReason) + Send>;

/// A connection's reader and writer threads, as `Connection::close_and_join`
/// joins them.
#[derive(Default)]
pub(super) struct Threads {
    /// Their join handles, until a `close_and_join` takes them to join them.
    pub(super) handles: Vec<JoinHandle<()>>,
    /// How many `close_and_join` calls are joining handles they took: another
    /// caller waits until none is ([`Shared::joined`]).
    pub(super) joining: usize,
    /// The threads' ids, kept after their handles are taken: a caller waiting
    /// for another's join records that it waits for them (src/waits.rs).
    pub(super) ids: Vec<ThreadId>,
}

/// [`Shared::before_timeouts`]'s hook.
#[cfg(test)]
pub(super) type TimeoutHook = Arc<dyn Fn() + Send + Sync>;

/// A connection's request table, which its outbox shares to give the quests
/// of a write batch their deadlines (src/fpnn/connection/writer.rs).
pub(super) type Table = Arc<Mutex<RequestTable<Pending>>>;

pub(super) struct Shared {
    pub(super) table: Table,
    pub(super) outbox: Arc<Outbox>,
    pub(super) open: AtomicBool,
    /// Whether a quest made by this connection's own reader gets its deadline when the
    /// read's batch is flushed (see [`super::Connection::defer_deadlines`]) rather than
    /// at the call.
    pub(super) defer_deadlines: AtomicBool,
    pub(super) control: TcpStream,
    pub(super) on_close: Mutex<Option<CloseHandler>>,
    /// Takes the resendable quests pending when the connection ends.
    pub(super) hand_back: Mutex<Option<HandBack>>,
    pub(super) max_packet: usize,
    pub(super) threads: Mutex<Threads>,
    /// Notified when a `Connection::close_and_join` has joined the threads it took.
    pub(super) joined: Condvar,
    /// The writer thread's id, recorded by the writer when it starts
    /// (`writer_loop`): `Connection::close_and_join` knows from it that it runs on
    /// the writer, which cannot linger for the close frame while it joins the reader.
    pub(super) writer_thread: OnceLock<ThreadId>,
    /// The reader thread's id, recorded when that thread starts its part (before the
    /// connect's result is handed over on it, `Connection::connect_then`).
    pub(super) reader_thread: OnceLock<ThreadId>,
    /// Callers of `Connection::close_and_join` waiting for a thread of this
    /// connection to end, joining it or waiting for another caller's join (a
    /// test hook reads it: `Connection::joining_for_tests`).
    pub(super) joining: AtomicUsize,
    /// Test hook: runs on the writer when quests have timed out, after they
    /// left the request table and before their callbacks run.
    #[cfg(test)]
    pub(super) before_timeouts: Mutex<Option<TimeoutHook>>,
    pub(super) endpoint: Endpoint,
    /// The channel [`super::Connection::closed_signal`] hands out receivers of, made on
    /// the first call; dropped when the connection ends, which disconnects them all.
    pub(super) close_signal: Mutex<Option<(Sender<()>, Receiver<()>)>>,
}

thread_local! {
    static RNG: RefCell<MaskRng> = RefCell::new(MaskRng::new());
}

/// Appends a masked client frame holding one packet to `out`, masking the
/// packet in place.
pub(super) fn client_frame_into(
    out: &mut Vec<u8>,
    kind: Kind,
    seq: u32,
    ss_or_method: (&str, u8),
    payload: &[u8],
) {
    let (method, status) = ss_or_method;
    let plen = packet::packet_len(kind, method.len(), payload.len());
    let mask = RNG.with(|r| r.borrow_mut().mask());
    out.reserve(frame::header_len(plen, true, false) + plen);
    frame::write_head(out, Opcode::Binary, true, plen, Some(mask), false);
    let start = out.len();
    match kind {
        Kind::Answer => packet::encode_answer(out, seq, status, payload),
        k => packet::encode_quest(out, k == Kind::Twoway, seq, method, payload),
    }
    frame::apply_mask(&mut out[start..], mask);
}

/// The size of the frame [`client_frame_into`] appends.
pub(super) fn client_frame_len(kind: Kind, method: &str, payload: &[u8]) -> usize {
    let plen = packet::packet_len(kind, method.len(), payload.len());
    frame::header_len(plen, true, false) + plen
}

/// Appends a masked control frame to `out`.
pub(super) fn control_frame_into(out: &mut Vec<u8>, op: Opcode, payload: &[u8]) {
    let mask = RNG.with(|r| r.borrow_mut().mask());
    frame::encode_frame(out, op, true, payload, Some(mask), false);
}

pub(super) fn err(code: i32, ex: impl Into<String>) -> RtmError {
    RtmError::new(code, ex)
}

impl Shared {
    /// An open connection's shared state, before its threads start: its request
    /// table, shared with an outbox of `write_queue_limit` bytes whose writes
    /// `written` marks (`Connection::start`, and the writer's unit tests).
    pub(super) fn new(
        endpoint: Endpoint,
        control: TcpStream,
        written: transport::Written,
        write_queue_limit: usize,
        max_packet: usize,
        on_close: Option<CloseHandler>,
    ) -> Shared {
        let table = Table::default();
        Shared {
            table: table.clone(),
            outbox: Arc::new(Outbox::new(write_queue_limit, written, table)),
            open: AtomicBool::new(true),
            defer_deadlines: AtomicBool::new(false),
            control,
            on_close: Mutex::new(on_close),
            hand_back: Mutex::new(None),
            max_packet,
            threads: Default::default(),
            joined: Default::default(),
            writer_thread: Default::default(),
            reader_thread: Default::default(),
            joining: AtomicUsize::new(0),
            #[cfg(test)]
            before_timeouts: Mutex::new(None),
            endpoint,
            close_signal: Mutex::new(None),
        }
    }

    /// Records the calling thread as the connection's writer.
    pub(super) fn writer_started(&self) {
        let _ = self.writer_thread.set(std::thread::current().id());
    }

    /// Records the calling thread as the connection's reader.
    pub(super) fn reader_started(&self) {
        let _ = self.reader_thread.set(std::thread::current().id());
    }

    /// Whether the calling thread is the connection's writer.
    pub(super) fn on_writer(&self) -> bool {
        self.writer_thread.get() == Some(&std::thread::current().id())
    }

    /// Whether the calling thread is the connection's reader or writer.
    pub(super) fn on_own_thread(&self) -> bool {
        let me = std::thread::current().id();
        self.writer_thread.get() == Some(&me) || self.reader_thread.get() == Some(&me)
    }

    /// Queues a frame holding one packet for the writer (see `writer.rs`);
    /// `due` is a twoway quest's deadline; `eager` asks to write it at once when
    /// possible (nothing else is in flight). A quest is refused when the outbox is
    /// full; an answer is always queued (the server waits for it), and one that
    /// takes the outbox past its limit makes the reader stop reading the
    /// server's quests until the writer has made room (`Outbox::wait_for_room`).
    pub(super) fn send_frame(
        &self,
        kind: Kind,
        seq: u32,
        ss_or_method: (&str, u8),
        payload: &[u8],
        due: Option<Due>,
        eager: bool,
    ) -> Result<(), Full> {
        let len = client_frame_len(kind, ss_or_method.0, payload);
        let limited = kind != Kind::Answer;
        self.outbox.push(len, due, limited, eager, |out| {
            client_frame_into(out, kind, seq, ss_or_method, payload)
        })
    }

    pub(super) fn send_answer(&self, seq: u32, status: u8, payload: &[u8]) {
        if self.open.load(Ordering::Acquire) {
            let _ = self.send_frame(Kind::Answer, seq, ("", status), payload, None, true);
        }
    }

    /// Ends the connection once: fails every pending quest with 20002 (or
    /// hands the resendable ones back, see [`Unanswered`]) and tells the
    /// close handler why. Runs the callbacks on the calling thread
    /// with no lock held.
    pub(super) fn shut(&self, reason: CloseReason) {
        let status = match reason {
            CloseReason::Local => Some(1000),
            _ => None,
        };
        self.shut_with(reason, status);
    }

    /// [`Shared::shut`], telling the peer why with close status `status`.
    /// Without a status the socket is shut at once (the peer is gone or the
    /// link failed); with one, the writer shuts it after the close frame, or
    /// when `CLOSE_LINGER` (writer.rs) has run out first.
    pub(super) fn shut_with(&self, reason: CloseReason, status: Option<u16>) {
        if !self.open.swap(false, Ordering::AcqRel) {
            return;
        }
        match &reason {
            CloseReason::Error(e) => log::debug!("connection to {} failed: {e}", self.endpoint),
            r => log::debug!("connection to {} closed: {r:?}", self.endpoint),
        }
        let mut pending = self.table.lock().close();
        let hand_back = self.hand_back.lock().take();
        let mut unanswered = Vec::new();
        if hand_back.is_some() {
            // In seq order, which is the order they were sent in.
            let (back, rest): (Vec<Pending>, Vec<Pending>) =
                pending.into_iter().partition(|p| p.resend.is_some());
            pending = rest;
            unanswered = back.into_iter().filter_map(Pending::unanswered).collect();
        }
        if status.is_none() {
            transport::shutdown(&self.control);
        }
        self.outbox.close(status);
        // After `open` turned false: `closed_signal` makes no channel from now on.
        self.close_signal.lock().take();
        let ex = match &reason {
            CloseReason::Error(e) => format!("connection closed: {e}"),
            _ => "connection closed".to_owned(),
        };
        for p in pending {
            let e = err(error_code::FPNN_EC_CORE_CONNECTION_CLOSED, ex.clone());
            guarded("close callback", || p.callback.fail(e));
        }
        if let Some(h) = hand_back {
            guarded("hand-back", || h(unanswered));
        }
        let handler = self.on_close.lock().take();
        if let Some(h) = handler {
            guarded("close handler", || h(reason));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_in_ms_rounds_up_and_saturates() {
        assert_eq!(millis(Duration::ZERO), 0);
        assert_eq!(millis(Duration::from_micros(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_millis(20_000)), 20_000);
        assert_eq!(millis(Duration::MAX), u64::MAX);
        // The same as rounding the whole count of ns up, at the edges.
        let wide =
            |d: Duration| u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        for secs in [
            0,
            1,
            59,
            u64::MAX / 1000 - 1,
            u64::MAX / 1000,
            u64::MAX / 1000 + 1,
            u64::MAX,
        ] {
            for nanos in [
                0,
                1,
                999_999,
                1_000_000,
                1_000_001,
                500_000_000,
                999_999_999,
            ] {
                let d = Duration::new(secs, nanos);
                assert_eq!(millis(d), wide(d), "{d:?}");
            }
        }
    }

    #[test]
    fn a_pending_quest_stays_small() {
        // What the request table holds per quest in flight (docs/performance.md).
        assert!(
            std::mem::size_of::<Pending>() <= 64,
            "{}",
            std::mem::size_of::<Pending>()
        );
    }
}
