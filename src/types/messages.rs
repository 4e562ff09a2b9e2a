//! The results of the message methods (the JavaScript docs' Messages page,
//! docs/Messages.md). Each docs area keeps its result types in its own file
//! here (`src/types/<area>.rs`), re-exported from [`crate::types`].
//!
//! Results whose fields are the answer's keys derive `serde::Deserialize`
//! and decode straight from the RTM answer (msgpack), with the shared helpers
//! of docs/api-internals.md for ids, id-keyed maps and counts.

use std::collections::HashMap;

use serde::Deserialize;

/// The answer of a successful send.
///
/// Mirrors the `data` object `{mid, payload: {mtime}}` of JavaScript `sendMessage`,
/// `sendGroupMessage`, `sendRoomMessage` (and the chat, audio, cmd and file variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SendAnswer {
    /// The message id that was sent (the generated one when the caller passed 0).
    pub mid: i64,
    /// The gate's answer.
    pub payload: SendPayload,
}

/// The gate's answer to a send.
///
/// Mirrors `data.payload` (`{mtime}`) of the JavaScript send methods' callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct SendPayload {
    /// The server time of the message, in milliseconds since the epoch.
    pub mtime: i64,
}

/// Who has unread messages for the logged-in user.
///
/// Mirrors the `data` (`{p2p, group}`) of JavaScript `getUnreadMessage`'s callback, with
/// 64-bit integer ids instead of strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct UnreadMessage {
    /// The uids that sent unread p2p messages.
    #[serde(default, deserialize_with = "crate::api::de::ids")]
    pub p2p: Vec<i64>,
    /// The gids of groups with unread messages.
    #[serde(default, deserialize_with = "crate::api::de::ids")]
    pub group: Vec<i64>,
}

/// Unread p2p message counts.
///
/// Mirrors the `data` (`{p2p, ltime}`) of JavaScript `getP2PUnreadMessageNum`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct P2PUnreadNum {
    /// Unread message count, by sender uid.
    #[serde(default, deserialize_with = "crate::api::de::count_map")]
    pub p2p: HashMap<i64, i32>,
    /// Time of the latest message of each conversation, by uid (ms since the epoch).
    #[serde(default, deserialize_with = "crate::api::de::id_map")]
    pub ltime: HashMap<i64, i64>,
}

/// Unread group message counts.
///
/// Mirrors the `data` (`{group, ltime}`) of JavaScript `getGroupUnreadMessageNum`'s
/// callback.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct GroupUnreadNum {
    /// Unread message count, by gid.
    #[serde(default, deserialize_with = "crate::api::de::count_map")]
    pub group: HashMap<i64, i32>,
    /// Time of the latest message of each group, by gid (ms since the epoch).
    #[serde(default, deserialize_with = "crate::api::de::id_map")]
    pub ltime: HashMap<i64, i64>,
}

/// One page of history.
///
/// Mirrors the `data` (`{num, lastid, begin, end, msgs}`) of JavaScript
/// `getGroupMessage`, `getRoomMessage`, `getBroadcastMessage` and `getP2PMessage`'s
/// callback (and of the `get*Chat` variants). `M` is [`GroupMsg`], [`RoomMsg`],
/// [`BroadcastMsg`] or [`P2PMsg`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(bound(deserialize = "M: Deserialize<'de>"))]
pub struct HistoryMessages<M> {
    /// The number of messages in this page.
    #[serde(default, deserialize_with = "crate::api::de::count")]
    pub num: i32,
    /// The id to pass as `lastid` to fetch the next page.
    #[serde(default, deserialize_with = "crate::api::de::nil_default")]
    pub lastid: i64,
    /// The `begin` to pass to fetch the next page (ms since the epoch).
    #[serde(default, deserialize_with = "crate::api::de::nil_default")]
    pub begin: i64,
    /// The `end` to pass to fetch the next page (ms since the epoch).
    #[serde(default, deserialize_with = "crate::api::de::nil_default")]
    pub end: i64,
    /// The messages.
    #[serde(default, deserialize_with = "crate::api::de::nil_default")]
    pub msgs: Vec<M>,
}

