//! The outbox and the writer thread.
//!
//! Frames are encoded straight into the outbox's buffer (no frame is
//! allocated on its own). Who writes them to the socket:
//!
//! - Inside a [`write_batch`] (the reader thread while it handles what one
//!   read brought, the dispatcher while it runs a turn of callbacks), nobody
//!   yet: frames pile up and go out together when the batch ends (or, on the
//!   reader, before it blocks on the socket again).
//! - On plain TCP on Linux, the caller itself, when no write is in progress
//!   and the quest is the only one in flight (or a batch ends): one
//!   non-blocking `send` of everything queued, under the outbox lock, so a
//!   request-answer exchange costs no thread hand-off. What the socket does
//!   not take at once stays queued for the writer thread.
//! - Otherwise (TLS, another platform, a write in progress, a socket that is
//!   full, quests already in flight) the writer thread, woken only when it
//!   sleeps, which takes the whole buffer and writes it in one blocking
//!   write: frames queued while a write is in progress go out together in
//!   the next one.
//!
//! The writer thread also fires quests' timeouts (20003) and sends the one
//! close frame when the connection ends. A close that sends a close frame (a
//! local close, a protocol error) leaves the socket to the writer, to write
//! what is queued and then the close frame, for at most [`CLOSE_LINGER`]: then
//! it gives up the write (the peer does not read) and shuts the socket, which
//! ends the reader too. The close has failed the pending quests (20002), so
//! what it leaves to write holds no twoway quest: those queued are dropped
//! ([`Outbox::close`]), and a write in progress ends at the end of the frame
//! it is in (never half a frame; under TLS, after the part already sealed),
//! the rest of its batch but twoway quests going out after it. (A oneway
//! quest has no callback to fail: accepted before the close, it is written.) A quest queued inside a batch gets
//! its deadline when the batch ends, just before its frame goes out
//! ([`Due::AtFlush`], src/fpnn/table.rs): one clock read per batch, and its
//! timeout counts from when it leaves the batch, never from before its call.
//!
//! The outbox is bounded ([`ConnectOptions::write_queue_limit`]): the bytes
//! queued plus those of the batch being written. A frame that would take it
//! past the limit is refused (a frame larger than the limit is taken when
//! nothing else is held), and the quest fails at once
//! with 20011 (`FPNN_EC_CORE_WORK_QUEUE_FULL`) instead of blocking its caller.
//! The frames the server waits for are never refused, but they do not grow
//! without bound either when the server stops reading: a pong that finds the
//! outbox full waits in a slot of its own, replaced by the next one (RFC 6455
//! section 5.5.3 lets a pong answer only the latest ping), and an answer to a
//! server quest that takes the outbox past twice its limit (the caller's own
//! quests fill at most the limit) makes the reader stop reading
//! ([`Outbox::wait_for_room`]) until the writer has brought it back under the
//! limit, which pushes back on the server through TCP.
//!
//! [`ConnectOptions::write_queue_limit`]: super::ConnectOptions::write_queue_limit

use std::cell::RefCell;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::shared::{control_frame_into, guarded, Pending, Shared, Table};
use super::CloseReason;
use crate::fpnn::packet::Kind;
use crate::fpnn::transport::{self, OnWait, WriteHalf, Written, WRITE_STALL};
use crate::ws::frame::Opcode;

/// Capacity the outbox's buffers go back to after a burst.
const KEEP: usize = 16 * 1024;

/// How long after a close that sends a close frame the writer may go on
/// writing (what was queued, then the close frame, then TLS close_notify)
/// before it shuts the socket: a peer that stops reading, or reads a trickle,
/// cannot keep a closed connection's socket and threads for the write stall's
/// 30 s (or forever).
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// The writer's queue of encoded frames (see the module comment).
pub(super) struct Outbox {
    st: Mutex<OutState>,
    wake: Condvar,
    limit: usize,
    /// An answer took the outbox past its limit: the reader waits for room
    /// before it reads more ([`Outbox::wait_for_room`]). Set and cleared
    /// under the lock; read without it by the reader between frames.
    backlog: AtomicBool,
    /// How many times the reader has waited for room (a test hook reads it,
    /// `Connection::reads_held_back_for_tests`).
    held_back: AtomicUsize,
    /// Wakes the reader waiting for room.
    room: Condvar,
    /// A close was asked for: the writer stops its write at the end of the
    /// frame it is in (the quests after it were failed by the close), and
    /// with a close frame its writes have until `OutState::linger`
    /// ([`Outbox::lingered`]).
    closing: AtomicBool,
    /// Callers may write to the plain socket `written` holds themselves
    /// (not with TLS, nor where a non-blocking send is not available).
    direct: bool,
    /// The connection's request table, to stamp a batch's quests.
    table: Table,
    /// Marked before every write to the socket, by a caller or the writer
    /// thread (the reader's TCP_QUICKACK decision, src/fpnn/transport/tls.rs).
    pub(super) written: Written,
}

