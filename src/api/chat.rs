//! The chat methods: the chat half of the JavaScript docs' Chat page (docs/Chat.md).
//!
//! Every chat method is a message method with the chat mtypes: the sends are
//! `sendmsg`/`sendgroupmsg`/`sendroommsg` with mtype 30 (text), 31 (audio) or 32 (cmd), the
//! histories are the history quests with mtypes `[30, 31, 32]`, and `get_chat` /
//! `delete_chat` are `getmsg` / `delmsg`. They call the message methods
//! (`src/api/messages.rs`), so this area declares no wire method of its own. Each method is one
//! line over its message method.

use crate::client::RtmClient;
use crate::error::{RtmError, SendError};
use crate::types::{
    mtype, BroadcastMsg, GroupMsg, HistoryMessages, P2PMsg, RetrievedMessage, RoomMsg, SendAnswer,
};

/// The mtypes the chat histories ask for: text (30), audio (31) and cmd (32).
const CHAT_MTYPES: &[u8] = &[mtype::CHAT_TEXT, mtype::CHAT_AUDIO, mtype::CHAT_CMD];

impl RtmClient {
    /// Sends a chat text (mtype 30) to user `to` (`sendmsg`). Mirrors JavaScript
    /// `sendChat(to, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_message`] with
    /// mtype [`mtype::CHAT_TEXT`].
    pub fn send_chat(
        &self,
        to: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_message(to, mtype::CHAT_TEXT, msg, attrs, mid, timeout, callback);
    }

    /// Sends a chat audio (mtype 31) to user `to` (`sendmsg`). Mirrors JavaScript
    /// `sendAudio(to, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_message`] with
    /// mtype [`mtype::CHAT_AUDIO`].
    pub fn send_audio(
        &self,
        to: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_message(to, mtype::CHAT_AUDIO, msg, attrs, mid, timeout, callback);
    }

    /// Sends a chat command (mtype 32) to user `to` (`sendmsg`). Mirrors JavaScript
    /// `sendCmd(to, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_message`] with
    /// mtype [`mtype::CHAT_CMD`].
    pub fn send_cmd(
        &self,
        to: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_message(to, mtype::CHAT_CMD, msg, attrs, mid, timeout, callback);
    }

    /// Sends a chat text (mtype 30) to group `gid` (`sendgroupmsg`). Mirrors JavaScript
    /// `sendGroupChat(gid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_group_message`] with
    /// mtype [`mtype::CHAT_TEXT`].
    pub fn send_group_chat(
        &self,
        gid: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_group_message(gid, mtype::CHAT_TEXT, msg, attrs, mid, timeout, callback);
    }

    /// Sends a chat audio (mtype 31) to group `gid` (`sendgroupmsg`). Mirrors JavaScript
    /// `sendGroupAudio(gid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_group_message`] with
    /// mtype [`mtype::CHAT_AUDIO`].
    pub fn send_group_audio(
        &self,
        gid: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_group_message(gid, mtype::CHAT_AUDIO, msg, attrs, mid, timeout, callback);
    }

    /// Sends a chat command (mtype 32) to group `gid` (`sendgroupmsg`). Mirrors JavaScript
    /// `sendGroupCmd(gid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_group_message`] with
    /// mtype [`mtype::CHAT_CMD`].
    pub fn send_group_cmd(
        &self,
        gid: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_group_message(gid, mtype::CHAT_CMD, msg, attrs, mid, timeout, callback);
    }

    /// Sends a chat text (mtype 30) to room `rid` (`sendroommsg`). Mirrors JavaScript
    /// `sendRoomChat(rid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_room_message`] with
    /// mtype [`mtype::CHAT_TEXT`].
    pub fn send_room_chat(
        &self,
        rid: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_room_message(rid, mtype::CHAT_TEXT, msg, attrs, mid, timeout, callback);
    }

