//! The WebSocket layer (RFC 6455), client and server side, written for FPNN.
//!
//! FPNN servers need exact handshake header spelling and frame 126-byte
//! payloads against the RFC (PROTOCOL.md section 1), and the connection
//! engine needs reading and writing on two threads without a shared lock, so
//! this crate carries its own small WebSocket layer instead of a stock one:
//! [`frame`] knows bytes, [`handshake`] the HTTP upgrade, and [`WsReader`]
//! turns a byte stream into messages and control frames.

pub mod frame;
pub mod handshake;

use std::fmt;
use std::io::{self, Read};

use frame::{apply_mask, FrameError, FrameParser, Opcode};

/// Something the peer sent, as [`WsReader::read`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A complete text message (valid UTF-8).
    Text(String),
    /// A ping; the caller answers it with a pong carrying the same bytes.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame: its status code and reason, when it had them.
    Close(Option<(u16, String)>),
}

/// Why reading from (or handshaking with) the peer failed.
#[derive(Debug)]
pub enum WsError {
    /// The socket failed or timed out.
    Io(io::Error),
    /// The peer closed TCP: cleanly between frames (`mid_frame` false) or
    /// in the middle of one.
    Eof {
        /// The connection ended inside a frame or the handshake.
        mid_frame: bool,
    },
    /// A frame broke RFC 6455.
    Frame(FrameError),
    /// Fragments out of order: a continuation with no message started, or a
    /// new message before the last one finished.
    Fragmentation,
    /// A text message or close reason that is not UTF-8.
    InvalidUtf8,
    /// A close frame with a 1-byte body or a status code RFC 6455 forbids.
    BadClose,
    /// A fragmented message grew past the size limit.
    MessageTooLarge(usize),
    /// The HTTP upgrade failed; the text says how.
    Handshake(String),
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Io(e) => write!(f, "socket error: {e}"),
            WsError::Eof { mid_frame: false } => write!(f, "connection closed by peer"),
            WsError::Eof { mid_frame: true } => write!(f, "connection closed by peer mid-frame"),
            WsError::Frame(e) => write!(f, "websocket protocol error: {e}"),
            WsError::Fragmentation => write!(f, "websocket fragments out of order"),
            WsError::InvalidUtf8 => write!(f, "invalid UTF-8 in a text frame"),
            WsError::BadClose => write!(f, "invalid close frame"),
            WsError::MessageTooLarge(max) => {
                write!(f, "websocket message over the limit of {max} bytes")
            }
            WsError::Handshake(s) => write!(f, "websocket handshake failed: {s}"),
        }
    }
}

impl std::error::Error for WsError {}

impl From<io::Error> for WsError {
    fn from(e: io::Error) -> Self {
        WsError::Io(e)
    }
}

impl From<FrameError> for WsError {
    fn from(e: FrameError) -> Self {
        WsError::Frame(e)
    }
}

impl WsError {
    /// The close status code to send the peer for this error, if any.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            WsError::Frame(FrameError::TooLarge { .. }) | WsError::MessageTooLarge(_) => Some(1009),
            WsError::InvalidUtf8 => Some(1007),
            WsError::Frame(_) | WsError::Fragmentation | WsError::BadClose => Some(1002),
            _ => None,
        }
    }
}

const READ_CHUNK: usize = 64 * 1024;

/// Reads WebSocket messages from a byte stream: reassembles fragments,
/// validates text, and hands control frames to the caller (who answers pings
/// and closes; this type never writes).
pub struct WsReader<R> {
    inner: R,
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    parser: FrameParser,
    partial: Option<Partial>,
}

struct Partial {
    text: bool,
    data: Vec<u8>,
    utf8_checked: usize,
}