struct OutState {
    buf: Vec<u8>,
    /// How many bytes at the start of `buf` end a frame whose beginning a
    /// caller's direct send has written: frames start after them
    /// ([`drop_quests`] must not take them for a frame).
    head: usize,
    /// The writer thread is writing a batch outside the lock: nobody else
    /// may write until it is done (frames would interleave).
    busy: bool,
    /// The size of that batch: it counts against the limit until written.
    writing: usize,
    /// While the writer thread sleeps: until when (`Some(None)`: no deadline).
    sleeping: Option<Option<Instant>>,
    /// The TLS session has bytes of its own to send.
    flush: bool,
    /// The last command: send a close frame with this status (none when the
    /// peer is already gone), then shut the socket.
    close: Option<Option<u16>>,
    /// Until when the writer may write after such a close ([`CLOSE_LINGER`]).
    linger: Option<Instant>,
    /// The writer has ended: frames are dropped.
    done: bool,
    /// How many threads' [`write_batch`]es it is registered with: each
    /// flushes it (and stamps what is unstamped) when it ends, so a frame
    /// queued in a batch goes out when that batch ends, whichever batch
    /// registered the outbox first.
    batched: u32,
    /// The table holds quests of a batch to stamp ([`Due::AtFlush`]).
    unstamped: bool,
    /// The payload of the one pong that waits outside `buf`, when
    /// `pong_waiting` ([`Outbox::push_pong`]); the writer queues it with its
    /// next round.
    pong: Vec<u8>,
    pong_waiting: bool,
}

impl OutState {
    /// The bytes counted against the limit.
    fn held(&self) -> usize {
        self.buf.len() + self.writing
    }
}

/// When a quest times out.
#[derive(Clone, Copy, Debug)]
pub(super) enum Due {
    /// At this deadline.
    At(Instant),
    /// This long after the end of the thread's [`write_batch`], which
    /// stamps it ([`RequestTable::stamp`]). Only inside a batch.
    ///
    /// [`RequestTable::stamp`]: crate::fpnn::table::RequestTable::stamp
    AtFlush(std::time::Duration),
}

/// Whether this thread is the reader of the connection `written` is of,
/// inside its read's [`write_batch`] (reader.rs: its whole loop is one
/// batch, flushed before each read that waits).
pub(super) fn reading(written: &Written) -> bool {
    BATCH.with(|b| {
        let b = b.borrow();
        b.depth > 0 && b.reader.as_ref().is_some_and(|r| r.same(written))
    })
}

/// The outbox is full: the frame was not queued.
#[derive(Debug)]
pub(super) struct Full;

impl Outbox {
    pub(super) fn new(limit: usize, written: Written, table: Table) -> Outbox {
        Outbox {
            st: Mutex::new(OutState {
                buf: Vec::new(),
                head: 0,
                busy: false,
                writing: 0,
                sleeping: None,
                flush: false,
                close: None,
                linger: None,
                done: false,
                batched: 0,
                unstamped: false,
                pong: Vec::new(),
                pong_waiting: false,
            }),
            wake: Condvar::new(),
            limit,
            backlog: AtomicBool::new(false),
            held_back: AtomicUsize::new(0),
            room: Condvar::new(),
            closing: AtomicBool::new(false),
            direct: written.socket().is_some() && cfg!(target_os = "linux"),
            written,
            table,
        }
    }

    /// Queues a frame of `len` bytes that `encode` appends to the buffer, and
    /// writes it at once when `eager` and it can (see the module comment).
    /// `due` is the new quest's deadline, so a writer sleeping past it wakes
    /// up in time. When `limited`, refused if the queue holds something and
    /// would pass its limit; a frame after the close is dropped silently
    /// (the close path completes quests).
    ///
    /// An unlimited frame (an answer to a server quest) that leaves the
    /// outbox past twice its limit sets the backlog the reader waits on
    /// ([`Outbox::wait_for_room`]).
    pub(super) fn push(
        self: &Arc<Self>,
        len: usize,
        due: Option<Due>,
        limited: bool,
        eager: bool,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), Full> {
        let mut st = self.st.lock();
        self.push_in(&mut st, len, due, limited, eager, encode)
    }

    /// [`Outbox::push`] with the lock held.
    fn push_in(
        self: &Arc<Self>,
        st: &mut OutState,
        len: usize,
        due: Option<Due>,
        limited: bool,
        eager: bool,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), Full> {
        if st.done || st.close.is_some() {
            return Ok(());
        }
        let held = st.held();
        if limited && held > 0 && held + len > self.limit {
            return Err(Full);
        }
        encode(&mut st.buf);
        // Past twice the limit: the caller's own quests fill at most the limit, so
        // only answers the server does not read get this far.
        if !limited && st.held() > self.limit.saturating_mul(2) {
            self.backlog.store(true, Ordering::Relaxed);
        }
        let batched = BATCH.with(|b| {
            let mut b = b.borrow_mut();
            if b.depth == 0 {
                return false;
            }
            // Registered once per batch; another thread's batch holding it
            // does not count (it would flush this batch's frames only when
            // it ends). The list is short and the outbox most often its
            // last entry, so this looks only when some batch holds it.
            if st.batched == 0 || !b.outboxes.iter().rev().any(|o| Arc::ptr_eq(o, self)) {
                st.batched += 1;
                b.outboxes.push(self.clone());
            }
            true
        });
        let deadline = match due {
            Some(Due::At(d)) => Some(d),
            Some(Due::AtFlush(_)) => {
                st.unstamped = true;
                // Never outside a batch (the caller checked `batching` on
                // this thread); were it to happen, it is stamped now.
                if !batched {
                    self.stamp(st)
                } else {
                    None
                }
            }
            None => None,
        };
        if batched {
            // Only a deadline earlier than the writer's wake-up wakes it now.
            self.wake_for(st, deadline, false);
        } else {
            self.send_or_wake(st, deadline, eager);
        }
        Ok(())
    }

