//! Reading answers into result types. A gate answer that lacks a key or has
//! it in the wrong type completes the call with 10010
//! (`FPNN_EC_PROTO_TYPE_CONVERT`) naming the key, never a panic.

use rmpv::Value;

use crate::error::{error_code, RtmError};
use crate::value;

pub(crate) fn bad(key: &str, v: &Value) -> RtmError {
    RtmError::new(
        error_code::FPNN_EC_PROTO_TYPE_CONVERT,
        format!("answer key {key:?} missing or of the wrong type in {v}"),
    )
}

pub(crate) fn i64_of(v: &Value, key: &str) -> Result<i64, RtmError> {
    value::map_get(v, key)
        .and_then(value::as_i64)
        .ok_or_else(|| bad(key, v))
}

/// An optional integer key: missing or nil is 0.
pub(crate) fn i64_or_zero(v: &Value, key: &str) -> Result<i64, RtmError> {
    match value::map_get(v, key) {
        None | Some(Value::Nil) => Ok(0),
        Some(x) => value::as_i64(x).ok_or_else(|| bad(key, v)),
    }
}

pub(crate) fn ids_of(v: &Value, key: &str) -> Result<Vec<i64>, RtmError> {
    match value::map_get(v, key) {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(x) => value::i64_list(x).ok_or_else(|| bad(key, v)),
    }
}

pub(crate) fn map_of(v: &Value, key: &str) -> Result<Value, RtmError> {
    match value::map_get(v, key) {
        None | Some(Value::Nil) => Ok(Value::Map(Vec::new())),
        Some(m @ Value::Map(_)) => Ok(m.clone()),
        Some(_) => Err(bad(key, v)),
    }
}

pub(crate) fn empty(_: Value) -> Result<(), RtmError> {
    Ok(())
}
