//! Answer decoding: one trait, [`Answer`], for every method's answer
//! (docs/api-internals.md); the serde helpers the shapes share are in
//! `src/api/de.rs`.
//!
//! An answer is decoded with serde straight from its msgpack bytes, as the
//! connection's reader lends them (`rmp_serde`: no intermediate
//! `rmpv::Value`, no copy of the payload), into the method's wire type; then
//! [`Answer::finish`] turns it into the public result. Whatever the gate
//! sends, decoding never panics: bytes that are not one msgpack value
//! complete the call with 20004 (`FPNN_EC_CORE_DECODING`), as any bad packet
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
    // Exactly one value, and no more of them than the packet limit's worth
    // of `Value`s (the bound `decode_payload_within` keeps): a few bytes
    // cannot make serde build much.
    let limit = bytes.len().max(DEFAULT_MAX_PACKET);
    check_payload_within(bytes, limit)
        .map_err(|bad| RtmError::new(error_code::FPNN_EC_CORE_DECODING, bad))?;
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(ANSWER_DEPTH);
    let wire = W::deserialize(&mut de).map_err(|e| {
        RtmError::new(
            error_code::FPNN_EC_PROTO_TYPE_CONVERT,
            format!("{method} answer: {e}"),
        )
    })?;
    wire.finish()
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
        // bad payload, as for any packet (20004).
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
