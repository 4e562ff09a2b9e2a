//! The RTM client. This file owns the client's shared state ([`Inner`]) and
//! the module layout; each concern has its own file:
//!
//! - `handle.rs`: the public handle ([`RtmClient`], [`WeakRtmClient`]), the
//!   endpoint rules, and the one path every API method takes to the gate;
//! - `blocking.rs`: [`blocking()`], and how a completion reaches user code;
//! - `events.rs`: `ErrorRecorder`, `ReloginCompleted`, `SessionClosed`;
//! - `machine.rs`: the session state machine (pure: events in, actions out);
//! - `driver.rs`: the thin loop that feeds the machine and performs its
//!   actions (connects, auth, timers);
//! - `push.rs`: the gate's quests (pushes, ping, kickout) and push parsing;
//! - `dedup.rs`, `mid.rs`, `schedule.rs`, `dispatch.rs`, `processor.rs`:
//!   the duplicate filter, message ids, the relogin schedule, where user code
//!   runs, and the push handlers' registry.
//!
//! - `timers.rs`: the process-wide thread of every client's session timers;
//! - `resend.rs`: the quests waiting for the next connection
//!   (`RtmOptions::resend_on_reconnect`).
//!
//! Threads of a client: the reader and writer of its current connection.
//! Every client in the process shares the timer thread and, in
//! `Dispatch::Threads` and `Inline` mode, the dispatcher thread (docs/architecture.md).

mod blocking;
mod dedup;
mod detached;
pub(crate) mod dispatch;
mod driver;
mod events;
mod handle;
mod json;
mod machine;
mod mid;
mod processor;
mod push;
mod resend;
pub(crate) use push::fuzz_parse_push;
mod schedule;
mod timers;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::types::RtmOptions;
use dedup::DuplicateFilter;
pub(crate) use detached::{Detached, Ended};
use dispatch::Dispatcher;
use driver::SessionLock;
use events::Events;
use mid::MidGenerator;

pub use blocking::blocking;
pub use handle::{RtmClient, WeakRtmClient};
pub use processor::RtmProcessor;

/// The `version` sent with `auth`. Rust-only: it names this SDK,
/// `Rust_<crate version>` (docs/protocol.md section 5).
pub const SDK_VERSION: &str = concat!("Rust_", env!("CARGO_PKG_VERSION"));

/// Default timeout of a call, when `timeout` is 0.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 20_000;

/// The client's hook on a thread's write batch (`fpnn::at_flush`): what the
/// thread keeps for the length of a batch is let go when it flushes, before
/// the thread waits: the online connection's quest path (`driver.rs`,
/// `Inner::with_online`) and a queue a reader holds between inline
/// callbacks (`dispatch.rs`, `Dispatcher::callback_on_reader`).
pub(crate) fn batch_flushed() {
    driver::forget_online();
    dispatch::release_held();
}

/// What every handle, the driver and the push handler share.
pub(crate) struct Inner {
    /// Unique in the process (the timer thread's key).
    id: u64,
    options: RtmOptions,
    endpoint: String,
    tls: bool,
    pub(crate) dispatcher: Arc<Dispatcher>,
    events: Events,
    processor: RtmProcessor,
    /// The session: its machine, connection and driver (`driver.rs`).
    core: SessionLock,
    dedup: Mutex<DuplicateFilter>,
    mids: Mutex<MidGenerator>,
    /// The session as pushes see it, updated after every step of the
    /// machine (`driver.rs`); a push is queued under its read lock.
    fence: RwLock<Fence>,
    /// Closes in progress on other threads, which `close` and `destroy` wait
    /// for (`driver.rs`).
    closing: Arc<driver::Closing>,
    /// Held while waiting quests, or a resendable call, are handed to the online
    /// connection (`driver.rs`, `Inner::send_or_wait`): one thread's resendable calls
    /// reach the connection in the order it made them. Taken before the session lock.
    send_order: Mutex<()>,
}

/// What the push handler checks before queuing a push: that its connection
/// is still the session's, and the uid the `excludedUids` rule compares.
#[derive(Debug, Default, Clone, Copy)]
struct Fence {
    serial: Option<u64>,
    uid: Option<i64>,
}

/// The fence's read lock, as a push holds it until its handlers are taken
/// or queued (src/client/push.rs).
type FenceGuard<'a> = parking_lot::RwLockReadGuard<'a, Fence>;

/// A call's timeout: `ms`, or the default when 0.
fn dur(ms: u64) -> Duration {
    Duration::from_millis(if ms == 0 { DEFAULT_TIMEOUT_MS } else { ms })
}
