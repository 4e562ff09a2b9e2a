//! The results of the user methods (the JavaScript docs' Users page, docs/Users.md).

use std::collections::HashMap;

use serde::Deserialize;

/// The logged-in user's public and private information.
///
/// Mirrors the `data` (`{oinfo, pinfo}`) of JavaScript `getUserInfo`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct UserInfo {
    /// The public information, which other users see ("" when never set).
    #[serde(default, deserialize_with = "crate::api::de::lossy")]
    pub oinfo: String,
    /// The private information, which only the user sees ("" when never set).
    #[serde(default, deserialize_with = "crate::api::de::lossy")]
    pub pinfo: String,
}

/// The public information of several users.
///
/// Mirrors the `data` (`{info: {uid: oinfo}}`) of JavaScript `getUserOpenInfo`'s callback,
/// with 64-bit integer keys instead of strings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct UserOpenInfo {
    /// The public information by uid.
    #[serde(default, deserialize_with = "crate::api::de::lossy_map")]
    pub info: HashMap<i64, String>,
}
