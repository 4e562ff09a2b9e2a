//! The client-side frame reader, FPNN quirk on, over arbitrary server bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| common::read_all(data, rtm_client::ws::frame::Role::Client, true));
