//! FPNN's JSON payloads (flag `0x40`): an FPNN server converts a JSON quest
//! to its msgpack form, handles it as usual and answers in JSON. The gate
//! does the same at its network edge (docs/gate.md, "JSON payloads").

use rmpv::Value;
use serde_json::Value as Json;

use crate::fpnn::packet;

/// Parses a JSON payload into the value a msgpack payload would have given:
/// objects become maps with string keys, integers stay integers. A payload
/// that may hold more values than a msgpack payload is allowed for
/// `max_bytes` (`packet::check_payload_within`) is refused before anything
/// is built: `[0,0,...]` costs two bytes a value as text and dozens once
/// decoded.
pub(crate) fn parse(bytes: &[u8], max_bytes: usize) -> Result<Value, String> {
    let (values, limit) = (values_at_most(bytes), packet::max_values(max_bytes));
    if values > limit {
        return Err(format!(
            "JSON payload of up to {values} values: more than {limit}"
        ));
    }
    let j: Json = serde_json::from_slice(bytes).map_err(|e| format!("bad JSON payload: {e}"))?;
    Ok(from_json(j))
}

/// An upper bound on the values (map keys included) that JSON text holds,
/// from its punctuation outside strings: an array of k values has k - 1
/// commas and one `[`; an object of m members, 2m values, has m - 1 commas,
/// m colons and one `{`.
fn values_at_most(bytes: &[u8]) -> usize {
    let (mut n, mut in_str, mut escaped) = (1usize, false, false);
    for &b in bytes {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else {
            match b {
                b'"' => in_str = true,
                b',' | b':' | b'[' | b'{' => n += 1,
                _ => {}
            }
        }
    }
    n
}

fn from_json(j: Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Value::from(s),
        Json::Array(a) => Value::Array(a.into_iter().map(from_json).collect()),
        Json::Object(o) => Value::Map(
            o.into_iter()
                .map(|(k, v)| (Value::from(k), from_json(v)))
                .collect(),
        ),
    }
}

/// Appends `v` as JSON text. Binary becomes a string (lossy UTF-8), as
/// FPNN's msgpack-to-JSON conversion does; map keys that are not strings are
/// written as their JSON text; extension values become `null`.
pub(crate) fn write(v: &Value, out: &mut Vec<u8>) {
    let text = serde_json::to_vec(&to_json(v)).unwrap_or_else(|_| b"{}".to_vec());
    out.extend_from_slice(&text);
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil | Value::Ext(..) => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => i
            .as_i64()
            .map(Json::from)
            .or_else(|| i.as_u64().map(Json::from))
            .unwrap_or(Json::Null),
        Value::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_the_msgpack_form() {
        let v = parse(
            br#"{"to":2,"big":18446744073709551615,"f":1.5,"s":"x","a":[true,null]}"#,
            1 << 20,
        )
        .unwrap();
        let mut out = Vec::new();
        write(&v, &mut out);
        let back: Json = serde_json::from_slice(&out).unwrap();
        assert_eq!(back["to"], 2);
        assert_eq!(back["big"], u64::MAX);
        assert_eq!(back["f"], 1.5);
        assert_eq!(back["a"][0], true);
        assert!(parse(b"{not json", 1 << 20).is_err());
    }

    #[test]
    fn the_count_of_values_bounds_the_decoded_tree() {
        // Each value as rmpv counts it: the map, 2 keys, 2 values, 3 in the array.
        let text = br#"{"a":[1,2,3],"b":"x"}"#;
        assert!(values_at_most(text) >= 8);
        // Punctuation inside strings, escaped quotes included, is not counted.
        assert_eq!(values_at_most(br#"["a,b:[{","\",:{"]"#), 3);
        // An escaped backslash ends no string: the quote after it does.
        assert_eq!(values_at_most(br#"["\\",1]"#), 3);
        let many = format!("[{}0]", "0,".repeat(999));
        assert_eq!(values_at_most(many.as_bytes()), 1001);
        let per_value = std::mem::size_of::<Value>();
        assert!(parse(many.as_bytes(), 1001 * per_value).is_ok());
        let e = parse(many.as_bytes(), 1000 * per_value).unwrap_err();
        assert!(e.contains("values"), "{e}");
    }

    #[test]
    fn binary_and_non_string_keys_become_json_text() {
        let v = Value::Map(vec![
            (Value::from(7), Value::Binary(b"hi".to_vec())),
            (Value::from("e"), Value::Ext(1, vec![0])),
        ]);
        let mut out = Vec::new();
        write(&v, &mut out);
        assert_eq!(out, br#"{"7":"hi","e":null}"#);
    }
}
