//! The results of the system methods (the JavaScript docs' System page,
//! docs/System.md). `getAttrs` gives `Vec<HashMap<String, String>>`, one map per
//! connection of the user, as JavaScript's `data.attrs` does.

use std::collections::HashMap;

use serde::Deserialize;

/// The push options of the logged-in user's devices: per peer or group, the message
/// types that are not pushed to its devices.
///
/// Mirrors the `data` (`{p2p, group}`) of JavaScript `getDevicePushOption`'s callback,
/// with ids as `i64` keys. **An empty list means every mtype** (the option was added
/// without `mtypes`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct DevicePushOption {
    /// By peer uid (option type 0): the mtypes not pushed; empty = all.
    #[serde(default, deserialize_with = "crate::api::de::id_map")]
    pub p2p: HashMap<i64, Vec<u8>>,
    /// By group id (option type 1): the mtypes not pushed; empty = all.
    #[serde(default, deserialize_with = "crate::api::de::id_map")]
    pub group: HashMap<i64, Vec<u8>>,
}
