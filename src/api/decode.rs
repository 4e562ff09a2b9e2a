//! Answer decoding: one trait, [`Answer`], for every method's answer
//! (docs/api-internals.md); the serde helpers the shapes share are in
//! `src/api/de.rs`.
//!
//! An answer is decoded with serde straight from its msgpack bytes, as the
//! connection's reader lends them (`rmp_serde`: no intermediate
//! `rmpv::Value`, no copy of the payload), into the method's wire type; then
//! [`Answer::finish`] turns it into the public result. Whatever the gate
//! sends, decoding never panics: bytes that are not one msgpack value
//! complete the call with 20006 (`FPNN_EC_CORE_DECODING`), as any bad packet
//! does; a missing key, a wrong type or nesting deeper than
//! [`ANSWER_DEPTH`] with 10010 (`FPNN_EC_PROTO_TYPE_CONVERT`), naming the
//! method and what was wrong.

use rmpv::Value;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny};
use serde::Deserialize;

use crate::error::{error_code, RtmError};
use crate::fpnn::packet::{check_payload_within, DEFAULT_MAX_PACKET};

/// A wire type a method's answer decodes into, and how it becomes the
/// result the callback receives.
///
/// Implement it with [`answer!`]: `answer!(T)` when the public type derives
/// `Deserialize` itself, `answer!(Wire => Out)` when `Out: From<Wire>`. Implement it by hand only when finishing can fail.
pub(crate) trait Answer: DeserializeOwned + Send + 'static {
    /// The result handed to the callback.
    type Out: Send + 'static;
    /// The result, or the error the call completes with.
    fn finish(self) -> Result<Self::Out, RtmError>;
    /// The wire value read from `bytes` without serde, for an answer so plain
    /// that a few byte comparisons read it (`sendmsg`'s `{mtime}`, the answer
    /// of every message sent); `None`, the default, and [`decode_bytes`]
    /// decodes with serde. Wherever it gives `Some`, it must be what serde
    /// would give.
    fn quick(_bytes: &[u8]) -> Option<Self> {
        None
    }
}

/// Implements [`Answer`]: `answer!(A, B)` for types that are their own wire
/// type; `answer!(Wire => Out)` for `Out: From<Wire>`.
macro_rules! answer {
    ($wire:ty => $out:ty) => {
        impl $crate::api::decode::Answer for $wire {
            type Out = $out;
            fn finish(self) -> Result<$out, $crate::error::RtmError> {
                Ok(<$out>::from(self))
            }
        }
    };
    ($($t:ty),+ $(,)?) => {
        $($crate::api::decode::answer!($t => $t);)+
    };
}
pub(crate) use answer;

/// The empty answer `{}` (or any answer whose content is not used): `()`.
pub(crate) type Empty = IgnoredAny;

impl Answer for IgnoredAny {
    type Out = ();
    fn finish(self) -> Result<(), RtmError> {
        Ok(())
    }
}

/// An answer that is one list of ids, `{uids}`, `{gids}` or `{rooms}`
/// (`getfriends`, `getblacks`, `getonlineusers`, `getusergroups`,
/// `getuserrooms`): the list, as `Vec<i64>`. A missing or nil list is empty.
#[derive(Deserialize)]
pub(crate) struct IdList {
    #[serde(
        default,
        alias = "gids",
        alias = "rooms",
        deserialize_with = "super::de::ids"
    )]
    uids: Vec<i64>,
}

impl From<IdList> for Vec<i64> {
    fn from(w: IdList) -> Vec<i64> {
        w.uids
    }
}
answer!(IdList => Vec<i64>);

/// How deeply an answer's arrays and maps may nest. RTM answers nest a few
/// levels; the limit keeps serde's recursion (one stack frame chain per
/// level) well inside the reader thread's stack in any build.
pub(crate) const ANSWER_DEPTH: usize = 128;