    /// Sends a chat audio (mtype 31) to room `rid` (`sendroommsg`). Mirrors JavaScript
    /// `sendRoomAudio(rid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_room_message`] with
    /// mtype [`mtype::CHAT_AUDIO`].
    pub fn send_room_audio(
        &self,
        rid: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_room_message(rid, mtype::CHAT_AUDIO, msg, attrs, mid, timeout, callback);
    }

    /// Sends a chat command (mtype 32) to room `rid` (`sendroommsg`). Mirrors JavaScript
    /// `sendRoomCmd(rid, msg, attrs, mid, timeout, callback)`. As [`RtmClient::send_room_message`] with
    /// mtype [`mtype::CHAT_CMD`].
    pub fn send_room_cmd(
        &self,
        rid: i64,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_room_message(rid, mtype::CHAT_CMD, msg, attrs, mid, timeout, callback);
    }

    /// A page of the chat history of group `gid` (`getgroupmsg` with mtypes `[30, 31, 32]`).
    /// Mirrors JavaScript `getGroupChat(gid, desc, num, begin, end, lastid, timeout, callback)`.
    /// As [`RtmClient::get_group_message`] without `mtypes`.
    #[allow(clippy::too_many_arguments)]
    pub fn get_group_chat(
        &self,
        gid: i64,
        desc: bool,
        num: i32,
        begin: Option<i64>,
        end: Option<i64>,
        lastid: Option<i64>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<GroupMsg>>) + Send + 'static,
    ) {
        let mtypes = Some(CHAT_MTYPES);
        self.get_group_message(
            gid, desc, num, begin, end, lastid, mtypes, timeout, callback,
        );
    }

    /// A page of the chat history of room `rid` (`getroommsg` with mtypes `[30, 31, 32]`).
    /// Mirrors JavaScript `getRoomChat(rid, desc, num, begin, end, lastid, timeout, callback)`.
    /// As [`RtmClient::get_room_message`] without `mtypes`.
    #[allow(clippy::too_many_arguments)]
    pub fn get_room_chat(
        &self,
        rid: i64,
        desc: bool,
        num: i32,
        begin: Option<i64>,
        end: Option<i64>,
        lastid: Option<i64>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<RoomMsg>>) + Send + 'static,
    ) {
        let mtypes = Some(CHAT_MTYPES);
        self.get_room_message(
            rid, desc, num, begin, end, lastid, mtypes, timeout, callback,
        );
    }

    /// A page of the chat history of the broadcasts (`getbroadcastmsg` with mtypes `[30, 31, 32]`).
    /// Mirrors JavaScript `getBroadcastChat(desc, num, begin, end, lastid, timeout, callback)`.
    /// As [`RtmClient::get_broadcast_message`] without `mtypes`.
    #[allow(clippy::too_many_arguments)]
    pub fn get_broadcast_chat(
        &self,
        desc: bool,
        num: i32,
        begin: Option<i64>,
        end: Option<i64>,
        lastid: Option<i64>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<BroadcastMsg>>) + Send + 'static,
    ) {
        let mtypes = Some(CHAT_MTYPES);
        self.get_broadcast_message(desc, num, begin, end, lastid, mtypes, timeout, callback);
    }

    /// A page of the chat history of the p2p conversation with `ouid` (`getp2pmsg` with mtypes `[30, 31, 32]`).
    /// Mirrors JavaScript `getP2PChat(ouid, desc, num, begin, end, lastid, timeout, callback)`.
    /// As [`RtmClient::get_p2p_message`] without `mtypes`.
    #[allow(clippy::too_many_arguments)]
    pub fn get_p2p_chat(
        &self,
        ouid: i64,
        desc: bool,
        num: i32,
        begin: Option<i64>,
        end: Option<i64>,
        lastid: Option<i64>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<P2PMsg>>) + Send + 'static,
    ) {
        let mtypes = Some(CHAT_MTYPES);
        self.get_p2p_message(
            ouid, desc, num, begin, end, lastid, mtypes, timeout, callback,
        );
    }
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
