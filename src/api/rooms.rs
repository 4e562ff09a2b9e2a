//! The room API: the methods of the JavaScript docs' Rooms page
//! (docs/Rooms.md), plus `getRoomsOpenInfo` of the JavaScript SDK.

use std::collections::HashMap;

use serde::Deserialize;

use super::de;
use super::decode::{answer, Empty};
use super::spec::{specs, Spec};
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::types::{RoomCount, RoomInfo, RoomOpenInfo, RoomsOpenInfo};
use crate::value::{self, Encoded, MapBuilder};

specs! {
    ENTER_ROOM = "enterroom", Safe;
    LEAVE_ROOM = "leaveroom", Safe;
    GET_USER_ROOMS = "getuserrooms", Safe;
    SET_ROOM_INFO = "setroominfo", Safe;
    GET_ROOM_INFO = "getroominfo", Safe;
    GET_ROOM_OPEN_INFO = "getroomopeninfo", Safe;
    GET_ROOMS_OPEN_INFO = "getroomsopeninfo", Safe;
    GET_ROOM_MEMBERS = "getroommembers", Safe;
    GET_ROOM_COUNT = "getroomcount", Safe;
}

answer!(RoomInfo, RoomOpenInfo);

/// The answer of `getuserrooms`: `{rooms: [rid]}`.
#[derive(Deserialize)]
struct Rooms {
    #[serde(default, deserialize_with = "de::ids")]
    rooms: Vec<i64>,
}
impl From<Rooms> for Vec<i64> {
    fn from(w: Rooms) -> Vec<i64> {
        w.rooms
    }
}
answer!(Rooms => Vec<i64>);

/// The answer of `getroommembers`: `{uids: [uid]}`.
#[derive(Deserialize)]
struct Uids {
    #[serde(default, deserialize_with = "de::ids")]
    uids: Vec<i64>,
}
impl From<Uids> for Vec<i64> {
    fn from(w: Uids) -> Vec<i64> {
        w.uids
    }
}
answer!(Uids => Vec<i64>);

/// The answer of `getroomsopeninfo`: `{info: {rid: oinfo}}`.
#[derive(Deserialize)]
struct OpenInfos {
    #[serde(default, deserialize_with = "de::lossy_map")]
    info: HashMap<i64, String>,
}
impl From<OpenInfos> for RoomsOpenInfo {
    fn from(w: OpenInfos) -> RoomsOpenInfo {
        RoomsOpenInfo { info: w.info }
    }
}
answer!(OpenInfos => RoomsOpenInfo);

/// The answer of `getroomcount`: `{cn: {rid: count}}`.
#[derive(Deserialize)]
struct Counts {
    #[serde(default, deserialize_with = "de::count_map")]
    cn: HashMap<i64, i32>,
}
impl From<Counts> for RoomCount {
    fn from(w: Counts) -> RoomCount {
        RoomCount { cn: w.cn }
    }
}
answer!(Counts => RoomCount);

fn rid(rid: i64) -> Encoded {
    MapBuilder::new().put("rid", rid).build()
}

