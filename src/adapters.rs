//! Rust-only adapters over the `(err, data)` callbacks of every API method:
//! [`result_callback`] hands a closure a `Result` instead of two `Option`s,
//! and [`future()`] turns a call and its callback into a `Future` that any
//! executor can await. Neither needs an async runtime: the future is a shared
//! slot and a `Waker`, from the standard library alone.
//!
//! Both follow the convention of [`blocking`](crate::blocking): the API
//! promises that exactly one of `err` and `data` is `Some`; should a callback
//! ever get neither (or be dropped without being called), the result is an
//! [`RtmError`] with code 20001 (`FPNN_EC_CORE_UNKNOWN_ERROR`), never a panic
//! or a wait that does not end.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::error::{error_code, RtmError};

/// The callback type [`future()`] hands its closure: pass it to any API method
/// as its `callback`. Rust-only.
pub type Callback<T, E> = Box<dyn FnOnce(Option<E>, Option<T>) + Send + 'static>;

/// The one `Result` of an `(err, data)` pair: the data when there is some,
/// else the error, else (never, by the API's promise) error 20001.
pub(crate) fn into_result<T, E: From<RtmError>>(err: Option<E>, data: Option<T>) -> Result<T, E> {
    match (err, data) {
        (_, Some(data)) => Ok(data),
        (Some(err), None) => Err(err),
        (None, None) => Err(E::from(RtmError::new(
            error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
            "the callback was called with neither an error nor data",
        ))),
    }
}

/// Turns a closure that takes a `Result` into an `(err, data)` callback that any
/// API method accepts. Rust-only: JavaScript callbacks take `(err, data)`.
///
/// Name the `Result`'s types in the closure's argument when its body uses the
/// value (Rust checks the closure before it sees the method's callback type):
///
/// ```
/// use std::sync::mpsc;
/// use rtm_client::{result_callback, RtmClient, RtmOptions, SendAnswer, SendError};
/// # let gate = rtm_client::gate::Gate::start()?;
/// # let options = RtmOptions { endpoint: Some(gate.endpoint()), pid: 1, ..Default::default() };
/// # let client = RtmClient::new(options)?;
/// # let (done, logged_in) = mpsc::channel();
/// # client.login(1001, "token", move |ok, _| { let _ = done.send(ok); }, 5000);
/// # assert!(logged_in.recv()?);
///
/// let (tx, rx) = mpsc::channel();
/// client.send_message(1002, 30, "hello", "", 0, 5000, result_callback(move |r: Result<SendAnswer, SendError>| {
///     let _ = tx.send(match r {
///         Ok(answer) => format!("sent {} at {}", answer.mid, answer.payload.mtime),
///         Err(err) => format!("failed: {err}"),
///     });
/// }));
/// assert!(rx.recv()?.starts_with("sent "));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The closure runs where the callback would have run (the dispatcher thread,
/// or the caller of `dispatch_pending()` in `Dispatch::Queued` mode), exactly
/// once.
pub fn result_callback<T, E>(
    f: impl FnOnce(Result<T, E>) + Send + 'static,
) -> impl FnOnce(Option<E>, Option<T>) + Send + 'static
where
    E: From<RtmError>,
{
    move |err, data| f(into_result(err, data))
}

/// What the callback and the future share.
struct Slot<T, E> {
    state: Mutex<State<T, E>>,
}

enum State<T, E> {
    /// No result yet; the waker of the last poll, if any.
    Waiting(Option<Waker>),
    /// The result, not yet taken by a poll.
    Done(Result<T, E>),
    /// The future returned the result.
    Taken,
}

