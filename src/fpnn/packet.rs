//! The FPNN packet (docs/architecture.md, "Layers"): bytes only, no I/O.
//!
//! One packet travels in one WebSocket message, so [`Packet::decode`] takes a
//! whole message and checks that its length is exactly the packet's.

use std::fmt;

use rmpv::Value;

/// The packet magic.
pub const MAGIC: &[u8; 4] = b"FPNN";
/// Version byte we send.
pub const VERSION: u8 = 1;
/// Flag byte of a msgpack payload.
pub const FLAG_MSGPACK: u8 = 0x80;
/// Flag byte of a JSON payload (not supported by RTM).
pub const FLAG_JSON: u8 = 0x40;
/// Default maximum packet size, header included: 8 MiB, as on FPNN servers.
pub const DEFAULT_MAX_PACKET: usize = 8 * 1024 * 1024;

/// The largest packet an FPNN header can describe: a twoway quest's 16-byte
/// header, a 255-byte method name and a payload of `u32::MAX` bytes (its
/// length is a u32). The WebSocket frame limit is the packet limit clamped to
/// this, so a larger limit (`usize::MAX` for "none") still refuses a frame
/// header announcing more than any packet can be.
pub const LARGEST_PACKET: usize = (u32::MAX as usize).saturating_add(16 + 255);

/// The WebSocket frame limit for a packet limit (one packet per message): the packet
/// limit, clamped to [`LARGEST_PACKET`]. Rust-only.
pub fn frame_limit(max_packet: usize) -> usize {
    max_packet.min(LARGEST_PACKET)
}
/// The empty msgpack map, the payload of an empty answer.
pub const EMPTY_MAP: &[u8] = &[0x80];

/// The three kinds of packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A quest that gets no answer.
    Oneway,
    /// A quest that must be answered.
    Twoway,
    /// The answer to a twoway quest.
    Answer,
}

impl Kind {
    pub(crate) fn mtype(self) -> u8 {
        match self {
            Kind::Oneway => 0,
            Kind::Twoway => 1,
            Kind::Answer => 2,
        }
    }
}

/// A decoded packet. The payload is kept as msgpack bytes; [`decode_payload`]
/// turns it into a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Oneway, twoway or answer.
    pub kind: Kind,
    /// Sequence number (0 for oneway quests).
    pub seq: u32,
    /// Method name of a quest; empty for answers.
    pub method: String,
    /// Status of an answer (0 ok); 0 for quests.
    pub status: u8,
    /// The msgpack payload.
    pub payload: Vec<u8>,
}

/// A packet borrowed from the bytes it was parsed from ([`PacketRef::parse`]):
/// what the connection's reader uses, so an answer's payload is never copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRef<'a> {
    /// Oneway, twoway or answer.
    pub kind: Kind,
    /// Sequence number (0 for oneway quests).
    pub seq: u32,
    /// Method name of a quest; empty for answers.
    pub method: &'a str,
    /// Status of an answer (0 ok); 0 for quests.
    pub status: u8,
    /// The msgpack payload.
    pub payload: &'a [u8],
}

impl<'a> PacketRef<'a> {
    /// Parses one whole packet, borrowing its method and payload. Never
    /// panics and never allocates; `max` bounds the declared length.
    pub fn parse(buf: &'a [u8], max: usize) -> Result<PacketRef<'a>, PacketError> {
        if buf.len() < 12 {
            return Err(PacketError::Short(buf.len()));
        }
        if &buf[0..4] != MAGIC {
            return Err(PacketError::BadMagic);
        }
        if buf[4] > 1 {
            return Err(PacketError::BadVersion(buf[4]));
        }
        if buf[5] != FLAG_MSGPACK {
            return Err(PacketError::BadFlag(buf[5]));
        }
        let kind = match buf[6] {
            0 => Kind::Oneway,
            1 => Kind::Twoway,
            2 => Kind::Answer,
            m => return Err(PacketError::BadMtype(m)),
        };
        let ss = buf[7];
        let psize = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as u64;
        let hlen = header_len(kind);
        let mlen = if kind == Kind::Answer {
            0
        } else {
            u64::from(ss)
        };
        let declared = hlen as u64 + mlen + psize;
        if declared > max as u64 {
            return Err(PacketError::TooLarge { declared, max });
        }
        if buf.len() < hlen {
            return Err(PacketError::Short(buf.len()));
        }
        if declared != buf.len() as u64 {
            return Err(PacketError::LengthMismatch {
                declared,
                actual: buf.len(),
            });
        }
        if psize == 0 {
            return Err(PacketError::EmptyPayload);
        }
        let seq = if kind == Kind::Oneway {
            0
        } else {
            u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]])
        };
        let (method, status) = if kind == Kind::Answer {
            ("", ss)
        } else {
            if ss == 0 {
                return Err(PacketError::BadMethod);
            }
            let m = std::str::from_utf8(&buf[hlen..hlen + ss as usize])
                .map_err(|_| PacketError::BadMethod)?;
            (m, 0)
        };
        Ok(PacketRef {
            kind,
            seq,
            method,
            status,
            payload: &buf[hlen + mlen as usize..],
        })
    }
}

/// The seq of a twoway quest in `buf`, read from its header alone (for a
/// quest [`PacketRef::parse`] refused with [`PacketError::BadMethod`], whose
/// header it has checked: it must still be answered). `None` for anything
/// else, or bytes too short to hold it.
pub(crate) fn twoway_seq(buf: &[u8]) -> Option<u32> {
    match buf.get(..16) {
        Some(h) if h[..4] == *MAGIC && h[6] == Kind::Twoway.mtype() => {
            Some(u32::from_le_bytes([h[12], h[13], h[14], h[15]]))
        }
        _ => None,
    }
}

/// Why bytes are not a valid FPNN packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// Fewer bytes than the header needs.
    Short(usize),
    /// The first four bytes are not `FPNN`.
    BadMagic,
    /// A version other than 0 or 1.
    BadVersion(u8),
    /// A flag other than msgpack.
    BadFlag(u8),
    /// An mtype other than 0, 1, 2.
    BadMtype(u8),
    /// A quest with an empty method name, or one that is not UTF-8.
    BadMethod,
    /// The packet's declared length differs from the message length.
    LengthMismatch {
        /// Length from the header.
        declared: u64,
        /// Bytes actually present.
        actual: usize,
    },
    /// Over the configured maximum size.
    TooLarge {
        /// Length from the header.
        declared: u64,
        /// The limit.
        max: usize,
    },
    /// A packet with no payload (FPNN drops such connections).
    EmptyPayload,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Short(n) => write!(f, "packet of {n} bytes is shorter than its header"),
            PacketError::BadMagic => write!(f, "packet does not start with FPNN"),
            PacketError::BadVersion(v) => write!(f, "unsupported packet version {v}"),
            PacketError::BadFlag(fl) => {
                write!(f, "unsupported payload flag {fl:#x} (msgpack only)")
            }
            PacketError::BadMtype(m) => write!(f, "unknown packet mtype {m}"),
            PacketError::BadMethod => write!(f, "quest method name is empty or not UTF-8"),
            PacketError::LengthMismatch { declared, actual } => {
                write!(
                    f,
                    "packet declares {declared} bytes but the message has {actual}"
                )
            }
            PacketError::TooLarge { declared, max } => {
                write!(f, "packet of {declared} bytes is over the limit of {max}")
            }
            PacketError::EmptyPayload => write!(f, "packet has an empty payload"),
        }
    }
}

