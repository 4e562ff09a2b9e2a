//! rtm-client: Rust SDK for the RTM real-time messaging service.
//!
//! The crate mirrors the JavaScript RTM client SDK one to one (see the project's API.md):
//! the same methods in snake_case, the same argument order, `timeout` in milliseconds before
//! the callback, callbacks called with `(err, data)`.
//!
//! - [`error`]: [`RtmError`], [`SendError`] and every FPNN / RTM code in [`error_code`].
//! - [`types`]: client options ([`RtmOptions`]), push events ([`PushEvent`],
//!   [`PushMessage`]) and the results of the message methods.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub(crate) mod api;
mod client;
pub mod error;
pub mod fpnn;
pub mod gate;
pub mod types;
pub(crate) mod value;
pub mod ws;

pub use client::{blocking, RtmClient, RtmProcessor, SDK_VERSION};
pub use error::{error_code, RtmError, SendError};
pub use types::{
    mtype, BroadcastMsg, Dispatch, GroupMsg, GroupUnreadNum, HistoryMessages, HistoryMsg, P2PMsg,
    P2PUnreadNum, PushEvent, PushMessage, RegressiveStrategy, RetrievedMessage, RoomMsg,
    RtmOptions, SendAnswer, SendPayload, UnreadMessage,
};
