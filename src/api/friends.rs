//! The friends and blacklist methods (the JavaScript docs' Friends page, docs/Friends.md).

use super::decode::{Empty, IdList};
use super::spec::{specs, Spec};
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::value::{self, MapBuilder};

specs! {
    ADD_FRIENDS = "addfriends", Safe;
    DEL_FRIENDS = "delfriends", Safe;
    GET_FRIENDS = "getfriends", Safe;
    ADD_BLACKS = "addblacks", Safe;
    DEL_BLACKS = "delblacks", Safe;
    GET_BLACKS = "getblacks", Safe;
}

impl RtmClient {
    /// Adds users to the logged-in user's friend list (`addfriends {friends}`); the list
    /// is one-directional: it does not add the caller to theirs. At most 100 uids per call
    /// (the gate answers 200032 beyond). An empty `friends` completes with 200033 without
    /// sending. Mirrors JavaScript `addFriends(friends, timeout, callback)`.
    pub fn add_friends(
        &self,
        friends: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.uid_list(&ADD_FRIENDS, "friends", friends, timeout, callback);
    }

    /// Removes users from the logged-in user's friend list (`delfriends {friends}`); uids
    /// that are not friends are ignored. At most 100 uids per call (200032 beyond). An
    /// empty `friends` completes with 200033 without sending. Mirrors JavaScript
    /// `deleteFriends(friends, timeout, callback)`.
    pub fn delete_friends(
        &self,
        friends: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.uid_list(&DEL_FRIENDS, "friends", friends, timeout, callback);
    }

    /// The logged-in user's friends (`getfriends {}`, answer `{uids}`). Mirrors JavaScript
    /// `getFriends(timeout, callback)`.
    pub fn get_friends(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Vec<i64>>) + Send + 'static,
    ) {
        self.quest::<IdList>(&GET_FRIENDS, MapBuilder::new().build(), timeout, callback);
    }

    /// Blocks users (`addblacks {blacks}`): afterwards they cannot send p2p messages to
    /// the logged-in user (their sends fail with 200021), while the logged-in user can
    /// still send to them and both can still read sessions and history. At most 100 uids
    /// per call (200032 beyond). An empty `blacks` completes with 200033 without sending.
    /// Mirrors JavaScript `addBlacks(blacks, timeout, callback)`.
    pub fn add_blacks(
        &self,
        blacks: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.uid_list(&ADD_BLACKS, "blacks", blacks, timeout, callback);
    }

    /// Unblocks users (`delblacks {blacks}`). At most 100 uids per call (200032 beyond).
    /// An empty `blacks` completes with 200033 without sending. Mirrors JavaScript
    /// `deleteBlacks(blacks, timeout, callback)`.
    pub fn delete_blacks(
        &self,
        blacks: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.uid_list(&DEL_BLACKS, "blacks", blacks, timeout, callback);
    }

    /// The users the logged-in user blocked (`getblacks {}`, answer `{uids}`). Mirrors
    /// JavaScript `getBlacks(timeout, callback)`.
    pub fn get_blacks(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Vec<i64>>) + Send + 'static,
    ) {
        self.quest::<IdList>(&GET_BLACKS, MapBuilder::new().build(), timeout, callback);
    }

    /// A quest whose only key is a non-empty list of uids, answered `{}`.
    fn uid_list(
        &self,
        spec: &'static Spec,
        key: &str,
        uids: &[i64],
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if uids.is_empty() {
            return self.reject(&format!("{key} must not be empty"), |e| e, callback);
        }
        let payload = MapBuilder::new().put(key, value::i64_array(uids)).build();
        self.quest::<Empty>(spec, payload, timeout, callback);
    }
}