impl<R: Read> WsReader<R> {
    /// A reader over `inner`. `leftover` are bytes already read past the end
    /// of the handshake; they are the start of the first frame.
    pub fn new(inner: R, leftover: &[u8], parser: FrameParser) -> Self {
        let mut buf = vec![0u8; READ_CHUNK.max(leftover.len())];
        buf[..leftover.len()].copy_from_slice(leftover);
        WsReader {
            inner,
            buf,
            head: 0,
            tail: leftover.len(),
            parser,
            partial: None,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads until one message or control frame is complete.
    pub fn read(&mut self) -> Result<Incoming, WsError> {
        loop {
            let head = loop {
                match self.parser.parse_head(&self.buf[self.head..self.tail])? {
                    Some(h) => break h,
                    None => self.fill(0)?,
                }
            };
            let need = head.frame_len();
            while self.tail - self.head < need {
                self.fill(need)?;
            }
            let start = self.head + head.header_len;
            let end = self.head + need;
            self.head = end;
            let payload = &mut self.buf[start..end];
            if let Some(key) = head.mask {
                apply_mask(payload, key);
            }
            let payload = &self.buf[start..end];
            match head.opcode {
                Opcode::Ping => return Ok(Incoming::Ping(payload.to_vec())),
                Opcode::Pong => return Ok(Incoming::Pong(payload.to_vec())),
                Opcode::Close => return parse_close(payload).map(Incoming::Close),
                Opcode::Text | Opcode::Binary => {
                    if self.partial.is_some() {
                        return Err(WsError::Fragmentation);
                    }
                    let text = head.opcode == Opcode::Text;
                    if head.fin {
                        return finish(text, payload.to_vec());
                    }
                    let mut p = Partial {
                        text,
                        data: payload.to_vec(),
                        utf8_checked: 0,
                    };
                    check_utf8_prefix(&mut p)?;
                    self.partial = Some(p);
                }
                Opcode::Continuation => {
                    let max = self.parser.max_payload();
                    let Some(p) = self.partial.as_mut() else {
                        return Err(WsError::Fragmentation);
                    };
                    if p.data.len() + payload.len() > max {
                        return Err(WsError::MessageTooLarge(max));
                    }
                    p.data.extend_from_slice(payload);
                    check_utf8_prefix(p)?;
                    if head.fin {
                        let Some(p) = self.partial.take() else {
                            return Err(WsError::Fragmentation);
                        };
                        return finish(p.text, p.data);
                    }
                }
            }
        }
    }

    /// Reads more bytes; `need` is the size of the frame being completed (0
    /// when only the header is incomplete).
    fn fill(&mut self, need: usize) -> Result<(), WsError> {
        if self.head > 0 && (self.head == self.tail || self.buf.len() - self.tail < READ_CHUNK / 4)
        {
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        let want = need.max(self.tail - self.head + 1);
        if self.buf.len() - self.head < want {
            self.buf.resize(self.head + want, 0);
        }
        if self.tail == self.buf.len() {
            self.buf.resize(self.buf.len() + READ_CHUNK, 0);
        }
        match self.inner.read(&mut self.buf[self.tail..]) {
            Ok(0) => Err(WsError::Eof {
                mid_frame: self.tail > self.head || self.partial.is_some(),
            }),
            Ok(n) => {
                self.tail += n;
                // Give back memory a single huge frame made us take.
                if self.head == 0 && self.buf.len() > 4 * READ_CHUNK && self.tail < READ_CHUNK {
                    self.buf.truncate(READ_CHUNK.max(self.tail));
                    self.buf.shrink_to_fit();
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(WsError::Io(e)),
        }
    }
}

fn finish(text: bool, data: Vec<u8>) -> Result<Incoming, WsError> {
    if text {
        String::from_utf8(data)
            .map(Incoming::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(Incoming::Binary(data))
    }
}

/// Fails fast on bytes that can never become valid UTF-8, so a bad text
/// message is refused before its last fragment arrives.
fn check_utf8_prefix(p: &mut Partial) -> Result<(), WsError> {
    if !p.text {
        return Ok(());
    }
    match std::str::from_utf8(&p.data[p.utf8_checked..]) {
        Ok(_) => p.utf8_checked = p.data.len(),
        Err(e) if e.error_len().is_some() => return Err(WsError::InvalidUtf8),
        Err(e) => p.utf8_checked += e.valid_up_to(),
    }
    Ok(())
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(WsError::BadClose),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid {
                return Err(WsError::BadClose);
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

/// A source of masking keys and handshake nonces: a SplitMix64 sequence seeded
/// from the standard library's per-process random hasher keys. RFC 6455 asks
/// for unpredictable masks to defeat cache poisoning by intermediaries; this
/// is unpredictable to a peer without pulling in a random-number crate.
pub struct MaskRng(u64);

impl MaskRng {
    /// A generator with a fresh random seed.
    pub fn new() -> Self {
        use std::collections::hash_map::RandomState;
        use std::hash::{BuildHasher, Hasher};
        let mut h = RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        );
        MaskRng(h.finish())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A fresh masking key.
    pub fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }
}

impl Default for MaskRng {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::frame::{encode_frame, Role};
    use super::*;

    fn reader(bytes: Vec<u8>) -> WsReader<io::Cursor<Vec<u8>>> {
        WsReader::new(
            io::Cursor::new(bytes),
            &[],
            FrameParser::new(Role::Client, 1 << 20, true),
        )
    }

    /// A reader that hands out one byte per read call, to exercise every
    /// partial-header and partial-payload path.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() || out.is_empty() {
                return Ok(0);
            }
            out[0] = self.0[self.1];
            self.1 += 1;
            Ok(1)
        }
    }

    #[test]
    fn fragmented_message_with_interleaved_ping_is_reassembled() {
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Binary, false, b"ab", None, false);
        encode_frame(&mut b, Opcode::Ping, true, b"p", None, false);
        encode_frame(&mut b, Opcode::Continuation, false, b"cd", None, false);
        encode_frame(&mut b, Opcode::Continuation, true, b"e", None, false);
        let mut r = WsReader::new(
            Trickle(b, 0),
            &[],
            FrameParser::new(Role::Client, 100, true),
        );
        assert_eq!(r.read().unwrap(), Incoming::Ping(b"p".to_vec()));
        assert_eq!(r.read().unwrap(), Incoming::Binary(b"abcde".to_vec()));
        assert!(matches!(r.read(), Err(WsError::Eof { mid_frame: false })));
    }

    #[test]
    fn leftover_handshake_bytes_are_the_first_frame() {
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Binary, true, b"first", None, false);
        encode_frame(&mut b, Opcode::Binary, true, b"second", None, false);
        let (left, rest) = b.split_at(4);
        let mut r = WsReader::new(
            io::Cursor::new(rest.to_vec()),
            left,
            FrameParser::new(Role::Client, 100, true),
        );
        assert_eq!(r.read().unwrap(), Incoming::Binary(b"first".to_vec()));
        assert_eq!(r.read().unwrap(), Incoming::Binary(b"second".to_vec()));
    }

    #[test]
    fn closing_mid_frame_is_reported_as_such() {
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Binary, true, &[5u8; 300], None, false);
        b.truncate(100);
        assert!(matches!(
            reader(b).read(),
            Err(WsError::Eof { mid_frame: true })
        ));
    }

    #[test]
    fn fragmented_message_over_the_limit_is_refused() {
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Binary, false, &[0u8; 60], None, false);
        encode_frame(&mut b, Opcode::Continuation, true, &[0u8; 60], None, false);
        let mut r = WsReader::new(
            io::Cursor::new(b),
            &[],
            FrameParser::new(Role::Client, 100, true),
        );
        assert!(matches!(r.read(), Err(WsError::MessageTooLarge(100))));
    }

