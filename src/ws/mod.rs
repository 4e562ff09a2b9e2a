//! The WebSocket layer (RFC 6455), client and server side, written for FPNN.
//!
//! FPNN servers need exact handshake header spelling and frame 126-byte
//! payloads against the RFC (`docs/protocol.md`, sections 1 and 2), and the
//! connection engine needs reading and writing on two threads without a
//! shared lock, so this crate carries its own small WebSocket layer instead of
//! a stock one (`docs/architecture.md`, "Why the WebSocket layer is the
//! crate's own"): [`frame`] knows bytes, [`handshake`] the HTTP upgrade, and
//! [`WsReader`] turns a byte stream into messages and control frames.
//!
//! Not part of the API promise: public (and hidden from the docs) only for the
//! integration tests, the examples and the fuzz targets.

pub mod frame;
pub mod handshake;

use std::fmt;
use std::io::{self, Read};

use frame::{apply_mask, FrameError, FrameHead, FrameParser, Opcode};

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

/// Something the peer sent, borrowed from the reader's buffer until the
/// next read ([`WsReader::read_ref`]): a message is not copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingRef<'a> {
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A complete text message (valid UTF-8).
    Text(&'a str),
    /// A ping; the caller answers it with a pong carrying the same bytes.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame: its status code and reason, when it had them.
    Close(Option<(u16, String)>),
}

impl IncomingRef<'_> {
    /// The message as an owned [`Incoming`].
    pub fn into_owned(self) -> Incoming {
        match self {
            IncomingRef::Binary(b) => Incoming::Binary(b.to_vec()),
            IncomingRef::Text(t) => Incoming::Text(t.to_owned()),
            IncomingRef::Ping(b) => Incoming::Ping(b.to_vec()),
            IncomingRef::Pong(b) => Incoming::Pong(b.to_vec()),
            IncomingRef::Close(c) => Incoming::Close(c),
        }
    }
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

/// Bytes the buffer grows by when full, and the size it returns to after a
/// large message: 16 KiB holds a few hundred answers.
const READ_CHUNK: usize = 16 * 1024;

/// The buffer's first size: a connection that stays idle after its login
/// keeps no more.
const FIRST_CHUNK: usize = 4 * 1024;

/// A frame up to this size gets its whole buffer as soon as its header is
/// read (one allocation, however its bytes are chopped; a peer can make us
/// reserve this much by announcing it, as the default 8 MiB packet limit
/// allows anyway). A larger frame's buffer grows only as its bytes arrive, at
/// most doubling per read, so a length announced but never sent costs nothing
/// (with a huge or no size limit it would otherwise be reserved at once, or
/// overflow).
const GROW_AT_ONCE: usize = 8 << 20;

/// Reads WebSocket messages from a byte stream: reassembles fragments,
/// validates text, and hands control frames to the caller (who answers pings
/// and closes; this type never writes).
///
/// An I/O error (a read timeout, say) leaves the reader where it was: calling
/// [`WsReader::read`] again goes on with the frame it was reading.
pub struct WsReader<R> {
    inner: R,
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    parser: FrameParser,
    partial: Option<Partial>,
    /// The last fragmented message put together, lent out by `read_ref`.
    message: Vec<u8>,
    /// The frame at `buf[head..]` while its payload is still arriving.
    current: Option<Current>,
    /// How often the buffer was reallocated (tests watch for quadratic
    /// buffering).
    #[cfg(test)]
    reallocs: usize,
}

struct Partial {
    text: bool,
    data: Vec<u8>,
    utf8: Utf8Stream,
}

/// Progress through the payload of the frame being read.
struct Current {
    head: FrameHead,
    /// Payload bytes already unmasked (and, for text, validated).
    done: usize,
    /// Whether the payload is text to validate as it arrives.
    text: bool,
    utf8: Utf8Stream,
}