impl std::error::Error for PacketError {}

/// Header size of a packet kind.
pub fn header_len(kind: Kind) -> usize {
    if kind == Kind::Oneway {
        12
    } else {
        16
    }
}

/// Total packet length for a quest (`method` non-empty) or an answer.
pub fn packet_len(kind: Kind, method_len: usize, payload_len: usize) -> usize {
    header_len(kind) + if kind == Kind::Answer { 0 } else { method_len } + payload_len
}

/// Whether a quest's header can carry `method`: 1 to 255 bytes (its length is one byte).
pub(crate) fn method_fits(method: &str) -> bool {
    (1..=usize::from(u8::MAX)).contains(&method.len())
}

/// Appends a quest. `method` must be 1..=255 bytes (`method_fits`) and `payload`
/// non-empty msgpack; the caller (this crate) guarantees both.
pub fn encode_quest(out: &mut Vec<u8>, twoway: bool, seq: u32, method: &str, payload: &[u8]) {
    debug_assert!(method_fits(method) && !payload.is_empty());
    let kind = if twoway { Kind::Twoway } else { Kind::Oneway };
    write_header(out, kind, method.len() as u8, payload.len(), seq);
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(payload);
}

/// Appends an answer with `status` (0 ok) and a non-empty payload.
pub fn encode_answer(out: &mut Vec<u8>, seq: u32, status: u8, payload: &[u8]) {
    write_header(out, Kind::Answer, status, payload.len(), seq);
    out.extend_from_slice(payload);
}

fn write_header(out: &mut Vec<u8>, kind: Kind, ss: u8, psize: usize, seq: u32) {
    // Made whole, then appended at once: one capacity check rather than one
    // per field (every quest and answer writes one).
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(MAGIC);
    h[4..8].copy_from_slice(&[VERSION, FLAG_MSGPACK, kind.mtype(), ss]);
    h[8..12].copy_from_slice(&(psize as u32).to_le_bytes());
    h[12..].copy_from_slice(&seq.to_le_bytes());
    // Each length a constant: a few stores, where a length known only at run
    // time is a call to `memcpy`.
    if kind == Kind::Oneway {
        out.extend_from_slice(&h[..12]);
    } else {
        out.extend_from_slice(&h);
    }
}

impl Packet {
    /// Decodes one whole packet. Never panics and never allocates more than
    /// the message itself; `max` bounds the declared length.
    pub fn decode(buf: &[u8], max: usize) -> Result<Packet, PacketError> {
        PacketRef::parse(buf, max).map(|p| Packet {
            kind: p.kind,
            seq: p.seq,
            method: p.method.to_owned(),
            status: p.status,
            payload: p.payload.to_vec(),
        })
    }

    /// Encodes the packet (the inverse of [`Packet::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(packet_len(self.kind, self.method.len(), self.payload.len()));
        match self.kind {
            Kind::Answer => encode_answer(&mut out, self.seq, self.status, &self.payload),
            k => encode_quest(
                &mut out,
                k == Kind::Twoway,
                self.seq,
                &self.method,
                &self.payload,
            ),
        }
        out
    }
}

/// Decodes a payload: exactly one msgpack value, nothing after it, holding
/// at most as many values as fit in [`DEFAULT_MAX_PACKET`] bytes of decoded
/// tree (see [`decode_payload_within`]).
pub fn decode_payload(bytes: &[u8]) -> Result<Value, String> {
    decode_payload_within(bytes, DEFAULT_MAX_PACKET)
}

/// Decodes a payload whose decoded tree may take at most `max_bytes` of
/// memory for its nodes. Each msgpack value, even a one-byte one, becomes a
/// `Value` of several dozen bytes, so a hostile payload of tiny elements would
/// otherwise cost dozens of times its own size: an allocation-free scan counts
/// the values first and refuses such a payload before anything is built.
/// Depth is bounded by rmpv, and lengths never pre-allocate.
pub fn decode_payload_within(bytes: &[u8], max_bytes: usize) -> Result<Value, String> {
    // Exactly one value, and few enough of them (so nothing after it either).
    check_payload_within(bytes, max_bytes)?;
    let mut pos = 0;
    let v =
        read_value(bytes, &mut pos, MAX_DEPTH).map_err(|e| format!("bad msgpack payload: {e}"))?;
    // The scan and the decoder read the same grammar; were they ever to
    // disagree, the bytes are refused rather than half read.
    if pos != bytes.len() {
        return Err(format!(
            "{} bytes after the msgpack payload",
            bytes.len() - pos
        ));
    }
    Ok(v)
}

/// rmpv's recursion limit, counted as rmpv counts it (the tests compare).
const MAX_DEPTH: u16 = 1024;

/// `n` bytes at `*pos`, advancing it.
fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], &'static str> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or("truncated")?;
    let out = &b[*pos..end];
    *pos = end;
    Ok(out)
}

fn be_uint(b: &[u8], pos: &mut usize, n: usize) -> Result<u64, &'static str> {
    Ok(take(b, pos, n)?
        .iter()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn less_deep(depth: u16) -> Result<u16, &'static str> {
    depth.checked_sub(1).ok_or("depth limit exceeded")
}

/// One msgpack value from a slice, as `rmpv::decode::read_value` decodes
/// it (same values, same depth limit), without the generic `io::Read` path.
/// Only called after [`count_values`] has bounded the number of values, so
/// vectors may be sized from the lengths (never past the bytes left). The
/// recursive part handles containers only, to keep its stack frame small:
/// rmpv's depth limit is 1,024 levels, on the reader thread's stack.
fn read_value(b: &[u8], pos: &mut usize, depth: u16) -> Result<Value, &'static str> {
    let depth = less_deep(depth)?;
    let m = *b.get(*pos).ok_or("truncated")?;
    let (len, map) = match m {
        0x90..=0x9f => (usize::from(m & 0x0f), false),
        0x80..=0x8f => (usize::from(m & 0x0f), true),
        0xdc | 0xde => {
            *pos += 1;
            (be_uint(b, pos, 2)? as usize, m == 0xde)
        }
        0xdd | 0xdf => {
            *pos += 1;
            (be_uint(b, pos, 4)? as usize, m == 0xdf)
        }
        _ => return read_scalar(b, pos, depth),
    };
    if m < 0xdc {
        *pos += 1;
    }
    let depth = less_deep(depth)?;
    let left = b.len() - *pos;
    if map {
        let mut items = Vec::with_capacity(len.min(left / 2));
        for _ in 0..len {
            let k = read_value(b, pos, depth)?;
            items.push((k, read_value(b, pos, depth)?));
        }
        Ok(Value::Map(items))
    } else {
        let mut items = Vec::with_capacity(len.min(left));
        for _ in 0..len {
            items.push(read_value(b, pos, depth)?);
        }
        Ok(Value::Array(items))
    }
}

