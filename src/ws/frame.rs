//! WebSocket frame coding (RFC 6455 section 5): bytes only, no I/O.
//!
//! [`FrameParser`] finds one frame at the front of a byte buffer and checks
//! everything that can be checked from the header before the payload is read,
//! including the size limit, so a hostile length never makes us allocate.
//! [`encode_frame`] writes one frame, masked (client) or not (server).

use std::fmt;

/// Frame opcodes we know. Any other opcode is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Continuation of a fragmented message.
    Continuation,
    /// First frame of a text message.
    Text,
    /// First frame of a binary message.
    Binary,
    /// Close control frame.
    Close,
    /// Ping control frame.
    Ping,
    /// Pong control frame.
    Pong,
}

impl Opcode {
    fn from_u8(op: u8) -> Option<Opcode> {
        Some(match op {
            0 => Opcode::Continuation,
            1 => Opcode::Text,
            2 => Opcode::Binary,
            8 => Opcode::Close,
            9 => Opcode::Ping,
            10 => Opcode::Pong,
            _ => return None,
        })
    }

    pub(crate) fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0,
            Opcode::Text => 1,
            Opcode::Binary => 2,
            Opcode::Close => 8,
            Opcode::Ping => 9,
            Opcode::Pong => 10,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Why a byte stream is not acceptable WebSocket. Every variant closes the
/// connection; the text is what the error reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// RSV bits set although no extension was negotiated.
    ReservedBits(u8),
    /// An opcode RFC 6455 does not define.
    UnknownOpcode(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    BadControlFrame,
    /// A masked frame from a server, or an unmasked one from a client.
    BadMasking,
    /// The payload (or the message it belongs to) is over the limit.
    TooLarge {
        /// Bytes announced.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A 64-bit length with the top bit set, or a length not in its minimal form where that is required.
    BadLength,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedBits(b) => write!(f, "reserved bits {b:#x} set in a frame"),
            FrameError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            FrameError::BadControlFrame => write!(f, "fragmented or oversized control frame"),
            FrameError::BadMasking => write!(f, "frame masking does not match the peer's role"),
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes is over the limit of {max} bytes")
            }
            FrameError::BadLength => write!(f, "invalid frame length"),
        }
    }
}

impl std::error::Error for FrameError {}

/// One parsed frame header, with where its payload sits in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHead {
    /// FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// Masking key, when the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Header length in bytes (where the payload starts).
    pub header_len: usize,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl FrameHead {
    /// Header plus payload.
    pub fn frame_len(&self) -> usize {
        // Saturating: with no size limit, a 32-bit target's payload length
        // may be `usize::MAX`.
        self.header_len.saturating_add(self.payload_len)
    }
}

/// Which side of the connection is parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We are the client: frames we read must be unmasked.
    Client,
    /// We are the server: frames we read must be masked.
    Server,
}

/// Parses frame headers at the front of a buffer.
#[derive(Debug, Clone)]
pub struct FrameParser {
    role: Role,
    max_payload: usize,
    fpnn_quirk: bool,
}

impl FrameParser {
    /// A parser for `role` that refuses payloads over `max_payload` bytes.
    /// `fpnn_quirk` accepts the 126-byte framing of FPNN servers (see
    /// `docs/protocol.md`, "The FPNN 126-byte quirk"); only a client talking
    /// to FPNN wants it.
    pub fn new(role: Role, max_payload: usize, fpnn_quirk: bool) -> Self {
        FrameParser {
            role,
            max_payload,
            fpnn_quirk,
        }
    }

    /// The payload limit.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// The payload length of the frame at the front of `buf` when it is the
    /// common one and all there: a short unfragmented binary message to a
    /// client (FIN and binary, no reserved bits, unmasked, a payload under
    /// 126 bytes and within the limit), whose payload starts at byte 2.
    /// `None` for any other frame, or when some of it is still to come:
    /// [`FrameParser::parse_head`] reads those. Where it gives a length,
    /// `parse_head` gives that frame (the property test
    /// `short_binary_is_what_parse_head_reads`).
    #[inline]
    pub(crate) fn short_binary(&self, buf: &[u8]) -> Option<usize> {
        match *buf {
            [0x82, len @ 0..=125, ..] if self.role == Role::Client => {
                let len = usize::from(len);
                (len <= self.max_payload && buf.len() >= 2 + len).then_some(len)
            }
            _ => None,
        }
    }

