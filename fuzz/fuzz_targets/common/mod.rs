//! Shared by the frame reader targets.

use std::io::{self, Read};

use rtm_client::ws::frame::{FrameParser, Role};
use rtm_client::ws::{Incoming, WsError, WsReader};

/// Small enough that the fuzzer reaches the size checks.
pub const MAX_PAYLOAD: usize = 1024;

/// Hands out the input in pieces whose sizes the input's first byte picks,
/// so frames split at every boundary get exercised, and the first
/// `leftover` bytes as handshake leftovers.
struct Pieces<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads messages until an error or the end of the input, checking what
/// the reader promises about each.
pub fn read_all(data: &[u8], role: Role, fpnn_quirk: bool) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(ctl & 0x3f) + 1;
    let leftover = usize::from(ctl >> 6).min(rest.len());
    let (left, rest) = rest.split_at(leftover);
    let parser = FrameParser::new(role, MAX_PAYLOAD, fpnn_quirk);
    let mut reader = WsReader::new(Pieces { data: rest, step }, left, parser);
    // Every message consumes at least two bytes, so this ends.
    for _ in 0..=data.len() {
        match reader.read() {
            Ok(Incoming::Binary(b)) => assert!(b.len() <= MAX_PAYLOAD),
            Ok(Incoming::Text(t)) => assert!(t.len() <= MAX_PAYLOAD),
            Ok(Incoming::Ping(p)) | Ok(Incoming::Pong(p)) => assert!(p.len() <= 125),
            Ok(Incoming::Close(c)) => {
                if let Some((code, reason)) = c {
                    assert!(rtm_client::ws::close_code_allowed(code));
                    assert!(reason.len() <= 123);
                }
            }
            Err(WsError::Eof { .. }) => return,
            Err(e) => {
                // Every protocol error names a close code; I/O cannot fail here.
                assert!(e.close_code().is_some(), "{e}");
                return;
            }
        }
    }
    panic!("more messages than input bytes");
}