/// A value that is not an array or a map; `depth` is what is left after
/// its own level (see [`read_value`]).
#[inline(never)]
fn read_scalar(b: &[u8], pos: &mut usize, depth: u16) -> Result<Value, &'static str> {
    let start = *pos;
    let m = take(b, pos, 1)?[0];
    let int = |v: u64| Value::from(v);
    Ok(match m {
        0x00..=0x7f => int(u64::from(m)),
        0xe0..=0xff => Value::from(i64::from(m as i8)),
        0xc0 | 0xc1 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xcc => int(be_uint(b, pos, 1)?),
        0xcd => int(be_uint(b, pos, 2)?),
        0xce => int(be_uint(b, pos, 4)?),
        0xcf => int(be_uint(b, pos, 8)?),
        0xd0 => Value::from(i64::from(be_uint(b, pos, 1)? as u8 as i8)),
        0xd1 => Value::from(i64::from(be_uint(b, pos, 2)? as u16 as i16)),
        0xd2 => Value::from(i64::from(be_uint(b, pos, 4)? as u32 as i32)),
        0xd3 => Value::from(be_uint(b, pos, 8)? as i64),
        0xca => Value::F32(f32::from_bits(be_uint(b, pos, 4)? as u32)),
        0xcb => Value::F64(f64::from_bits(be_uint(b, pos, 8)?)),
        0xa0..=0xbf | 0xd9..=0xdb => {
            let len = match m {
                0xd9 => be_uint(b, pos, 1)?,
                0xda => be_uint(b, pos, 2)?,
                0xdb => be_uint(b, pos, 4)?,
                _ => u64::from(m & 0x1f),
            } as usize;
            // rmpv: one level for the string, one for its bytes.
            less_deep(less_deep(depth)?)?;
            let data = take(b, pos, len)?;
            match std::str::from_utf8(data) {
                Ok(text) => Value::from(text),
                // Not UTF-8: rmpv keeps the bytes in a form only it builds.
                Err(_) => {
                    rmpv::decode::read_value(&mut &b[start..*pos]).map_err(|_| "bad string")?
                }
            }
        }
        0xc4..=0xc6 => {
            let len = be_uint(b, pos, 1 << (m - 0xc4))? as usize;
            less_deep(depth)?;
            Value::Binary(take(b, pos, len)?.to_vec())
        }
        0xd4..=0xd8 | 0xc7..=0xc9 => {
            let len = match m {
                0xc7 => be_uint(b, pos, 1)? as usize,
                0xc8 => be_uint(b, pos, 2)? as usize,
                0xc9 => be_uint(b, pos, 4)? as usize,
                _ => 1 << (m - 0xd4),
            };
            less_deep(less_deep(depth)?)?;
            let ty = take(b, pos, 1)?[0] as i8;
            Value::Ext(ty, take(b, pos, len)?.to_vec())
        }
        // Arrays and maps are read_value's.
        _ => return Err("unexpected container"),
    })
}

/// Checks, without building anything, that `bytes` are exactly one msgpack
/// value holding no more values than a [`Value`] tree of `max_bytes` would:
/// what [`decode_payload_within`] checks before it builds, and what a payload
/// decoded some other way is checked with (the client's answers, through
/// serde; short pushes, [`map_fields`]). Depth is left to the decoder.
pub(crate) fn check_payload_within(bytes: &[u8], max_bytes: usize) -> Result<(), String> {
    let (_, end) = count_values(bytes, max_values(max_bytes))?;
    if end < bytes.len() {
        return Err(format!(
            "{} bytes after the msgpack payload",
            bytes.len() - end
        ));
    }
    Ok(())
}

/// The msgpack marker of nil.
#[cfg(feature = "gate")]
pub(crate) const NIL: u8 = 0xc0;

/// Payloads this short are read field by field ([`map_fields`]): they cannot
/// nest deeper than [`read_value`]'s limit, so the payloads whose structure it
/// or [`check_payload_within`] accepts are exactly those
/// [`decode_payload_within`] accepts. As rmpv counts levels, each container
/// takes at least a byte and two levels, and the innermost value at least a
/// byte and three (a str or an ext: one for the value, two for its bytes), so
/// `n` bytes nest at most `2 * (n - 1) + 3` levels: within [`MAX_DEPTH`] up to
/// 511 bytes.
pub(crate) const FIELDS_MAX: usize = (MAX_DEPTH as usize - 1) / 2;

/// Where the values of `keys` in a msgpack map start, each as
/// [`crate::value::map_get`] finds it in the decoded map (the first entry
/// whose key is that str), without decoding anything; read them with
/// [`int_value`], [`bytes_value`] or [`read_value_at`]. `None` when `bytes`
/// are not exactly one map, or are longer than [`FIELDS_MAX`] (decode those
/// whole). It walks every value, so it checks the bytes as
/// [`check_payload_within`] does, except for its limit on the number of
/// values: `Some` only for bytes that pass it with any limit of at least
/// `bytes.len()` values ([`fields_readable`]).
pub(crate) fn map_fields<const N: usize>(
    bytes: &[u8],
    keys: [&str; N],
) -> Option<[Option<usize>; N]> {
    let (entries, mut pos) = short_map(bytes)?;
    let mut out = [None; N];
    for _ in 0..entries {
        let key = str_at(bytes, &mut pos);
        let slot = key.and_then(|k| keys.iter().position(|want| want.as_bytes() == k));
        if key.is_none() {
            pos = value_end(bytes, pos)?;
        }
        if let Some(i) = slot {
            if out[i].is_none() {
                out[i] = Some(pos);
            }
        }
        pos = value_end(bytes, pos)?;
    }
    // Exactly one value: nothing after the map.
    (pos == bytes.len()).then_some(out)
}

/// Whether a payload of `len` bytes may be read with [`map_fields`] instead
/// of being checked with [`check_payload_within`] and `max_bytes` first: short
/// enough for it, and holding too few values for that check's limit to
/// refuse it (each value takes at least a byte).
pub(crate) fn fields_readable(len: usize, max_bytes: usize) -> bool {
    len <= FIELDS_MAX && len <= max_values(max_bytes)
}

/// How many values [`check_payload_within`] lets a payload hold.
pub(crate) fn max_values(max_bytes: usize) -> usize {
    (max_bytes / std::mem::size_of::<Value>()).max(1)
}

/// The integer at `pos` as [`crate::value::as_i64`] reads its decoded
/// value: `None` for another type or one above `i64::MAX`.
pub(crate) fn int_value(bytes: &[u8], mut pos: usize) -> Option<i64> {
    int_at(bytes, &mut pos)
}

/// The bytes of the str or bin at `pos`, as [`crate::value::as_bytes`]
/// reads its decoded value (a str's bytes even when they are not UTF-8);
/// `None` for another type.
pub(crate) fn bytes_value(b: &[u8], pos: usize) -> Option<&[u8]> {
    let mut p = pos;
    match *b.get(p)? {
        0xc4..=0xc6 => {
            let m = b[p];
            p += 1;
            let len = be_uint(b, &mut p, 1 << (m - 0xc4)).ok()? as usize;
            b.get(p..p.checked_add(len)?)
        }
        _ => str_at(b, &mut p),
    }
}

/// The bytes of the str at `pos`; `None` for another type (or a str cut short).
#[cfg(feature = "gate")]
pub(crate) fn str_value(b: &[u8], mut pos: usize) -> Option<&[u8]> {
    str_at(b, &mut pos)
}

/// The msgpack of the value at `pos`, as it is in `bytes` (for bytes
/// [`check_payload_within`] has passed; on others `None` rather than a
/// panic).
#[cfg(feature = "gate")]
pub(crate) fn value_bytes_at(bytes: &[u8], pos: usize) -> Option<&[u8]> {
    bytes.get(pos..value_end(bytes, pos)?)
}

/// The value at `pos` of a payload [`check_payload_within`] has passed,
/// decoded as [`decode_payload`] decodes it inside a map.
#[cfg(any(feature = "gate", test))]
pub(crate) fn read_value_at(bytes: &[u8], mut pos: usize) -> Option<Value> {
    read_value(bytes, &mut pos, MAX_DEPTH - 1).ok()
}

