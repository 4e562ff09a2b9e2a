//! Reading RTM msgpack answers and building request maps (crate-internal).
//!
//! The readers follow docs/protocol.md section 4 and never panic, whatever the input: integers
//! are accepted in every msgpack width, bodies and attrs as str or bin. (API answers decode
//! through serde with the helpers of `src/api/de.rs`.) Anything of the wrong shape reads as `None` (or an empty
//! value where documented) so the caller decides whether that is an error.
use rmpv::Value;
use std::cell::Cell;
use std::collections::HashMap;

use crate::fpnn::packet;

/// The value under the str key `key` of a map; `None` when `v` is not a map or has no such
/// key. The first matching entry wins.
pub(crate) fn map_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, val)| val),
        _ => None,
    }
}

/// An integer of any msgpack width as `i64`; `None` for non-integers (floats included) and
/// for unsigned values above `i64::MAX`.
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(n) => n.as_i64(),
        _ => None,
    }
}

/// A boolean; integers are accepted too (0 is false, any other integer true).
pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Boolean(b) => Some(*b),
        Value::Integer(n) => {
            if let Some(i) = n.as_i64() {
                Some(i != 0)
            } else {
                // An unsigned value above i64::MAX: non-zero.
                n.as_u64().map(|u| u != 0)
            }
        }
        _ => None,
    }
}

/// The bytes of a str (even one that is not valid UTF-8) or a bin; `None` otherwise.
pub(crate) fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        Value::Binary(b) => Some(b.as_slice()),
        _ => None,
    }
}

/// A message body from the bytes of its str or bin ([`as_bytes`], or
/// `packet::bytes_value` on undecoded bytes): its text (`Some` only when the bytes are
/// valid UTF-8) and its raw bytes. `None` (a missing key, nil or any other type) gives
/// `(Some(""), [])`: an empty body.
pub(crate) fn text_and_bytes(body: Option<&[u8]>) -> (Option<String>, Vec<u8>) {
    match body {
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).ok().map(str::to_owned);
            (text, bytes.to_vec())
        }
        None => (Some(String::new()), Vec::new()),
    }
}

/// The bytes of a str or bin as text, invalid UTF-8 replaced by U+FFFD (for `attrs`);
/// `None` (nil, missing, other types) gives the empty string.
pub(crate) fn string_lossy(body: Option<&[u8]>) -> String {
    match body {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => String::new(),
    }
}

/// An msgpack array of integers, for id lists in requests.
pub(crate) fn i64_array(ids: &[i64]) -> Value {
    Value::Array(ids.iter().map(|&n| Value::from(n)).collect())
}

/// An msgpack array of integers (not bin), for mtype lists in requests.
pub(crate) fn u8_array(items: &[u8]) -> Value {
    Value::Array(items.iter().map(|&n| Value::from(n)).collect())
}

/// An msgpack map of str to str, e.g. the `attrs` of `auth`.
pub(crate) fn string_map(map: &HashMap<String, String>) -> Value {
    Value::Map(
        map.iter()
            .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
            .collect(),
    )
}

/// A value that a request map holds, written straight as msgpack (byte for byte what
/// `rmpv` writes for the `Value` it converts to), so no `Value` is built per request.
pub(crate) trait PutValue {
    /// Appends the msgpack of `self` to `out`.
    fn write_to(self, out: &mut Vec<u8>);
}

/// Integers, in the smallest msgpack form that holds them, as `rmpv` writes them.
macro_rules! put_int {
    ($write:ident, $wide:ty: $($t:ty),+) => {$(
        impl PutValue for $t {
            fn write_to(self, out: &mut Vec<u8>) {
                packet::$write(out, <$wide>::from(self));
            }
        }
    )+};
}
put_int!(write_sint, i64: i8, i16, i32, i64);
put_int!(write_uint, u64: u8, u16, u32, u64);