impl<M> Default for HistoryMessages<M> {
    /// An empty page.
    fn default() -> HistoryMessages<M> {
        HistoryMessages {
            num: 0,
            lastid: 0,
            begin: 0,
            end: 0,
            msgs: Vec::new(),
        }
    }
}

/// One message of a group, room or broadcast history.
///
/// Mirrors `GroupMsg`, `RoomMsg` and `BroadcastMsg` (`{id, from, mtype, mid, deleted, msg,
/// attrs, mtime}`) of JavaScript `getGroupMessage`, `getRoomMessage` and
/// `getBroadcastMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryMsg {
    /// The history row id (use the last one as `lastid` for paging).
    pub id: i64,
    /// The sender's uid.
    pub from: i64,
    /// The message type.
    pub mtype: u8,
    /// The message id chosen by the sender.
    pub mid: i64,
    /// Whether the message was deleted.
    pub deleted: bool,
    /// The body as text; `None` when its bytes are not valid UTF-8.
    pub msg: Option<String>,
    /// The body's raw bytes, always.
    pub binary: Vec<u8>,
    /// The message's attributes (invalid UTF-8 replaced by U+FFFD).
    pub attrs: String,
    /// The server time of the message, in milliseconds since the epoch.
    pub mtime: i64,
}

/// One message of a group history. Mirrors JavaScript `GroupMsg` of `getGroupMessage`.
pub type GroupMsg = HistoryMsg;
/// One message of a room history. Mirrors JavaScript `RoomMsg` of `getRoomMessage`.
pub type RoomMsg = HistoryMsg;
/// One message of the broadcast history. Mirrors JavaScript `BroadcastMsg` of
/// `getBroadcastMessage`.
pub type BroadcastMsg = HistoryMsg;

/// One message of a p2p history.
///
/// Mirrors `P2PMsg` (`{id, direction, mtype, mid, deleted, msg, attrs, mtime}`) of
/// JavaScript `getP2PMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct P2PMsg {
    /// The history row id (use the last one as `lastid` for paging).
    pub id: i64,
    /// 1: sent by the logged-in user; 2: received from `ouid`.
    pub direction: u8,
    /// The message type.
    pub mtype: u8,
    /// The message id chosen by the sender.
    pub mid: i64,
    /// Whether the message was deleted.
    pub deleted: bool,
    /// The body as text; `None` when its bytes are not valid UTF-8.
    pub msg: Option<String>,
    /// The body's raw bytes, always.
    pub binary: Vec<u8>,
    /// The message's attributes (invalid UTF-8 replaced by U+FFFD).
    pub attrs: String,
    /// The server time of the message, in milliseconds since the epoch.
    pub mtime: i64,
}

/// One message fetched by id.
///
/// Mirrors the `data` (`{id, mtype, msg, attrs, mtime}`) of JavaScript `getMessage`'s (and
/// `getChat`'s) callback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetrievedMessage {
    /// The history row id.
    pub id: i64,
    /// The message type.
    pub mtype: u8,
    /// The body as text; `None` when its bytes are not valid UTF-8.
    pub msg: Option<String>,
    /// The body's raw bytes, always.
    pub binary: Vec<u8>,
    /// The message's attributes (invalid UTF-8 replaced by U+FFFD).
    pub attrs: String,
    /// The server time of the message, in milliseconds since the epoch.
    pub mtime: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PushMessage;

    #[test]
    fn result_defaults() {
        let h: HistoryMessages<P2PMsg> = HistoryMessages::default();
        assert_eq!(h.num, 0);
        assert!(h.msgs.is_empty());
        let g: HistoryMessages<GroupMsg> = Default::default();
        assert_eq!(g.lastid, 0);
        assert_eq!(SendAnswer::default().payload.mtime, 0);
        assert!(UnreadMessage::default().p2p.is_empty());
        assert!(P2PUnreadNum::default().ltime.is_empty());
        assert!(GroupUnreadNum::default().group.is_empty());
        assert_eq!(PushMessage::default().gid, None);
        assert_eq!(RetrievedMessage::default().msg, None);
        assert!(!HistoryMsg::default().deleted);
    }
}
