//! The client's events (`ErrorRecorder`, `ReloginCompleted`,
//! `SessionClosed`): who listens, and queuing them for the dispatcher. Queuing
//! runs no user code, so it may happen under the session lock, which keeps a
//! session's events in the order its machine decided them. `SessionClosed`
//! and the `ReloginCompleted` that ends a relogin series (`successful`, or
//! `retry_again` false) are events of the session's lifecycle, never dropped
//! by a full dispatch queue (`Dispatcher::lifecycle_event`, which argues why
//! the queue stays bounded), except a successful one while another waits
//! in the full queue: a connection lost after each relogin makes one per
//! connection (`Dispatcher::lifecycle_event_once`); the `ReloginCompleted` of a failed attempt that
//! will be retried, and an `ErrorRecorder`, are dropped and counted there as
//! a push is (with `max_interval_seconds: 0` the attempts are not paced, so
//! they may come as fast as connections are refused).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::RwLock;

use super::dispatch::Job;
use super::Inner;
use crate::error::RtmError;

type ErrorHandler = Arc<dyn Fn(&RtmError) + Send + Sync>;
type ReloginHandler = Arc<dyn Fn(bool, bool, i32, u32) + Send + Sync>;
type ClosedHandler = Arc<dyn Fn(i32) + Send + Sync>;

/// The handlers registered with `on_error_recorder`, `on_relogin_completed`
/// and `on_session_closed`.
#[derive(Default)]
pub(super) struct Events {
    pub(super) error_recorder: RwLock<Vec<ErrorHandler>>,
    pub(super) relogin_completed: RwLock<Vec<ReloginHandler>>,
    pub(super) session_closed: RwLock<Vec<ClosedHandler>>,
    /// A successful `ReloginCompleted` waits in the dispatch queue, not run yet
    /// (`Dispatcher::lifecycle_event_once`).
    pub(super) relogin_waiting: Arc<AtomicBool>,
}

/// The handlers of `list` as they are now: copied out, so that no lock on the list is
/// held while their jobs are queued (queuing may report dropped events, which reads
/// the `ErrorRecorder` list again, and a read lock taken twice on one thread can
/// deadlock with a waiting `on_...` registration).
fn current<H: Clone>(list: &RwLock<Vec<H>>) -> Vec<H> {
    list.read().clone()
}

impl Inner {
    /// One `ErrorRecorder` job per handler, for `e` (queued by the caller).
    pub(super) fn error_jobs(&self, e: RtmError) -> Vec<Job> {
        current(&self.events.error_recorder)
            .into_iter()
            .map(|h| {
                let e = e.clone();
                Box::new(move || h(&e)) as Job
            })
            .collect()
    }

    pub(super) fn emit_error(&self, e: RtmError) {
        log::debug!("ErrorRecorder: {e}");
        for job in self.error_jobs(e) {
            self.dispatcher.event(job);
        }
    }

    pub(super) fn emit_relogin(&self, ok: bool, again: bool, code: i32, n: u32) {
        log::debug!("ReloginCompleted({ok}, {again}, {code}, {n})");
        let jobs = current(&self.events.relogin_completed)
            .into_iter()
            .map(|h| Box::new(move || h(ok, again, code, n)) as Job);
        if ok {
            // Kept or dropped whole, every handler's job.
            self.dispatcher
                .lifecycle_event_once(jobs.collect(), &self.events.relogin_waiting);
        } else if !again {
            jobs.for_each(|job| self.dispatcher.lifecycle_event(job));
        } else {
            jobs.for_each(|job| self.dispatcher.event(job));
        }
    }

    pub(super) fn emit_closed(&self, code: i32) {
        log::debug!("session closed with code {code} (SessionClosed)");
        for h in current(&self.events.session_closed) {
            self.dispatcher.lifecycle_event(Box::new(move || h(code)));
        }
    }
}
