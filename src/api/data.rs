//! The data methods (the JavaScript docs' Data page, docs/Data.md): a key-value store per
//! user.

use serde::Deserialize;

use super::de::Body;
use super::decode::{answer, Empty};
use super::spec::specs;
use crate::client::RtmClient;
use crate::error::{error_code, RtmError};
use crate::types::DataValue;
use crate::value::MapBuilder;

specs! {
    DATA_SET = "dataset", Safe;
    DATA_GET = "dataget", Safe;
    DATA_DEL = "datadel", Safe;
}

/// The longest key, in bytes (the JavaScript docs' Data page).
pub(crate) const MAX_KEY_BYTES: usize = 128;
/// The longest value, in bytes (the JavaScript docs' Data page).
pub(crate) const MAX_VALUE_BYTES: usize = 65_535;

/// The answer of `dataget`: `{val?}`, str or bin.
#[derive(Deserialize)]
struct Val {
    #[serde(default)]
    val: Option<Body>,
}

impl From<Val> for DataValue {
    fn from(w: Val) -> DataValue {
        DataValue {
            val: w.val.map(|b| {
                b.text
                    .unwrap_or_else(|| String::from_utf8_lossy(&b.bytes).into())
            }),
        }
    }
}
answer!(Val => DataValue);

/// Why `key` cannot be a data key: empty or over [`MAX_KEY_BYTES`].
fn bad_key(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("key must not be empty")
    } else if key.len() > MAX_KEY_BYTES {
        Some("key is longer than 128 bytes")
    } else {
        None
    }
}

impl RtmClient {
    /// Stores `value` under `key` for the logged-in user (`dataset {key, val}`),
    /// replacing what was there. An empty key or a key over 128 bytes completes with
    /// 200033, a value over 65,535 bytes with 200030 (`RTM_EC_LARGE_MESSAGE_OR_ATTRS`,
    /// the gate's code for it), without sending. Mirrors JavaScript
    /// `dataSet(key, value, timeout, callback)` (whose `value` may be undefined; ours is
    /// required).
    pub fn data_set(
        &self,
        key: &str,
        value: &str,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if let Some(why) = bad_key(key) {
            return self.reject(why, |e| e, callback);
        }
        if value.len() > MAX_VALUE_BYTES {
            // The gate's code for it (and that of the info parts of the same size), so a
            // caller sees one code whichever side checks.
            return self.reject_with(
                error_code::RTM_EC_LARGE_MESSAGE_OR_ATTRS,
                "value is longer than 65535 bytes",
                |e| e,
                callback,
            );
        }
        let payload = MapBuilder::new().put("key", key).put("val", value).build();
        self.quest::<Empty>(&DATA_SET, payload, timeout, callback);
    }

    /// The value stored under `key` for the logged-in user (`dataget {key}`, answer
    /// `{val?}`); `val` is `None` when nothing is stored. An empty key or a key over 128
    /// bytes completes with 200033 without sending. Mirrors JavaScript
    /// `dataGet(key, timeout, callback)`.
    pub fn data_get(
        &self,
        key: &str,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<DataValue>) + Send + 'static,
    ) {
        if let Some(why) = bad_key(key) {
            return self.reject(why, |e| e, callback);
        }
        let payload = MapBuilder::new().put("key", key).build();
        self.quest::<Val>(&DATA_GET, payload, timeout, callback);
    }

    /// Deletes the value stored under `key` for the logged-in user (`datadel {key}`);
    /// deleting a missing key succeeds. An empty key or a key over 128 bytes completes
    /// with 200033 without sending. Mirrors JavaScript `dataDelete(key, timeout,
    /// callback)`.
    pub fn data_delete(
        &self,
        key: &str,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if let Some(why) = bad_key(key) {
            return self.reject(why, |e| e, callback);
        }
        let payload = MapBuilder::new().put("key", key).build();
        self.quest::<Empty>(&DATA_DEL, payload, timeout, callback);
    }
}
