//! Push decoding: any payload bytes as any of the four message pushes, never
//! a panic (a malformed push is reported, not delivered).
#![no_main]

use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 4] = ["pushmsg", "pushgroupmsg", "pushroommsg", "pushbroadcastmsg"];

fuzz_target!(|data: &[u8]| {
    // The first byte picks the push, the rest is the msgpack payload.
    if let Some((&which, payload)) = data.split_first() {
        let method = METHODS[usize::from(which) % METHODS.len()];
        let _ = rtm_client::fuzzing::parse_push(method, payload);
    }
});
