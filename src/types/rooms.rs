//! The results of the room methods (the JavaScript docs' Rooms page,
//! docs/Rooms.md). The room lists and members are plain `Vec<i64>`; the
//! info and count answers are structs named after their JavaScript `data`.

use std::collections::HashMap;

use serde::Deserialize;

/// A room's public and private information.
///
/// Mirrors the `data` (`{oinfo, pinfo}`) of JavaScript `getRoomInfo`'s callback. A key
/// the gate leaves out (nothing set yet) reads as `""`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct RoomInfo {
    /// The public information (`oinfo`), visible to everyone.
    #[serde(default, deserialize_with = "crate::api::de::lossy")]
    pub oinfo: String,
    /// The private information (`pinfo`), visible to the room's members only.
    #[serde(default, deserialize_with = "crate::api::de::lossy")]
    pub pinfo: String,
}

/// A room's public information.
///
/// Mirrors the `data` (`{oinfo}`) of JavaScript `getRoomOpenInfo`'s callback (the
/// JavaScript docs also list `pinfo`; the answer never carries it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct RoomOpenInfo {
    /// The public information (`oinfo`); `""` when none was set.
    #[serde(default, deserialize_with = "crate::api::de::lossy")]
    pub oinfo: String,
}

/// The public information of several rooms.
///
/// Mirrors the `data` (`{info: {rid: oinfo}}`) of JavaScript `getRoomsOpenInfo`'s callback,
/// with 64-bit integer keys instead of strings (as [`GroupsOpenInfo`](crate::GroupsOpenInfo)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomsOpenInfo {
    /// The public information by rid; rooms without `oinfo` are left out.
    pub info: HashMap<i64, String>,
}

/// How many users are in each room.
///
/// Mirrors the `data` (`{cn: {rid: count}}`) of JavaScript `getRoomCount`'s callback, with
/// 64-bit integer keys instead of strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomCount {
    /// The member count by rid (0 for an empty or unknown room).
    pub cn: HashMap<i64, i32>,
}
