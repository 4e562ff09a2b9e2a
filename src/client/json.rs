//! Reading `excludedUids` out of a push's `attrs` with serde_json (its
//! recursion limit bounds the depth; never panics).

use serde_json::Value;

/// The ids listed under the top-level `excludedUids` key of a JSON object,
/// whether written as numbers or as decimal strings. `None` when `text` is
/// not a JSON object or has no such array. Entries that are neither an
/// integer (or a float without fraction below 2^53) nor a decimal string
/// are skipped.
pub(crate) fn excluded_uids(text: &str) -> Option<Vec<i64>> {
    // Most attrs do not name the key at all: not parsed. (A key spelled with
    // escapes, `"excluded\u0055ids"`, has a backslash, and is parsed.)
    if !text.contains("excludedUids") && !text.contains('\\') {
        return None;
    }
    let v: Value = serde_json::from_str(text).ok()?;
    let ids = v.as_object()?.get("excludedUids")?.as_array()?;
    Some(ids.iter().filter_map(id_of).collect())
}

fn id_of(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_strings() {
        assert_eq!(
            excluded_uids(
                r#"{"a":{"b":[1,"x"]},"excludedUids":[1, "2", 3.0, "z", 9007199254740993]}"#
            ),
            Some(vec![1, 2, 3, 9007199254740993])
        );
    }

    #[test]
    fn a_key_spelled_with_escapes_is_still_read() {
        // The shortcut for attrs that do not name the key must not miss it.
        assert_eq!(excluded_uids(r#"{"excluded\u0055ids":[4]}"#), Some(vec![4]));
        assert_eq!(excluded_uids(r#"{"other":"excludedUids"}"#), None);
    }

    #[test]
    fn anything_else_is_none() {
        for t in [
            "",
            "x",
            "[1]",
            "{",
            r#"{"excludedUids":5}"#,
            "{\"a\":",
            "\"s\"",
        ] {
            assert_eq!(excluded_uids(t), None, "{t}");
        }
        assert_eq!(excluded_uids("{}"), None);
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(excluded_uids(&deep), None);
    }
}
