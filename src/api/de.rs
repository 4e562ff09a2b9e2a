//! Serde helpers for the shapes RTM answers share (docs/api-internals.md):
//! ids of any integer width or as decimal strings, id-keyed maps, counts,
//! flags, text-or-bytes bodies and history rows. Use them on wire fields with
//! `#[serde(default, deserialize_with = "crate::api::de::NAME")]`.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use rmpv::Value;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// An id: an integer of any msgpack width, or a decimal str or bin.
pub(crate) fn id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IdVisitor)
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id (integer or decimal string)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("id {v} out of range")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse()
            .map_err(|_| E::custom(format!("id {v:?} is not a decimal integer")))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<i64, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::custom("id bytes are not UTF-8")),
        }
    }
}

/// An id as a value of its own (for keys and list elements).
pub(crate) struct Id(pub(crate) i64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        id(d).map(Id)
    }
}

/// `T`, with nil (and, with `#[serde(default)]`, a missing key) read as
/// `T::default()`.
pub(crate) fn nil_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A list of ids (see [`id`]); nil is empty.
pub(crate) fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    let v: Option<Vec<Id>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|i| i.0).collect())
}

/// A map keyed by ids (integer or decimal str keys); nil is empty. Each
/// entry is read on its own: one whose key is not an id (see [`id`]) or
/// whose value `T` cannot read is skipped, and the others are kept. A value
/// that is neither a map nor nil is an error.
pub(crate) fn id_map<'de, D, T>(d: D) -> Result<HashMap<i64, T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    id_map_as::<D, T, T>(d)
}

/// An [`id_map`] of texts, each read as [`lossy`] (str or bin, invalid
/// UTF-8 replaced, nil `""`), as the single `oinfo` readers do: the
/// `{info: {id: oinfo}}` answers of the multi-id open-info methods.
pub(crate) fn lossy_map<'de, D>(d: D) -> Result<HashMap<i64, String>, D::Error>
where
    D: Deserializer<'de>,
{
    id_map_as::<D, Lossy, String>(d)
}

/// An [`id_map`] whose values are read as `R` and kept as `T`.
fn id_map_as<'de, D, R, T>(d: D) -> Result<HashMap<i64, T>, D::Error>
where
    D: Deserializer<'de>,
    R: DeserializeOwned,
    T: From<R>,
{
    let m: Option<IdMap<R, T>> = Option::deserialize(d)?;
    Ok(m.map(|m| m.0).unwrap_or_default())
}

struct IdMap<R, T>(HashMap<i64, T>, PhantomData<R>);

impl<'de, R: DeserializeOwned, T: From<R>> Deserialize<'de> for IdMap<R, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(IdMapVisitor(PhantomData))
    }
}

struct IdMapVisitor<R, T>(PhantomData<(R, T)>);

impl<'de, R: DeserializeOwned, T: From<R>> Visitor<'de> for IdMapVisitor<R, T> {
    type Value = IdMap<R, T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map keyed by ids")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<IdMap<R, T>, A::Error> {
        let mut out = HashMap::new();
        // Each entry is read whole as a `Value` first (bounded as the
        // payload is: docs/api-internals.md), so that an entry that cannot
        // be read is dropped without leaving the rest of the map unread.
        while let Some((k, v)) = m.next_entry::<Value, Value>()? {
            if let (Ok(k), Ok(v)) = (id(k), R::deserialize(v)) {
                out.insert(k, T::from(v));
            }
        }
        Ok(IdMap(out, PhantomData))
    }
}

/// A count: an integer of any msgpack width, saturated to `0..=i32::MAX`
/// (a negative count is 0, one above `i32::MAX`, even above `i64::MAX`,
/// is `i32::MAX`); nil is 0. Anything else (a float, a str) is an error.
pub(crate) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    Count::deserialize(d).map(|c| c.0)
}

/// A list of counts (see [`count`]); nil is empty.
pub(crate) fn counts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i32>, D::Error> {
    let v: Option<Vec<Count>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|c| c.0).collect())
}

/// An [`id_map`] of counts, each read as [`count`] (an entry whose count is
/// neither an integer nor nil is skipped).
pub(crate) fn count_map<'de, D>(d: D) -> Result<HashMap<i64, i32>, D::Error>
where
    D: Deserializer<'de>,
{
    id_map_as::<D, Count, i32>(d)
}

/// [`count`] as a value of its own (for list elements and map values).
struct Count(i32);

impl From<Count> for i32 {
    fn from(c: Count) -> i32 {
        c.0
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a count (an integer or nil)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                Ok(Count(v.clamp(0, i64::from(i32::MAX)) as i32))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(i32::try_from(v).unwrap_or(i32::MAX)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_none<E: de::Error>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Count, D::Error> {
                d.deserialize_any(self)
            }
        }
        d.deserialize_any(V)
    }
}

