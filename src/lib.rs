//! rtm-client: a Rust SDK for the RTM real-time messaging service (chat, groups,
//! rooms, history, pushes), speaking FPNN over WebSocket to an RTM gate.
//!
//! It mirrors the JavaScript RTM client SDK one to one, so JavaScript code ports line
//! by line: the same methods in snake_case, the same argument order, `timeout` in
//! milliseconds before the callback, callbacks called with `(err, data)`. There is no
//! async runtime: each connection has a reader and a writer thread, and callbacks run
//! on the client's dispatcher thread or, with [`Dispatch::Queued`], on the thread that
//! calls [`RtmClient::dispatch_pending`].
//!
//! ```
//! use std::sync::mpsc;
//! use rtm_client::gate::Gate;
//! use rtm_client::{blocking, PushEvent, RtmClient, RtmOptions};
//!
//! // A local in-memory gate; a real application sets its gate's endpoint.
//! let gate = Gate::start()?;
//! let options = RtmOptions { endpoint: Some(gate.endpoint()), pid: 1, ..Default::default() };
//!
//! let alice = RtmClient::new(options.clone())?;
//! let bob = RtmClient::new(options)?;
//! let (tx, pushes) = mpsc::channel();
//! bob.processor().on(PushEvent::RecvChat, move |m| {
//!     let _ = tx.send(m.msg.clone());
//! });
//!
//! let (done, logged_in) = mpsc::channel();
//! for (client, uid) in [(&alice, 1001), (&bob, 1002)] {
//!     let done = done.clone();
//!     client.login(uid, "token", move |ok, code| { let _ = done.send((ok, code)); }, 5000);
//! }
//! for _ in 0..2 {
//!     assert_eq!(logged_in.recv()?, (true, 0));
//! }
//!
//! // The callback form, exactly as in JavaScript ...
//! alice.send_message(1002, 30, "hello", "", 0, 5000, |err, data| match (err, data) {
//!     (None, Some(answer)) => println!("sent, mtime {}", answer.payload.mtime),
//!     (Some(err), _) => println!("failed: {err}"),
//!     _ => unreachable!(),
//! });
//! assert_eq!(pushes.recv()?, Some("hello".to_string()));
//!
//! // ... or blocking, for synchronous code.
//! let history = blocking(|cb| bob.get_p2p_message(1001, true, 10, None, None, None, None, 0, cb))?;
//! assert_eq!(history.msgs[0].msg.as_deref(), Some("hello"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules, from the bytes up: [`ws`] (WebSocket frames and handshake), [`fpnn`]
//! (packets and the connection engine, usable for any FPNN service), the client
//! ([`RtmClient`], [`RtmProcessor`]), the API methods on it, [`types`] and [`error`]
//! (what they take and give), and [`gate`] (the local gate). `docs/` in the repository
//! has the architecture, the message API, a porting guide from JavaScript, and the gate.
//!
//! No cargo features: TLS (rustls with the ring provider and the web PKI roots) is
//! always built in.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub(crate) mod api;
mod client;
pub mod error;
pub mod fpnn;
pub mod gate;
pub mod types;
pub(crate) mod value;
#[cfg(test)]
mod wire_coverage;
pub mod ws;

pub use client::{blocking, RtmClient, RtmProcessor, WeakRtmClient, SDK_VERSION};
pub use error::{error_code, RtmError, SendError};
/// The msgpack value type of the FPNN layer and the gate's test hooks.
pub use rmpv;
pub use types::{
    mtype, BroadcastMsg, CheckResult, DevicePushOption, Dispatch, GroupMsg, GroupUnreadNum,
    HistoryMessages, HistoryMsg, P2PMsg, P2PUnreadNum, ProfanityResult, PushEvent, PushMessage,
    RegressiveStrategy, RetrievedMessage, RoomInfo, RoomMsg, RoomOpenInfo, RtmOptions, SendAnswer,
    SendPayload, Transcript, Translation, UnreadMessage,
};
