//! The server-side frame reader (masked frames, as the local gate reads
//! them) over arbitrary client bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| common::read_all(data, rtm_client::ws::frame::Role::Server, false));