/// The integer under the str key `key` of a short map whose other values are
/// all scalars or strings (an answer such as `sendmsg`'s `{mtime}`), read
/// straight from `bytes`: the value serde gives that field when the whole
/// payload is decoded into a struct holding it as an `i64`.
///
/// `None` whenever the payload is anything less plain (not a map, longer
/// than [`FIELDS_MAX`], a key that is not a str, `key` missing or twice, an
/// array, map, ext or reserved marker among the values, the value not an
/// integer in `i64` range, bytes after the map, truncated bytes): the caller
/// then decodes in full, and that decode gives the answer or the error. The
/// property test `int_field_agrees_with_serde` in `src/api/decode.rs` holds
/// it to that.
pub(crate) fn int_field(bytes: &[u8], key: &str) -> Option<i64> {
    let (entries, mut pos) = short_map(bytes)?;
    let mut found = None;
    for _ in 0..entries {
        if str_at(bytes, &mut pos)? == key.as_bytes() {
            if found.is_some() {
                return None;
            }
            found = Some(int_at(bytes, &mut pos)?);
        } else {
            // Scalars and strings only: nothing nested, so nothing deep.
            match *bytes.get(pos)? {
                0x00..=0x7f
                | 0xa0..=0xc0
                | 0xc2..=0xc6
                | 0xca..=0xd3
                | 0xd9..=0xdb
                | 0xe0..=0xff => pos = value_end(bytes, pos)?,
                _ => return None,
            }
        }
    }
    if pos != bytes.len() {
        return None;
    }
    found
}

/// The msgpack integer at `*pos` as an `i64`, advancing past it; `None` when
/// the value there is not an integer or does not fit.
fn int_at(b: &[u8], pos: &mut usize) -> Option<i64> {
    fn be<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
        b.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    let m = *b.get(*pos)?;
    let at = *pos + 1;
    let (n, len) = match m {
        0x00..=0x7f => (i64::from(m), 0),
        0xe0..=0xff => (i64::from(m as i8), 0),
        0xcc => (i64::from(u8::from_be_bytes(be(b, at)?)), 1),
        0xcd => (i64::from(u16::from_be_bytes(be(b, at)?)), 2),
        0xce => (i64::from(u32::from_be_bytes(be(b, at)?)), 4),
        0xcf => (i64::try_from(u64::from_be_bytes(be(b, at)?)).ok()?, 8),
        0xd0 => (i64::from(i8::from_be_bytes(be(b, at)?)), 1),
        0xd1 => (i64::from(i16::from_be_bytes(be(b, at)?)), 2),
        0xd2 => (i64::from(i32::from_be_bytes(be(b, at)?)), 4),
        0xd3 => (i64::from_be_bytes(be(b, at)?), 8),
        _ => return None,
    };
    *pos = at + len;
    Some(n)
}

/// How many entries the map `bytes` holds and where the first starts;
/// `None` when `bytes` are not a map or are longer than [`FIELDS_MAX`] (the
/// payloads [`map_fields`] and [`map_index`] read).
fn short_map(bytes: &[u8]) -> Option<(usize, usize)> {
    if bytes.len() > FIELDS_MAX {
        return None;
    }
    let mut pos = 1;
    let entries = match *bytes.first()? {
        m @ 0x80..=0x8f => usize::from(m & 0x0f),
        0xde => be_uint(bytes, &mut pos, 2).ok()? as usize,
        0xdf => be_uint(bytes, &mut pos, 4).ok()? as usize,
        _ => return None,
    };
    Some((entries, pos))
}

/// One entry of [`map_index`]: where its key's bytes are when the key is a
/// str, and where its value starts. Positions, not slices, so that a buffer
/// of entries can be kept from one payload to the next (the gate's reader
/// reuses one per connection, [`check_map_index`]).
#[cfg(feature = "gate")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapEntry {
    /// The key's bytes `start..end` when it is a str.
    key: Option<(usize, usize)>,
    value: usize,
}

#[cfg(feature = "gate")]
impl MapEntry {
    /// The key's bytes, when it is a str, in the `bytes` the entry was made from.
    pub(crate) fn key<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        self.key.and_then(|(start, end)| bytes.get(start..end))
    }

    /// Where the value starts; read it with [`read_value_at`].
    pub(crate) fn value(&self) -> usize {
        self.value
    }
}

/// The entries of a msgpack map, in order: each key's bytes when the key is a
/// str (`None` for another key), and where its value starts. `None` when
/// `bytes` are not a map, or are longer than [`FIELDS_MAX`]. Read a value
/// with [`read_value_at`]. For bytes [`check_payload_within`] has passed, like
/// [`map_fields`]; on others it gives `None` rather than panicking.
#[cfg(feature = "gate")]
pub(crate) fn map_index(bytes: &[u8]) -> Option<Vec<MapEntry>> {
    let mut index = Vec::new();
    map_index_end(bytes, &mut index)?;
    Some(index)
}

/// [`check_payload_within`] of a payload that may be a short map, which puts the map's
/// [`map_index`] in `index` when it passes: one walk both checks the bytes and indexes
/// them (the gate reads its quests so). `Ok(true)` when `index` holds it; `Ok(false)`
/// (and `index` empty) for a payload that passes but is another value, longer than
/// [`FIELDS_MAX`], or not [`fields_readable`] with `max_bytes`.
#[cfg(feature = "gate")]
pub(crate) fn check_map_index(
    bytes: &[u8],
    max_bytes: usize,
    index: &mut Vec<MapEntry>,
) -> Result<bool, String> {
    if fields_readable(bytes.len(), max_bytes) {
        // The walk checks every value as `check_payload_within` does, and its limit on
        // the number of values cannot refuse these bytes (`fields_readable`); exactly one
        // value: nothing after the map.
        if map_index_end(bytes, index) == Some(bytes.len()) {
            return Ok(true);
        }
    }
    index.clear();
    check_payload_within(bytes, max_bytes).map(|()| false)
}

/// [`map_index`] into `index` (cleared first), and where the map ends.
#[cfg(feature = "gate")]
fn map_index_end(bytes: &[u8], index: &mut Vec<MapEntry>) -> Option<usize> {
    index.clear();
    let (entries, mut pos) = short_map(bytes)?;
    // Each entry takes at least two bytes.
    index.reserve(entries.min(bytes.len() / 2));
    for _ in 0..entries {
        // `str_at` leaves `pos` just after the key's bytes.
        let key = str_at(bytes, &mut pos).map(|k| (pos - k.len(), pos));
        if key.is_none() {
            pos = value_end(bytes, pos)?;
        }
        index.push(MapEntry { key, value: pos });
        pos = value_end(bytes, pos)?;
    }
    Some(pos)
}

/// Where the msgpack value at `pos` ends: [`count_values`]'s walk with no
/// limit and no message, for skipping the entries [`map_fields`] and
/// [`map_index`] pass over. `None` on truncated bytes (never a panic).
fn value_end(b: &[u8], pos: usize) -> Option<usize> {
    // A value that holds no others (a scalar, a str, an empty container:
    // most of what is skipped) without the walk's loop.
    let m = *b.get(pos)?;
    let (len_bytes, skip, children) = extent(b, pos + 1, m)?;
    if children == 0 {
        let end = (pos as u64 + 1)
            .saturating_add(len_bytes as u64)
            .saturating_add(skip);
        return (end <= b.len() as u64).then_some(end as usize);
    }
    walk(b, pos, usize::MAX).ok().map(|(_, end)| end)
}