/// A flag: a bool, or an integer (0 is false).
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a bool or an integer")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            Ok(v != 0)
        }
    }
    d.deserialize_any(V)
}

/// A str or bin as text, invalid UTF-8 replaced by U+FFFD (for `attrs`,
/// `oinfo`, `pinfo`); nil is the empty string.
pub(crate) fn lossy<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<Body>::deserialize(d)?
        .map(|b| String::from_utf8_lossy(&b.bytes).into_owned())
        .unwrap_or_default())
}

/// [`lossy`] as a value of its own (for map values).
struct Lossy(String);

impl<'de> Deserialize<'de> for Lossy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lossy(d).map(Lossy)
    }
}

impl From<Lossy> for String {
    fn from(l: Lossy) -> String {
        l.0
    }
}

/// A message body (`msg`) that may arrive as str or bin: its raw bytes,
/// and its text when they are valid UTF-8. Nil (or a missing key, with
/// `#[serde(default)]`) is the empty body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    pub(crate) text: Option<String>,
    pub(crate) bytes: Vec<u8>,
}

impl Default for Body {
    fn default() -> Body {
        Body {
            text: Some(String::new()),
            bytes: Vec::new(),
        }
    }
}

impl Body {
    fn of(bytes: Vec<u8>) -> Body {
        let text = std::str::from_utf8(&bytes).ok().map(str::to_owned);
        Body { text, bytes }
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Body;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a str or bin body")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Body, E> {
                Ok(Body::of(v.as_bytes().to_vec()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Body, E> {
                Ok(Body::of(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Body, E> {
                Ok(Body::of(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Body, E> {
                Ok(Body::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A history row `[id, from|direction, mtype, mid, deleted, msg, attrs,
/// mtime]`; elements after the eighth are ignored. Public message types
/// built from rows use `#[serde(from = "Row")]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) id: i64,
    /// `from` in group, room and broadcast histories, `direction` in p2p.
    pub(crate) second: i64,
    pub(crate) mtype: u8,
    pub(crate) mid: i64,
    pub(crate) deleted: bool,
    pub(crate) msg: Body,
    pub(crate) attrs: String,
    pub(crate) mtime: i64,
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(RowVisitor)
    }
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = Row;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a history row of 8 elements")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Row, A::Error> {
        let mut el = [
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
        ];
        for (i, slot) in el.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let [i, second, mtype, mid, deleted, msg, attrs, mtime] = el;
        let e = de::Error::custom;
        Ok(Row {
            id: id(i).map_err(e)?,
            second: id(second).map_err(e)?,
            mtype: u8::deserialize(mtype).map_err(e)?,
            mid: id(mid).map_err(e)?,
            deleted: flag(deleted).map_err(e)?,
            msg: Body::deserialize(msg).map_err(e)?,
            attrs: lossy(attrs).map_err(e)?,
            mtime: i64::deserialize(mtime).map_err(e)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Deserialize, Debug, PartialEq)]
    struct W {
        #[serde(default, deserialize_with = "id")]
        id: i64,
        #[serde(default, deserialize_with = "ids")]
        ids: Vec<i64>,
        #[serde(default, deserialize_with = "id_map")]
        counts: HashMap<i64, i32>,
        #[serde(default, deserialize_with = "lossy_map")]
        texts: HashMap<i64, String>,
        #[serde(default, deserialize_with = "count")]
        n: i32,
        #[serde(default, deserialize_with = "counts")]
        ns: Vec<i32>,
        #[serde(default, deserialize_with = "count_map")]
        cm: HashMap<i64, i32>,
        #[serde(default, deserialize_with = "flag")]
        f: bool,
        #[serde(default)]
        msg: Body,
        #[serde(default, deserialize_with = "lossy")]
        attrs: String,
        #[serde(default, deserialize_with = "nil_default")]
        t: i64,
    }

    fn w(entries: Vec<(&str, Value)>) -> Result<W, String> {
        let m = entries.into_iter().map(|(k, v)| (k.into(), v)).collect();
        both(Value::Map(m))
    }

    /// `v` decoded as answers are (its msgpack bytes through `rmp_serde`),
    /// after checking that decoding the `Value` itself (as `Found` and rows
    /// do) gives the same result.
    fn both<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        v: Value,
    ) -> Result<T, String> {
        let via_value = rmpv::ext::from_value::<T>(v.clone()).map_err(|e| e.to_string());
        let via_bytes = bytes_only::<T>(&v);
        match (&via_value, &via_bytes) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{v:?}"),
            (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "{v:?}: {a:?} / {b:?}"),
        }
        via_bytes
    }

    fn bytes_only<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
        let mut b = Vec::new();
        crate::fpnn::packet::encode_payload(v, &mut b);
        rmp_serde::from_slice::<T>(&b).map_err(|e| e.to_string())
    }

    fn read(bytes: &[u8]) -> Value {
        rmpv::decode::read_value(&mut &bytes[..]).unwrap()
    }

    #[test]
    fn ids_from_every_integer_width_and_decimal_strings() {
        let cases: Vec<(Value, Option<i64>)> = vec![
            (read(&[0x7f]), Some(127)),
            (read(&[0xe0]), Some(-32)),
            (read(&[0xcc, 0xff]), Some(255)),
            (read(&[0xcd, 0x01, 0x00]), Some(256)),
            (read(&[0xce, 0xff, 0xff, 0xff, 0xff]), Some(4294967295)),
            (
                read(&[0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
                Some(i64::MAX),
            ),
            (read(&[0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0]), None),
            (read(&[0xd0, 0x80]), Some(-128)),
            (read(&[0xd1, 0x80, 0x00]), Some(-32768)),
            (read(&[0xd2, 0x80, 0, 0, 0]), Some(i64::from(i32::MIN))),
            (read(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]), Some(i64::MIN)),
            ("123".into(), Some(123)),
            ("-5".into(), Some(-5)),
            ("9223372036854775808".into(), None),
            ("".into(), None),
            ("12a".into(), None),
            (" 1".into(), None),
            (Value::Binary(b"77".to_vec()), Some(77)),
            (Value::Binary(vec![0xff]), None),
            (Value::from(1.5f64), None),
            (Value::from(true), None),
        ];
        for (v, want) in cases {
            assert_eq!(w(vec![("id", v.clone())]).ok().map(|w| w.id), want, "{v:?}");
        }
    }

    #[test]
    fn lists_maps_counts_and_flags() {
        let x = w(vec![
            (
                "ids",
                Value::Array(vec![1.into(), (-70000).into(), "42".into()]),
            ),
            (
                "counts",
                Value::Map(vec![("1001".into(), 3.into()), (1002.into(), 4.into())]),
            ),
            ("n", (i64::from(i32::MAX) + 5).into()),
            ("f", 1.into()),
            ("t", Value::Nil),
        ])
        .unwrap();
        assert_eq!(x.ids, [1, -70000, 42]);
        assert_eq!(
            (x.counts[&1001], x.counts[&1002], x.counts.len()),
            (3, 4, 2)
        );
        assert_eq!((x.n, x.f, x.t), (i32::MAX, true, 0));
        let nil = w(vec![
            ("ids", Value::Nil),
            ("counts", Value::Nil),
            ("n", Value::Nil),
        ])
        .unwrap();
        assert!(nil.ids.is_empty() && nil.counts.is_empty() && nil.n == 0);
        assert!(w(vec![("ids", Value::Array(vec![Value::Nil]))]).is_err());
        assert!(w(vec![("ids", Value::Map(vec![]))]).is_err());
        assert!(w(vec![("counts", 5.into())]).is_err());
        assert!(w(vec![("f", "yes".into())]).is_err());
        assert!(w(vec![("t", "1".into())]).is_err());
    }

    #[test]
    fn id_map_entries_that_cannot_be_read_are_skipped() {
        // Keys that are not ids, values that are not counts, and a value
        // that is a whole nested map: each entry is dropped alone, and the
        // entries after it are still read.
        let x = w(vec![
            (
                "counts",
                Value::Map(vec![
                    ("x".into(), 1.into()),
                    (1.into(), 2.into()),
                    (Value::Nil, 3.into()),
                    (2.into(), "x".into()),
                    (Value::Array(vec![4.into()]), 4.into()),
                    (3.into(), Value::Map(vec![(1.into(), 2.into())])),
                    ("4".into(), 5.into()),
                    (1.5f64.into(), 6.into()),
                    (Value::Binary(vec![0xff]), 7.into()),
                ]),
            ),
            ("n", 9.into()),
        ])
        .unwrap();
        assert_eq!(x.counts, HashMap::from([(1, 2), (4, 5)]));
        assert_eq!(x.n, 9);
    }

    #[test]
    fn bodies_are_text_or_bytes() {
        let x = w(vec![
            ("msg", "hé".into()),
            ("attrs", Value::Binary(vec![b'a', 0xff])),
        ])
        .unwrap();
        assert_eq!(
            (x.msg.text.as_deref(), x.msg.bytes.as_slice()),
            (Some("hé"), "hé".as_bytes())
        );
        assert_eq!(x.attrs, "a\u{fffd}");
        // A str whose bytes are not UTF-8 (both deserializers hand it over
        // as bytes).
        let bad = read(&[0x81, 0xa3, b'm', b's', b'g', 0xa1, 0xff]);
        let x: W = both(bad).unwrap();
        assert_eq!((x.msg.text, x.msg.bytes), (None, vec![0xff]));
        let x = w(vec![("msg", Value::Nil)]).unwrap();
        assert_eq!((x.msg.text.as_deref(), x.attrs.as_str()), (Some(""), ""));
        assert!(w(vec![("msg", 5.into())]).is_err());
    }

    #[test]
    fn counts_of_every_integer_width_saturate_to_i32() {
        let max = i32::MAX;
        let cases: Vec<(Value, Option<i32>)> = vec![
            (read(&[0x05]), Some(5)),
            (read(&[0xff]), Some(0)),
            (read(&[0xcc, 0xff]), Some(255)),
            (read(&[0xce, 0x7f, 0xff, 0xff, 0xff]), Some(max)),
            (read(&[0xce, 0x80, 0, 0, 0]), Some(max)),
            (
                read(&[0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
                Some(max),
            ),
            (
                read(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
                Some(max),
            ),
            (read(&[0xd2, 0x80, 0, 0, 0]), Some(0)),
            (read(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]), Some(0)),
            (Value::Nil, Some(0)),
            ("1".into(), None),
            (Value::from(1.5f64), None),
            (Value::from(true), None),
            (Value::Array(vec![]), None),
        ];
        for (v, want) in cases {
            let got = w(vec![("n", v.clone())]).ok().map(|w| w.n);
            assert_eq!(got, want, "count {v:?}");
            let got = w(vec![("ns", Value::Array(vec![v.clone()]))]).ok();
            assert_eq!(got.map(|w| w.ns), want.map(|n| vec![n]), "counts [{v:?}]");
            let got = w(vec![("cm", Value::Map(vec![(1.into(), v.clone())]))]).unwrap();
            let want: HashMap<i64, i32> = want.map(|n| (1, n)).into_iter().collect();
            assert_eq!(got.cm, want, "count_map {{1: {v:?}}}");
        }
    }

    #[test]
    fn lossy_map_values_are_text_from_str_bin_or_nil() {
        let x = w(vec![(
            "texts",
            Value::Map(vec![
                ("1".into(), Value::Binary(vec![b'a', 0xff])),
                (2.into(), Value::Nil),
                ("3".into(), "ok".into()),
                ("4".into(), 5.into()),
            ]),
        )])
        .unwrap();
        let want = |p: &[(i64, &str)]| p.iter().map(|&(k, v)| (k, v.to_owned())).collect();
        assert_eq!(x.texts, want(&[(1, "a\u{fffd}"), (2, ""), (3, "ok")]));
        // {texts: {"5": str of bytes a, 0xff}}: a str that is not UTF-8.
        let mut b = vec![0x81, 0xa5];
        b.extend_from_slice(b"texts");
        b.extend_from_slice(&[0x81, 0xa1, b'5', 0xa2, b'a', 0xff]);
        let x: W = both(read(&b)).unwrap();
        assert_eq!(x.texts, want(&[(5, "a\u{fffd}")]));
    }

    #[test]
    fn rows_need_eight_elements_and_ignore_more() {
        let row = |n: usize| {
            let mut v: Vec<Value> = vec![
                "9".into(),
                2.into(),
                31.into(),
                5.into(),
                0.into(),
                Value::Binary(vec![1]),
                "a".into(),
                7.into(),
            ];
            v.resize(n, Value::Nil);
            both::<Row>(Value::Array(v))
        };
        let r = row(8).unwrap();
        assert_eq!(
            (r.id, r.second, r.mtype, r.mid, r.deleted),
            (9, 2, 31, 5, false)
        );
        assert_eq!(
            (r.msg.text.as_deref(), r.attrs.as_str(), r.mtime),
            (Some("\u{1}"), "a", 7)
        );
        assert_eq!(row(10).unwrap(), r);
        assert!(row(7).is_err());
        assert!(both::<Row>(Value::from(1)).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        for v in crate::value::garbage() {
            // Both deserializers; they need not agree on garbage.
            let _ = rmpv::ext::from_value::<W>(v.clone());
            let _ = rmpv::ext::from_value::<Row>(v.clone());
            let _ = bytes_only::<W>(&v);
            let _ = bytes_only::<Row>(&v);
            let m = Value::Map(vec![("id".into(), v.clone()), ("msg".into(), v)]);
            let _ = bytes_only::<W>(&m);
        }
    }
}
