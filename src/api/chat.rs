//! The chat methods: the chat half of the JavaScript docs' Chat page (docs/Chat.md).
//!
//! Every chat method is a message method with the chat mtypes: the sends are
//! `sendmsg`/`sendgroupmsg`/`sendroommsg` with mtype 30 (text), 31 (audio) or 32 (cmd), the
//! histories are the history quests with mtypes `[30, 31, 32]`, and `get_chat` /
//! `delete_chat` are `getmsg` / `delmsg`. They call the message methods
//! (`src/api/messages.rs`), so this area declares no wire method of its own. The sends and
//! histories are declared in two tables (name, target argument, message method); the
//! macros below write their bodies.

use crate::client::RtmClient;
use crate::error::{RtmError, SendError};
use crate::types::{
    mtype, BroadcastMsg, GroupMsg, HistoryMessages, P2PMsg, RetrievedMessage, RoomMsg, SendAnswer,
};

/// The mtypes the chat histories ask for: text (30), audio (31) and cmd (32).
const CHAT_MTYPES: &[u8] = &[mtype::CHAT_TEXT, mtype::CHAT_AUDIO, mtype::CHAT_CMD];

/// `pub fn NAME(TARGET) = SEND_METHOD(MTYPE);`: a send of `(TARGET, msg, attrs, mid,
/// timeout, callback)` through the message send method with that mtype. Errors, mids and
/// answers are the send method's (docs/Chat.md): an empty `msg` completes with 200033
/// without sending, `mid` 0 makes the client generate one.
macro_rules! chat_sends {
    ($($(#[$doc:meta])* pub fn $name:ident($target:ident) = $send:ident($mtype:expr);)+) => {
        impl RtmClient {
            $(
                $(#[$doc])*
                pub fn $name(
                    &self,
                    $target: i64,
                    msg: &str,
                    attrs: &str,
                    mid: i64,
                    timeout: u64,
                    callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
                ) {
                    self.$send($target, $mtype, msg, attrs, mid, timeout, callback);
                }
            )+
        }
    };
}

/// `pub fn NAME(TARGET?) -> ROW = HISTORY_METHOD;`: a page of `([TARGET,] desc, num,
/// begin, end, lastid, timeout, callback)` through the history method with the chat
/// mtypes. Paging and errors are the history method's (docs/Chat.md).
macro_rules! chat_histories {
    ($($(#[$doc:meta])* pub fn $name:ident($($target:ident)?) -> $row:ty = $history:ident;)+) => {
        impl RtmClient {
            $(
                $(#[$doc])*
                #[allow(clippy::too_many_arguments)]
                pub fn $name(
                    &self,
                    $($target: i64,)?
                    desc: bool,
                    num: i32,
                    begin: Option<i64>,
                    end: Option<i64>,
                    lastid: Option<i64>,
                    timeout: u64,
                    callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<$row>>)
                        + Send
                        + 'static,
                ) {
                    let mtypes = Some(CHAT_MTYPES);
                    self.$history($($target,)? desc, num, begin, end, lastid, mtypes, timeout, callback);
                }
            )+
        }
    };
}

chat_sends! {
    /// Sends a chat text (mtype 30) to user `to` (`sendmsg`). Mirrors JavaScript
    /// `sendChat(to, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_message`] with
    /// mtype [`mtype::CHAT_TEXT`].
    pub fn send_chat(to) = send_message(mtype::CHAT_TEXT);
    /// Sends a chat audio (mtype 31) to user `to` (`sendmsg`). Mirrors JavaScript
    /// `sendAudio(to, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_message`] with
    /// mtype [`mtype::CHAT_AUDIO`].
    pub fn send_audio(to) = send_message(mtype::CHAT_AUDIO);
    /// Sends a chat command (mtype 32) to user `to` (`sendmsg`). Mirrors JavaScript
    /// `sendCmd(to, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_message`] with
    /// mtype [`mtype::CHAT_CMD`].
    pub fn send_cmd(to) = send_message(mtype::CHAT_CMD);
    /// Sends a chat text (mtype 30) to group `gid` (`sendgroupmsg`). Mirrors JavaScript
    /// `sendGroupChat(gid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_group_message`] with
    /// mtype [`mtype::CHAT_TEXT`].
    pub fn send_group_chat(gid) = send_group_message(mtype::CHAT_TEXT);
    /// Sends a chat audio (mtype 31) to group `gid` (`sendgroupmsg`). Mirrors JavaScript
    /// `sendGroupAudio(gid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_group_message`] with
    /// mtype [`mtype::CHAT_AUDIO`].
    pub fn send_group_audio(gid) = send_group_message(mtype::CHAT_AUDIO);
    /// Sends a chat command (mtype 32) to group `gid` (`sendgroupmsg`). Mirrors JavaScript
    /// `sendGroupCmd(gid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_group_message`] with
    /// mtype [`mtype::CHAT_CMD`].
    pub fn send_group_cmd(gid) = send_group_message(mtype::CHAT_CMD);
    /// Sends a chat text (mtype 30) to room `rid` (`sendroommsg`). Mirrors JavaScript
    /// `sendRoomChat(rid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_room_message`] with
    /// mtype [`mtype::CHAT_TEXT`].
    pub fn send_room_chat(rid) = send_room_message(mtype::CHAT_TEXT);
    /// Sends a chat audio (mtype 31) to room `rid` (`sendroommsg`). Mirrors JavaScript
    /// `sendRoomAudio(rid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_room_message`] with
    /// mtype [`mtype::CHAT_AUDIO`].
    pub fn send_room_audio(rid) = send_room_message(mtype::CHAT_AUDIO);
    /// Sends a chat command (mtype 32) to room `rid` (`sendroommsg`). Mirrors JavaScript
    /// `sendRoomCmd(rid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_room_message`] with
    /// mtype [`mtype::CHAT_CMD`].
    pub fn send_room_cmd(rid) = send_room_message(mtype::CHAT_CMD);
}

chat_histories! {
    /// A page of the chat history of group `gid` (`getgroupmsg` with mtypes `[30, 31, 32]`).
    /// Mirrors JavaScript `getGroupChat(gid, desc, num, begin, end, lastid, timeout, callback)`.
    /// As [`RtmClient::get_group_message`] without `mtypes`.
    pub fn get_group_chat(gid) -> GroupMsg = get_group_message;
    /// A page of the chat history of room `rid` (`getroommsg` with mtypes `[30, 31, 32]`).
    /// Mirrors JavaScript `getRoomChat(rid, desc, num, begin, end, lastid, timeout, callback)`.
    /// As [`RtmClient::get_room_message`] without `mtypes`.
    pub fn get_room_chat(rid) -> RoomMsg = get_room_message;
    /// A page of the chat history of the broadcasts (`getbroadcastmsg` with mtypes `[30, 31, 32]`).
    /// Mirrors JavaScript `getBroadcastChat(desc, num, begin, end, lastid, timeout, callback)`.
    /// As [`RtmClient::get_broadcast_message`] without `mtypes`.
    pub fn get_broadcast_chat() -> BroadcastMsg = get_broadcast_message;
    /// A page of the chat history of the p2p conversation with `ouid` (`getp2pmsg` with mtypes `[30, 31, 32]`).
    /// Mirrors JavaScript `getP2PChat(ouid, desc, num, begin, end, lastid, timeout, callback)`.
    /// As [`RtmClient::get_p2p_message`] without `mtypes`.
    pub fn get_p2p_chat(ouid) -> P2PMsg = get_p2p_message;
}

impl RtmClient {
    /// Fetches one chat message (`getmsg`). Mirrors JavaScript
    /// `getChat(from, mid, xid, type, timeout, callback)` (which recurses into itself in
    /// the JavaScript SDK; this one works). As [`RtmClient::get_message`]: `message_type`
    /// 1 p2p, 2 group, 3 room, anything else 200033 without sending; a message that does
    /// not exist (or was deleted) completes with 10009.
    pub fn get_chat(
        &self,
        from: i64,
        mid: i64,
        xid: i64,
        message_type: u8,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<RetrievedMessage>) + Send + 'static,
    ) {
        self.get_message(from, mid, xid, message_type, timeout, callback);
    }

    /// Deletes a chat message (`delmsg`); only its sender may (200021). Mirrors JavaScript
    /// `deleteChat(from, mid, xid, type, timeout, callback)` (whose arguments are shifted
    /// in the JavaScript SDK; this one passes them as documented). As
    /// [`RtmClient::delete_message`].
    pub fn delete_chat(
        &self,
        from: i64,
        mid: i64,
        xid: i64,
        message_type: u8,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.delete_message(from, mid, xid, message_type, timeout, callback);
    }
}
