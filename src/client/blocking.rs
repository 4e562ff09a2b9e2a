//! [`blocking`]: any `(err, data)` method as a blocking call, and how a
//! completion reaches user code (through the dispatch queue, or straight to
//! a thread waiting in `blocking`).

use std::cell::Cell;
use std::sync::Arc;

use super::dispatch::{self, Dispatcher};
use super::Inner;
use crate::error::{error_code, RtmError};

thread_local! {
    /// Set while [`blocking`] runs its closure, and taken by the first
    /// callback registered then: that one is delivered straight to the
    /// waiting thread instead of the queue, so a blocking call can never wait
    /// on a queue only its own thread drains. Later callbacks in the same
    /// closure take the normal path.
    static DIRECT: Cell<bool> = const { Cell::new(false) };
}

/// Turns any `(err, data)` method into a blocking call that returns
/// `Result<T, E>`: for synchronous applications, no channels needed. A Rust
/// addition (JavaScript code is asynchronous and has no blocking calls).
///
/// ```no_run
/// # use rtm_client::{RtmClient, RtmOptions, blocking};
/// # let client = RtmClient::new(RtmOptions { endpoint: Some("127.0.0.1:13321".into()), ..Default::default() })?;
/// let answer = blocking(|cb| client.send_message(1002, 30, "hi", "", 0, 5000, cb))?;
/// println!("sent at {}", answer.payload.mtime);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// It returns when the callback runs, which every method guarantees by its
/// timeout. The answer goes straight to the calling thread, bypassing the
/// dispatch queue, so it works on any thread, including inside a callback
/// and on the thread that calls `dispatch_pending()` in `Dispatch::Queued`
/// mode. If the closure registers no callback at all (it did not call an API
/// method), it returns at once with error 20001 rather than waiting forever.
/// The one exception: inside a callback that runs on a reader thread
/// (`Dispatch::Inline`) it fails at once with 20013
/// (`FPNN_EC_CORE_FORBIDDEN`), without running the closure.
pub fn blocking<T, E>(f: impl FnOnce(Box<dyn FnOnce(Option<E>, Option<T>) + Send>)) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<RtmError>,
{
    if dispatch::in_inline_callback() {
        // This thread is a connection's reader: an answer it waited for
        // could never be read.
        return Err(E::from(RtmError::new(
            error_code::FPNN_EC_CORE_FORBIDDEN,
            "blocking() inside a Dispatch::Inline callback: it runs on the reader thread its answer would need",
        )));
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let cb: Box<dyn FnOnce(Option<E>, Option<T>) + Send> = Box::new(move |e, d| {
        let _ = tx.send((e, d));
    });
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DIRECT.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DIRECT.with(|d| d.replace(true)));
    f(cb);
    // This thread may be batching its writes (a callback): send the quest.
    crate::fpnn::flush_write_batch();
    match rx.recv() {
        Ok((e, d)) => crate::adapters::into_result(e, d),
        Err(_) => Err(E::from(RtmError::new(
            error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
            "the closure did not call an API method with the callback",
        ))),
    }
}

/// How one call's completion reaches user code: through the client's
/// queue, or straight to a thread waiting in [`blocking`].
pub(super) struct Deliverer {
    direct: bool,
    dispatcher: Arc<Dispatcher>,
}

impl Deliverer {
    /// Test hook: delivery through `dispatcher`'s queue.
    #[cfg(test)]
    pub(super) fn queued(dispatcher: Arc<Dispatcher>) -> Deliverer {
        Deliverer {
            direct: false,
            dispatcher,
        }
    }

    /// Whether the completion would go to a full queue
    /// (`dispatch::QUEUE_LIMIT`): the call fails with 20011 instead.
    pub(super) fn queue_full(&self) -> bool {
        !self.direct && self.dispatcher.is_full()
    }

    pub(super) fn deliver(self, job: dispatch::Job) {
        if self.direct {
            job.run()
        } else {
            self.dispatcher.callback(job)
        }
    }

    /// [`Deliverer::deliver`] from a connection's reader thread, with no
    /// lock held (`RawReply::answer_on_reader`): in `Dispatch::Inline` mode
    /// the callback may run right here.
    pub(super) fn deliver_on_reader(self, job: dispatch::Job) {
        if self.direct {
            job.run()
        } else {
            self.dispatcher.callback_on_reader(job)
        }
    }
}

impl Inner {
    /// How the completion of the call being made reaches user code, with
    /// the queue's state ([`Deliverer::queue_full`]).
    pub(super) fn delivery(&self) -> Deliverer {
        Deliverer {
            direct: DIRECT.with(|d| d.replace(false)),
            dispatcher: self.dispatcher.clone(),
        }
    }

    /// [`Inner::delivery`] as a plain function: through the queue, or
    /// straight to a thread waiting in [`blocking`].
    pub(super) fn deliverer(&self) -> impl FnOnce(dispatch::Job) + Send + 'static {
        let d = self.delivery();
        move |job| d.deliver(job)
    }
}