    /// Looks at the front of `buf`. `Ok(None)`: more bytes are needed to
    /// know the header. `Ok(Some(head))`: the header is valid; the whole frame
    /// is there when `buf.len() >= head.frame_len()`.
    pub fn parse_head(&self, buf: &[u8]) -> Result<Option<FrameHead>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let b0 = buf[0];
        let b1 = buf[1];
        let fin = b0 & 0x80 != 0;
        let rsv = b0 & 0x70;
        if rsv != 0 {
            return Err(FrameError::ReservedBits(rsv));
        }
        let opcode = Opcode::from_u8(b0 & 0x0f).ok_or(FrameError::UnknownOpcode(b0 & 0x0f))?;
        let masked = b1 & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return Err(FrameError::BadMasking);
        }
        let len7 = b1 & 0x7f;
        if opcode.is_control() && (!fin || len7 > 125) {
            return Err(FrameError::BadControlFrame);
        }
        let (len, mut pos): (u64, usize) = match len7 {
            126 => {
                // FPNN servers send a 126-byte payload with no extended
                // length; the payload then starts with the packet magic.
                if self.fpnn_quirk && !masked {
                    if buf.len() < 6 {
                        return Ok(None);
                    }
                    if &buf[2..6] == b"FPNN" {
                        (126, 2)
                    } else {
                        (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
                    }
                } else {
                    if buf.len() < 4 {
                        return Ok(None);
                    }
                    (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
                }
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(FrameError::BadLength);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if len > self.max_payload as u64 {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_payload,
            });
        }
        let mask = if masked {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let m = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
            pos += 4;
            Some(m)
        } else {
            None
        };
        Ok(Some(FrameHead {
            fin,
            opcode,
            mask,
            header_len: pos,
            payload_len: len as usize,
        }))
    }
}

/// XORs `data` with the masking key (RFC 6455 section 5.3). Applying it twice
/// restores the data.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    // 8 bytes at a time, then 4, then at most 3 one by one: every step a
    // multiple of 4, so the key lines up again at each (a client's frame is
    // masked whole, so this runs over every quest's bytes).
    let k4 = u32::from_ne_bytes(key);
    // The key twice, the same in either byte order.
    let k8 = u64::from(k4) * 0x1_0000_0001;
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ k8).to_ne_bytes());
    }
    let mut words = chunks.into_remainder().chunks_exact_mut(4);
    for c in &mut words {
        let mut w = [0u8; 4];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u32::from_ne_bytes(w) ^ k4).to_ne_bytes());
    }
    for (b, k) in words.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// Length of the header [`encode_frame`] writes for this payload length.
/// Like [`write_head`], it applies the FPNN quirk to unmasked frames only.
pub fn header_len(payload_len: usize, masked: bool, fpnn_quirk: bool) -> usize {
    let base = if payload_len < 126 || (fpnn_quirk && payload_len == 126 && !masked) {
        2
    } else if payload_len <= 0xffff {
        4
    } else {
        10
    };
    base + if masked { 4 } else { 0 }
}

/// Appends one frame to `out`. With `mask` the payload is masked (client
/// frames). `fpnn_quirk` writes a 126-byte payload the way FPNN servers do,
/// with no extended length; only a gate emulating them wants it.
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: Opcode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    fpnn_quirk: bool,
) {
    write_head(out, opcode, fin, payload.len(), mask, fpnn_quirk);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key);
    }
}