impl<T, E> Slot<T, E> {
    /// Stores the result (the first one wins) and wakes the last poller,
    /// after letting go of the lock.
    fn complete(&self, result: Result<T, E>) {
        let waker = {
            let mut state = self.state.lock();
            match &mut *state {
                State::Waiting(waker) => {
                    let waker = waker.take();
                    *state = State::Done(result);
                    waker
                }
                State::Done(_) | State::Taken => None,
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Completes the slot with error 20001 if the callback is dropped uncalled
/// (the closure given to [`future()`] did not pass it to an API method), so
/// the future ends instead of waiting forever.
struct Completer<T, E: From<RtmError>> {
    slot: Option<Arc<Slot<T, E>>>,
}

impl<T, E: From<RtmError>> Drop for Completer<T, E> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.complete(Err(E::from(RtmError::new(
                error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
                "the callback was dropped without being called",
            ))));
        }
    }
}

/// The answer of one API call as a `Future`; made by [`future()`]. Rust-only.
///
/// It is `Send` and `'static` when `T` and `E` are `Send`, and `Unpin`; it
/// depends on no runtime, and a waker from any executor works.
#[must_use = "a future does nothing unless polled; the call itself was already made"]
pub struct CallbackFuture<T, E> {
    slot: Arc<Slot<T, E>>,
}

impl<T, E> fmt::Debug for CallbackFuture<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.slot.state.lock() {
            State::Waiting(_) => "waiting",
            State::Done(_) => "done",
            State::Taken => "taken",
        };
        f.debug_struct("CallbackFuture")
            .field("state", &state)
            .finish()
    }
}

impl<T, E: From<RtmError>> Future for CallbackFuture<T, E> {
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let mut state = self.slot.state.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Waiting(waker) => {
                let waker = match waker {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *state = State::Waiting(Some(waker));
                Poll::Pending
            }
            State::Done(result) => Poll::Ready(result),
            // Polled again after it returned its result: an error, not a
            // panic and not a wait that never ends.
            State::Taken => Poll::Ready(Err(E::from(RtmError::new(
                error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
                "CallbackFuture polled after it completed",
            )))),
        }
    }
}