/// Decodes the answer payload `bytes` of `method` into `W` and finishes it.
pub(crate) fn decode_bytes<W: Answer>(method: &str, bytes: &[u8]) -> Result<W::Out, RtmError> {
    match W::quick(bytes) {
        Some(wire) => wire.finish(),
        None => decode_serde::<W>(method, bytes)?.finish(),
    }
}

/// [`decode_bytes`], for the fuzz target (`fuzz_decode_answer`) and the
/// property test `int_field_agrees_with_serde`: panics when
/// [`Answer::quick`] reads `bytes` and serde does not give the same.
pub(crate) fn quick_checked<W>(method: &str, bytes: &[u8]) -> Result<W::Out, RtmError>
where
    W: Answer + PartialEq + std::fmt::Debug,
{
    if let Some(quick) = W::quick(bytes) {
        let serde = decode_serde::<W>(method, bytes);
        assert_eq!(serde.as_ref().ok(), Some(&quick), "{bytes:x?}: {serde:?}");
    }
    decode_bytes::<W>(method, bytes)
}

/// The wire value of `bytes` decoded with serde: [`decode_bytes`] when
/// [`Answer::quick`] does not read them.
fn decode_serde<W: Answer>(method: &str, bytes: &[u8]) -> Result<W, RtmError> {
    // Exactly one value, and no more of them than the packet limit's worth
    // of `Value`s (the bound `decode_payload_within` keeps): a few bytes
    // cannot make serde build much.
    let limit = bytes.len().max(DEFAULT_MAX_PACKET);
    check_payload_within(bytes, limit)
        .map_err(|bad| RtmError::new(error_code::FPNN_EC_CORE_DECODING, bad))?;
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(ANSWER_DEPTH);
    W::deserialize(&mut de).map_err(|e| {
        RtmError::new(
            error_code::FPNN_EC_PROTO_TYPE_CONVERT,
            format!("{method} answer: {e}"),
        )
    })
}

/// Decodes the answer `v` of `method` into `W` and finishes it: `v` encoded,
/// then [`decode_bytes`] (the tests' way in).
pub(crate) fn decode<W: Answer>(method: &str, v: Value) -> Result<W::Out, RtmError> {
    let mut bytes = Vec::new();
    crate::fpnn::packet::encode_payload(&v, &mut bytes);
    decode_bytes::<W>(method, &bytes)
}

/// The wire type of an answer that is `{}` when the message asked for does
/// not exist (`getmsg`): finishes with 10009 (`FPNN_EC_PROTO_KEY_NOT_FOUND`,
/// "message not found").
pub(crate) struct Found<W>(Option<W>);

impl<'de, W: DeserializeOwned> Deserialize<'de> for Found<W> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if v.as_map().is_some_and(|m| m.is_empty()) {
            return Ok(Found(None));
        }
        rmpv::ext::from_value(v)
            .map(|w| Found(Some(w)))
            .map_err(de::Error::custom)
    }
}

