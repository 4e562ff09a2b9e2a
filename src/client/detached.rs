//! What a call that runs on a thread of its own (the file sends, src/api/files.rs) takes
//! from the client: the session's connection and uid, the options, the completion path,
//! whether the session it started in has ended, and `destroy` waiting for its callback.

use crossbeam_channel::{Receiver, TryRecvError};

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
    /// lost link).
    pub(crate) ended: Ended,
    /// Makes `destroy` wait until the call's callback is queued (drop it then).
    pub(crate) owed: dispatch::Owed,
    /// The completion would go to a full dispatch queue: the call fails with 20011 and
    /// sends nothing (`Deliverer::queue_full`, as `RtmClient::call` does).
    pub(crate) queue_full: bool,
}

impl RtmClient {
    /// The options the client was made with.
    pub(crate) fn options(&self) -> &RtmOptions {
        &self.inner.options
    }

    /// See [`Detached`]; takes the `blocking()` direct path like any call.
    pub(crate) fn detach(&self) -> Detached {
        let delivery = self.inner.delivery();
        let queue_full = delivery.queue_full();
        let deliver = Box::new(move |job| delivery.deliver(job));
        let session = {
            let core = self.inner.core.read();
            core.online_connection().zip(core.uid())
        };
        let owed = self.inner.dispatcher.owe();
        let ended = Ended {
            // Without a session: a channel already disconnected.
            signal: match &session {
                Some((c, _)) => c.closed_signal(),
                None => crossbeam_channel::bounded(0).1,
            },
        };
        Detached {
            session,
            deliver,
            ended,
            owed,
            queue_full,
        }
    }
}

/// Whether the session a detached call started in has ended ([`Detached::ended`]).
pub(crate) struct Ended {
    /// Disconnected once the session's connection has ended
    /// (`Connection::closed_signal`): a wait can select on it instead of polling.
    signal: Receiver<()>,
}

impl Ended {
    /// The session's connection has ended. A destroyed client's has: `destroy` ends the
    /// connection before it waits for detached calls (src/client/driver.rs, tested
    /// below).
    pub(crate) fn has_ended(&self) -> bool {
        matches!(self.signal.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Ready (disconnected) once the session's connection has ended: select on it
    /// beside what the call waits for, then ask [`Ended::has_ended`].
    pub(crate) fn signal(&self) -> &Receiver<()> {
        &self.signal
    }
}

#[cfg(all(test, feature = "gate"))]
mod tests {
    use crossbeam_channel::RecvTimeoutError;

    use super::*;
    use crate::gate::Gate;
    use crate::testing::{wait_until, WAIT};

    fn online(gate: &Gate) -> RtmClient {
        let client = RtmClient::new(RtmOptions {
            endpoint: Some(gate.endpoint()),
            pid: 1,
            ..Default::default()
        })
        .expect("client");
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(7, "token", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        assert_eq!(rx.recv_timeout(WAIT), Ok((true, 0)));
        client
    }

    /// What the file sends wait on (src/api/files.rs): a waiter on `signal` is woken by
    /// the session's end, whatever ends it, and `has_ended` agrees from then on. (The
    /// waiter usually blocks before the end; if it starts after it, the receiver is
    /// already disconnected, which is what the flow relies on too.)
    #[test]
    fn a_wait_on_the_signal_wakes_when_the_session_ends() {
        let gate = Gate::builder().start().expect("gate");
        for end in ["close", "destroy", "lost link"] {
            let client = online(&gate);
            let detached = client.detach();
            let ended = detached.ended;
            assert!(!ended.has_ended(), "{end}");
            let waiter = std::thread::spawn(move || {
                let woke = ended.signal().recv_timeout(WAIT);
                (woke, ended.has_ended())
            });
            // Let `destroy` go on: it waits for what the detached call owes.
            drop(detached.owed);
            match end {
                "close" => client.close(),
                "destroy" => client.destroy(),
                _ => assert_eq!(gate.drop_user(1, 7), 1),
            }
            let (woke, has_ended) = waiter.join().unwrap();
            assert_eq!(woke, Err(RecvTimeoutError::Disconnected), "{end}");
            assert!(has_ended, "{end}");
            client.destroy();
            // The next round's `drop_user` must find only its own connection.
            wait_until("the gate saw the connection close", || {
                gate.connections_of(1, 7) == 0
            });
        }
    }

    /// A signal asked for after the connection ended is disconnected at once: it
    /// makes no channel that nothing would ever drop.
    #[test]
    fn a_signal_asked_for_after_the_connection_ended_is_disconnected() {
        let gate = Gate::builder().start().expect("gate");
        let client = online(&gate);
        let (conn, _) = client.detach().session.expect("online");
        conn.close();
        assert_eq!(
            conn.closed_signal().try_recv(),
            Err(TryRecvError::Disconnected)
        );
        client.destroy();
    }

    #[test]
    fn a_call_detached_without_a_session_has_ended_at_once() {
        let gate = Gate::builder().start().expect("gate");
        let client = online(&gate);
        client.close();
        let d = client.detach();
        assert!(d.session.is_none());
        assert!(d.ended.has_ended());
        assert_eq!(d.ended.signal().try_recv(), Err(TryRecvError::Disconnected));
    }
}