    #[test]
    fn bad_fragment_order_and_bad_text_are_refused() {
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Continuation, true, b"x", None, false);
        assert!(matches!(reader(b).read(), Err(WsError::Fragmentation)));
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Text, false, b"a", None, false);
        encode_frame(&mut b, Opcode::Binary, true, b"b", None, false);
        assert!(matches!(reader(b).read(), Err(WsError::Fragmentation)));
        let mut b = Vec::new();
        encode_frame(
            &mut b,
            Opcode::Text,
            false,
            &[0xce, 0xba, 0xff],
            None,
            false,
        );
        assert!(matches!(reader(b).read(), Err(WsError::InvalidUtf8)));
    }

    #[test]
    fn text_split_inside_a_code_point_is_accepted() {
        let s = "κόσμε";
        let bytes = s.as_bytes();
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Text, false, &bytes[..1], None, false);
        encode_frame(&mut b, Opcode::Continuation, true, &bytes[1..], None, false);
        assert_eq!(reader(b).read().unwrap(), Incoming::Text(s.to_owned()));
    }

    #[test]
    fn close_frames_are_validated() {
        let close = |p: &[u8]| {
            let mut b = Vec::new();
            encode_frame(&mut b, Opcode::Close, true, p, None, false);
            reader(b).read()
        };
        assert_eq!(close(&[]).unwrap(), Incoming::Close(None));
        assert_eq!(
            close(&[3, 232, b'o', b'k']).unwrap(),
            Incoming::Close(Some((1000, "ok".into())))
        );
        assert!(matches!(close(&[3]), Err(WsError::BadClose)));
        assert!(matches!(close(&[3, 237]), Err(WsError::BadClose)));
        assert!(matches!(close(&[3, 232, 0xff]), Err(WsError::InvalidUtf8)));
    }

    #[test]
    fn mask_rng_varies() {
        let mut r = MaskRng::new();
        let a = r.mask();
        let b = r.mask();
        assert_ne!(a, b);
    }
}