impl<W: Answer> Answer for Found<W> {
    type Out = W::Out;
    fn finish(self) -> Result<W::Out, RtmError> {
        match self.0 {
            Some(w) => w.finish(),
            None => Err(RtmError::new(
                error_code::FPNN_EC_PROTO_KEY_NOT_FOUND,
                "message not found",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SendPayload;
    use proptest::prelude::*;

    fn list(key: &str, v: Value) -> Result<Vec<i64>, RtmError> {
        decode::<IdList>("m", Value::Map(vec![(key.into(), v)]))
    }

    fn bytes(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        crate::fpnn::packet::encode_payload(v, &mut b);
        b
    }

    #[test]
    fn answers_are_decoded_from_their_bytes_and_checked_whole() {
        let good = bytes(&Value::Map(vec![(
            "uids".into(),
            vec![Value::from(7)].into(),
        )]));
        assert_eq!(decode_bytes::<IdList>("m", &good).unwrap(), [7]);
        // Bytes after the value, a value cut short, or no msgpack at all: a
        // bad payload, as for any packet (20006).
        let mut trailing = good.clone();
        trailing.push(0xc0);
        for bad in [
            &trailing[..],
            &good[..good.len() - 1],
            &[0x92, 0x01][..],
            &[][..],
        ] {
            let e = decode_bytes::<IdList>("m", bad).unwrap_err();
            assert_eq!(e.code, error_code::FPNN_EC_CORE_DECODING, "{bad:?}: {e:?}");
        }
        // Well-formed but the wrong shape: 10010, naming the method. (The
        // reserved marker 0xc1 reads as nil, as rmpv reads it.)
        for wrong in [bytes(&Value::from("x")), vec![0xc1]] {
            let e = decode_bytes::<IdList>("getfriends", &wrong).unwrap_err();
            assert_eq!(e.code, error_code::FPNN_EC_PROTO_TYPE_CONVERT, "{wrong:?}");
            assert!(e.ex.starts_with("getfriends answer:"), "{}", e.ex);
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_not_overflowed() {
        // An unknown key whose value nests far past ANSWER_DEPTH (each level
        // a one-element array), which serde would skip recursively.
        let depth = 100_000;
        let mut b = vec![0x81, 0xa1, b'x'];
        b.extend(std::iter::repeat(0x91).take(depth));
        b.push(0xc0);
        let e = decode_bytes::<IdList>("m", &b).unwrap_err();
        assert_eq!(e.code, error_code::FPNN_EC_PROTO_TYPE_CONVERT, "{e:?}");
        // Within the limit it decodes (the unknown key is ignored).
        let mut b = vec![0x81, 0xa1, b'x'];
        b.extend(std::iter::repeat(0x91).take(ANSWER_DEPTH - 2));
        b.push(0xc0);
        assert_eq!(decode_bytes::<IdList>("m", &b).unwrap(), Vec::<i64>::new());
    }

    /// A msgpack fragment for the maps `int_field_agrees_with_serde` builds:
    /// one of `choices`, or arbitrary bytes.
    fn fragment(choices: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => proptest::sample::select(choices),
            1 => proptest::collection::vec(any::<u8>(), 0..4),
        ]
    }

    /// `mtime` and other keys, as str (fixstr and str8), bin, a non-UTF-8
    /// str and an integer.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        fragment(vec![
            b"\xa5mtime".to_vec(),
            b"\xd9\x05mtime".to_vec(),
            b"\xc4\x05mtime".to_vec(),
            b"\xa1x".to_vec(),
            b"\xa2\xff\xfe".to_vec(),
            vec![0x01],
        ])
    }

    /// Integers in every encoding (each width, at and past the `i64` edges),
    /// and the other kinds of values, nested ones included (one past serde's
    /// depth limit).
    fn value() -> impl Strategy<Value = Vec<u8>> {
        let int = (
            proptest::sample::select(vec![
                0x00u8, 0x7f, 0xe0, 0xff, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3,
            ]),
            any::<u64>(),
            0usize..3,
        )
            .prop_map(|(m, n, edge)| {
                let n = [n, i64::MAX as u64, 1 << 63][edge];
                let len = match m {
                    0xcc..=0xcf => 1 << (m - 0xcc),
                    0xd0..=0xd3 => 1 << (m - 0xd0),
                    _ => 0,
                };
                let mut b = vec![m];
                b.extend_from_slice(&n.to_be_bytes()[8 - len..]);
                b
            });
        prop_oneof![
            3 => int,
            2 => fragment(vec![
                vec![0xc0],
                vec![0xc1],
                vec![0xc3],
                vec![0xca, 0, 0, 0x80, 0x3f],
                vec![0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0],
                b"\xa3abc".to_vec(),
                vec![0xa2, 0xff, 0xfe],
                vec![0xc4, 0x01, 0x07],
                vec![0x91, 0x01],
                vec![0x80],
                vec![0xd4, 0x01, 0x02],
                // Deeper than serde goes (ANSWER_DEPTH).
                [vec![0x91; ANSWER_DEPTH + 1], vec![0xc0]].concat(),
            ]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Wherever `sendmsg`'s quick read gives an answer, serde gives the
        /// same one: on maps of any keys and values (the count in the header
        /// sometimes off by one, sometimes a byte after the map) and on
        /// arbitrary bytes.
        #[test]
        fn int_field_agrees_with_serde(
            entries in proptest::collection::vec((key(), value()), 0..4),
            count_off in -1i8..=1,
            map16 in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..2),
            junk in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let count = (entries.len() as i64 + i64::from(count_off)).max(0) as u16;
            let mut b = if map16 {
                vec![0xde, (count >> 8) as u8, count as u8]
            } else {
                vec![0x80 | (count as u8 & 0x0f)]
            };
            for (k, v) in &entries {
                b.extend_from_slice(k);
                b.extend_from_slice(v);
            }
            b.extend(tail);
            for bytes in [&b[..], &junk[..]] {
                // The fuzz target's check: panics where the two differ.
                let _ = quick_checked::<SendPayload>("sendmsg", bytes);
            }
        }
    }

    #[test]
    fn the_send_answer_is_read_quickly_in_every_integer_encoding() {
        let mtime = 1_700_000_000_123i64;
        let answers: [&[u8]; 5] = [
            // As the gate and FPNN servers send it: {mtime: uint64}.
            b"\x81\xa5mtime\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x7b",
            b"\x81\xa5mtime\xd3\x00\x00\x01\x8b\xcf\xe5\x68\x7b",
            // Among other scalar fields, under a str8 key, in a map16.
            b"\x83\xa1x\xc0\xd9\x05mtime\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x7b\xa1y\xa1z",
            b"\xde\x00\x01\xa5mtime\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x7b",
            b"\x82\xa1x\xcb\x3f\xf0\0\0\0\0\0\0\xa5mtime\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x7b",
        ];
        for a in answers {
            assert_eq!(SendPayload::quick(a), Some(SendPayload { mtime }), "{a:x?}");
            assert_eq!(
                decode_bytes::<SendPayload>("sendmsg", a).unwrap().mtime,
                mtime
            );
        }
        for (b, n) in [(&[0x7fu8][..], 127), (&[0xe0], -32), (&[0xd0, 0x80], -128)] {
            let a = [b"\x81\xa5mtime".as_slice(), b].concat();
            assert_eq!(
                SendPayload::quick(&a),
                Some(SendPayload { mtime: n }),
                "{a:x?}"
            );
        }
        // Left to serde, which decides: a nested value, a bin key, the key
        // twice, an out-of-range or float value, a byte too many.
        let serde_only: [&[u8]; 6] = [
            b"\x82\xa1x\x91\x01\xa5mtime\x01",
            b"\x81\xc4\x05mtime\x01",
            b"\x82\xa5mtime\x01\xa5mtime\x02",
            b"\x81\xa5mtime\xcf\x80\0\0\0\0\0\0\0",
            b"\x81\xa5mtime\xca\0\0\0\0",
            b"\x81\xa5mtime\x01\xc0",
        ];
        for a in serde_only {
            assert_eq!(SendPayload::quick(a), None, "{a:x?}");
        }
        // Which accepts the first two and refuses the rest.
        for (a, ok) in serde_only
            .iter()
            .zip([true, true, false, false, false, false])
        {
            assert_eq!(
                decode_serde::<SendPayload>("sendmsg", a).is_ok(),
                ok,
                "{a:x?}"
            );
        }
    }

    #[test]
    fn an_id_list_under_any_of_its_keys() {
        let ids = Value::Array(vec![1.into(), "2".into(), (1u64 << 60).into()]);
        for key in ["uids", "gids", "rooms"] {
            assert_eq!(list(key, ids.clone()).unwrap(), [1, 2, 1 << 60], "{key}");
            assert_eq!(list(key, Value::Nil).unwrap(), Vec::<i64>::new());
        }
        assert_eq!(list("other", ids).unwrap(), Vec::<i64>::new());
        let e = list("uids", Value::Array(vec!["x".into()])).unwrap_err();
        assert_eq!(e.code, error_code::FPNN_EC_PROTO_TYPE_CONVERT);
    }
}