    /// Queues a pong carrying `payload` (the reader, answering a ping). Never
    /// refused, but it never takes a full outbox further: then it waits in
    /// the pong slot, which the next pong replaces (RFC 6455 section 5.5.3
    /// allows answering only the latest ping), and the writer queues it with
    /// its next round. So a peer that pings without reading makes us hold at
    /// most one pong past the limit.
    pub(super) fn push_pong(self: &Arc<Self>, payload: &[u8]) {
        let mut st = self.st.lock();
        if !st.pong_waiting {
            let encode = |out: &mut Vec<u8>| control_frame_into(out, Opcode::Pong, payload);
            if self
                .push_in(&mut st, 6 + payload.len(), None, true, true, encode)
                .is_ok()
            {
                return;
            }
        }
        // Refused: something is queued or being written, so the writer has a
        // round to come, which takes the slot (`next_round`).
        st.pong.clear();
        st.pong.extend_from_slice(payload);
        st.pong_waiting = true;
        let queued = !st.buf.is_empty();
        self.wake_for(&mut st, None, queued);
    }

    /// Whether an answer took the outbox past its limit (cheap: the reader
    /// looks between frames).
    pub(super) fn backlogged(&self) -> bool {
        self.backlog.load(Ordering::Relaxed)
    }

    /// The reader's backpressure: called between frames while
    /// [`Outbox::backlogged`], it sends what the reader's batch holds, then
    /// waits until the writer has brought the outbox back within its limit,
    /// or the connection closes, before the reader reads more, so a server
    /// that sends quests without reading their answers is held back by TCP
    /// instead of growing the outbox. The writer never waits for the reader,
    /// and a write that makes no progress for `WRITE_STALL` fails the
    /// connection, which ends the wait; the wait is bounded by that long in
    /// any case (a writer held up by a timeout callback it runs): then the
    /// reader reads one more frame and waits again.
    pub(super) fn wait_for_room(&self) {
        flush_write_batch();
        let deadline = transport::deadline_after(WRITE_STALL);
        let mut st = self.st.lock();
        let mut counted = false;
        while st.held() > self.limit && !st.done && st.close.is_none() {
            // Counted in the wait itself, so that the count means the reader
            // really waited (tests/backpressure.rs waits for it).
            if !counted {
                counted = true;
                self.held_back.fetch_add(1, Ordering::Relaxed);
            }
            if self.room.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        self.backlog.store(false, Ordering::Relaxed);
    }

    /// How many times the reader has waited for room ([`Outbox::wait_for_room`]).
    pub(super) fn held_back(&self) -> usize {
        self.held_back.load(Ordering::Relaxed)
    }

    /// Wakes the reader waiting for room, if any, after the outbox shrank or
    /// closed; it looks again.
    fn made_room(&self) {
        if self.backlog.load(Ordering::Relaxed) {
            self.room.notify_all();
        }
    }

    /// Gives the quests a batch left without a deadline theirs, from now
    /// (under the outbox lock, so that a writer about to sleep sees them);
    /// the earliest of them.
    fn stamp(&self, st: &mut OutState) -> Option<Instant> {
        if !std::mem::take(&mut st.unstamped) {
            return None;
        }
        self.table.lock().stamp(Instant::now())
    }

    /// Writes what is queued now if `eager` and possible, and wakes the
    /// writer if something is left, or if `deadline` is earlier than its
    /// wake-up.
    fn send_or_wake(&self, st: &mut OutState, deadline: Option<Instant>, eager: bool) {
        if eager && !st.busy && !st.buf.is_empty() {
            if let Some(sock) = self.written.socket().filter(|_| self.direct) {
                let was = self.written.mark();
                match send_now(sock, &st.buf) {
                    Ok(n) if n == st.buf.len() => {
                        st.buf.clear();
                        st.head = 0;
                    }
                    // Nothing went out, so no ACK rode on it. (Writes are
                    // one at a time, under this lock or while `busy`.)
                    Ok(0) => self.written.take_back(was),
                    Ok(n) => {
                        st.head = rest_of_frame(&st.buf, st.head, n);
                        drop(st.buf.drain(..n));
                    }
                    // Would block, or failed: the writer writes it (and
                    // reports a failure).
                    Err(_) => self.written.take_back(was),
                }
                self.made_room();
            }
        }
        self.wake_for(st, deadline, !st.buf.is_empty());
    }

    fn wake_for(&self, st: &mut OutState, deadline: Option<Instant>, queued: bool) {
        let wake = match st.sleeping {
            Some(_) if queued => true,
            Some(None) => deadline.is_some(),
            Some(Some(until)) => deadline.is_some_and(|d| d < until),
            None => false,
        };
        if wake {
            st.sleeping = None;
            self.wake.notify_one();
        }
    }

    /// The end of a [`write_batch`]: sends what piled up.
    fn end_batch(&self) {
        let mut st = self.st.lock();
        debug_assert!(st.batched > 0, "a batch ends that did not hold the outbox");
        st.batched = st.batched.saturating_sub(1);
        let deadline = self.stamp(&mut st);
        if !st.done {
            self.send_or_wake(&mut st, deadline, true);
        }
    }

    /// Whether the writer may go on writing: an error once a close's
    /// [`CLOSE_LINGER`] has run out (one atomic load until a close).
    fn lingered(&self) -> std::io::Result<()> {
        if !self.closing.load(Ordering::Acquire) {
            return Ok(());
        }
        match self.st.lock().linger {
            Some(until) if Instant::now() >= until => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "closed, and the peer did not take what was left to write in time",
            )),
            _ => Ok(()),
        }
    }

    /// Asks the writer to send what the TLS session holds.
    pub(super) fn flush(&self) {
        let mut st = self.st.lock();
        st.flush = true;
        self.notify(&mut st);
    }

    /// Asks the writer to send what is queued but twoway quests, then the
    /// close frame (with `status`), within [`CLOSE_LINGER`], then to shut the
    /// socket and end. The twoway quests still queued are dropped, and the writer
    /// ends a write in progress at the end of the frame it is in: the close
    /// has failed their callbacks with 20002 (or handed them back to be sent
    /// again elsewhere), so they must not reach the server. What is kept:
    /// the answers to the server's quests, oneway quests (accepted, with no
    /// callback to fail) and a pong. Only the first call counts.
    pub(super) fn close(&self, status: Option<u16>) {
        let mut st = self.st.lock();
        if st.close.is_none() {
            st.close = Some(status);
            let head = st.head;
            drop_quests(&mut st.buf, head);
            if status.is_some() {
                st.linger = Some(transport::deadline_after(CLOSE_LINGER));
            }
            self.closing.store(true, Ordering::Release);
        }
        self.notify(&mut st);
        self.made_room();
    }

    fn notify(&self, st: &mut OutState) {
        if st.sleeping.take().is_some() {
            self.wake.notify_one();
        }
    }

    /// Bytes queued and not yet handed to the socket.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.st.lock().buf.len()
    }
}

