//! The session and conversation methods: the conversation half of the JavaScript docs'
//! Chat page (docs/Conversations.md).

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::de;
use super::decode::{answer, Answer, Empty};
use super::spec::{specs, Spec};
use crate::client::RtmClient;
use crate::error::{error_code, RtmError};
use crate::types::{ConversationList, GroupMsg, P2PMsg, Session, UnreadConversationList};
use crate::value::{self, Encoded, MapBuilder};

specs! {
    GET_SESSION = "getsession", Safe;
    REMOVE_SESSION = "removesession", Safe;
    SET_LANG = "setlang", Safe;
    GET_P2P_CONVERSATION_LIST = "getp2pconversationlist", Safe;
    GET_P2P_UNREAD_CONVERSATION_LIST = "getp2punreadconversationlist", Safe;
    GET_GROUP_CONVERSATION_LIST = "getgroupconversationlist", Safe;
    GET_GROUP_UNREAD_CONVERSATION_LIST = "getgroupunreadconversationlist", Safe;
    // Safe like `getunread {clear}`: a resend with `clear` may answer fewer unread
    // conversations, and the mark ends where one send leaves it.
    GET_UNREAD_CONVERSATION_LIST = "getunreadconversationlist", Safe;
}

answer!(Session);

/// 10010 for an answer whose parallel lists do not line up.
fn mismatch(e: String) -> RtmError {
    RtmError::new(error_code::FPNN_EC_PROTO_TYPE_CONVERT, e)
}

/// The answer of the four single conversation lists: `{conversations, unreads, msgs}`.
#[derive(Deserialize)]
#[serde(bound(deserialize = "M: Deserialize<'de>"))]
struct List<M> {
    #[serde(default, deserialize_with = "de::ids")]
    conversations: Vec<i64>,
    #[serde(default, deserialize_with = "de::counts")]
    unreads: Vec<i32>,
    #[serde(default, deserialize_with = "de::nil_default")]
    msgs: Vec<M>,
}

impl<M: DeserializeOwned + Send + 'static> Answer for List<M> {
    type Out = ConversationList<M>;
    fn finish(self) -> Result<ConversationList<M>, RtmError> {
        ConversationList::zip(self.conversations, self.unreads, self.msgs).map_err(mismatch)
    }
}

/// The answer of `getunreadconversationlist`: both unread lists, keys prefixed by
/// `group` and `p2p` (`groupConversations`, ..., `p2pMsgs`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnreadLists {
    #[serde(default, deserialize_with = "de::ids")]
    group_conversations: Vec<i64>,
    #[serde(default, deserialize_with = "de::counts")]
    group_unreads: Vec<i32>,
    #[serde(default, deserialize_with = "de::nil_default")]
    group_msgs: Vec<GroupMsg>,
    #[serde(default, deserialize_with = "de::ids")]
    p2p_conversations: Vec<i64>,
    #[serde(default, deserialize_with = "de::counts")]
    p2p_unreads: Vec<i32>,
    #[serde(default, deserialize_with = "de::nil_default")]
    p2p_msgs: Vec<P2PMsg>,
}

impl Answer for UnreadLists {
    type Out = UnreadConversationList;
    fn finish(self) -> Result<UnreadConversationList, RtmError> {
        let group = List {
            conversations: self.group_conversations,
            unreads: self.group_unreads,
            msgs: self.group_msgs,
        };
        let p2p = List {
            conversations: self.p2p_conversations,
            unreads: self.p2p_unreads,
            msgs: self.p2p_msgs,
        };
        Ok(UnreadConversationList {
            group: group.finish()?,
            p2p: p2p.finish()?,
        })
    }
}

/// The request of the conversation lists: `{clear?, mtime?, mtypes?}`.
fn list_request(clear: Option<bool>, mtime: Option<i64>, mtypes: Option<&[u8]>) -> Encoded {
    MapBuilder::new()
        .put_opt("clear", clear)
        .put_opt("mtime", mtime)
        .put_opt("mtypes", mtypes.map(value::u8_array))
        .build()
}

