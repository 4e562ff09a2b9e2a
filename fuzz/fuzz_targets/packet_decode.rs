//! FPNN packet decoding: any bytes, never a panic, never a big allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtm_client::fpnn::packet::{decode_payload, Packet};

fuzz_target!(|data: &[u8]| {
    // Whatever the header says, payload and method are cut from `data`.
    if let Ok(p) = Packet::decode(data, 4096) {
        assert!(p.payload.len() < data.len());
        // A decoded packet encodes back to the same bytes, but for a
        // version-0 header (we always write version 1).
        if data[4] == 1 {
            assert_eq!(p.encode(), data);
        }
        let _ = decode_payload(&p.payload);
    }
    // The payload decoder on its own, on raw bytes.
    let _ = decode_payload(data);
});