impl PutValue for bool {
    fn write_to(self, out: &mut Vec<u8>) {
        out.push(if self { 0xc3 } else { 0xc2 });
    }
}

impl PutValue for &str {
    fn write_to(self, out: &mut Vec<u8>) {
        packet::write_str(out, self);
    }
}

impl PutValue for &String {
    fn write_to(self, out: &mut Vec<u8>) {
        packet::write_str(out, self);
    }
}

impl PutValue for String {
    fn write_to(self, out: &mut Vec<u8>) {
        packet::write_str(out, &self);
    }
}

impl PutValue for &[u8] {
    fn write_to(self, out: &mut Vec<u8>) {
        packet::write_bin(out, self);
    }
}

impl PutValue for Vec<u8> {
    fn write_to(self, out: &mut Vec<u8>) {
        packet::write_bin(out, &self);
    }
}

impl PutValue for Value {
    fn write_to(self, out: &mut Vec<u8>) {
        packet::write_value(out, &self);
    }
}

impl PutValue for &Value {
    fn write_to(self, out: &mut Vec<u8>) {
        packet::write_value(out, self);
    }
}

/// A request payload encoded as msgpack, what [`MapBuilder::build`] gives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoded(Vec<u8>);

thread_local! {
    /// The buffer of this thread's last request, once sent, for its next one:
    /// a request is encoded, copied into the connection's outbox and dropped,
    /// so a thread sending one after another reuses one buffer rather than
    /// allocating and freeing one per request. The gate's threads encode their
    /// answers and quests in it the same way ([`with_spare`]).
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The spare buffer is kept only up to this size, so one large request does
/// not pin its memory to the thread.
const SPARE_MAX: usize = 4096;

/// An empty buffer with room for a typical request.
fn request_buffer() -> Vec<u8> {
    // `try_with`: a request built while the thread ends gets a new buffer.
    let mut out = SPARE.try_with(Cell::take).unwrap_or_default();
    if out.capacity() == 0 {
        out.reserve(256);
    }
    out
}

/// Keeps `spare` as this thread's spare buffer, unless it is larger than [`SPARE_MAX`].
fn give_back(mut spare: Vec<u8>) {
    if (1..=SPARE_MAX).contains(&spare.capacity()) {
        spare.clear();
        // `try_with`: a buffer dropped while the thread ends is not kept.
        let _ = SPARE.try_with(|s| s.set(spare));
    }
}

/// Runs `f` with this thread's spare buffer, empty, and keeps it again after: for bytes
/// encoded and then copied elsewhere (the gate's answers and quests, which its reader
/// threads encode one after another, src/gate/server.rs).
#[cfg(feature = "gate")]
pub(crate) fn with_spare<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    // With room for a typical packet: grown from nothing, it would be reallocated a few
    // times over (each time the spare was taken away: the gate's push payloads).
    let mut out = request_buffer();
    let r = f(&mut out);
    give_back(out);
    r
}

impl Drop for Encoded {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

impl Encoded {
    /// The msgpack bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The msgpack bytes, owned.
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }

    /// The payload decoded back (for tests and logs); `Nil` if it does not decode.
    #[cfg(test)]
    pub(crate) fn to_value(&self) -> Value {
        rmpv::decode::read_value(&mut &self.0[..]).unwrap_or(Value::Nil)
    }
}

/// Builds a request map keyed by str, in insertion order, writing its msgpack as it goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MapBuilder {
    /// One byte for the map header (patched in `build`), then the keys and values.
    out: Vec<u8>,
    count: usize,
}

impl Default for MapBuilder {
    fn default() -> MapBuilder {
        MapBuilder::new()
    }
}

impl MapBuilder {
    /// An empty map.
    pub(crate) fn new() -> MapBuilder {
        // Room for a typical request at once (no allocation when this thread's
        // last request left its buffer), and the fixmap header most requests
        // need (under 16 keys).
        let mut out = request_buffer();
        out.push(0x80);
        MapBuilder { out, count: 0 }
    }