/// Appends only the header of a frame whose payload of `len` bytes the caller
/// appends next (and masks with [`apply_mask`] when `mask` is set).
pub fn write_head(
    out: &mut Vec<u8>,
    opcode: Opcode,
    fin: bool,
    len: usize,
    mask: Option<[u8; 4]>,
    fpnn_quirk: bool,
) {
    // Made whole, then appended at once: one capacity check rather than one
    // per part (every frame writes one).
    let mut h = [0u8; 14];
    h[0] = (if fin { 0x80 } else { 0 }) | opcode.as_u8();
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    let mut n = if len < 126 || (fpnn_quirk && len == 126 && mask.is_none()) {
        h[1] = mbit | len as u8;
        2
    } else if len <= 0xffff {
        h[1] = mbit | 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        h[1] = mbit | 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    if let Some(key) = mask {
        h[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    // Each length a constant (a masked short frame, the client's usual one,
    // is 6): a few stores, where a length known only at run time is a call
    // to `memcpy`.
    match n {
        2 => out.extend_from_slice(&h[..2]),
        6 => out.extend_from_slice(&h[..6]),
        _ => out.extend_from_slice(&h[..n]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> FrameParser {
        FrameParser::new(Role::Client, 1 << 20, true)
    }

    #[test]
    fn small_binary_frame_round_trips() {
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Binary, true, b"hello", None, false);
        assert_eq!(out, [0x82, 5, b'h', b'e', b'l', b'l', b'o']);
        let h = client().parse_head(&out).unwrap().unwrap();
        assert_eq!(h.opcode, Opcode::Binary);
        assert!(h.fin);
        assert_eq!((h.header_len, h.payload_len), (2, 5));
    }

    #[test]
    fn fpnn_126_byte_frame_without_extended_length_is_read() {
        let mut payload = b"FPNN".to_vec();
        payload.resize(126, 7);
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Binary, true, &payload, None, true);
        assert_eq!(&out[..2], &[0x82, 126]);
        assert_eq!(out.len(), 128);
        let h = client().parse_head(&out).unwrap().unwrap();
        assert_eq!((h.header_len, h.payload_len), (2, 126));
        assert_eq!(&out[h.header_len..h.frame_len()], &payload[..]);
    }

    #[test]
    fn rfc_126_byte_frame_is_still_read_with_the_quirk_on() {
        let mut payload = b"FPNN".to_vec();
        payload.resize(126, 7);
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Binary, true, &payload, None, false);
        assert_eq!(&out[..4], &[0x82, 126, 0, 126]);
        let h = client().parse_head(&out).unwrap().unwrap();
        assert_eq!((h.header_len, h.payload_len), (4, 126));
    }

    #[test]
    fn quirk_needs_six_bytes_to_decide() {
        assert_eq!(client().parse_head(&[0x82, 126, b'F']).unwrap(), None);
    }

    #[test]
    fn lengths_at_16_and_64_bit_boundaries() {
        for len in [125usize, 127, 65_535, 65_536] {
            let payload = vec![1u8; len];
            let mut out = Vec::new();
            encode_frame(&mut out, Opcode::Binary, true, &payload, None, true);
            let h = client().parse_head(&out).unwrap().unwrap();
            assert_eq!(h.payload_len, len);
            assert_eq!(h.frame_len(), out.len());
            assert_eq!(h.header_len, header_len(len, false, true));
        }
    }

    #[test]
    fn masked_frames_round_trip_and_server_checks_mask() {
        let server = FrameParser::new(Role::Server, 1 << 20, false);
        let mut out = Vec::new();
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        encode_frame(
            &mut out,
            Opcode::Binary,
            true,
            &payload,
            Some([1, 2, 3, 4]),
            false,
        );
        let h = server.parse_head(&out).unwrap().unwrap();
        assert_eq!(h.mask, Some([1, 2, 3, 4]));
        let mut body = out[h.header_len..h.frame_len()].to_vec();
        apply_mask(&mut body, [1, 2, 3, 4]);
        assert_eq!(body, payload);
        assert_eq!(client().parse_head(&out), Err(FrameError::BadMasking));
        let mut plain = Vec::new();
        encode_frame(&mut plain, Opcode::Binary, true, b"x", None, false);
        assert_eq!(server.parse_head(&plain), Err(FrameError::BadMasking));
    }

    #[test]
    fn size_limit_is_enforced_from_the_header_alone() {
        let p = FrameParser::new(Role::Client, 1000, true);
        let head = [0x82, 127, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            p.parse_head(&head),
            Err(FrameError::TooLarge { .. })
        ));
        let top = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(p.parse_head(&top), Err(FrameError::BadLength));
    }

    #[test]
    fn protocol_violations_are_errors() {
        let p = client();
        assert_eq!(
            p.parse_head(&[0xc2, 0]),
            Err(FrameError::ReservedBits(0x40))
        );
        assert_eq!(p.parse_head(&[0x83, 0]), Err(FrameError::UnknownOpcode(3)));
        assert_eq!(p.parse_head(&[0x09, 0]), Err(FrameError::BadControlFrame));
        assert_eq!(
            p.parse_head(&[0x89, 126, 0, 200]),
            Err(FrameError::BadControlFrame)
        );
    }

    #[test]
    fn header_len_matches_what_write_head_writes() {
        // Regression: header_len applied the FPNN 126-byte quirk to masked
        // frames too, which write_head (rightly) never does, so it
        // reported 6 bytes for a masked 126-byte frame whose header is 8.
        for len in [0usize, 125, 126, 127, 65_535, 65_536] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for quirk in [false, true] {
                    let mut out = Vec::new();
                    write_head(&mut out, Opcode::Binary, true, len, mask, quirk);
                    assert_eq!(
                        header_len(len, mask.is_some(), quirk),
                        out.len(),
                        "{len} {mask:?} {quirk}"
                    );
                }
            }
        }
    }

    #[test]
    fn mask_is_an_involution_for_every_length() {
        for len in 0..70 {
            let orig: Vec<u8> = (0..len as u8).collect();
            let mut d = orig.clone();
            apply_mask(&mut d, [9, 8, 7, 6]);
            for (i, (a, b)) in orig.iter().zip(&d).enumerate() {
                assert_eq!(a ^ [9u8, 8, 7, 6][i % 4], *b);
            }
            apply_mask(&mut d, [9, 8, 7, 6]);
            assert_eq!(d, orig);
        }
    }

    /// The head as it was written before it was made whole (c70152e's parent).
    fn write_head_reference(
        out: &mut Vec<u8>,
        opcode: Opcode,
        fin: bool,
        len: usize,
        mask: Option<[u8; 4]>,
        fpnn_quirk: bool,
    ) {
        let b0 = (if fin { 0x80 } else { 0 }) | opcode.as_u8();
        let mbit = if mask.is_some() { 0x80 } else { 0 };
        out.push(b0);
        if len < 126 || (fpnn_quirk && len == 126 && mask.is_none()) {
            out.push(mbit | len as u8);
        } else if len <= 0xffff {
            out.push(mbit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mbit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if let Some(key) = mask {
            out.extend_from_slice(&key);
        }
    }

    proptest::proptest! {
        /// The head is byte for byte the one written field by field, in every
        /// length class (and at usize::MAX), after any bytes already in `out`.
        #[test]
        fn write_head_writes_what_it_wrote_field_by_field(
            len in proptest::prop_oneof![
                0usize..130,
                65_530usize..65_540,
                proptest::prelude::any::<usize>(),
                proptest::strategy::Just(usize::MAX),
            ],
            op in proptest::prop_oneof![
                proptest::strategy::Just(Opcode::Binary),
                proptest::strategy::Just(Opcode::Text),
                proptest::strategy::Just(Opcode::Close),
                proptest::strategy::Just(Opcode::Continuation),
            ],
            fin in proptest::prelude::any::<bool>(),
            mask in proptest::option::of(proptest::prelude::any::<[u8; 4]>()),
            quirk in proptest::prelude::any::<bool>(),
            pre in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..9),
        ) {
            let (mut a, mut b) = (pre.clone(), pre);
            write_head(&mut a, op, fin, len, mask, quirk);
            write_head_reference(&mut b, op, fin, len, mask, quirk);
            proptest::prop_assert_eq!(a, b);
        }

        /// The mask by words is the byte-wise XOR of RFC 6455, for any key,
        /// any length, and a slice at any address (alignment).
        #[test]
        fn mask_by_words_is_the_bytewise_xor(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            key in proptest::prelude::any::<[u8; 4]>(),
            off in 0usize..8,
        ) {
            let mut buf = vec![0u8; off];
            buf.extend_from_slice(&data);
            apply_mask(&mut buf[off..], key);
            let want: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
            proptest::prop_assert_eq!(&buf[off..], &want[..]);
        }
    }

    proptest::proptest! {
        /// Wherever the short way reads a frame, `parse_head` reads the same
        /// one, whole in the buffer: for either role, any limit, any bytes
        /// (mostly headers near the short binary one).
        #[test]
        fn short_binary_is_what_parse_head_reads(
            b0 in proptest::prop_oneof![proptest::strategy::Just(0x82u8), proptest::prelude::any::<u8>()],
            b1 in proptest::prop_oneof![0u8..=127, proptest::prelude::any::<u8>()],
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..140),
            server in proptest::prelude::any::<bool>(),
            max in proptest::prop_oneof![0usize..130, proptest::strategy::Just(1 << 20)],
            quirk in proptest::prelude::any::<bool>(),
        ) {
            let role = if server { Role::Server } else { Role::Client };
            let p = FrameParser::new(role, max, quirk);
            let buf = [&[b0, b1][..], &rest].concat();
            if let Some(len) = p.short_binary(&buf) {
                let h = p.parse_head(&buf).unwrap().unwrap();
                proptest::prop_assert_eq!(
                    (h.fin, h.opcode, h.mask, h.header_len, h.payload_len),
                    (true, Opcode::Binary, None, 2, len)
                );
                proptest::prop_assert!(h.frame_len() <= buf.len());
            }
        }
    }

    #[test]
    fn short_binary_frames_take_the_short_way() {
        let p = client();
        assert_eq!(p.short_binary(&[0x82, 3, 1, 2, 3, 0x82]), Some(3));
        assert_eq!(p.short_binary(&[0x82, 0]), Some(0));
        // Cut short, fragmented, text, masked, long, or to a server: no.
        for b in [
            &[0x82, 3, 1, 2][..],
            &[0x02, 1, 1],
            &[0x81, 1, b'a'],
            &[0x82, 0x81, 0, 0, 0, 0, 1],
            &[0x82, 126, 0, 0],
            &[0x82],
        ] {
            assert_eq!(p.short_binary(b), None, "{b:?}");
        }
        let server = FrameParser::new(Role::Server, 1 << 20, false);
        assert_eq!(server.short_binary(&[0x82, 1, 1]), None);
        let small = FrameParser::new(Role::Client, 2, false);
        assert_eq!(small.short_binary(&[0x82, 3, 1, 2, 3]), None);
    }
}
