//! rtm-client: Rust SDK for the RTM real-time messaging service.
#![forbid(unsafe_code)]
