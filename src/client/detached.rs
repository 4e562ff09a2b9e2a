//! What a call that runs on a thread of its own (the file sends, src/api/files.rs) takes
//! from the client: the session's connection and uid, the options, the completion path,
//! whether the session has ended; and `destroy` waiting for that thread.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::{dispatch, RtmClient};
use crate::fpnn::Connection;
use crate::types::RtmOptions;

/// What a call that runs on a thread of its own (the file sends, src/api/files.rs) takes
/// from the client when it starts.
pub(crate) struct Detached {
    /// The session's connection and uid, when logged in.
    pub(crate) session: Option<(Connection, i64)>,
    /// How the call's completion reaches user code (see `Inner::deliverer`).
    pub(crate) deliver: Box<dyn FnOnce(dispatch::Job) + Send>,
    /// Whether the session the call started in has ended since (close, a new login,
    /// destroy).
    pub(crate) ended: Box<dyn Fn() -> bool + Send>,
}

impl RtmClient {
    /// The options the client was made with.
    pub(crate) fn options(&self) -> &RtmOptions {
        &self.inner.options
    }

    /// See [`Detached`]; takes the `blocking()` direct path like any call.
    pub(crate) fn detach(&self) -> Detached {
        let deliver = Box::new(self.inner.deliverer());
        let s = self.inner.session.lock();
        let session = s.conn.clone().zip(s.credentials.as_ref().map(|c| c.0));
        let (weak, gen) = (Arc::downgrade(&self.inner), s.gen);
        let ended = Box::new(move || weak.upgrade().map_or(true, |i| i.session.lock().gen != gen));
        Detached {
            session,
            deliver,
            ended,
        }
    }

    /// Hands a thread of a [`Detached`] call to the client: `destroy` waits for it.
    pub(crate) fn track(&self, thread: JoinHandle<()>) {
        let mut w = self.inner.workers.lock();
        w.retain(|h| !h.is_finished());
        w.push(thread);
    }
}
