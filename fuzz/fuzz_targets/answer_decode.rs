//! Answer decoding: any payload bytes as any method's answer type, never a
//! panic (a wrong type or a missing key is an error, 10010).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the answer type, the rest is the msgpack payload.
    if let Some((&which, payload)) = data.split_first() {
        let _ = rtm_client::fuzzing::fuzz_decode_answer(which, payload);
    }
});
