//! The results of the room methods (the JavaScript docs' Rooms page,
//! docs/Rooms.md). The room lists, members, counts and open-info maps are
//! plain `Vec<i64>` / `HashMap<i64, _>`; the two info answers are structs.

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