struct Batch {
    depth: u32,
    outboxes: Vec<Arc<Outbox>>,
    /// Called by the next flush, after the frames go out ([`at_flush`]).
    on_flush: Option<fn()>,
    /// On a connection's reader thread, that connection's ([`owe_ack`]).
    reader: Option<Written>,
}

thread_local! {
    static BATCH: RefCell<Batch> = const {
        RefCell::new(Batch {
            depth: 0,
            outboxes: Vec::new(),
            on_flush: None,
            reader: None,
        })
    };
}

/// Makes this thread the reader of the connection `written` is of, for
/// [`owe_ack`] (reader.rs, for as long as its loop runs).
pub(crate) fn set_reader(written: Option<Written>) {
    BATCH.with(|b| b.borrow_mut().reader = written);
}

/// Called as a callback or event is handed to the dispatcher thread
/// (src/client/dispatch.rs), before that thread can run it: on a
/// connection's reader thread, leaves the ACK of what the reader read to the
/// dispatcher ([`Written::owe`]), and puts the connection's handle in `slot`
/// unless it is there already, for the dispatcher to [`Written::settle`]
/// after its turn. Elsewhere, nothing.
pub(crate) fn owe_ack(slot: &mut Option<Written>) {
    BATCH.with(|b| {
        if let Some(w) = &b.borrow().reader {
            if w.owe() && !slot.as_ref().is_some_and(|s| s.same(w)) {
                *slot = Some(w.clone());
            }
        }
    });
}

/// While alive (on this thread), frames queued by this thread wait and go
/// out together when the outermost one is dropped: one write (or one wake-up
/// of a writer) for many quests. Wrap code that sends several quests in a
/// row, such as a turn of callbacks. Never held across a wait for I/O.
pub(crate) struct WriteBatch(());

/// Starts a [`WriteBatch`].
pub(crate) fn write_batch() -> WriteBatch {
    BATCH.with(|b| b.borrow_mut().depth += 1);
    WriteBatch(())
}

/// Inside a [`WriteBatch`] (a flush is then sure to come before this thread
/// waits, and when the batch ends), has the next flush call `f`, after the
/// frames queued so far go out, and returns true; outside one, returns
/// false and registers nothing. One hook at a time (a second call replaces
/// the first). The client's hook (`batch_flushed`, src/client/mod.rs) lets
/// go of what a thread keeps for the length of a batch: the online
/// connection it looked up, the queue a reader holds between the inline
/// callbacks of one read.
pub(crate) fn at_flush(f: fn()) -> bool {
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        if b.depth == 0 {
            return false;
        }
        b.on_flush = Some(f);
        true
    })
}

/// Sends what this thread's [`WriteBatch`] holds so far, then calls the
/// [`at_flush`] hook; the batch goes on. Called before this thread waits
/// (for the socket, for an answer). The hook may run user code (a reader's
/// deferred push handlers, src/client/dispatch.rs) whose frames join the
/// batch: they are sent in turn, and the hook they set is called again,
/// until a round queues no frame. (A hook that only sets itself again, as
/// the client's does inside an inline callback, is left for the next flush.)
pub(crate) fn flush_write_batch() {
    loop {
        let (outboxes, hook) = BATCH.with(|b| {
            let mut b = b.borrow_mut();
            (std::mem::take(&mut b.outboxes), b.on_flush.take())
        });
        flush_outboxes(outboxes);
        let Some(f) = hook else {
            return;
        };
        f();
        if BATCH.with(|b| b.borrow().outboxes.is_empty()) {
            return;
        }
    }
}