/// What follows marker `m` (read just before `pos`): the bytes of its
/// length field, the bytes to skip after that, and how many values it
/// holds. `None` when the length field is cut off.
#[inline(always)]
fn extent(b: &[u8], pos: usize, m: u8) -> Option<(usize, u64, u64)> {
    let be = |n: usize| -> Option<u64> {
        let bytes = b.get(pos..pos.checked_add(n)?)?;
        Some(bytes.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    Some(match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0..=0xc3 => (0, 0, 0),
        0x80..=0x8f => (0, 0, 2 * u64::from(m & 0x0f)),
        0x90..=0x9f => (0, 0, u64::from(m & 0x0f)),
        0xa0..=0xbf => (0, u64::from(m & 0x1f), 0),
        0xc4 | 0xd9 => (1, be(1)?, 0),
        0xc5 | 0xda => (2, be(2)?, 0),
        0xc6 | 0xdb => (4, be(4)?, 0),
        0xc7 => (1, be(1)? + 1, 0),
        0xc8 => (2, be(2)? + 1, 0),
        0xc9 => (4, be(4)? + 1, 0),
        0xca | 0xce | 0xd2 => (0, 4, 0),
        0xcb | 0xcf | 0xd3 => (0, 8, 0),
        0xcc | 0xd0 => (0, 1, 0),
        0xcd | 0xd1 => (0, 2, 0),
        0xd4 => (0, 2, 0),
        0xd5 => (0, 3, 0),
        0xd6 => (0, 5, 0),
        0xd7 => (0, 9, 0),
        0xd8 => (0, 17, 0),
        0xdc => (2, 0, be(2)?),
        0xdd => (4, 0, be(4)?),
        0xde => (2, 0, 2 * be(2)?),
        0xdf => (4, 0, 2 * be(4)?),
    })
}

/// The bytes of the str at `*pos`, advancing past it; `None` (and `*pos`
/// unchanged) when the value there is not a str.
fn str_at<'a>(b: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let mut p = *pos;
    let m = *b.get(p)?;
    p += 1;
    let len = match m {
        0xa0..=0xbf => usize::from(m & 0x1f),
        0xd9 => be_uint(b, &mut p, 1).ok()? as usize,
        0xda => be_uint(b, &mut p, 2).ok()? as usize,
        0xdb => be_uint(b, &mut p, 4).ok()? as usize,
        _ => return None,
    };
    let s = b.get(p..p.checked_add(len)?)?;
    *pos = p + len;
    Some(s)
}

/// Walks one msgpack value without building it and checks that it holds at
/// most `limit` values (every scalar, string, array and map counts one);
/// gives how many it holds and where it ends.
fn count_values(bytes: &[u8], limit: usize) -> Result<(usize, usize), String> {
    walk(bytes, 0, limit).map_err(|e| match e {
        Walk::Truncated => "bad msgpack payload: truncated".to_string(),
        Walk::TooMany => format!("msgpack payload holds more than {limit} values"),
    })
}

/// Why [`walk`] stopped.
enum Walk {
    Truncated,
    TooMany,
}

/// The walk of [`count_values`] and [`value_end`]: from `pos`, one value of
/// at most `limit` values; how many it holds and where it ends.
#[inline(always)]
fn walk(bytes: &[u8], mut pos: usize, limit: usize) -> Result<(usize, usize), Walk> {
    let (mut pending, mut count) = (1u64, 0usize);
    while pending > 0 {
        let m = *bytes.get(pos).ok_or(Walk::Truncated)?;
        pos += 1;
        pending -= 1;
        count += 1;
        if count > limit {
            return Err(Walk::TooMany);
        }
        let (len_bytes, skip, children) = extent(bytes, pos, m).ok_or(Walk::Truncated)?;
        let end = (pos as u64)
            .saturating_add(len_bytes as u64)
            .saturating_add(skip);
        if end > bytes.len() as u64 {
            return Err(Walk::Truncated);
        }
        pos = end as usize;
        // Every child needs at least one more byte.
        pending += children;
        if pending > (bytes.len() - pos) as u64 {
            return Err(Walk::Truncated);
        }
    }
    Ok((count, pos))
}

/// Encodes a value as a payload.
pub fn encode_payload(v: &Value, out: &mut Vec<u8>) {
    // Room for a typical request at once: growing by doubling costs a
    // reallocation and a copy per quest.
    out.reserve(256);
    write_value(out, v);
}

/// msgpack of `v`, byte for byte what `rmpv::encode::write_value` writes (the
/// tests compare them), pushing straight into the vector: the generic
/// `io::Write` path costs several times as much on the send path.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => write_uint(out, u),
            (None, Some(n)) => write_sint(out, n),
            (None, None) => out.push(0xc0),
        },
        Value::F32(f) => {
            out.push(0xca);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::F64(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::String(s) => match s.as_str() {
            Some(text) => write_str(out, text),
            None => write_bin(out, s.as_bytes()),
        },
        Value::Binary(b) => write_bin(out, b),
        Value::Array(a) => {
            write_count(out, a.len(), 0x90, [0xdc, 0xdd]);
            for x in a {
                write_value(out, x);
            }
        }
        Value::Map(m) => {
            write_count(out, m.len(), 0x80, [0xde, 0xdf]);
            for (k, x) in m {
                write_value(out, k);
                write_value(out, x);
            }
        }
        Value::Ext(ty, data) => {
            let len = data.len() as u32;
            match len {
                1 => out.push(0xd4),
                2 => out.push(0xd5),
                4 => out.push(0xd6),
                8 => out.push(0xd7),
                16 => out.push(0xd8),
                0..=255 => out.extend_from_slice(&[0xc7, len as u8]),
                256..=65535 => {
                    out.push(0xc8);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                }
                _ => {
                    out.push(0xc9);
                    out.extend_from_slice(&len.to_be_bytes());
                }
            }
            out.push(*ty as u8);
            out.extend_from_slice(data);
        }
    }
}