impl RtmClient {
    /// The p2p conversations with their unread counts and last messages, newest first
    /// (`getp2pconversationlist {mtime?, mtypes?}`). Mirrors JavaScript
    /// `getP2PConversationList(mtime, mtypes, timeout, callback)`; the result is a
    /// [`P2PConversationList`](crate::types::P2PConversationList).
    ///
    /// `mtime` `None`: unread means after the last logout; `mtypes` `None`: 30..=50.
    pub fn get_p2p_conversation_list(
        &self,
        mtime: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<ConversationList<P2PMsg>>) + Send + 'static,
    ) {
        self.conversation_list(&GET_P2P_CONVERSATION_LIST, mtime, mtypes, timeout, callback);
    }

    /// The p2p conversations with unread messages
    /// (`getp2punreadconversationlist {mtime?, mtypes?}`). Mirrors JavaScript
    /// `getP2PUnreadConversationList(mtime, mtypes, timeout, callback)`. Arguments as
    /// [`RtmClient::get_p2p_conversation_list`].
    pub fn get_p2p_unread_conversation_list(
        &self,
        mtime: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<ConversationList<P2PMsg>>) + Send + 'static,
    ) {
        self.conversation_list(
            &GET_P2P_UNREAD_CONVERSATION_LIST,
            mtime,
            mtypes,
            timeout,
            callback,
        );
    }

    /// The group conversations with their unread counts and last messages, newest first
    /// (`getgroupconversationlist {mtime?, mtypes?}`). Mirrors JavaScript
    /// `getGroupConversationList(mtime, mtypes, timeout, callback)`; the result is a
    /// [`GroupConversationList`](crate::types::GroupConversationList). Arguments as
    /// [`RtmClient::get_p2p_conversation_list`].
    pub fn get_group_conversation_list(
        &self,
        mtime: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<ConversationList<GroupMsg>>) + Send + 'static,
    ) {
        self.conversation_list(
            &GET_GROUP_CONVERSATION_LIST,
            mtime,
            mtypes,
            timeout,
            callback,
        );
    }

    /// The group conversations with unread messages
    /// (`getgroupunreadconversationlist {mtime?, mtypes?}`). Mirrors JavaScript
    /// `getGroupUnreadConversationList(mtime, mtypes, timeout, callback)`. Arguments as
    /// [`RtmClient::get_p2p_conversation_list`].
    pub fn get_group_unread_conversation_list(
        &self,
        mtime: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<ConversationList<GroupMsg>>) + Send + 'static,
    ) {
        self.conversation_list(
            &GET_GROUP_UNREAD_CONVERSATION_LIST,
            mtime,
            mtypes,
            timeout,
            callback,
        );
    }

    /// The shared path of the four single-list methods (`{mtime?, mtypes?}`).
    fn conversation_list<M>(
        &self,
        spec: &'static Spec,
        mtime: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<ConversationList<M>>) + Send + 'static,
    ) where
        M: DeserializeOwned + Send + 'static,
    {
        let payload = list_request(None, mtime, mtypes);
        self.quest::<List<M>>(spec, payload, timeout, callback);
    }
}

impl RtmClient {
    /// The peers and groups the logged-in user has conversations with (`getsession`).
    /// Mirrors JavaScript `getSession(timeout, callback)`; the ids are lists (the
    /// JavaScript docs' maps of times are not what is sent).
    pub fn get_session(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Session>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().build();
        self.quest::<Session>(&GET_SESSION, payload, timeout, callback);
    }

    /// Removes the p2p session with `to` (`removesession {to}`): it is left out of
    /// [`RtmClient::get_session`] until a new message arrives in it. Mirrors JavaScript
    /// `removeSession(to, timeout, callback)`.
    pub fn remove_session(
        &self,
        to: i64,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().put("to", to).build();
        self.quest::<Empty>(&REMOVE_SESSION, payload, timeout, callback);
    }

    /// Sets the target language of automatic translation (`setlang {lang}`); `""`
    /// cancels it. Mirrors JavaScript `setTranslationLanguage(targetLanguage, timeout,
    /// callback)`. A language the service does not support completes with 200050
    /// (`RTM_EC_UNSUPPORTED_LANGUAGE`).
    pub fn set_translation_language(
        &self,
        target_language: &str,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().put("lang", target_language).build();
        self.quest::<Empty>(&SET_LANG, payload, timeout, callback);
    }

