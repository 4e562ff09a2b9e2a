//! Both sides of the HTTP upgrade against arbitrary peer bytes.
#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use rtm_client::ws::handshake::{client_handshake, server_handshake};

/// An in-memory peer: reads come from the fuzz input in small pieces,
/// writes are kept.
struct Peer<'a> {
    input: &'a [u8],
    step: usize,
    output: Vec<u8>,
}

impl Read for Peer<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(out.len()).min(self.input.len());
        out[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Peer<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The handshake read past the head only into `leftover`: it and the
/// bytes not read yet are exactly what follows the first blank line.
fn assert_leftover(input: &[u8], leftover: &[u8], unread: &[u8]) {
    let end = input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no head end")
        + 4;
    assert_eq!(&input[end..end + leftover.len()], leftover);
    assert_eq!(end + leftover.len() + unread.len(), input.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let step = [1, 7, 64, 1024, usize::MAX][usize::from(ctl % 5)];

    // The fuzz input as the server's answer to our upgrade request. The
    // client's key is random, so a success is (almost) never reached; what
    // matters is that nothing panics and that the leftover bytes are the
    // ones right after the HTTP head.
    let mut peer = Peer {
        input: rest,
        step,
        output: Vec::new(),
    };
    if let Ok(leftover) = client_handshake(&mut peer, "127.0.0.1:1", "/service/websocket") {
        assert_leftover(rest, &leftover, peer.input);
    }
    assert!(peer
        .output
        .starts_with(b"GET /service/websocket HTTP/1.1\r\n"));

    // The fuzz input as a client's upgrade request.
    let mut peer = Peer {
        input: rest,
        step,
        output: Vec::new(),
    };
    match server_handshake(&mut peer) {
        Ok(up) => {
            assert_leftover(rest, &up.leftover, peer.input);
            assert!(up.path.starts_with("/service/"));
            assert!(peer.output.starts_with(b"HTTP/1.1 101 "));
        }
        Err(_) => assert!(peer.output.is_empty() || peer.output.starts_with(b"HTTP/1.1 500 ")),
    }
});
