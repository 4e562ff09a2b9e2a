//! What a call that runs on a thread of its own (the file sends, src/api/files.rs) takes
//! from the client: the session's connection and uid, the options, the completion path,
//! whether the session it started in has ended, and `destroy` waiting for its callback.

use super::{dispatch, RtmClient};
use crate::fpnn::Connection;
use crate::types::RtmOptions;

/// What a call that runs on a thread of its own (the file sends, src/api/files.rs) takes
/// from the client when it starts.
pub(crate) struct Detached {
    /// The session's connection and uid, when online.
    pub(crate) session: Option<(Connection, i64)>,
    /// How the call's completion reaches user code (see `Inner::deliverer`).
    pub(crate) deliver: Box<dyn FnOnce(dispatch::Job) + Send>,
    /// Whether the session's connection has ended since (close, a new login, destroy, a
    /// lost link) or the client was destroyed.
    pub(crate) ended: Box<dyn Fn() -> bool + Send>,
    /// Makes `destroy` wait until the call's callback is queued (drop it then).
    pub(crate) owed: dispatch::Owed,
}

impl RtmClient {
    /// The options the client was made with.
    pub(crate) fn options(&self) -> &RtmOptions {
        &self.inner.options
    }

    /// See [`Detached`]; takes the `blocking()` direct path like any call.
    pub(crate) fn detach(&self) -> Detached {
        let deliver = Box::new(self.inner.deliverer());
        let session = {
            let core = self.inner.core.read();
            core.online_connection().zip(core.uid())
        };
        let watched = session.as_ref().map(|(c, _)| c.clone());
        let dispatcher = self.inner.dispatcher.clone();
        let owed = dispatcher.owe();
        let ended = Box::new(move || {
            dispatcher.is_destroyed() || !watched.as_ref().is_some_and(Connection::is_open)
        });
        Detached {
            session,
            deliver,
            ended,
            owed,
        }
    }
}