/// Makes an API call and returns its answer as a `Future<Output = Result<T, E>>`
/// that any executor can await. Rust-only: the counterpart of JavaScript code
/// that wraps a callback in a `Promise`.
///
/// The closure gets the callback to pass to one API method. The call is made at
/// once, inside `future` (like a JavaScript promise, not at the first poll), so
/// the future borrows nothing and can be sent to another thread or spawned.
/// The future is ready when the callback runs, which every method guarantees
/// by its timeout. Dropping the future does not cancel the request; its answer
/// is dropped. If the closure does not pass the callback to a method, the
/// future is ready at once with error 20001.
///
/// ```
/// use rtm_client::{future, RtmClient, RtmOptions};
/// # use std::future::Future;
/// # use std::sync::Arc;
/// # use std::task::{Context, Poll, Wake};
/// # /// The smallest executor: poll, park until woken, poll again.
/// # fn block_on<F: Future>(f: F) -> F::Output {
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark {
/// #         fn wake(self: Arc<Self>) { self.0.unpark(); }
/// #     }
/// #     let waker = Arc::new(Unpark(std::thread::current())).into();
/// #     let mut cx = Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
/// #         std::thread::park();
/// #     }
/// # }
/// # let gate = rtm_client::gate::Gate::start()?;
/// # let options = RtmOptions { endpoint: Some(gate.endpoint()), pid: 1, ..Default::default() };
/// # let client = RtmClient::new(options)?;
/// # let (done, logged_in) = std::sync::mpsc::channel();
/// # client.login(1001, "token", move |ok, _| { let _ = done.send(ok); }, 5000);
/// # assert!(logged_in.recv()?);
///
/// // Any executor: tokio, async-std, smol, futures::executor::block_on, or
/// // the ten-line `block_on` hidden in this example.
/// let sent = future(|cb| client.send_message(1002, 30, "hello", "", 0, 5000, cb));
/// let unread = future(|cb| client.get_unread_message(false, 5000, cb));
/// let answer = block_on(sent)?;
/// assert!(answer.payload.mtime > 0);
/// let unread = block_on(unread)?;
/// assert!(unread.p2p.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// In `Dispatch::Queued` mode the callback runs in `dispatch_pending()`, so
/// something must keep calling it (a game loop, say) for the future to be ready.
pub fn future<T, E>(call: impl FnOnce(Callback<T, E>)) -> CallbackFuture<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<RtmError>,
{
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting(None)),
    });
    let mut completer = Completer {
        slot: Some(slot.clone()),
    };
    call(Box::new(move |err, data| {
        if let Some(slot) = completer.slot.take() {
            slot.complete(into_result(err, data));
        }
    }));
    CallbackFuture { slot }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SendError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::task::Wake;
    use std::time::Duration;

    /// Counts wakes and unparks the polling thread.
    struct Unpark(std::thread::Thread, AtomicUsize);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.unpark();
        }
    }

    fn waker() -> (Arc<Unpark>, Waker) {
        let unpark = Arc::new(Unpark(std::thread::current(), AtomicUsize::new(0)));
        (unpark.clone(), unpark.into())
    }

    /// Polls until ready, parking in between (bounded: a test never hangs).
    fn block_on<F: Future + Unpin>(mut f: F) -> F::Output {
        let (_, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Poll::Ready(v) = Pin::new(&mut f).poll(&mut cx) {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "future never ready");
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }

    fn err(code: i32) -> RtmError {
        RtmError::new(code, "x")
    }

    #[test]
    fn result_callback_gives_data_as_ok_and_err_as_err() {
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        result_callback(move |r: Result<i32, RtmError>| tx.send(r).unwrap())(None, Some(7));
        result_callback(move |r: Result<i32, RtmError>| tx2.send(r).unwrap())(Some(err(5)), None);
        assert_eq!(rx.recv().unwrap(), Ok(7));
        assert_eq!(rx.recv().unwrap(), Err(err(5)));
    }

    #[test]
    fn result_callback_turns_neither_into_error_20001() {
        let (tx, rx) = mpsc::channel();
        result_callback(move |r: Result<(), SendError>| tx.send(r).unwrap())(None, None);
        let e = rx.recv().unwrap().unwrap_err();
        assert_eq!((e.mid, e.error.code), (0, 20001));
    }

    #[test]
    fn future_is_pending_until_the_callback_runs_on_another_thread_and_wakes_the_poller() {
        let (cb_tx, cb_rx) = mpsc::channel::<Callback<String, RtmError>>();
        let mut f = future(move |cb| cb_tx.send(cb).unwrap());
        let (count, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert_eq!(format!("{f:?}"), "CallbackFuture { state: \"waiting\" }");
        let cb = cb_rx.recv().unwrap();
        std::thread::spawn(move || cb(None, Some("answer".to_string())))
            .join()
            .unwrap();
        assert_eq!(count.1.load(Ordering::SeqCst), 1);
        assert_eq!(
            Pin::new(&mut f).poll(&mut cx),
            Poll::Ready(Ok("answer".into()))
        );
        // Polled again after completion: an error, not a panic.
        match Pin::new(&mut f).poll(&mut cx) {
            Poll::Ready(Err(e)) => assert_eq!(e.code, 20001),
            other => panic!("expected error 20001, got {other:?}"),
        }
    }

    #[test]
    fn future_gets_the_error_of_a_failed_call() {
        let f = future(|cb: Callback<i64, RtmError>| {
            std::thread::spawn(move || cb(Some(err(20003)), None));
        });
        assert_eq!(block_on(f), Err(err(20003)));
    }

    #[test]
    fn future_ends_with_20001_when_the_callback_is_dropped_uncalled() {
        let f = future(|cb: Callback<i64, RtmError>| drop(cb));
        assert_eq!(block_on(f).unwrap_err().code, 20001);
        // Dropped later, on another thread, after a poll: the poller is woken.
        let (cb_tx, cb_rx) = mpsc::channel::<Callback<i64, RtmError>>();
        let mut f = future(move |cb| cb_tx.send(cb).unwrap());
        let (count, waker) = waker();
        assert!(Pin::new(&mut f)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let cb = cb_rx.recv().unwrap();
        std::thread::spawn(move || drop(cb)).join().unwrap();
        assert_eq!(count.1.load(Ordering::SeqCst), 1);
        assert_eq!(block_on(f).unwrap_err().code, 20001);
    }

    #[test]
    fn a_result_before_the_first_poll_is_ready_at_once_and_wakes_no_one() {
        let mut f = future(|cb: Callback<u8, RtmError>| cb(None, Some(1)));
        let (count, waker) = waker();
        assert_eq!(
            Pin::new(&mut f).poll(&mut Context::from_waker(&waker)),
            Poll::Ready(Ok(1))
        );
        assert_eq!(count.1.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_future_is_send_static_and_unpin() {
        fn check<F: Future + Send + Unpin + 'static>(_: &F) {}
        let f = future(|cb: Callback<Vec<i64>, RtmError>| cb(None, Some(vec![])));
        check(&f);
    }
}
