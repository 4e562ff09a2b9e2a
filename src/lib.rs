//! rtm-client: Rust SDK for the RTM real-time messaging service.
#![forbid(unsafe_code)]
#[allow(dead_code)]
pub(crate) mod gate;