impl RtmClient {
    /// Sends a request keyed by `rid` alone.
    fn room_quest<W: super::decode::Answer>(
        &self,
        spec: &'static Spec,
        room: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<W::Out>) + Send + 'static,
    ) {
        self.quest::<W>(spec, rid(room), timeout, callback);
    }

    /// Enters a room (`enterroom {rid}`). Mirrors JavaScript
    /// `enterRoom(rid, timeout, callback)`. Entering a room one is in already
    /// succeeds. A user leaves every room when its last connection closes.
    pub fn enter_room(
        &self,
        rid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.room_quest::<Empty>(&ENTER_ROOM, rid, timeout, callback);
    }

    /// Leaves a room (`leaveroom {rid}`). Mirrors JavaScript
    /// `leaveRoom(rid, timeout, callback)`. Leaving a room one is not in
    /// succeeds.
    pub fn leave_room(
        &self,
        rid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.room_quest::<Empty>(&LEAVE_ROOM, rid, timeout, callback);
    }

    /// The rooms the logged-in user is in (`getuserrooms {}`, answer
    /// `{rooms}`). Mirrors JavaScript `getUserRooms(timeout, callback)`.
    pub fn get_user_rooms(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Vec<i64>>) + Send + 'static,
    ) {
        self.quest::<Rooms>(
            &GET_USER_ROOMS,
            MapBuilder::new().build(),
            timeout,
            callback,
        );
    }

    /// Sets a room's public and/or private information (`setroominfo {rid,
    /// oinfo?, pinfo?}`). Mirrors JavaScript
    /// `setRoomInfo(rid, oinfo, pinfo, timeout, callback)`.
    ///
    /// `None` leaves that part unchanged (the key is not sent; both `None`
    /// sends `{rid}` alone, as JavaScript does); `Some("")` clears it. The gate requires the caller
    /// to be in the room (200040) and limits each part to 65,535 bytes
    /// (200030).
    pub fn set_room_info(
        &self,
        rid: i64,
        oinfo: Option<&str>,
        pinfo: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        let payload = MapBuilder::new()
            .put("rid", rid)
            .put_opt("oinfo", oinfo)
            .put_opt("pinfo", pinfo)
            .build();
        self.quest::<Empty>(&SET_ROOM_INFO, payload, timeout, callback);
    }

    /// A room's public and private information (`getroominfo {rid}`, answer
    /// `{oinfo, pinfo}`); only for a user in the room (200040 otherwise).
    /// Mirrors JavaScript `getRoomInfo(rid, timeout, callback)`.
    pub fn get_room_info(
        &self,
        rid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<RoomInfo>) + Send + 'static,
    ) {
        self.room_quest::<RoomInfo>(&GET_ROOM_INFO, rid, timeout, callback);
    }

    /// A room's public information (`getroomopeninfo {rid}`, answer
    /// `{oinfo}`); anyone may ask. Mirrors JavaScript
    /// `getRoomOpenInfo(rid, timeout, callback)`.
    pub fn get_room_open_info(
        &self,
        rid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<RoomOpenInfo>) + Send + 'static,
    ) {
        self.room_quest::<RoomOpenInfo>(&GET_ROOM_OPEN_INFO, rid, timeout, callback);
    }

    /// The public information of several rooms (`getroomsopeninfo {rids}`,
    /// answer `{info: {rid: oinfo}}`), by rid; rooms without public
    /// information (`oinfo` never set, or cleared with `""`) are left out.
    /// Mirrors JavaScript `getRoomsOpenInfo(rids, timeout, callback)`. An
    /// empty `rids` completes with 200033 without sending; the gate takes at
    /// most 100 (200032).
    pub fn get_rooms_open_info(
        &self,
        rids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<RoomsOpenInfo>) + Send + 'static,
    ) {
        self.rids_quest::<OpenInfos>(&GET_ROOMS_OPEN_INFO, rids, timeout, callback);
    }

    /// The users in a room (`getroommembers {rid}`, answer `{uids}`).
    /// Mirrors JavaScript `getRoomMembers(rid, timeout, callback)`; its
    /// `data.uids` is `data` itself here (docs/Rooms.md).
    pub fn get_room_members(
        &self,
        rid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Vec<i64>>) + Send + 'static,
    ) {
        self.room_quest::<Uids>(&GET_ROOM_MEMBERS, rid, timeout, callback);
    }

    /// How many users are in each room (`getroomcount {rids}`, answer
    /// `{cn: {rid: count}}`), by rid. Mirrors JavaScript
    /// `getRoomCount(rids, timeout, callback)`. An empty `rids` completes
    /// with 200033 without sending; the gate takes at most 100 (200032).
    pub fn get_room_count(
        &self,
        rids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<RoomCount>) + Send + 'static,
    ) {
        self.rids_quest::<Counts>(&GET_ROOM_COUNT, rids, timeout, callback);
    }

    /// Sends a request keyed by a non-empty `rids` list.
    fn rids_quest<W: super::decode::Answer>(
        &self,
        spec: &'static Spec,
        rids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<W::Out>) + Send + 'static,
    ) {
        if rids.is_empty() {
            return self.reject("rids must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("rids", value::i64_array(rids))
            .build();
        self.quest::<W>(spec, payload, timeout, callback);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::decode::decode;
    use rmpv::Value;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    #[test]
    fn answers_decode_with_string_or_integer_keys() {
        let c = map(vec![(
            "cn",
            Value::Map(vec![("5".into(), 3.into()), (6.into(), (-1).into())]),
        )]);
        let c = decode::<Counts>("getroomcount", c).unwrap();
        assert_eq!((c.cn[&5], c.cn[&6], c.cn.len()), (3, 0, 2));
        let i = map(vec![("info", Value::Map(vec![("9".into(), "o".into())]))]);
        assert_eq!(
            decode::<OpenInfos>("getroomsopeninfo", i).unwrap().info[&9],
            "o"
        );
        let r = map(vec![("rooms", Value::Array(vec![1.into(), "2".into()]))]);
        assert_eq!(decode::<Rooms>("getuserrooms", r).unwrap(), [1, 2]);
        let info = decode::<RoomInfo>("getroominfo", map(vec![("oinfo", "a".into())])).unwrap();
        assert_eq!((info.oinfo.as_str(), info.pinfo.as_str()), ("a", ""));
        let bad = map(vec![("cn", Value::Map(vec![("x".into(), 1.into())]))]);
        assert!(decode::<Counts>("getroomcount", bad).unwrap().cn.is_empty());
        assert!(decode::<Counts>("getroomcount", map(vec![("cn", 5.into())])).is_err());
        assert!(decode::<Uids>("getroommembers", map(vec![("uids", 5.into())])).is_err());
    }
}
