//! The group membership methods the message API depends on (the rest of the
//! groups page comes later; the room methods are in `rooms.rs`).

use super::decode::Empty;
use super::spec::{specs, Spec};
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::value::{self, MapBuilder};

specs! {
    ADD_GROUP_MEMBERS = "addgroupmembers", Safe;
    DEL_GROUP_MEMBERS = "delgroupmembers", Safe;
}

impl RtmClient {
    /// Adds users to a group (`addgroupmembers`); the gate creates the group
    /// if needed. Mirrors JavaScript `addGroupMembers(gid, uids, timeout, callback)`.
    /// An empty `uids` completes with 200033 without sending.
    pub fn add_group_members(
        &self,
        gid: i64,
        uids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.group_members(&ADD_GROUP_MEMBERS, gid, uids, timeout, callback);
    }

    /// Removes users from a group (`delgroupmembers`). Mirrors JavaScript
    /// `deleteGroupMembers(gid, uids, timeout, callback)`.
    pub fn delete_group_members(
        &self,
        gid: i64,
        uids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.group_members(&DEL_GROUP_MEMBERS, gid, uids, timeout, callback);
    }

    fn group_members(
        &self,
        spec: &'static Spec,
        gid: i64,
        uids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if uids.is_empty() {
            return self.reject("uids must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("gid", gid)
            .put("uids", value::i64_array(uids))
            .build();
        self.quest::<Empty>(spec, payload, timeout, callback);
    }
}