/// Ends the batch of each outbox, keeping the list's allocation.
fn flush_outboxes(outboxes: Vec<Arc<Outbox>>) {
    if !outboxes.is_empty() {
        for ob in &outboxes {
            ob.end_batch();
        }
        // Keep the list's allocation for the next round.
        BATCH.with(|b| {
            let mut b = b.borrow_mut();
            if b.outboxes.is_empty() {
                let mut v = outboxes;
                v.clear();
                b.outboxes = v;
            }
        });
    }
}

impl Drop for WriteBatch {
    fn drop(&mut self) {
        let last = BATCH.with(|b| {
            let mut b = b.borrow_mut();
            b.depth -= 1;
            b.depth == 0
        });
        if last {
            flush_write_batch();
        }
    }
}

/// One non-blocking send (Linux: `MSG_DONTWAIT | MSG_NOSIGNAL`).
#[cfg(target_os = "linux")]
fn send_now(sock: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
    const MSG_DONTWAIT: i32 = 0x40;
    const MSG_NOSIGNAL: i32 = 0x4000;
    socket2::SockRef::from(sock).send_with_flags(data, MSG_DONTWAIT | MSG_NOSIGNAL)
}

#[cfg(not(target_os = "linux"))]
fn send_now(_: &TcpStream, _: &[u8]) -> std::io::Result<usize> {
    Err(std::io::ErrorKind::WouldBlock.into())
}

/// The end of the client frame that starts at `at` in `buf` (never past
/// `buf`, always past `at` when `at < buf.len()`), and whether it carries a
/// twoway quest (one whose callback a close fails; a oneway quest has no
/// callback and was accepted, so it is not one of them). The frames are the connection's own: masked
/// (`shared::client_frame_into`, `control_frame_into`), so the packet's
/// mtype is read through the mask.
fn frame_at(buf: &[u8], at: usize) -> (usize, bool) {
    let b = |i: usize| buf.get(at + i).copied().unwrap_or(0);
    let (len, hlen) = match b(1) & 0x7f {
        126 => (u64::from(u16::from_be_bytes([b(2), b(3)])), 4),
        127 => (
            u64::from_be_bytes([b(2), b(3), b(4), b(5), b(6), b(7), b(8), b(9)]),
            10,
        ),
        n => (u64::from(n), 2),
    };
    // The mask follows the length; the packet's mtype is its byte 6.
    let start = at + hlen + 4;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .map_or(buf.len(), |e| e.min(buf.len()));
    let quest = b(0) & 0x0f == Opcode::Binary.as_u8()
        && len > 6
        && b(start - at + 6) ^ b(hlen + 2) == Kind::Twoway.mtype();
    (end.max(start.min(buf.len())), quest)
}

/// Where a write of `buf` cut short at `off` must end: the end of the frame
/// `off` is in (frames start at `head`, see `OutState::head`), so that no
/// frame is left half written.
fn frame_boundary(buf: &[u8], head: usize, off: usize) -> usize {
    let mut at = head.min(buf.len());
    while at < off.min(buf.len()) {
        at = frame_at(buf, at).0;
    }
    at.max(off.min(buf.len()))
}

/// How many bytes of the frame that a write of the first `n` bytes of `buf`
/// left unfinished remain (the new `OutState::head`; frames start at `head`).
fn rest_of_frame(buf: &[u8], head: usize, n: usize) -> usize {
    frame_boundary(buf, head, n) - n.min(buf.len())
}

/// Drops the twoway quests from the whole frames of `buf` from `from` on,
/// keeping the other frames (answers, oneway quests, pongs) in order.
fn drop_quests(buf: &mut Vec<u8>, from: usize) {
    let (mut at, mut kept) = (from.min(buf.len()), from.min(buf.len()));
    while at < buf.len() {
        let (end, quest) = frame_at(buf, at);
        if !quest {
            buf.copy_within(at..end, kept);
            kept += end - at;
        }
        at = end;
    }
    buf.truncate(kept);
}

/// Completes every quest whose deadline has passed with 20003.
fn fire_expired(shared: &Shared, expired: &mut Vec<Pending>) {
    shared.table.lock().expire(Instant::now(), expired);
    #[cfg(test)]
    if !expired.is_empty() {
        let hook = shared.before_timeouts.lock().clone();
        if let Some(hook) = hook {
            hook();
        }
    }
    for p in expired.drain(..) {
        let (cb, e) = p.timed_out();
        guarded("timeout callback", || cb.fail(e));
    }
}

/// What the writer took from the outbox for one round.
struct Round {
    /// The batch's `OutState::head`.
    head: usize,
    flush: bool,
    close: Option<Option<u16>>,
}

