//! rtm-client: a Rust SDK for the RTM real-time messaging service (chat, groups,
//! rooms, history, pushes), speaking FPNN over WebSocket to an RTM gate.
//!
//! It mirrors the JavaScript RTM client SDK one to one, so JavaScript code ports line
//! by line: the same methods in snake_case, the same argument order, `timeout` in
//! milliseconds before the callback, callbacks called with `(err, data)`. There is no
//! async runtime: each connection has a reader and a writer thread, and callbacks run
//! on one dispatcher thread shared by every client of the process or, with
//! [`Dispatch::Queued`], on the thread that calls [`RtmClient::dispatch_pending`], or,
//! with [`Dispatch::Inline`], answers' callbacks and push handlers on the connection's
//! reader thread
//! (docs/architecture.md says what a slow callback delays).
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
//! Modules, from the bytes up: [`fpnn`] (the connection engine: quests and answers
//! over WebSocket, usable for any FPNN service), the client ([`RtmClient`],
//! [`RtmProcessor`]), the API methods on it, [`types`] and [`error`] (what they take and
//! give), the Rust-only adapters [`result_callback`], [`future()`] and [`blocking`], and
//! `gate` (the local gate, with its feature). `docs/` in the repository has the
//! architecture, the wire protocol, the message API, a porting guide from JavaScript, the
//! gate, and security.
//!
//! # Cargo features
//!
//! - `gate` (default): the local in-memory RTM gate, the module `gate`. It speaks the real
//!   protocol, so tests, examples and local development run without an RTM account or a
//!   network. It adds no dependency, only compile time and code size.
//! - `cli` (default, turns on `gate`): the `rtm-gate` program, the gate as a process,
//!   with `ctrlc` for a clean exit on SIGINT and SIGTERM. `ctrlc` is the only dependency
//!   a feature adds.
//!
//! Both are default features so that `cargo run --example quickstart`, `cargo test` and
//! `cargo run --release --bin rtm-gate` work from a fresh checkout as written. An
//! application that needs only the client turns them off:
//!
//! ```toml
//! rtm-client = { version = "0.1", default-features = false }
//! ```
//!
//! TLS is not a feature: rustls (with the ring provider and the web PKI roots) is always
//! built in, since RTM gates are reached over `wss` in production.
//!
//! The test suite, the doctests and the `quickstart` and `bench` examples need the
//! `gate` feature (the examples say so with `required-features`); `cargo test` assumes the
//! default features, as a test suite is run by the crate's own developers, and marking
//! each of its files would only make adding a test a two-file change. `.ci/run` checks
//! that the client alone (`--no-default-features`) builds and is clippy-clean.
//!
//! # What is promised
//!
//! The public API is what this documentation shows: the client, its methods and events,
//! the adapters, [`types`], [`error`], the FPNN connection engine in [`fpnn`], the gate
//! (with the `gate` feature), and [`rmpv`]. Names and types follow the JavaScript SDK and
//! change only with a major version. Enums that may gain variants ([`Dispatch`]) are
//! `#[non_exhaustive]`; [`PushEvent`] is not: it is the JavaScript SDK's closed set of
//! twenty message events, which applications may match exhaustively, and
//! [`PushEvent::ALL`] carries the count in its type. [`RtmOptions`] is not
//! `#[non_exhaustive]`, so `RtmOptions { pid: 1, ..Default::default() }` keeps working;
//! new options come with defaults.
//!
//! Not promised: items hidden from this documentation. The WebSocket layer (`ws`: frame
//! codec, reader, masks, handshake) and the FPNN packet codec (`fpnn::packet`) are public
//! only so the integration tests, the `autobahn_client` example and the
//! fuzz targets (`fuzz/`) can drive them byte by byte; they may change in any release.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod adapters;
pub(crate) mod api;
mod client;
pub mod error;
pub mod fpnn;
#[cfg(feature = "gate")]
pub mod gate;
mod hash;
#[cfg(test)]
mod testing;
pub mod types;
pub(crate) mod value;
mod waits;
#[cfg(all(test, feature = "gate"))]
mod wire_coverage;
// Not part of the promise (see "What is promised" above): public only for the
// integration tests, the autobahn_client example and the fuzz
// targets, which drive the frame codec and handshake directly.
#[doc(hidden)]
pub mod ws;

/// Not part of the promise: the fuzz targets' entry points into answer and
/// push decoding (`fuzz/`). Rust-only.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::api::fuzz_decode_answer;

    /// Parses `payload` as the push `method` (`pushmsg`, `pushgroupmsg`,
    /// `pushroommsg`, `pushbroadcastmsg`); whether it parsed. Rust-only.
    /// Panics when the two ways the client reads a push (a short one field
    /// by field, any one decoded whole) give different results.
    pub fn parse_push(method: &str, payload: &[u8]) -> bool {
        crate::client::fuzz_parse_push(method, payload)
    }
}

pub use adapters::{future, result_callback, Callback, CallbackFuture};
pub use client::{blocking, RtmClient, RtmProcessor, WeakRtmClient, SDK_VERSION};
pub use error::{error_code, RtmError, SendError};
/// The msgpack crate whose `Value` public signatures use: the payloads of the FPNN layer
/// ([`fpnn::Quest::payload`], [`fpnn::Connection::send_quest`]) and the gate's test hooks
/// (`Gate::quest_log`, `Gate::received`, `Gate::auth_requests`), which hand tests the
/// msgpack a client sent. Re-exported so callers use the same version as this crate; a
/// new major version of `rmpv` is a breaking change of this crate. Rust-only.
pub use rmpv;
pub use types::{
    mtype, BroadcastMsg, CheckResult, DevicePushOption, Dispatch, FileToken, GroupMsg,
    GroupUnreadNum, HistoryMessages, HistoryMsg, P2PMsg, P2PUnreadNum, ProfanityResult, PushEvent,
    PushMessage, RegressiveStrategy, RetrievedMessage, RoomCount, RoomInfo, RoomMsg, RoomOpenInfo,
    RoomsOpenInfo, RtmFile, RtmOptions, SendAnswer, SendPayload, Transcript, Translation,
    UnreadMessage,
};
pub use types::{
    Conversation, ConversationList, DataValue, GroupConversationList, GroupCount, GroupInfo,
    GroupMembers, GroupOpenInfo, GroupsOpenInfo, P2PConversationList, Session,
    UnreadConversationList, UserInfo, UserOpenInfo,
};
