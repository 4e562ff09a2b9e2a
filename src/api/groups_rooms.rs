//! The room membership methods the message API depends on (the rest of the
//! rooms page comes later; the group methods live in `groups.rs`).

use super::decode::Empty;
use super::spec::specs;
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::value::MapBuilder;

specs! {
    ENTER_ROOM = "enterroom", Safe;
    LEAVE_ROOM = "leaveroom", Safe;
}

impl RtmClient {
    /// Enters a room (`enterroom`). Mirrors JavaScript `enterRoom(rid, timeout, callback)`.
    pub fn enter_room(
        &self,
        rid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().put("rid", rid).build();
        self.quest::<Empty>(&ENTER_ROOM, payload, timeout, callback);
    }

    /// Leaves a room (`leaveroom`). Mirrors JavaScript `leaveRoom(rid, timeout, callback)`.
    pub fn leave_room(
        &self,
        rid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().put("rid", rid).build();
        self.quest::<Empty>(&LEAVE_ROOM, payload, timeout, callback);
    }
}