impl<R: Read> WsReader<R> {
    /// A reader over `inner`. `leftover` are bytes already read past the end
    /// of the handshake; they are the start of the first frame.
    pub fn new(inner: R, leftover: &[u8], parser: FrameParser) -> Self {
        let mut buf = vec![0u8; FIRST_CHUNK.max(leftover.len())];
        buf[..leftover.len()].copy_from_slice(leftover);
        WsReader {
            inner,
            buf,
            head: 0,
            tail: leftover.len(),
            parser,
            partial: None,
            message: Vec::new(),
            current: None,
            #[cfg(test)]
            reallocs: 0,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads until one message or control frame is complete.
    pub fn read(&mut self) -> Result<Incoming, WsError> {
        self.read_ref().map(IncomingRef::into_owned)
    }

    /// [`WsReader::read`], lending the message from the reader's buffer
    /// instead of copying it: what the connection's reader thread uses.
    pub fn read_ref(&mut self) -> Result<IncomingRef<'_>, WsError> {
        // The last fragmented message was lent until this call.
        if self.message.capacity() > 0 {
            self.message = Vec::new();
        }
        loop {
            if self.current.is_none() {
                self.release();
                // An answer or a push, whole in the buffer: no per-frame
                // state to set up (`FrameParser::short_binary`). A data
                // frame while a fragmented message is open is an error,
                // which the general path reports.
                if self.partial.is_none() {
                    let front = &self.buf[self.head..self.tail];
                    if let Some(len) = self.parser.short_binary(front) {
                        let start = self.head + 2;
                        self.head = start + len;
                        return Ok(IncomingRef::Binary(&self.buf[start..self.head]));
                    }
                }
                let head = loop {
                    match self.parser.parse_head(&self.buf[self.head..self.tail])? {
                        Some(h) => break h,
                        None => self.fill(0)?,
                    }
                };
                self.current = Some(self.begin(head)?);
            }
            self.read_payload()?;
            let Some(cur) = self.current.take() else {
                continue;
            };
            let head = cur.head;
            let start = self.head + head.header_len;
            let end = self.head + head.frame_len();
            self.head = end;
            match head.opcode {
                Opcode::Ping => return Ok(IncomingRef::Ping(&self.buf[start..end])),
                Opcode::Pong => return Ok(IncomingRef::Pong(&self.buf[start..end])),
                Opcode::Close => return parse_close(&self.buf[start..end]).map(IncomingRef::Close),
                Opcode::Text | Opcode::Binary => {
                    let text = head.opcode == Opcode::Text;
                    if head.fin {
                        return finish(text, &self.buf[start..end], cur.utf8);
                    }
                    self.partial = Some(Partial {
                        text,
                        data: self.buf[start..end].to_vec(),
                        utf8: cur.utf8,
                    });
                }
                Opcode::Continuation => {
                    let Some(p) = self.partial.as_mut() else {
                        return Err(WsError::Fragmentation);
                    };
                    p.data.extend_from_slice(&self.buf[start..end]);
                    p.utf8 = cur.utf8;
                    if head.fin {
                        let Some(p) = self.partial.take() else {
                            return Err(WsError::Fragmentation);
                        };
                        self.message = p.data;
                        return finish(p.text, &self.message, p.utf8);
                    }
                }
            }
        }
    }

    /// Checks what can be checked of a data frame from its header alone
    /// (fragment order, message size), so a bad frame fails the connection
    /// before its payload is read.
    fn begin(&self, head: FrameHead) -> Result<Current, WsError> {
        let (text, utf8) = match head.opcode {
            Opcode::Text | Opcode::Binary => {
                if self.partial.is_some() {
                    return Err(WsError::Fragmentation);
                }
                (head.opcode == Opcode::Text, Utf8Stream::default())
            }
            Opcode::Continuation => {
                let Some(p) = self.partial.as_ref() else {
                    return Err(WsError::Fragmentation);
                };
                let max = self.parser.max_payload();
                if p.data.len().saturating_add(head.payload_len) > max {
                    return Err(WsError::MessageTooLarge(max));
                }
                (p.text, p.utf8)
            }
            Opcode::Close | Opcode::Ping | Opcode::Pong => (false, Utf8Stream::default()),
        };
        Ok(Current {
            head,
            done: 0,
            text,
            utf8,
        })
    }

    /// Reads the payload of the current frame, unmasking and validating it
    /// as it arrives: a text frame with a byte that can never be UTF-8 fails
    /// at once, not when its last byte comes.
    fn read_payload(&mut self) -> Result<(), WsError> {
        loop {
            let Some(cur) = self.current.as_mut() else {
                return Ok(());
            };
            let start = self.head + cur.head.header_len;
            let have = (self.tail - start).min(cur.head.payload_len);
            if have > cur.done {
                let fresh = &mut self.buf[start + cur.done..start + have];
                if let Some(key) = cur.head.mask {
                    let k = cur.done % 4;
                    apply_mask(
                        fresh,
                        [key[k], key[(k + 1) % 4], key[(k + 2) % 4], key[(k + 3) % 4]],
                    );
                }
                if cur.text && !cur.utf8.feed(fresh) {
                    return Err(WsError::InvalidUtf8);
                }
                cur.done = have;
            }
            if cur.done == cur.head.payload_len {
                return Ok(());
            }
            let need = cur.head.frame_len();
            self.fill(need)?;
        }
    }

    /// Between frames: gives back the memory a huge frame made us take.
    fn release(&mut self) {
        let left = self.tail - self.head;
        if self.buf.len() > 4 * READ_CHUNK && left <= READ_CHUNK {
            self.buf.copy_within(self.head..self.tail, 0);
            self.head = 0;
            self.tail = left;
            self.buf.truncate(READ_CHUNK);
            self.buf.shrink_to_fit();
            #[cfg(test)]
            {
                self.reallocs += 1;
            }
        }
    }

    /// Reads more bytes; `need` is the size of the frame being completed (0
    /// when only the header is incomplete), counted from `self.head`.
    fn fill(&mut self, need: usize) -> Result<(), WsError> {
        let have = self.tail - self.head;
        let want = need.max(have + 1);
        // Move the unread bytes to the front when that is cheap and the
        // space after them runs low, or when the frame would not fit. Each
        // frame is moved at most once (after the move `head` is 0 until the
        // frame is consumed), so buffering stays linear in the bytes read.
        let low = self.buf.len() - self.tail < READ_CHUNK / 4 && have <= READ_CHUNK;
        if self.head > 0 && (have == 0 || low || self.head.saturating_add(want) > self.buf.len()) {
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail = have;
            self.head = 0;
        }
        let mut len = self.buf.len();
        let target = self.head.saturating_add(want);
        if target > len {
            if target <= GROW_AT_ONCE {
                len = target;
            } else if self.tail == len {
                // Only once what came fills the buffer (see GROW_AT_ONCE).
                len = target.min(len.saturating_mul(2));
            }
        }
        if self.tail == len {
            len += READ_CHUNK;
        }
        if len != self.buf.len() {
            self.buf.resize(len, 0);
            #[cfg(test)]
            {
                self.reallocs += 1;
            }
        }
        match self.inner.read(&mut self.buf[self.tail..]) {
            Ok(0) => Err(WsError::Eof {
                mid_frame: self.tail > self.head || self.partial.is_some(),
            }),
            Ok(n) => {
                self.tail += n;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(WsError::Io(e)),
        }
    }
}

fn finish(text: bool, data: &[u8], utf8: Utf8Stream) -> Result<IncomingRef<'_>, WsError> {
    if text {
        if !utf8.is_complete() {
            return Err(WsError::InvalidUtf8);
        }
        std::str::from_utf8(data)
            .map(IncomingRef::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(IncomingRef::Binary(data))
    }
}

/// Incremental UTF-8 validation over pieces of a text message that may split
/// a code point anywhere: [`Utf8Stream::feed`] fails as soon as the bytes so
/// far can no longer start valid UTF-8.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Utf8Stream {
    /// Continuation bytes still due for the code point in progress.
    need: u8,
    /// Range the next continuation byte must be in (RFC 3629 section 4).
    lo: u8,
    hi: u8,
}

impl Utf8Stream {
    /// Takes the next bytes; false when they make the text invalid.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while self.need > 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return true;
            };
            if !self.step(b) {
                return false;
            }
            bytes = rest;
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) if e.error_len().is_some() => false,
            // A code point cut off at the end: at most 3 bytes, all of
            // which the standard library found to be a valid beginning.
            Err(e) => bytes[e.valid_up_to()..].iter().all(|&b| self.step(b)),
        }
    }

    /// One byte through the state machine.
    fn step(&mut self, b: u8) -> bool {
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                return false;
            }
            self.need -= 1;
            (self.lo, self.hi) = (0x80, 0xbf);
            return true;
        }
        let (need, lo, hi) = match b {
            0x00..=0x7f => (0, 0x80, 0xbf),
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return false,
        };
        (self.need, self.lo, self.hi) = (need, lo, hi);
        true
    }

    /// No code point is left unfinished.
    fn is_complete(&self) -> bool {
        self.need == 0
    }
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(WsError::BadClose),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !close_code_allowed(code) {
                return Err(WsError::BadClose);
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

/// Status codes a close frame may carry (RFC 6455 section 7.4 and the IANA
/// registry): the defined codes except the three that must never be sent
/// (1005, 1006, 1015) and the unassigned 1004, plus 1012-1014 (service
/// restart, try again later, bad gateway), and the 3000-4999 range for
/// libraries and applications.
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
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

    /// One piece of the streams `whole_reads_and_byte_reads_agree` builds:
    /// frames of each kind, in order or out of it, and junk.
    fn piece() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let frame = |op, fin, payload: Vec<u8>, mask: Option<[u8; 4]>| {
            let mut b = Vec::new();
            encode_frame(&mut b, op, fin, &payload, mask, false);
            b
        };
        let bytes = |r: std::ops::Range<usize>| proptest::collection::vec(any::<u8>(), r);
        prop_oneof![
            4 => bytes(0..126).prop_map(move |p| frame(Opcode::Binary, true, p, None)),
            1 => bytes(126..300).prop_map(move |p| frame(Opcode::Binary, true, p, None)),
            1 => "[a-z]{0,20}".prop_map(move |t| frame(Opcode::Text, true, t.into_bytes(), None)),
            1 => (bytes(0..20), bytes(0..20)).prop_map(move |(a, b)| {
                [frame(Opcode::Binary, false, a, None), frame(Opcode::Continuation, true, b, None)]
                    .concat()
            }),
            1 => bytes(0..10).prop_map(move |p| frame(Opcode::Binary, false, p, None)),
            1 => bytes(0..10).prop_map(move |p| frame(Opcode::Continuation, true, p, None)),
            1 => bytes(0..10).prop_map(move |p| frame(Opcode::Ping, true, p, None)),
            1 => bytes(0..10).prop_map(move |p| frame(Opcode::Binary, true, p, Some([1, 2, 3, 4]))),
            1 => bytes(0..4),
        ]
    }

    proptest::proptest! {
        /// Read whole (most frames already in the buffer: the short way for
        /// short binary ones) and a byte at a time (always the general
        /// way), the same stream gives the same messages and the same
        /// error, under a payload limit some frames pass.
        #[test]
        fn whole_reads_and_byte_reads_agree(
            pieces in proptest::collection::vec(piece(), 0..12),
            max in proptest::prop_oneof![1usize..300, proptest::strategy::Just(1 << 20)],
        ) {
            let stream = pieces.concat();
            let read_all = |r: &mut dyn FnMut() -> Result<Incoming, WsError>| {
                let mut out = Vec::new();
                for _ in 0..=stream.len() {
                    let m = r();
                    let end = m.is_err();
                    out.push(format!("{m:?}"));
                    if end {
                        break;
                    }
                }
                out
            };
            let parser = || FrameParser::new(Role::Client, max, true);
            let mut whole = WsReader::new(io::Cursor::new(stream.clone()), &[], parser());
            let mut bytes = WsReader::new(Trickle(stream.clone(), 0), &[], parser());
            proptest::prop_assert_eq!(
                read_all(&mut || whole.read()),
                read_all(&mut || bytes.read())
            );
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

    /// Hands out the given pieces one per read call, then fails with a
    /// timeout, as a socket with a read timeout does while the peer waits.
    struct Pieces(std::collections::VecDeque<Vec<u8>>);
    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let Some(mut p) = self.0.pop_front() else {
                return Err(io::ErrorKind::TimedOut.into());
            };
            let n = p.len().min(out.len());
            out[..n].copy_from_slice(&p[..n]);
            if n < p.len() {
                p.drain(..n);
                self.0.push_front(p);
            }
            Ok(n)
        }
    }

    fn pieces(parts: &[&[u8]]) -> Pieces {
        Pieces(parts.iter().map(|p| p.to_vec()).collect())
    }

    #[test]
    fn registered_close_codes_1012_to_1014_are_accepted() {
        // Regression: 1012 (service restart), 1013 (try again later) and
        // 1014 (bad gateway) are in the IANA registry and were refused as
        // protocol errors.
        for code in [1000u16, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999] {
            let mut b = Vec::new();
            encode_frame(
                &mut b,
                Opcode::Close,
                true,
                &code.to_be_bytes(),
                None,
                false,
            );
            assert_eq!(
                reader(b).read().unwrap(),
                Incoming::Close(Some((code, String::new()))),
                "{code}"
            );
        }
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!close_code_allowed(code), "{code}");
            let mut b = Vec::new();
            encode_frame(
                &mut b,
                Opcode::Close,
                true,
                &code.to_be_bytes(),
                None,
                false,
            );
            assert!(matches!(reader(b).read(), Err(WsError::BadClose)), "{code}");
        }
    }

    #[test]
    fn large_frame_in_small_reads_is_not_reallocated_over_and_over() {
        // Regression: while a large frame arrived in small reads, the buffer
        // was shrunk back to 64 KiB after every read and grown to the frame
        // size again on the next: one frame-sized allocation and zero-fill
        // per read until 64 KiB had arrived (Autobahn 9.5/9.6 send in 64-byte
        // chops), so time grew with frame size times read count.
        let payload = vec![b'a'; 1 << 20];
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Text, true, &payload, None, false);
        encode_frame(&mut b, Opcode::Binary, true, b"next", None, false);
        let chops: Vec<&[u8]> = b.chunks(64).collect();
        let mut r = WsReader::new(
            pieces(&chops),
            &[],
            FrameParser::new(Role::Client, 2 << 20, false),
        );
        assert_eq!(
            r.read().unwrap(),
            Incoming::Text(String::from_utf8(payload).unwrap())
        );
        assert!(
            r.reallocs <= 2,
            "{} reallocations for one frame",
            r.reallocs
        );
        // The memory is given back once the frame is done.
        assert_eq!(r.read().unwrap(), Incoming::Binary(b"next".to_vec()));
        assert!(r.buf.capacity() <= 2 * READ_CHUNK);
    }

    #[test]
    fn a_huge_announced_frame_takes_memory_only_as_its_bytes_arrive() {
        // With no size limit, a header announcing 2^63 - 1 bytes made the
        // reader reserve them all at once: "capacity overflow", a panic.
        let mut b = vec![0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        b.extend_from_slice(&[7; 100 * 1024]);
        let chops: Vec<&[u8]> = b.chunks(4096).collect();
        let mut r = WsReader::new(
            pieces(&chops),
            &[],
            FrameParser::new(Role::Client, usize::MAX, false),
        );
        // All came (then the source times out): no panic, little memory.
        assert!(matches!(r.read(), Err(WsError::Io(_))));
        assert!(r.buf.len() <= 256 * 1024, "{}", r.buf.len());
    }

    #[test]
    fn a_frame_over_the_eager_size_grows_as_it_arrives() {
        let payload = vec![b'a'; GROW_AT_ONCE + 1];
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Binary, true, &payload, None, false);
        let chops: Vec<&[u8]> = b.chunks(1 << 20).collect();
        let mut r = WsReader::new(
            pieces(&chops),
            &[],
            FrameParser::new(Role::Client, usize::MAX, false),
        );
        assert_eq!(r.read().unwrap(), Incoming::Binary(payload));
    }

    #[test]
    fn many_small_frames_keep_the_buffer_small() {
        let mut b = Vec::new();
        for i in 0..5000u32 {
            encode_frame(&mut b, Opcode::Binary, true, &i.to_be_bytes(), None, false);
        }
        let chops: Vec<&[u8]> = b.chunks(1000).collect();
        let mut r = WsReader::new(
            pieces(&chops),
            &[],
            FrameParser::new(Role::Client, 100, false),
        );
        for i in 0..5000u32 {
            assert_eq!(
                r.read().unwrap(),
                Incoming::Binary(i.to_be_bytes().to_vec())
            );
        }
        assert_eq!(r.reallocs, 0);
    }

    #[test]
    fn invalid_utf8_fails_before_the_rest_of_the_frame_arrives() {
        // Regression (Autobahn 6.4.3, 6.4.4, NON-STRICT before): a text
        // frame was only validated once all of it had arrived, so a peer
        // could hold the connection with a frame already known to be bad.
        let mut b = Vec::new();
        let mut bad = "κόσμε".as_bytes().to_vec();
        bad.extend_from_slice(&[0xf4, 0x90, 0x80, 0x80]); // above U+10FFFF
        bad.extend_from_slice(b"edited");
        encode_frame(&mut b, Opcode::Text, true, &bad, None, false);
        let (first, rest) = b.split_at(2 + 10 + 2);
        let mut r = WsReader::new(
            pieces(&[first, rest]),
            &[],
            FrameParser::new(Role::Client, 100, false),
        );
        assert!(matches!(r.read(), Err(WsError::InvalidUtf8)));
        // Inside a continuation frame too, with a code point split across
        // the two frames.
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Text, false, &[b'a', 0xe2], None, false);
        encode_frame(
            &mut b,
            Opcode::Continuation,
            true,
            &[0x82, 0xac, 0xc0, 0xaf, b'z'],
            None,
            false,
        );
        let cut = b.len() - 2;
        let mut r = WsReader::new(
            pieces(&[&b[..cut]]),
            &[],
            FrameParser::new(Role::Client, 100, false),
        );
        assert!(matches!(r.read(), Err(WsError::InvalidUtf8)));
        // A valid prefix just waits for more.
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Text, true, "€€".as_bytes(), None, false);
        let mut r = WsReader::new(
            pieces(&[&b[..4]]),
            &[],
            FrameParser::new(Role::Client, 100, false),
        );
        assert!(matches!(r.read(), Err(WsError::Io(_))));
    }

    #[test]
    fn a_read_timeout_mid_frame_resumes_where_it_stopped() {
        // The payload is unmasked and validated as it arrives; a timeout in
        // between must neither unmask twice nor lose the validation state.
        let text = "ab€cd€€ef".repeat(20);
        let mut b = Vec::new();
        encode_frame(
            &mut b,
            Opcode::Text,
            false,
            &text.as_bytes()[..30],
            Some([9, 8, 7, 6]),
            false,
        );
        encode_frame(
            &mut b,
            Opcode::Continuation,
            true,
            &text.as_bytes()[30..],
            Some([1, 2, 3, 4]),
            false,
        );
        let mut src = pieces(&[]);
        for (i, c) in b.chunks(5).enumerate() {
            src.0.push_back(c.to_vec());
            if i % 3 == 0 {
                src.0.push_back(Vec::new());
            }
        }
        /// Reads the pieces, taking each empty one for a read timeout.
        struct Stuttering(Pieces);
        impl Read for Stuttering {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                match self.0 .0.front() {
                    Some(p) if p.is_empty() => {
                        self.0 .0.pop_front();
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    _ => self.0.read(out),
                }
            }
        }
        let mut r = WsReader::new(
            Stuttering(src),
            &[],
            FrameParser::new(Role::Server, 1000, false),
        );
        let mut timeouts = 0;
        let got = loop {
            match r.read() {
                Ok(m) => break m,
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => timeouts += 1,
                Err(e) => panic!("{e}"),
            }
        };
        assert!(timeouts > 10);
        assert_eq!(got, Incoming::Text(text));
    }

    #[test]
    fn fragment_order_and_size_are_checked_from_the_header() {
        // The payload never arrives: the header alone is refused.
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Binary, false, b"ab", None, false);
        write_head_only(&mut b, Opcode::Text, 50);
        let mut r = WsReader::new(
            pieces(&[&b]),
            &[],
            FrameParser::new(Role::Client, 100, false),
        );
        assert!(matches!(r.read(), Err(WsError::Fragmentation)));
        let mut b = Vec::new();
        encode_frame(&mut b, Opcode::Binary, false, &[0; 60], None, false);
        write_head_only(&mut b, Opcode::Continuation, 50);
        let mut r = WsReader::new(
            pieces(&[&b]),
            &[],
            FrameParser::new(Role::Client, 100, false),
        );
        assert!(matches!(r.read(), Err(WsError::MessageTooLarge(100))));
    }

    fn write_head_only(out: &mut Vec<u8>, op: Opcode, len: usize) {
        frame::write_head(out, op, true, len, None, false);
    }

    #[test]
    fn utf8_stream_agrees_with_std_on_every_split() {
        let samples: &[&[u8]] = &[
            "κόσμε €𐍈 ascii".as_bytes(),
            &[0xed, 0xa0, 0x80],       // surrogate
            &[0xe0, 0x80, 0xaf],       // overlong
            &[0xf4, 0x8f, 0xbf, 0xbf], // U+10FFFF
            &[0xf4, 0x90, 0x80, 0x80], // above it
            &[0xf0, 0x9f, 0x98],       // cut short
            &[0xc0, 0xaf],
            &[0xf8, 0x88, 0x80, 0x80, 0x80],
            &[0x61, 0x80],
        ];
        for s in samples {
            let whole = std::str::from_utf8(s).is_ok();
            for i in 0..=s.len() {
                for j in i..=s.len() {
                    let mut u = Utf8Stream::default();
                    let ok =
                        u.feed(&s[..i]) && u.feed(&s[i..j]) && u.feed(&s[j..]) && u.is_complete();
                    assert_eq!(ok, whole, "{s:x?} split at {i}, {j}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn utf8_stream_fails_exactly_when_no_completion_is_possible(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            cut in 0usize..24,
        ) {
            let cut = cut.min(bytes.len());
            let mut u = Utf8Stream::default();
            let ok = u.feed(&bytes[..cut]);
            // A prefix is acceptable iff std sees at most an unfinished code
            // point at its end.
            let std_prefix_ok = match std::str::from_utf8(&bytes[..cut]) {
                Ok(_) => true,
                Err(e) => e.error_len().is_none(),
            };
            proptest::prop_assert_eq!(ok, std_prefix_ok);
            if ok {
                let all = u.feed(&bytes[cut..]) && u.is_complete();
                proptest::prop_assert_eq!(all, std::str::from_utf8(&bytes).is_ok());
            }
        }
    }

    #[test]
    fn mask_rng_varies() {
        let mut r = MaskRng::new();
        let a = r.mask();
        let b = r.mask();
        assert_ne!(a, b);
    }
}