/// Waits until there is something to write, a close, or a deadline due, and
/// takes the queued bytes into `batch`.
fn next_round(shared: &Shared, ob: &Outbox, batch: &mut Vec<u8>) -> Round {
    let mut st = ob.st.lock();
    loop {
        if !st.buf.is_empty() || st.pong_waiting || st.flush || st.close.is_some() {
            break;
        }
        // Under the outbox lock: a quest registered after this look finds
        // `sleeping` set and wakes us if its deadline is earlier.
        let next = shared.table.lock().next_deadline();
        if next.is_some_and(|d| d <= Instant::now()) {
            break;
        }
        st.sleeping = Some(next);
        let timed_out = match next {
            Some(d) => ob.wake.wait_until(&mut st, d).timed_out(),
            None => {
                ob.wake.wait(&mut st);
                false
            }
        };
        st.sleeping = None;
        if timed_out {
            break;
        }
    }
    if std::mem::take(&mut st.pong_waiting) {
        let st = &mut *st;
        control_frame_into(&mut st.buf, Opcode::Pong, &st.pong);
    }
    std::mem::swap(batch, &mut st.buf);
    let round = Round {
        head: std::mem::take(&mut st.head),
        flush: std::mem::take(&mut st.flush),
        close: st.close,
    };
    st.busy = !batch.is_empty() || round.flush;
    st.writing = batch.len();
    round
}

