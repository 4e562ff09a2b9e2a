//! rtm-client: Rust SDK for the RTM real-time messaging service.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod fpnn;
pub mod ws;

pub use error::{error_code, RtmError};