    /// The group and p2p conversations with unread messages
    /// (`getunreadconversationlist {clear?, mtime?, mtypes?}`). Mirrors JavaScript
    /// `getUnreadConversationList(clear, mtime, mtypes, timeout, callback)`.
    /// `clear` `Some(true)` also moves the unread mark of
    /// [`RtmClient::get_unread_message`] to now, after answering. Other arguments as
    /// [`RtmClient::get_p2p_conversation_list`].
    pub fn get_unread_conversation_list(
        &self,
        clear: Option<bool>,
        mtime: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<UnreadConversationList>) + Send + 'static,
    ) {
        let payload = list_request(clear, mtime, mtypes);
        self.quest::<UnreadLists>(&GET_UNREAD_CONVERSATION_LIST, payload, timeout, callback);
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

    fn row(id: i64, second: i64) -> Value {
        Value::Array(vec![
            id.into(),
            second.into(),
            30.into(),
            7.into(),
            false.into(),
            "hi".into(),
            "".into(),
            99.into(),
        ])
    }

    #[test]
    fn lists_decode_parallel_lists_and_reject_mismatches() {
        let good = map(vec![
            ("conversations", Value::Array(vec![5.into(), "6".into()])),
            ("unreads", Value::Array(vec![2.into(), (-1).into()])),
            ("msgs", Value::Array(vec![row(50, 1), row(60, 2)])),
        ]);
        let l = decode::<List<P2PMsg>>("getp2pconversationlist", good.clone()).unwrap();
        assert_eq!((l.conversations, l.unreads), (vec![5, 6], vec![2, 0]));
        assert_eq!((l.msgs[0].id, l.msgs[1].direction), (50, 2));
        let g = decode::<List<GroupMsg>>("getgroupconversationlist", good).unwrap();
        assert_eq!(g.msgs[0].from, 1);
        let empty = decode::<List<GroupMsg>>("x", map(vec![])).unwrap();
        assert!(empty.is_empty());
        let short = map(vec![
            ("conversations", Value::Array(vec![5.into()])),
            ("unreads", Value::Array(vec![])),
            ("msgs", Value::Array(vec![row(50, 1)])),
        ]);
        let e = decode::<List<P2PMsg>>("x", short).unwrap_err();
        assert_eq!(e.code, error_code::FPNN_EC_PROTO_TYPE_CONVERT);
        let bad_row = map(vec![("msgs", Value::Array(vec![1.into()]))]);
        assert!(decode::<List<P2PMsg>>("x", bad_row).is_err());
    }

    #[test]
    fn unread_lists_split_by_prefix() {
        let v = map(vec![
            ("groupConversations", Value::Array(vec![8.into()])),
            ("groupUnreads", Value::Array(vec![3.into()])),
            ("groupMsgs", Value::Array(vec![row(1, 42)])),
            ("p2pConversations", Value::Array(vec![9.into()])),
            ("p2pUnreads", Value::Array(vec![1.into()])),
            ("p2pMsgs", Value::Array(vec![row(2, 2)])),
        ]);
        let u = decode::<UnreadLists>("getunreadconversationlist", v).unwrap();
        assert_eq!((u.group.conversations, u.group.unreads), (vec![8], vec![3]));
        assert_eq!(u.group.msgs[0].from, 42);
        assert_eq!((u.p2p.conversations, u.p2p.msgs[0].direction), (vec![9], 2));
        let lopsided = map(vec![("p2pUnreads", Value::Array(vec![1.into()]))]);
        assert!(decode::<UnreadLists>("x", lopsided).is_err());
    }

    #[test]
    fn list_request_leaves_out_what_is_none() {
        let keys = |v: Value| -> Vec<String> {
            v.as_map()
                .unwrap()
                .iter()
                .filter_map(|(k, _)| k.as_str().map(str::to_owned))
                .collect()
        };
        assert!(keys(list_request(None, None, None).to_value()).is_empty());
        assert_eq!(
            keys(list_request(Some(true), Some(5), Some(&[30])).to_value()),
            ["clear", "mtime", "mtypes"]
        );
    }
}