    /// Adds `key: value`.
    #[inline(always)]
    pub(crate) fn put(mut self, key: &str, value: impl PutValue) -> MapBuilder {
        packet::write_str(&mut self.out, key);
        value.write_to(&mut self.out);
        self.count += 1;
        self
    }

    /// Adds `key: value` when `value` is `Some`; `None` leaves the key out (never nil).
    pub(crate) fn put_opt<V: PutValue>(self, key: &str, value: Option<V>) -> MapBuilder {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }

    /// The finished map, encoded.
    pub(crate) fn build(mut self) -> Encoded {
        if self.count < 16 {
            self.out[0] = 0x80 | self.count as u8;
        } else {
            let mut header = Vec::with_capacity(5);
            packet::write_count(&mut header, self.count, 0x80, [0xde, 0xdf]);
            self.out.splice(0..1, header);
        }
        Encoded(self.out)
    }
}

/// Every value that a short byte string decodes to, for tests that feed readers garbage:
/// none of them may panic on any of these.
#[cfg(test)]
pub(crate) fn garbage() -> Vec<Value> {
    let mut values = Vec::new();
    for a in 0..=255u8 {
        for tail in [
            &[][..],
            &[0x00][..],
            &[0xff, 0xff][..],
            &[0x81, 0xa1, 0x61][..],
        ] {
            let mut bytes = vec![a];
            bytes.extend_from_slice(tail);
            if let Ok(v) = rmpv::decode::read_value(&mut &bytes[..]) {
                values.push(v);
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes one msgpack value from raw bytes.
    fn decode(bytes: &[u8]) -> Value {
        let mut rd = bytes;
        let v = rmpv::decode::read_value(&mut rd).expect("valid msgpack");
        assert!(rd.is_empty(), "trailing bytes");
        v
    }

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).expect("encode");
        out
    }

    fn roundtrip(v: &Value) -> Value {
        decode(&encode(v))
    }

    #[test]
    fn integers_of_every_width() {
        // (encoding, expected i64)
        let cases: Vec<(Vec<u8>, Option<i64>)> = vec![
            (vec![0x00], Some(0)),                                  // positive fixint
            (vec![0x7f], Some(127)),                                // positive fixint
            (vec![0xff], Some(-1)),                                 // negative fixint
            (vec![0xe0], Some(-32)),                                // negative fixint
            (vec![0xcc, 0xff], Some(255)),                          // uint8
            (vec![0xcc, 0x05], Some(5)),                            // uint8, small
            (vec![0xcd, 0x01, 0x00], Some(256)),                    // uint16
            (vec![0xcd, 0x00, 0x07], Some(7)),                      // uint16, small
            (vec![0xce, 0xff, 0xff, 0xff, 0xff], Some(4294967295)), // uint32
            (vec![0xce, 0x00, 0x00, 0x00, 0x09], Some(9)),          // uint32, small
            (
                vec![0xcf, 0x00, 0x06, 0x0a, 0x24, 0x18, 0x20, 0x24, 0x47],
                Some(1700000000123975),
            ), // uint64
            (
                vec![0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Some(i64::MAX),
            ), // uint64 = i64::MAX
            (
                vec![0xcf, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
                None,
            ), // uint64 above i64::MAX
            (
                vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                None,
            ), // u64::MAX
            (vec![0xcf, 0, 0, 0, 0, 0, 0, 0, 3], Some(3)),          // uint64, small
            (vec![0xd0, 0x80], Some(-128)),                         // int8
            (vec![0xd0, 0x05], Some(5)),                            // int8, positive
            (vec![0xd1, 0x80, 0x00], Some(-32768)),                 // int16
            (vec![0xd1, 0x00, 0x10], Some(16)),                     // int16, positive
            (vec![0xd2, 0x80, 0x00, 0x00, 0x00], Some(i32::MIN as i64)), // int32
            (vec![0xd2, 0x00, 0x00, 0x00, 0x2a], Some(42)),         // int32, positive
            (
                vec![0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
                Some(i64::MIN),
            ), // int64
            (vec![0xd3, 0, 0, 0, 0, 0, 0, 0, 0x63], Some(99)),      // int64, positive
        ];
        for (bytes, want) in cases {
            let v = decode(&bytes);
            assert_eq!(as_i64(&v), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn integers_roundtrip_through_rmpv_encoding() {
        let samples: [i64; 12] = [
            0,
            1,
            -1,
            127,
            128,
            -33,
            65535,
            65536,
            -2147483649,
            4294967296,
            i64::MAX,
            i64::MIN,
        ];
        for n in samples {
            assert_eq!(as_i64(&roundtrip(&Value::from(n))), Some(n));
        }
        assert_eq!(as_i64(&roundtrip(&Value::from(u64::MAX))), None);
        assert_eq!(as_i64(&roundtrip(&Value::from(200u8))), Some(200));
        assert_eq!(as_i64(&roundtrip(&Value::from(-5i8))), Some(-5));
        assert_eq!(as_i64(&roundtrip(&Value::from(60000u16))), Some(60000));
        assert_eq!(as_i64(&roundtrip(&Value::from(-30000i16))), Some(-30000));
        assert_eq!(
            as_i64(&roundtrip(&Value::from(4000000000u32))),
            Some(4000000000)
        );
        assert_eq!(
            as_i64(&roundtrip(&Value::from(-2000000000i32))),
            Some(-2000000000)
        );
    }

    #[test]
    fn non_integers_are_not_integers() {
        for v in [
            Value::Nil,
            Value::from(true),
            Value::from(1.0f64),
            Value::from(1.0f32),
            Value::from("1"),
            Value::Binary(vec![1]),
            Value::Array(vec![]),
            Value::Map(vec![]),
            Value::Ext(1, vec![0]),
        ] {
            assert_eq!(as_i64(&v), None, "{v:?}");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(as_bool(&decode(&[0xc3])), Some(true));
        assert_eq!(as_bool(&decode(&[0xc2])), Some(false));
        assert_eq!(as_bool(&decode(&[0x00])), Some(false));
        assert_eq!(as_bool(&decode(&[0x01])), Some(true));
        assert_eq!(as_bool(&decode(&[0xcc, 0x01])), Some(true));
        assert_eq!(
            as_bool(&decode(&[0xd3, 0, 0, 0, 0, 0, 0, 0, 0])),
            Some(false)
        );
        assert_eq!(as_bool(&Value::from(u64::MAX)), Some(true));
        assert_eq!(as_bool(&Value::Nil), None);
        assert_eq!(as_bool(&Value::from("true")), None);
    }

    #[test]
    fn map_lookup() {
        let v = decode(&encode(&Value::Map(vec![
            (Value::from("a"), Value::from(1)),
            (Value::from(7), Value::from(2)),
            (Value::from("b"), Value::Nil),
            (Value::from("a"), Value::from(3)),
        ])));
        assert_eq!(map_get(&v, "a"), Some(&Value::from(1)));
        assert_eq!(map_get(&v, "b"), Some(&Value::Nil));
        assert_eq!(map_get(&v, "7"), None);
        assert_eq!(map_get(&v, "c"), None);
        assert_eq!(map_get(&Value::Nil, "a"), None);
        assert_eq!(map_get(&Value::Array(vec![Value::from("a")]), "a"), None);
    }

    #[test]
    fn bodies_str_bin_and_invalid_utf8() {
        // str "hé"
        let s = decode(&[0xa3, b'h', 0xc3, 0xa9]);
        assert_eq!(as_bytes(&s), Some("hé".as_bytes()));
        assert_eq!(
            text_and_bytes(as_bytes(&s)),
            (Some("hé".to_string()), "hé".as_bytes().to_vec())
        );
        assert_eq!(string_lossy(as_bytes(&s)), "hé");

        // bin8 "hi"
        let b = decode(&[0xc4, 0x02, b'h', b'i']);
        assert_eq!(as_bytes(&b), Some(&b"hi"[..]));
        assert_eq!(
            text_and_bytes(as_bytes(&b)),
            (Some("hi".to_string()), b"hi".to_vec())
        );
        assert_eq!(string_lossy(as_bytes(&b)), "hi");

        // bin with invalid UTF-8
        let bad_bin = decode(&[0xc4, 0x03, 0xff, 0x00, 0xfe]);
        assert_eq!(
            text_and_bytes(as_bytes(&bad_bin)),
            (None, vec![0xff, 0x00, 0xfe])
        );
        assert_eq!(string_lossy(as_bytes(&bad_bin)), "\u{fffd}\u{0}\u{fffd}");

        // str with invalid UTF-8 (rmpv keeps the bytes)
        let bad_str = decode(&[0xa2, 0xc3, 0x28]);
        assert_eq!(as_bytes(&bad_str), Some(&[0xc3, 0x28][..]));
        assert_eq!(text_and_bytes(as_bytes(&bad_str)), (None, vec![0xc3, 0x28]));
        assert_eq!(string_lossy(as_bytes(&bad_str)), "\u{fffd}(");

        // empty str / bin
        assert_eq!(
            text_and_bytes(as_bytes(&decode(&[0xa0]))),
            (Some(String::new()), vec![])
        );
        assert_eq!(
            text_and_bytes(as_bytes(&decode(&[0xc4, 0x00]))),
            (Some(String::new()), vec![])
        );

        // nil, missing and other types: empty body
        assert_eq!(
            text_and_bytes(as_bytes(&Value::Nil)),
            (Some(String::new()), vec![])
        );
        let m = Value::Map(vec![]);
        assert_eq!(
            text_and_bytes(map_get(&m, "msg").and_then(as_bytes)),
            (Some(String::new()), vec![])
        );
        assert_eq!(
            text_and_bytes(as_bytes(&Value::from(5))),
            (Some(String::new()), vec![])
        );
        assert_eq!(as_bytes(&Value::from(5)), None);
        assert_eq!(string_lossy(as_bytes(&Value::Nil)), "");
        assert_eq!(string_lossy(as_bytes(&Value::from(true))), "");
    }

    #[test]
    fn arrays_for_requests() {
        let ids = i64_array(&[1, -2, i64::MAX]);
        assert_eq!(
            ids,
            Value::Array(vec![Value::from(1), Value::from(-2), Value::from(i64::MAX)])
        );
        assert_eq!(i64_array(&[]), Value::Array(vec![]));

        let mtypes = u8_array(&[30, 31, 255]);
        // An array of integers, not a bin.
        assert_eq!(encode(&mtypes), vec![0x93, 0x1e, 0x1f, 0xcc, 0xff]);
        assert_eq!(u8_array(&[]), Value::Array(vec![]));
    }

    #[test]
    fn string_maps() {
        let mut attrs = HashMap::new();
        attrs.insert("k".to_string(), "v".to_string());
        let v = roundtrip(&string_map(&attrs));
        assert_eq!(map_get(&v, "k"), Some(&Value::from("v")));
        assert_eq!(string_map(&HashMap::new()), Value::Map(vec![]));
    }

    #[test]
    fn map_builder() {
        let none: Option<i64> = None;
        let v = MapBuilder::new()
            .put("gid", 5i64)
            .put("desc", true)
            .put("msg", "hi")
            .put_opt("begin", Some(10i64))
            .put_opt("end", none)
            .put_opt("mtypes", Some(u8_array(&[30])))
            .put_opt::<Value>("lastid", None)
            .build()
            .to_value();
        assert_eq!(
            v,
            Value::Map(vec![
                (Value::from("gid"), Value::from(5)),
                (Value::from("desc"), Value::from(true)),
                (Value::from("msg"), Value::from("hi")),
                (Value::from("begin"), Value::from(10)),
                (Value::from("mtypes"), Value::Array(vec![Value::from(30)])),
            ])
        );
        assert_eq!(map_get(&v, "end"), None);
        assert_eq!(map_get(&v, "lastid"), None);
        // The empty request map encodes as the single byte 0x80.
        assert_eq!(MapBuilder::new().build().bytes(), [0x80]);
        assert_eq!(MapBuilder::default(), MapBuilder::new());
    }

    #[test]
    fn a_reused_request_buffer_starts_empty() {
        // A thread's requests reuse one buffer (SPARE): what one left behind
        // must never show in the next, whatever their sizes.
        let big = MapBuilder::new().put("msg", "z".repeat(1000)).build();
        assert_eq!(
            big.to_value(),
            Value::Map(vec![("msg".into(), "z".repeat(1000).into())])
        );
        drop(big);
        for _ in 0..3 {
            let small = MapBuilder::new().put("to", 7i64).build();
            assert_eq!(small.bytes(), [0x81, 0xa2, b't', b'o', 0x07]);
        }
        let owned = MapBuilder::new().put("a", 1i64).build().into_bytes();
        assert_eq!(owned, [0x81, 0xa1, b'a', 0x01]);
        assert_eq!(MapBuilder::new().build().bytes(), [0x80]);
    }

    #[test]
    fn map_builder_writes_what_rmpv_writes_for_the_same_map() {
        let long = "x".repeat(40);
        let longer = "y".repeat(300);
        let ints: [i64; 12] = [
            0,
            127,
            128,
            255,
            256,
            65536,
            -1,
            -32,
            -33,
            -129,
            -40000,
            i64::MIN,
        ];
        let mut b = MapBuilder::new();
        let mut expected = Vec::new();
        for (i, &n) in ints.iter().enumerate() {
            let key = format!("k{i}");
            b = b.put(&key, n);
            expected.push((Value::from(key), Value::from(n)));
        }
        b = b
            .put("u64", u64::MAX)
            .put("u8", 200u8)
            .put("i32", -5i32)
            .put("no", false)
            .put(&long, longer.as_str())
            .put("owned", long.clone())
            .put("ref", &longer)
            .put("bin", &[1u8, 2][..])
            .put("vec", vec![0u8; 300])
            .put("value", u8_array(&[1, 2]))
            .put("ref_value", &Value::Nil);
        expected.extend([
            (Value::from("u64"), Value::from(u64::MAX)),
            (Value::from("u8"), Value::from(200u8)),
            (Value::from("i32"), Value::from(-5i32)),
            (Value::from("no"), Value::from(false)),
            (Value::from(long.as_str()), Value::from(longer.as_str())),
            (Value::from("owned"), Value::from(long.as_str())),
            (Value::from("ref"), Value::from(longer.as_str())),
            (Value::from("bin"), Value::Binary(vec![1, 2])),
            (Value::from("vec"), Value::Binary(vec![0; 300])),
            (Value::from("value"), u8_array(&[1, 2])),
            (Value::from("ref_value"), Value::Nil),
        ]);
        // 23 keys: the map16 header, inserted when the map is finished.
        assert_eq!(b.build().bytes(), encode(&Value::Map(expected.clone())));
        // 15 keys keep the one-byte fixmap header.
        let mut b = MapBuilder::new();
        for (k, v) in &expected[..15] {
            b = b.put(k.as_str().unwrap(), v);
        }
        let fix = Value::Map(expected[..15].to_vec());
        assert_eq!(b.build().bytes(), encode(&fix));
    }

    #[test]
    fn garbage_never_panics() {
        let values = garbage();
        assert!(!values.is_empty());
        for v in &values {
            let _ = map_get(v, "a");
            let _ = as_i64(v);
            let _ = as_bool(v);
            let _ = as_bytes(v);
            let _ = text_and_bytes(as_bytes(v));
            let _ = string_lossy(as_bytes(v));
        }
    }
}