pub(crate) fn write_uint(out: &mut Vec<u8>, u: u64) {
    if u < 128 {
        out.push(u as u8);
    } else if u < 256 {
        out.extend_from_slice(&[0xcc, u as u8]);
    } else if u < 65536 {
        out.push(0xcd);
        out.extend_from_slice(&(u as u16).to_be_bytes());
    } else if u < 1 << 32 {
        out.push(0xce);
        out.extend_from_slice(&(u as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&u.to_be_bytes());
    }
}

pub(crate) fn write_sint(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        // rmp's write_sint: non-negative values take the unsigned forms.
        write_uint(out, n as u64);
    } else if n >= -32 {
        out.push(n as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A str, as `rmpv` writes `Value::String`.
///
/// Inlined: with a literal (every request map's keys) the length is known at
/// compile time, and the write is a few stores instead of a call and a copy.
#[inline(always)]
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if bytes.len() < 32 {
        // A fixstr (every key, most short values): one reservation.
        out.reserve(1 + bytes.len());
        out.push(0xa0 | bytes.len() as u8);
    } else {
        write_len(out, bytes.len(), Some(0xa0), [0xd9, 0xda, 0xdb]);
    }
    out.extend_from_slice(bytes);
}

/// A bin, as `rmpv` writes `Value::Binary`.
pub(crate) fn write_bin(out: &mut Vec<u8>, bytes: &[u8]) {
    write_len(out, bytes.len(), None, [0xc4, 0xc5, 0xc6]);
    out.extend_from_slice(bytes);
}

/// A str or bin length: the fix form (`fix`, str only) under 32, then 8, 16
/// or 32 bits. Lengths past u32 are truncated as rmpv does (the packet limit
/// refuses such payloads before they are sent).
fn write_len(out: &mut Vec<u8>, len: usize, fix: Option<u8>, markers: [u8; 3]) {
    let len = len as u32;
    match fix {
        Some(f) if len < 32 => out.push(f | len as u8),
        _ if len < 256 => out.extend_from_slice(&[markers[0], len as u8]),
        _ if len < 65536 => {
            out.push(markers[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(markers[2]);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// An array or map length: the fix form under 16, then 16 or 32 bits.
pub(crate) fn write_count(out: &mut Vec<u8>, len: usize, fix: u8, markers: [u8; 2]) {
    let len = len as u32;
    if len < 16 {
        out.push(fix | len as u8);
    } else if len < 65536 {
        out.push(markers[0]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(markers[1]);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            prop_oneof![
                Just(0i64),
                Just(-32),
                Just(-33),
                Just(-128),
                Just(-129),
                Just(-32768),
                Just(-32769),
                Just(-2147483648),
                Just(-2147483649),
                Just(127),
                Just(128),
                Just(255),
                Just(256),
                Just(65535),
                Just(65536),
                Just(4294967295),
                Just(4294967296)
            ]
            .prop_map(Value::from),
            any::<f32>().prop_map(Value::F32),
            any::<f64>().prop_map(Value::F64),
            ".{0,40}".prop_map(Value::from),
            (0usize..70_000).prop_map(|n| Value::from("x".repeat(n))),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Binary),
            (0usize..70_000).prop_map(|n| Value::Binary(vec![7; n])),
            // A str of any bytes, valid UTF-8 or not.
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| {
                let mut raw = vec![0xa0 | b.len() as u8];
                raw.extend_from_slice(&b);
                rmpv::decode::read_value(&mut &raw[..]).unwrap()
            }),
            (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(t, d)| Value::Ext(t, d)),
        ];
        leaf.prop_recursive(3, 64, 20, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner), 0..20).prop_map(Value::Map),
            ]
        })
    }

    /// rmpv's decoding, re-encoded (values with NaN compare unequal).
    fn rmpv_decoded(bytes: &[u8]) -> Option<Vec<u8>> {
        let mut rd = bytes;
        let v = rmpv::decode::read_value(&mut rd).ok()?;
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &v).unwrap();
        Some(out)
    }

    fn ours_decoded(bytes: &[u8]) -> Option<Vec<u8>> {
        let mut pos = 0;
        let v = read_value(bytes, &mut pos, MAX_DEPTH).ok()?;
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &v).unwrap();
        Some(out)
    }

    #[test]
    fn read_value_keeps_rmpv_s_depth_limit_within_a_thread_s_default_stack() {
        for depth in [1000usize, 1021, 1022, 1023, 1024, 1100] {
            for leaf in [&[0x01][..], &[0xa1, b'x'], &[0xc4, 1, 7], &[0xd4, 1, 2]] {
                let mut bytes = vec![0x91; depth];
                bytes.extend_from_slice(leaf);
                // rmpv on a large stack (its debug frames are big); ours on
                // the 2 MiB that the reader thread has.
                let on_stack = |size: usize, decode: fn(&[u8]) -> Option<Vec<u8>>| {
                    let b = bytes.clone();
                    std::thread::Builder::new()
                        .stack_size(size)
                        .spawn(move || decode(&b))
                        .unwrap()
                        .join()
                        .unwrap()
                };
                let theirs = on_stack(64 << 20, rmpv_decoded);
                let ours = on_stack(2 << 20, ours_decoded);
                assert_eq!(ours, theirs, "{depth} {leaf:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn read_value_decodes_what_rmpv_decodes(v in any_value()) {
            let mut bytes = Vec::new();
            encode_payload(&v, &mut bytes);
            prop_assert_eq!(ours_decoded(&bytes), rmpv_decoded(&bytes));
            prop_assert!(ours_decoded(&bytes).is_some());
        }

        #[test]
        fn value_end_finds_where_count_values_ends(
            v in any_value(), tail in proptest::collection::vec(any::<u8>(), 0..4),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = Vec::new();
            encode_payload(&v, &mut bytes);
            let end = bytes.len();
            bytes.extend(tail);
            prop_assert_eq!(value_end(&bytes, 0), Some(end));
            // On any bytes, truncated ones included, the two walks agree.
            for b in [&bytes[..end / 2], &junk[..]] {
                prop_assert_eq!(value_end(b, 0), count_values(b, usize::MAX).ok().map(|c| c.1));
            }
        }

        #[test]
        fn read_value_agrees_with_rmpv_on_any_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            prop_assert_eq!(ours_decoded(&bytes), rmpv_decoded(&bytes));
        }

        #[test]
        fn read_value_agrees_with_rmpv_on_damaged_payloads(
            v in any_value(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>(),
        ) {
            let mut bytes = Vec::new();
            encode_payload(&v, &mut bytes);
            let i = at % bytes.len();
            bytes[i] = byte;
            bytes.truncate(cut % (bytes.len() + 1));
            prop_assert_eq!(ours_decoded(&bytes), rmpv_decoded(&bytes));
        }

        #[test]
        fn map_fields_reads_only_payloads_the_check_passes(
            v in any_value(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>(),
            tail in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let mut bytes = Vec::new();
            encode_payload(&Value::Map(vec![("msg".into(), v)]), &mut bytes);
            let i = at % bytes.len();
            bytes[i] = byte;
            bytes.truncate(cut % (bytes.len() + 1));
            bytes.extend_from_slice(&tail);
            if map_fields(&bytes, KEYS).is_some() {
                prop_assert!(check_payload_within(&bytes, bytes.len() * std::mem::size_of::<Value>()).is_ok());
            }
        }

        #[test]
        fn encode_payload_writes_what_rmpv_writes(v in any_value()) {
            let mut ours = Vec::new();
            encode_payload(&v, &mut ours);
            let mut theirs = Vec::new();
            rmpv::encode::write_value(&mut theirs, &v).unwrap();
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn worked_example_answer_to_server_quest() {
        let mut out = Vec::new();
        encode_answer(&mut out, 0x0403_0201, 0, EMPTY_MAP);
        assert_eq!(
            out,
            [
                0x46, 0x50, 0x4E, 0x4E, 0x01, 0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 1, 2, 3, 4,
                0x80
            ]
        );
        let p = Packet::decode(&out, DEFAULT_MAX_PACKET).unwrap();
        assert_eq!((p.kind, p.seq, p.status), (Kind::Answer, 0x0403_0201, 0));
        assert_eq!(p.payload, EMPTY_MAP);
    }

    #[test]
    fn twoway_and_oneway_quest_golden_bytes() {
        let mut out = Vec::new();
        encode_quest(&mut out, true, 1, "ping", EMPTY_MAP);
        assert_eq!(
            out,
            [
                b'F', b'P', b'N', b'N', 1, 0x80, 1, 4, 1, 0, 0, 0, 1, 0, 0, 0, b'p', b'i', b'n',
                b'g', 0x80
            ]
        );
        let mut out = Vec::new();
        encode_quest(&mut out, false, 99, "kickout", EMPTY_MAP);
        assert_eq!(
            &out[..12],
            &[b'F', b'P', b'N', b'N', 1, 0x80, 0, 7, 1, 0, 0, 0]
        );
        assert_eq!(out.len(), 12 + 7 + 1);
        let p = Packet::decode(&out, 100).unwrap();
        assert_eq!(
            (p.kind, p.seq, p.method.as_str()),
            (Kind::Oneway, 0, "kickout")
        );
    }

    #[test]
    fn version_zero_is_accepted() {
        let mut out = Vec::new();
        encode_answer(&mut out, 5, 1, EMPTY_MAP);
        out[4] = 0;
        assert_eq!(Packet::decode(&out, 100).unwrap().status, 1);
    }

    #[test]
    fn header_violations_are_reported() {
        let mut good = Vec::new();
        encode_quest(&mut good, true, 7, "m", EMPTY_MAP);
        let with = |i: usize, b: u8| {
            let mut v = good.clone();
            v[i] = b;
            Packet::decode(&v, 100)
        };
        assert_eq!(with(0, b'X'), Err(PacketError::BadMagic));
        assert_eq!(with(4, 2), Err(PacketError::BadVersion(2)));
        assert_eq!(with(5, FLAG_JSON), Err(PacketError::BadFlag(0x40)));
        assert_eq!(with(6, 3), Err(PacketError::BadMtype(3)));
        assert_eq!(with(16, 0xff), Err(PacketError::BadMethod));
        assert!(matches!(
            with(7, 0),
            Err(PacketError::LengthMismatch { .. })
        ));
        assert!(matches!(
            with(8, 2),
            Err(PacketError::LengthMismatch { .. })
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            Packet::decode(&trailing, 100),
            Err(PacketError::LengthMismatch { .. })
        ));
        assert!(matches!(with(11, 0x7f), Err(PacketError::TooLarge { .. })));
        assert_eq!(
            Packet::decode(&good[..10], 100),
            Err(PacketError::Short(10))
        );
        let mut empty = Vec::new();
        write_header(&mut empty, Kind::Answer, 0, 0, 1);
        assert_eq!(Packet::decode(&empty, 100), Err(PacketError::EmptyPayload));
    }

    proptest! {
        /// The header made whole is byte for byte the one written field by
        /// field (c70152e's parent), for every kind, after any bytes in `out`.
        #[test]
        fn write_header_writes_what_it_wrote_field_by_field(
            kind in prop_oneof![Just(Kind::Oneway), Just(Kind::Twoway), Just(Kind::Answer)],
            ss in any::<u8>(),
            psize in prop_oneof![0usize..300, any::<u32>().prop_map(|n| n as usize), any::<usize>()],
            seq in any::<u32>(),
            pre in proptest::collection::vec(any::<u8>(), 0..5),
        ) {
            let mut a = pre.clone();
            write_header(&mut a, kind, ss, psize, seq);
            let mut b = pre;
            b.extend_from_slice(MAGIC);
            b.extend_from_slice(&[VERSION, FLAG_MSGPACK, kind.mtype(), ss]);
            b.extend_from_slice(&(psize as u32).to_le_bytes());
            if kind != Kind::Oneway {
                b.extend_from_slice(&seq.to_le_bytes());
            }
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn payload_must_be_exactly_one_value() {
        assert_eq!(decode_payload(&[0x80]).unwrap(), Value::Map(vec![]));
        assert!(decode_payload(&[0x80, 0x80]).is_err());
        assert!(decode_payload(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_payload(&[]).is_err());
    }

    #[test]
    fn a_payload_checked_without_decoding_is_one_value_within_the_limit() {
        let mut bytes = Vec::new();
        encode_payload(&Value::Map(vec![("mtime".into(), 7.into())]), &mut bytes);
        assert_eq!(check_payload_within(&bytes, 1 << 20), Ok(()));
        let mut trailing = bytes.clone();
        trailing.push(0xc0);
        let e = check_payload_within(&trailing, 1 << 20).unwrap_err();
        assert!(e.contains("1 bytes after"), "{e}");
        let e = check_payload_within(&bytes[..bytes.len() - 1], 1 << 20).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        // 3 values (map, key, value): more than 64 bytes' worth of `Value`s.
        let e = check_payload_within(&bytes, 64).unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }

    #[test]
    fn payloads_whose_decoded_tree_would_outgrow_the_limit_are_refused() {
        // An array of 100 000 empty arrays: 100 KiB of msgpack, ~4 MiB decoded.
        let mut buf = vec![0xdd, 0, 1, 0x86, 0xa0];
        buf.extend(std::iter::repeat(0x90u8).take(100_000));
        let err = decode_payload_within(&buf, 1 << 20).unwrap_err();
        assert!(err.contains("more than"), "{err}");
        assert!(decode_payload_within(&buf, 8 << 20).is_ok());
        assert_eq!(count_values(&buf, usize::MAX), Ok((100_001, buf.len())));
    }

    #[test]
    fn the_value_count_matches_every_msgpack_form() {
        let v = Value::Map(vec![
            (Value::from("s"), Value::from("x".repeat(300))),
            (Value::from("b"), Value::Binary(vec![1; 70_000])),
            (
                Value::from("i"),
                Value::Array(vec![
                    Value::from(-1),
                    Value::from(200),
                    Value::from(70_000),
                    Value::from(u64::MAX),
                    Value::from(i64::MIN),
                ]),
            ),
            (
                Value::from("f"),
                Value::Array(vec![
                    Value::F32(1.5),
                    Value::F64(2.5),
                    Value::Nil,
                    Value::from(true),
                ]),
            ),
            (
                Value::from("e"),
                Value::Array(
                    (0..6)
                        .map(|n| Value::Ext(1, vec![0; [1, 2, 4, 8, 16, 3][n]]))
                        .collect(),
                ),
            ),
            (
                Value::from("m"),
                Value::Map(
                    (0..20)
                        .map(|i| (Value::from(i), Value::Array(vec![])))
                        .collect(),
                ),
            ),
        ]);
        let mut bytes = Vec::new();
        encode_payload(&v, &mut bytes);
        // 1 map + 6 keys + 1 str + 1 bin + (1+5) + (1+4) + (1+6) + (1+40)
        assert_eq!(count_values(&bytes, usize::MAX), Ok((68, bytes.len())));
        assert_eq!(decode_payload(&bytes).unwrap(), v);
        for cut in [1, 10, bytes.len() - 1] {
            assert!(
                count_values(&bytes[..cut], usize::MAX).is_err(),
                "cut at {cut}"
            );
        }
    }

    proptest! {
        #[test]
        fn quests_and_answers_round_trip(
            kind in 0u8..3,
            seq in any::<u32>(),
            status in any::<u8>(),
            method in "[a-z]{1,255}",
            payload in proptest::collection::vec(any::<u8>(), 1..600),
        ) {
            let kind = [Kind::Oneway, Kind::Twoway, Kind::Answer][kind as usize];
            let p = Packet {
                kind,
                seq: if kind == Kind::Oneway { 0 } else { seq },
                method: if kind == Kind::Answer { String::new() } else { method },
                status: if kind == Kind::Answer { status } else { 0 },
                payload,
            };
            let bytes = p.encode();
            prop_assert_eq!(bytes.len(), packet_len(kind, p.method.len(), p.payload.len()));
            prop_assert_eq!(Packet::decode(&bytes, DEFAULT_MAX_PACKET).unwrap(), p);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Packet::decode(&bytes, 1024);
            let _ = decode_payload(&bytes);
        }
    }

    #[test]
    fn a_payload_of_fields_max_bytes_never_nests_deeper_than_the_decoder_allows() {
        // Each container takes two of the decoder's levels (as rmpv counts them) and at
        // least one byte, the innermost value up to three (an empty str: one byte): the
        // deepest payload of `FIELDS_MAX` bytes still decodes whatever its leaf, one
        // byte more does not, so the walks of `map_fields` and `check_map_index` accept
        // exactly what the decoder accepts.
        let nested = |n: usize, leaf: u8| {
            let mut b = vec![0x91u8; n - 1];
            b.push(leaf);
            b
        };
        // An empty array, nil, an int; an empty str (3 levels).
        for leaf in [0x90, 0xc0, 0x01, 0xa0] {
            let deepest = nested(FIELDS_MAX, leaf);
            assert!(
                decode_payload_within(&deepest, usize::MAX).is_ok(),
                "{leaf:#x}"
            );
            assert!(
                check_payload_within(&deepest, usize::MAX).is_ok(),
                "{leaf:#x}"
            );
        }
        let deeper = nested(FIELDS_MAX + 1, 0xa0);
        assert!(check_payload_within(&deeper, usize::MAX).is_ok());
        assert!(decode_payload_within(&deeper, usize::MAX).is_err());
    }

    const KEYS: [&str; 4] = ["from", "mid", "msg", "x"];

    /// `map_fields`' positions, decoded.
    fn fields(bytes: &[u8]) -> Option<[Option<Value>; 4]> {
        let at = map_fields(bytes, KEYS)?;
        Some(at.map(|p| p.map(|p| read_value_at(bytes, p).expect("a value starts there"))))
    }

    /// What `map_fields` must find: `map_get` on the decoded value.
    fn fields_by_value(bytes: &[u8]) -> Option<[Option<Value>; 4]> {
        let v = decode_payload(bytes).ok()?;
        v.as_map()?;
        Some(KEYS.map(|k| crate::value::map_get(&v, k).cloned()))
    }

    #[test]
    fn map_fields_finds_what_map_get_finds() {
        let raw = |b: &[u8]| rmpv::decode::read_value(&mut &b[..]).unwrap();
        let cases = [
            Value::Map(vec![]),
            Value::Map(vec![("from".into(), 7.into()), ("mid".into(), "9".into())]),
            // The first of two equal keys; a bin key and a non-UTF-8 str key
            // never match; nested and unknown values are skipped.
            Value::Map(vec![
                (Value::Binary(b"from".to_vec()), 1.into()),
                (raw(&[0xa4, b'f', b'r', b'o', 0xff]), 2.into()),
                (
                    "x".into(),
                    Value::Array(vec![Value::Map(vec![(1.into(), 2.into())])]),
                ),
                ("from".into(), 3.into()),
                ("from".into(), 4.into()),
                (5.into(), "msg".into()),
                ("msg".into(), Value::Binary(vec![0, 0xff])),
            ]),
            Value::Array(vec!["from".into(), 1.into()]),
            Value::from("from"),
        ];
        for v in cases {
            let mut bytes = Vec::new();
            encode_payload(&v, &mut bytes);
            assert_eq!(fields(&bytes), fields_by_value(&bytes), "{v:?}");
        }
        // Too long to read field by field: decoded whole instead.
        let long = Value::Map(vec![("msg".into(), "y".repeat(FIELDS_MAX).into())]);
        let mut bytes = Vec::new();
        encode_payload(&long, &mut bytes);
        assert_eq!(map_fields(&bytes, KEYS), None);
        // Never a panic on bytes nobody checked.
        for garbage in [
            &[0x81][..],
            &[0x82, 0xa4],
            &[0xdf, 0xff, 0xff, 0xff, 0xff],
            &[],
        ] {
            let _ = map_fields(garbage, KEYS);
        }
    }

    proptest! {
        #[test]
        // any_value() holds strs that are not UTF-8, whose bytes both give.
        fn int_and_bytes_values_read_what_the_decoded_value_holds(v in any_value()) {
            let mut bytes = Vec::new();
            encode_payload(&v, &mut bytes);
            let decoded = decode_payload(&bytes).unwrap();
            prop_assert_eq!(int_value(&bytes, 0), crate::value::as_i64(&decoded));
            prop_assert_eq!(bytes_value(&bytes, 0), crate::value::as_bytes(&decoded));
        }

        #[test]
        #[cfg(feature = "gate")]
        fn check_map_index_refuses_what_check_payload_within_refuses(
            entries in proptest::collection::vec((any_value(), any_value()), 0..6),
            edit in 0u8..4,
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
            max_bytes in prop_oneof![Just(DEFAULT_MAX_PACKET), 0usize..400],
        ) {
            let mut bytes = Vec::new();
            encode_payload(&Value::Map(entries), &mut bytes);
            let i = at.index(bytes.len());
            match edit {
                0 => bytes.truncate(i),
                1 => bytes.push(byte),
                2 => bytes[i] = byte,
                _ => {}
            }
            // A buffer that held another index: it is replaced, never added to.
            let mut index = vec![MapEntry { key: None, value: 1 }; 3];
            let checked = check_map_index(&bytes, max_bytes, &mut index);
            prop_assert_eq!(checked.is_ok(), check_payload_within(&bytes, max_bytes).is_ok());
            let Ok(indexed) = checked else { return Ok(()) };
            prop_assert!(indexed || index.is_empty());
            let decoded = decode_payload_within(&bytes, usize::MAX).unwrap();
            // A short map gets its index whenever `fields_readable` lets it be read so.
            let readable = bytes.len() <= FIELDS_MAX && fields_readable(bytes.len(), max_bytes);
            prop_assert_eq!(indexed, readable && decoded.is_map());
            let (true, Value::Map(entries)) = (indexed, decoded) else { return Ok(()) };
            // Each entry: the key's bytes when it is a str, and where its value starts.
            // Values compared encoded: a NaN float is not equal to itself.
            prop_assert_eq!(index.len(), entries.len());
            let enc = |v: &Value| {
                let mut b = Vec::new();
                encode_payload(v, &mut b);
                b
            };
            for (entry, (k, v)) in index.iter().zip(&entries) {
                let str_key = match k {
                    Value::String(s) => Some(s.as_bytes()),
                    _ => None,
                };
                prop_assert_eq!(entry.key(&bytes), str_key);
                prop_assert_eq!(read_value_at(&bytes, entry.value()).map(|x| enc(&x)), Some(enc(v)));
            }
            prop_assert_eq!(Some(index), map_index(&bytes));
        }

        #[test]
        fn map_fields_agrees_with_map_get_on_any_map(
            entries in proptest::collection::vec(
                (prop_oneof![
                    Just(Value::from("from")),
                    Just(Value::from("mid")),
                    Just(Value::from("msg")),
                    Just(Value::from("x")),
                    any_value(),
                ], any_value()),
                0..6,
            )
        ) {
            let mut bytes = Vec::new();
            encode_payload(&Value::Map(entries), &mut bytes);
            if bytes.len() <= FIELDS_MAX && check_payload_within(&bytes, DEFAULT_MAX_PACKET).is_ok() {
                // Compared as bytes: a NaN float is not equal to itself.
                let enc = |f: Option<[Option<Value>; 4]>| {
                    f.map(|f| {
                        f.map(|v| {
                            v.map(|v| {
                                let mut b = Vec::new();
                                encode_payload(&v, &mut b);
                                b
                            })
                        })
                    })
                };
                prop_assert_eq!(enc(fields(&bytes)), enc(fields_by_value(&bytes)));
            }
        }
    }
}
