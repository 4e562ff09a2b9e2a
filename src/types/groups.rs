//! The results of the group methods (the JavaScript docs' Groups page, docs/Groups.md).

use std::collections::HashMap;

use serde::Deserialize;

/// The members of a group.
///
/// Mirrors the `data` (`{uids, onlines}`) of JavaScript `getGroupMembers`' callback.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct GroupMembers {
    /// Every member's uid.
    #[serde(default, deserialize_with = "crate::api::de::ids")]
    pub uids: Vec<i64>,
    /// The members that are online (at least one authenticated connection); empty unless
    /// `online` was `Some(true)`.
    #[serde(default, deserialize_with = "crate::api::de::ids")]
    pub onlines: Vec<i64>,
}

/// How many members a group has.
///
/// Mirrors the `data` (`{cn, online}`) of JavaScript `getGroupCount`'s callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct GroupCount {
    /// The number of members.
    #[serde(default, deserialize_with = "crate::api::de::count")]
    pub cn: i32,
    /// The number of online members; 0 unless `online` was `Some(true)`.
    #[serde(default, deserialize_with = "crate::api::de::count")]
    pub online: i32,
}

/// A group's public and private information.
///
/// Mirrors the `data` (`{oinfo, pinfo}`) of JavaScript `getGroupInfo`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct GroupInfo {
    /// The public information ("" when never set).
    #[serde(default, deserialize_with = "crate::api::de::lossy")]
    pub oinfo: String,
    /// The private information, for members only ("" when never set).
    #[serde(default, deserialize_with = "crate::api::de::lossy")]
    pub pinfo: String,
}

/// A group's public information.
///
/// Mirrors the `data` (`{oinfo}`) of JavaScript `getGroupOpenInfo`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct GroupOpenInfo {
    /// The public information ("" when never set).
    #[serde(default, deserialize_with = "crate::api::de::lossy")]
    pub oinfo: String,
}

/// The public information of several groups.
///
/// Mirrors the `data` (`{info: {gid: oinfo}}`) of JavaScript `getGroupsOpenInfo`'s callback,
/// with 64-bit integer keys instead of strings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct GroupsOpenInfo {
    /// The public information by gid.
    #[serde(default, deserialize_with = "crate::api::de::lossy_map")]
    pub info: HashMap<i64, String>,
}