pub(super) fn writer_loop(shared: Arc<Shared>, mut write: WriteHalf) {
    shared.writer_started();
    let ob = &shared.outbox;
    let mut batch: Vec<u8> = Vec::new();
    let mut expired = Vec::new();
    let mut waiting = Vec::new();
    loop {
        let round = next_round(&shared, ob, &mut batch);
        let mut failed = false;
        if round.flush || !batch.is_empty() {
            // A TLS flush alone may have nothing to send: not counted.
            if !batch.is_empty() {
                let _ = ob.written.mark();
            }
            let mut on_wait = || {
                fire_expired(&shared, &mut waiting);
                ob.lingered()
            };
            // A close during the write ends it at the end of the frame it
            // is in: the quests after it were failed by the close.
            let (head, mut cut) = (round.head, None);
            let mut stop = |off: usize| {
                if cut.is_none() && ob.closing.load(Ordering::Acquire) {
                    cut = Some(frame_boundary(&batch, head, off));
                }
                cut
            };
            let r = match write.send_until(&batch, &mut on_wait, &mut stop) {
                // What else the batch holds goes out: answers, a pong.
                Ok(end) if end < batch.len() => {
                    drop_quests(&mut batch, end);
                    write.send(&batch[end..], &mut on_wait)
                }
                r => r.map(|_| ()),
            };
            batch.clear();
            if batch.capacity() > 4 * KEEP {
                batch.shrink_to(KEEP);
            }
            if let Err(e) = r {
                shared.shut(CloseReason::Error(format!("write failed: {e}")));
                failed = true;
            }
        }
        let close = {
            let mut st = ob.st.lock();
            st.busy = false;
            st.writing = 0;
            if st.buf.capacity() > 4 * KEEP && st.buf.len() < KEEP {
                st.buf.shrink_to(KEEP);
            }
            let close = match (round.close, failed) {
                (_, true) => Some(None),
                (Some(c), _) if st.buf.is_empty() => Some(c),
                _ => None,
            };
            if close.is_some() {
                st.done = true;
                st.buf = Vec::new();
            }
            ob.made_room();
            close
        };
        if let Some(status) = close {
            // Best effort, within the linger: the one close frame, then
            // close_notify.
            let on_wait: OnWait<'_> = &mut || ob.lingered();
            if let Some(code) = status {
                let mut f = Vec::new();
                control_frame_into(&mut f, Opcode::Close, &code.to_be_bytes());
                let _ = write.send(&f, on_wait);
            }
            write.close_notify(on_wait);
            transport::shutdown(&shared.control);
            shared.shut(CloseReason::Local);
            return;
        }
        fire_expired(&shared, &mut expired);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_outbox_refuses_frames_and_keeps_what_it_holds() {
        let ob = Arc::new(Outbox::new(100, Written::default(), Table::default()));
        ob.push(60, None, true, true, |b| b.extend_from_slice(&[1; 60]))
            .unwrap();
        assert!(ob
            .push(60, None, true, true, |b| b.extend_from_slice(&[2; 60]))
            .is_err());
        ob.push(40, None, true, true, |b| b.extend_from_slice(&[3; 40]))
            .unwrap();
        assert_eq!(ob.queued(), 100);
        assert!(ob.push(1, None, true, true, |b| b.push(4)).is_err());
    }

    #[test]
    fn a_full_outbox_keeps_one_pong_the_latest() {
        let ob = Arc::new(Outbox::new(100, Written::default(), Table::default()));
        ob.push_pong(b"first");
        assert_eq!(ob.queued(), 6 + 5, "room for it: queued");
        ob.push(89, None, true, true, |b| b.extend_from_slice(&[1; 89]))
            .unwrap();
        ob.push_pong(b"second");
        ob.push_pong(b"third");
        assert_eq!(ob.queued(), 100, "no pong past the limit");
        let st = ob.st.lock();
        assert!(st.pong_waiting);
        assert_eq!(st.pong, b"third");
    }

    #[test]
    fn an_answer_past_twice_the_limit_sets_the_backlog() {
        let ob = Arc::new(Outbox::new(100, Written::default(), Table::default()));
        // The caller's quests fill the limit; answers past it do not stop the reader
        // until the outbox holds twice the limit.
        ob.push(100, None, true, true, |b| b.extend_from_slice(&[1; 100]))
            .unwrap();
        ob.push(100, None, false, true, |b| b.extend_from_slice(&[2; 100]))
            .unwrap();
        assert!(!ob.backlogged(), "within twice the limit");
        ob.push(1, None, false, true, |b| b.push(3)).unwrap();
        assert!(ob.backlogged());
        // A close ends the reader's wait at once.
        ob.close(Some(1000));
        ob.wait_for_room();
        assert!(!ob.backlogged());
    }

    #[test]
    fn a_batch_holds_frames_until_it_ends() {
        let ob = Arc::new(Outbox::new(100, Written::default(), Table::default()));
        {
            let _outer = write_batch();
            let _inner = write_batch();
            ob.push(5, None, true, true, |b| b.extend_from_slice(&[1; 5]))
                .unwrap();
            ob.push(5, None, true, true, |b| b.extend_from_slice(&[1; 5]))
                .unwrap();
            assert_eq!(ob.st.lock().batched, 1, "registered once");
        }
        // Without a socket nothing is written: the frame stays queued for a
        // writer, and the batch has let go of the outbox.
        assert_eq!(ob.st.lock().batched, 0);
        assert_eq!(ob.queued(), 10);
        assert!(BATCH.with(|b| b.borrow().outboxes.is_empty()));
    }

    fn pending() -> Pending {
        Pending {
            callback: super::super::Reply::Value(Box::new(|_| {})),
            method: "q".into(),
            timeout_ms: 60_000,
            resend: None,
        }
    }

    /// A quest queued in one thread's batch while another thread's batch
    /// holds the outbox gets its deadline (and its frame is flushed) when
    /// its own batch ends, not when the other one does.
    #[test]
    fn a_batch_stamps_what_it_queued_while_another_thread_holds_the_outbox() {
        let table = Table::default();
        let ob = Arc::new(Outbox::new(1 << 20, Written::default(), table.clone()));
        let _held = write_batch();
        ob.push(5, None, true, true, |b| b.extend_from_slice(&[1; 5]))
            .unwrap();
        let (ob2, table2) = (ob.clone(), table.clone());
        std::thread::spawn(move || {
            let _batch = write_batch();
            let timeout = std::time::Duration::from_secs(60);
            assert!(table2.lock().insert_unstamped(pending(), timeout).is_ok());
            ob2.push(5, Some(Due::AtFlush(timeout)), true, true, |b| {
                b.extend_from_slice(&[2; 5])
            })
            .unwrap();
            assert_eq!(ob2.st.lock().batched, 2, "held by both batches");
        })
        .join()
        .unwrap();
        assert!(
            table.lock().next_deadline().is_some(),
            "not stamped when its batch ended"
        );
        assert_eq!(ob.st.lock().batched, 1);
    }

    /// Only a connection's own reader, inside its read's batch, defers the
    /// deadlines of the quests it makes (`Connection::defer_deadlines`): a
    /// quest made in another thread's batch (a dispatcher's turn, another
    /// connection's reader, a poller) gets its deadline at the call, so a
    /// callback there that waits for it is released by its timeout.
    #[test]
    fn only_a_connections_own_reader_counts_as_reading_it() {
        let (mine, other) = (Written::default(), Written::default());
        assert!(!reading(&mine), "outside a batch");
        let _batch = write_batch();
        assert!(!reading(&mine), "in a batch that is no reader's");
        set_reader(Some(mine.clone()));
        assert!(reading(&mine));
        assert!(!reading(&other), "another connection's reader");
        set_reader(None);
        assert!(!reading(&mine));
    }

    #[test]
    fn an_empty_outbox_takes_one_frame_over_the_limit() {
        let ob = Arc::new(Outbox::new(10, Written::default(), Table::default()));
        ob.push(50, None, true, true, |b| b.extend_from_slice(&[1; 50]))
            .unwrap();
        assert_eq!(ob.queued(), 50);
    }

    /// The reader's TCP_QUICKACK decision (src/fpnn/transport/tls.rs) counts
    /// a caller's direct send as carrying an ACK only if it sent something.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_direct_send_marks_the_socket_written_only_when_it_sends() {
        use std::net::TcpListener;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // The peer never reads: the socket fills up.
        let (_peer, _) = listener.accept().unwrap();
        let written = Written::new(Some(tcp));
        let ob = Arc::new(Outbox::new(1 << 30, written.clone(), Table::default()));
        let frame = |b: &mut Vec<u8>| b.extend_from_slice(&[1; 1000]);
        ob.push(1000, None, false, true, frame).unwrap();
        assert_eq!(ob.queued(), 0, "a small frame goes out at once");
        assert!(written.is_marked());
        // Once the socket takes nothing more, a send that would block takes
        // its mark back (were it left, the reader would skip re-arming
        // quick-ack for a read no write acknowledged). Each push follows a
        // read returning (`clear`), so its mark is its own.
        let mut unmarked = false;
        for _ in 0..100_000 {
            written.clear();
            ob.push(1000, None, false, true, frame).unwrap();
            if !written.is_marked() {
                unmarked = true;
                break;
            }
        }
        assert!(unmarked, "a send that sent nothing left the mark");
        assert!(ob.queued() > 0);
        // A write that went out since the last read carried its ACK: a later
        // send that sends nothing leaves that write's mark.
        let _ = written.mark();
        ob.push(1000, None, false, true, frame).unwrap();
        assert!(
            written.is_marked(),
            "a send that sent nothing took an earlier write's mark"
        );
    }

    #[test]
    fn the_buffers_shrink_back_after_a_large_burst() {
        use crate::fpnn::packet::DEFAULT_MAX_PACKET;
        use crate::fpnn::transport::Endpoint;
        use std::io::Read;
        use std::net::TcpListener;
        use std::time::Duration;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        tcp.set_write_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while peer.read(&mut buf).is_ok_and(|n| n > 0) {}
        });
        let shared = Arc::new(Shared::new(
            Endpoint::parse("127.0.0.1:1", false).unwrap(),
            tcp.try_clone().unwrap(),
            Written::default(),
            64 << 20,
            DEFAULT_MAX_PACKET,
            None,
        ));
        let s = shared.clone();
        let writer = std::thread::spawn(move || writer_loop(s, WriteHalf::Plain(tcp)));
        let written = |ob: &Outbox| {
            crate::testing::wait_until("the writer to write", || {
                let st = ob.st.lock();
                st.buf.is_empty() && !st.busy
            })
        };
        let ob = &shared.outbox;
        // A 4 MiB burst, then small frames: the writer swaps its buffer with
        // the outbox's each round, so both have held the burst.
        ob.push(4 << 20, None, true, false, |b| b.resize(4 << 20, 7))
            .unwrap();
        written(ob);
        for _ in 0..2 {
            ob.push(10, None, true, false, |b| b.extend_from_slice(&[1; 10]))
                .unwrap();
            written(ob);
            assert!(ob.st.lock().buf.capacity() <= 4 * KEEP);
        }
        shared.shut(CloseReason::Local);
        writer.join().unwrap();
        drain.join().unwrap();
    }

    /// Frames of each header size (7-bit, 16-bit and 64-bit lengths): a
    /// quest, an answer, a oneway quest, a pong; and whether each is a twoway
    /// quest (what a close drops).
    fn mixed_frames() -> Vec<(Vec<u8>, bool)> {
        use super::super::shared::client_frame_into;
        let mut out = Vec::new();
        for plen in [10, 300, 70_000] {
            for kind in [Kind::Twoway, Kind::Answer, Kind::Oneway] {
                let mut f = Vec::new();
                client_frame_into(&mut f, kind, 7, ("method", 0), &vec![0x80; plen]);
                out.push((f, kind == Kind::Twoway));
            }
            let mut f = Vec::new();
            control_frame_into(&mut f, Opcode::Pong, b"p");
            out.push((f, false));
        }
        out
    }

    #[test]
    fn a_close_drops_the_queued_quests_and_keeps_answers_and_pongs() {
        let frames = mixed_frames();
        let all: Vec<u8> = frames.iter().flat_map(|(f, _)| f.clone()).collect();
        let kept: Vec<u8> = frames
            .iter()
            .filter(|(_, quest)| !quest)
            .flat_map(|(f, _)| f.clone())
            .collect();
        let ob = Arc::new(Outbox::new(1 << 30, Written::default(), Table::default()));
        ob.push(all.len(), None, true, false, |b| b.extend_from_slice(&all))
            .unwrap();
        ob.close(Some(1000));
        assert_eq!(ob.st.lock().buf, kept);
        // The end of a quest already partly written stays: it is not a frame.
        let f0 = frames[0].0.len();
        let mut buf = all[f0 - 5..].to_vec();
        drop_quests(&mut buf, 5);
        assert_eq!(&buf[..5], &all[f0 - 5..f0]);
        assert_eq!(&buf[5..], &kept[..]);
    }

    #[test]
    fn a_cut_write_ends_at_the_end_of_the_frame_it_is_in() {
        let frames = mixed_frames();
        let all: Vec<u8> = frames.iter().flat_map(|(f, _)| f.clone()).collect();
        let mut ends = Vec::new();
        let mut at = 0;
        for (f, _) in &frames {
            at += f.len();
            ends.push(at);
        }
        let mut start = 0;
        for &end in &ends {
            for off in [start, start + 1, end - 1] {
                let expect = if off == start { start } else { end };
                assert_eq!(frame_boundary(&all, 0, off), expect, "{off}");
                assert_eq!(rest_of_frame(&all, 0, off), expect - off);
            }
            start = end;
        }
        assert_eq!(frame_boundary(&all, 0, all.len()), all.len());
        // With the end of a partly written frame at the start.
        assert_eq!(frame_boundary(&all[3..], ends[0] - 3, 1), ends[0] - 3);
        // Garbage never panics and always moves on.
        for junk in [&[0xff, 0xff][..], &[0x82, 0x7f, 1], &[0x82]] {
            let mut b = junk.to_vec();
            drop_quests(&mut b, 0);
            assert!(frame_at(junk, 0).0 > 0);
            assert!(frame_boundary(junk, 0, 1) <= junk.len());
        }
    }

    #[test]
    fn frames_after_the_close_are_dropped() {
        let ob = Arc::new(Outbox::new(100, Written::default(), Table::default()));
        ob.close(Some(1000));
        ob.push(5, None, true, true, |b| b.extend_from_slice(&[1; 5]))
            .unwrap();
        assert_eq!(ob.queued(), 0);
    }
}
