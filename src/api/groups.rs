//! The group methods (the JavaScript docs' Groups page, docs/Groups.md, plus
//! `getUserGroups` from the Users page): membership, counts and group info.

use super::decode::{answer, Empty, IdList};
use super::spec::{specs, Spec};
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::types::{GroupCount, GroupInfo, GroupMembers, GroupOpenInfo, GroupsOpenInfo};
use crate::value::{self, Encoded, MapBuilder};

specs! {
    ADD_GROUP_MEMBERS = "addgroupmembers", Safe;
    DEL_GROUP_MEMBERS = "delgroupmembers", Safe;
    GET_GROUP_MEMBERS = "getgroupmembers", Safe;
    GET_GROUP_COUNT = "getgroupcount", Safe;
    GET_USER_GROUPS = "getusergroups", Safe;
    SET_GROUP_INFO = "setgroupinfo", Safe;
    GET_GROUP_INFO = "getgroupinfo", Safe;
    GET_GROUP_OPEN_INFO = "getgroupopeninfo", Safe;
    GET_GROUPS_OPEN_INFO = "getgroupsopeninfo", Safe;
}

answer!(
    GroupMembers,
    GroupCount,
    GroupInfo,
    GroupOpenInfo,
    GroupsOpenInfo
);

impl RtmClient {
    /// Adds users to a group (`addgroupmembers {gid, uids}`); the gate creates the group
    /// if needed and adds the caller too. An empty `uids` completes with 200033 without
    /// sending; the gate takes at most 100 (200032 beyond). Mirrors JavaScript
    /// `addGroupMembers(gid, uids, timeout, callback)`.
    pub fn add_group_members(
        &self,
        gid: i64,
        uids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.group_members(&ADD_GROUP_MEMBERS, gid, uids, timeout, callback);
    }

    /// Removes users from a group (`delgroupmembers {gid, uids}`). An empty `uids`
    /// completes with 200033 without sending; the gate takes at most 100 (200032
    /// beyond). Mirrors JavaScript
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

    /// The members of a group (`getgroupmembers {gid, online?}`, answer `{uids,
    /// onlines?}`); with `online` `Some(true)` also the members online now. A gid that is
    /// not positive is 200033 from the gate. Mirrors JavaScript
    /// `getGroupMembers(gid, online, timeout, callback)`.
    pub fn get_group_members(
        &self,
        gid: i64,
        online: Option<bool>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<GroupMembers>) + Send + 'static,
    ) {
        let payload = Self::gid_online(gid, online);
        self.quest::<GroupMembers>(&GET_GROUP_MEMBERS, payload, timeout, callback);
    }

    /// How many members a group has (`getgroupcount {gid, online?}`, answer `{cn,
    /// online?}`); with `online` `Some(true)` also how many are online now. Mirrors
    /// JavaScript `getGroupCount(gid, online, timeout, callback)`.
    pub fn get_group_count(
        &self,
        gid: i64,
        online: Option<bool>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<GroupCount>) + Send + 'static,
    ) {
        let payload = Self::gid_online(gid, online);
        self.quest::<GroupCount>(&GET_GROUP_COUNT, payload, timeout, callback);
    }

    fn gid_online(gid: i64, online: Option<bool>) -> Encoded {
        MapBuilder::new()
            .put("gid", gid)
            .put_opt("online", online)
            .build()
    }

    /// The groups the logged-in user is a member of (`getusergroups {}`, answer
    /// `{gids}`). Mirrors JavaScript `getUserGroups(timeout, callback)` (on the
    /// JavaScript docs' Users page).
    pub fn get_user_groups(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Vec<i64>>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().build();
        self.quest::<IdList>(&GET_USER_GROUPS, payload, timeout, callback);
    }

    /// Sets a group's public and/or private information (`setgroupinfo {gid, oinfo?,
    /// pinfo?}`); `None` leaves that part unchanged, `Some("")` clears it. Members only
    /// (200041); a part over 65,535 bytes is 200030 from the gate. Mirrors JavaScript
    /// `setGroupInfo(gid, oinfo, pinfo, timeout, callback)`.
    pub fn set_group_info(
        &self,
        gid: i64,
        oinfo: Option<&str>,
        pinfo: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        let payload = MapBuilder::new()
            .put("gid", gid)
            .put_opt("oinfo", oinfo)
            .put_opt("pinfo", pinfo)
            .build();
        self.quest::<Empty>(&SET_GROUP_INFO, payload, timeout, callback);
    }

    /// A group's public and private information (`getgroupinfo {gid}`, answer `{oinfo,
    /// pinfo}`). Members only (200041). Mirrors JavaScript
    /// `getGroupInfo(gid, timeout, callback)`.
    pub fn get_group_info(
        &self,
        gid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<GroupInfo>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().put("gid", gid).build();
        self.quest::<GroupInfo>(&GET_GROUP_INFO, payload, timeout, callback);
    }

    /// A group's public information (`getgroupopeninfo {gid}`, answer `{oinfo}`), for
    /// anyone. Mirrors JavaScript `getGroupOpenInfo(gid, timeout, callback)`.
    pub fn get_group_open_info(
        &self,
        gid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<GroupOpenInfo>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().put("gid", gid).build();
        self.quest::<GroupOpenInfo>(&GET_GROUP_OPEN_INFO, payload, timeout, callback);
    }

    /// The public information of several groups (`getgroupsopeninfo {gids}`, answer
    /// `{info: {gid: oinfo}}`), for anyone; groups without public information (`oinfo`
    /// never set, or cleared with `""`) are left out. An empty `gids` completes with
    /// 200033 without sending; the gate takes at most 100 (200032 beyond). Mirrors
    /// JavaScript `getGroupsOpenInfo(gids, timeout, callback)`.
    pub fn get_groups_open_info(
        &self,
        gids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<GroupsOpenInfo>) + Send + 'static,
    ) {
        if gids.is_empty() {
            return self.reject("gids must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("gids", value::i64_array(gids))
            .build();
        self.quest::<GroupsOpenInfo>(&GET_GROUPS_OPEN_INFO, payload, timeout, callback);
    }
}
