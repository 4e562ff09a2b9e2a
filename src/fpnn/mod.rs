//! The FPNN layer: quests and answers over WebSocket, usable on its own for
//! any FPNN service. The RTM client is built on it.
//!
//! ```no_run
//! use std::time::Duration;
//! use rtm_client::fpnn::{ConnectOptions, Connection, Quest, Responder};
//!
//! let conn = Connection::connect(
//!     "127.0.0.1:13321",
//!     false,
//!     &ConnectOptions::default(),
//!     |quest: Quest, responder: Responder| {
//!         println!("server quest {}", quest.method);
//!         drop(responder); // answers with the empty map
//!     },
//!     |reason| println!("closed: {reason:?}"),
//! )?;
//! let payload = rmpv::Value::Map(vec![]);
//! conn.send_quest("ping", &payload, Duration::from_secs(5), |result| {
//!     println!("answer: {result:?}");
//! });
//! # Ok::<(), rtm_client::RtmError>(())
//! ```

mod connection;
// Not part of the promise: public only for the integration tests and the
// fuzz targets (see the crate docs).
#[doc(hidden)]
pub mod packet;
pub(crate) mod table;
mod transport;

pub(crate) use connection::{
    at_flush, flush_write_batch, guarded, owe_ack, write_batch, Method, QuestSender, RawReply,
    Reply, Unanswered,
};
#[cfg(test)]
pub(crate) use connection::{set_reader, WriteBatch};
pub use connection::{
    AnswerCallback, CloseReason, ConnectOptions, Connection, Quest, QuestHandler, Responder,
    DEFAULT_WRITE_QUEUE_LIMIT,
};
pub(crate) use transport::Written;
pub(crate) use transport::{add_roots, deadline_from};
pub use transport::{ConnectCancel, Endpoint};
