//! The user methods (the JavaScript docs' Users page, docs/Users.md; `getUserGroups` is
//! in `groups.rs`): who is online, and the users' public and private information.

use super::decode::{answer, Empty, IdList};
use super::spec::specs;
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::types::{UserInfo, UserOpenInfo};
use crate::value::{self, MapBuilder};

specs! {
    GET_ONLINE_USERS = "getonlineusers", Safe;
    SET_USER_INFO = "setuserinfo", Safe;
    GET_USER_INFO = "getuserinfo", Safe;
    GET_USER_OPEN_INFO = "getuseropeninfo", Safe;
}

answer!(UserInfo, UserOpenInfo);

impl RtmClient {
    /// Which of `uids` are online, i.e. have at least one authenticated connection
    /// (`getonlineusers {uids}`, answer `{uids}`). An empty `uids` completes with 200033
    /// without sending; the gate takes at most 100 (200032 beyond). Mirrors JavaScript
    /// `getOnlineUsers(uids, timeout, callback)`.
    pub fn get_online_users(
        &self,
        uids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Vec<i64>>) + Send + 'static,
    ) {
        if uids.is_empty() {
            return self.reject("uids must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("uids", value::i64_array(uids))
            .build();
        self.quest::<IdList>(&GET_ONLINE_USERS, payload, timeout, callback);
    }

    /// Sets the logged-in user's public and/or private information (`setuserinfo
    /// {oinfo?, pinfo?}`); `None` leaves that part unchanged, `Some("")` clears it. A part
    /// over 65,535 bytes is 200030 from the gate. Mirrors JavaScript `setUserInfo(oinfo,
    /// pinfo, timeout, callback)`.
    pub fn set_user_info(
        &self,
        oinfo: Option<&str>,
        pinfo: Option<&str>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        let payload = MapBuilder::new()
            .put_opt("oinfo", oinfo)
            .put_opt("pinfo", pinfo)
            .build();
        self.quest::<Empty>(&SET_USER_INFO, payload, timeout, callback);
    }

    /// The logged-in user's public and private information (`getuserinfo {}`, answer
    /// `{oinfo, pinfo}`). Mirrors JavaScript `getUserInfo(timeout, callback)`.
    pub fn get_user_info(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<UserInfo>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().build();
        self.quest::<UserInfo>(&GET_USER_INFO, payload, timeout, callback);
    }

    /// The public information of users (`getuseropeninfo {uids}`, answer `{info: {uid:
    /// oinfo}}`); others never see the private part, and users without public
    /// information (`oinfo` never set, or cleared with `""`) are left out. An empty `uids`
    /// completes with 200033 without sending; the gate takes at most 100 (200032
    /// beyond). Mirrors JavaScript `getUserOpenInfo(uids,
    /// timeout, callback)`.
    pub fn get_user_open_info(
        &self,
        uids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<UserOpenInfo>) + Send + 'static,
    ) {
        if uids.is_empty() {
            return self.reject("uids must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("uids", value::i64_array(uids))
            .build();
        self.quest::<UserOpenInfo>(&GET_USER_OPEN_INFO, payload, timeout, callback);
    }
}
