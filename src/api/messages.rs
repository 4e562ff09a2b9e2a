//! The message API: the 13 methods of the JavaScript docs' Messages page
//! (docs/Messages.md has each wire name and its keys).

use serde::{Deserialize, Deserializer};

use super::de::{self, Body, Row};
use super::decode::{answer, Answer, Empty, Found};
use super::spec::{specs, Spec};
use crate::client::RtmClient;
use crate::error::{RtmError, SendError};
use crate::types::{
    BroadcastMsg, GroupMsg, GroupUnreadNum, HistoryMessages, HistoryMsg, P2PMsg, P2PUnreadNum,
    RetrievedMessage, RoomMsg, SendAnswer, SendPayload, UnreadMessage,
};
use crate::value::{self, Encoded, MapBuilder};

specs! {
    SEND_MSG = "sendmsg", Safe;
    SEND_GROUP_MSG = "sendgroupmsg", Safe;
    SEND_ROOM_MSG = "sendroommsg", Safe;
    GET_UNREAD = "getunread", Safe;
    CLEAN_UNREAD = "cleanunread", Safe;
    GET_P2P_UNREAD = "getp2punread", Safe;
    GET_GROUP_UNREAD = "getgroupunread", Safe;
    GET_GROUP_MSG = "getgroupmsg", Safe;
    GET_ROOM_MSG = "getroommsg", Safe;
    GET_BROADCAST_MSG = "getbroadcastmsg", Safe;
    GET_P2P_MSG = "getp2pmsg", Safe;
    GET_MSG = "getmsg", Safe;
    DEL_MSG = "delmsg", Safe;
}

impl Answer for SendPayload {
    type Out = SendPayload;
    fn finish(self) -> Result<SendPayload, RtmError> {
        Ok(self)
    }
    /// `{mtime}`, read without serde: this decode runs once for every
    /// message sent.
    fn quick(bytes: &[u8]) -> Option<SendPayload> {
        crate::fpnn::packet::int_field(bytes, "mtime").map(|mtime| SendPayload { mtime })
    }
}

answer!(
    UnreadMessage,
    P2PUnreadNum,
    GroupUnreadNum,
    HistoryMessages<HistoryMsg>,
    HistoryMessages<P2PMsg>,
);

impl<'de> Deserialize<'de> for HistoryMsg {
    /// A group, room or broadcast history row.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Row::deserialize(d)?;
        Ok(HistoryMsg {
            id: r.id,
            from: r.second,
            mtype: r.mtype,
            mid: r.mid,
            deleted: r.deleted,
            msg: r.msg.text,
            binary: r.msg.bytes,
            attrs: r.attrs,
            mtime: r.mtime,
        })
    }
}

impl<'de> Deserialize<'de> for P2PMsg {
    /// A p2p history row (`direction` in place of `from`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Row::deserialize(d)?;
        Ok(P2PMsg {
            id: r.id,
            direction: r.second.clamp(0, 255) as u8,
            mtype: r.mtype,
            mid: r.mid,
            deleted: r.deleted,
            msg: r.msg.text,
            binary: r.msg.bytes,
            attrs: r.attrs,
            mtime: r.mtime,
        })
    }
}

/// The answer of `getmsg`: `{id, mtype, msg, attrs, mtime}`.
#[derive(Deserialize)]
struct Retrieved {
    #[serde(deserialize_with = "de::id")]
    id: i64,
    mtype: u8,
    #[serde(default)]
    msg: Body,
    #[serde(default, deserialize_with = "de::lossy")]
    attrs: String,
    mtime: i64,
}

impl From<Retrieved> for RetrievedMessage {
    fn from(w: Retrieved) -> RetrievedMessage {
        RetrievedMessage {
            id: w.id,
            mtype: w.mtype,
            msg: w.msg.text,
            binary: w.msg.bytes,
            attrs: w.attrs,
            mtime: w.mtime,
        }
    }
}
answer!(Retrieved => RetrievedMessage);

/// The shared request of the four history methods.
#[allow(clippy::too_many_arguments)]
fn history_request(
    target: Option<(&str, i64)>,
    desc: bool,
    num: i32,
    begin: Option<i64>,
    end: Option<i64>,
    lastid: Option<i64>,
    mtypes: Option<&[u8]>,
) -> Encoded {
    let b = match target {
        Some((k, id)) => MapBuilder::new().put(k, id),
        None => MapBuilder::new(),
    };
    b.put("desc", desc)
        .put("num", num)
        .put_opt("begin", begin)
        .put_opt("end", end)
        .put_opt("lastid", lastid)
        .put_opt("mtypes", mtypes.map(value::u8_array))
        .build()
}

/// The shared request of the two unread-count methods.
fn unread_request(key: &str, ids: &[i64], mtime: Option<i64>, mtypes: Option<&[u8]>) -> Encoded {
    MapBuilder::new()
        .put(key, value::i64_array(ids))
        .put_opt("mtime", mtime)
        .put_opt("mtypes", mtypes.map(value::u8_array))
        .build()
}

fn message_key(from: i64, mid: i64, xid: i64, message_type: u8) -> Encoded {
    MapBuilder::new()
        .put("from", from)
        .put("mid", mid)
        .put("xid", xid)
        .put("type", message_type)
        .build()
}

impl RtmClient {
    /// The shared path of the three send methods.
    #[allow(clippy::too_many_arguments)]
    fn send_to(
        &self,
        spec: &'static Spec,
        key: &str,
        target: i64,
        mtype: u8,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        let mid = if mid == 0 { self.next_mid() } else { mid };
        if msg.is_empty() {
            return self.reject("msg must not be empty", Self::send_error(mid), callback);
        }
        let payload = MapBuilder::new()
            .put(key, target)
            .put("mid", mid)
            .put("mtype", mtype)
            .put("msg", msg)
            .put("attrs", attrs)
            .build();
        let then = move |payload| SendAnswer { mid, payload };
        self.quest_with::<SendPayload, _, _>(
            spec,
            payload,
            timeout,
            then,
            Self::send_error(mid),
            callback,
        );
    }

    /// Sends a p2p message (`sendmsg`). Mirrors JavaScript
    /// `sendMessage(to, mtype, msg, attrs, mid, timeout, callback)`.
    ///
    /// `mid` 0 makes the client generate one; the callback's data and error
    /// both carry the mid used. An empty `msg` completes with 200033 without
    /// sending.
    #[allow(clippy::too_many_arguments)]
    pub fn send_message(
        &self,
        to: i64,
        mtype: u8,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_to(
            &SEND_MSG, "to", to, mtype, msg, attrs, mid, timeout, callback,
        );
    }

    /// Sends a message to a group (`sendgroupmsg`). Mirrors JavaScript
    /// `sendGroupMessage(gid, mtype, msg, attrs, mid, timeout, callback)`.
    #[allow(clippy::too_many_arguments)]
    pub fn send_group_message(
        &self,
        gid: i64,
        mtype: u8,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_to(
            &SEND_GROUP_MSG,
            "gid",
            gid,
            mtype,
            msg,
            attrs,
            mid,
            timeout,
            callback,
        );
    }

    /// Sends a message to a room (`sendroommsg`). Mirrors JavaScript
    /// `sendRoomMessage(rid, mtype, msg, attrs, mid, timeout, callback)`.
    #[allow(clippy::too_many_arguments)]
    pub fn send_room_message(
        &self,
        rid: i64,
        mtype: u8,
        msg: &str,
        attrs: &str,
        mid: i64,
        timeout: u64,
        callback: impl FnOnce(Option<SendError>, Option<SendAnswer>) + Send + 'static,
    ) {
        self.send_to(
            &SEND_ROOM_MSG,
            "rid",
            rid,
            mtype,
            msg,
            attrs,
            mid,
            timeout,
            callback,
        );
    }

    /// The peers and groups with unread messages (`getunread`). Mirrors
    /// JavaScript `getUnreadMessage(clear, timeout, callback)`; ids are `i64`
    /// (JavaScript gives decimal strings). `clear` also moves the unread mark
    /// to now.
    pub fn get_unread_message(
        &self,
        clear: bool,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<UnreadMessage>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().put("clear", clear).build();
        self.quest::<UnreadMessage>(&GET_UNREAD, payload, timeout, callback);
    }

    /// Moves the unread mark to now (`cleanunread`). Mirrors JavaScript
    /// `cleanUnreadMessage(timeout, callback)`.
    pub fn clean_unread_message(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        let payload = MapBuilder::new().build();
        self.quest::<Empty>(&CLEAN_UNREAD, payload, timeout, callback);
    }

    /// Unread p2p message counts per peer (`getp2punread`). Mirrors
    /// JavaScript `getP2PUnreadMessageNum(uids, mtime, mtypes, timeout, callback)`.
    ///
    /// `mtime` `Some(t)`: messages strictly after `t` (ms), so `Some(0)` counts every
    /// stored message (since the epoch), as JavaScript's `mtime: 0` does; `None` (the key
    /// left out, as JavaScript does for `undefined`): since the user's last logout.
    /// `mtypes` `None`: the chat types. An empty `uids` completes with 200033 without
    /// sending; the gate takes at most 100 (200032 beyond).
    pub fn get_p2p_unread_message_num(
        &self,
        uids: &[i64],
        mtime: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<P2PUnreadNum>) + Send + 'static,
    ) {
        if uids.is_empty() {
            return self.reject("uids must not be empty", |e| e, callback);
        }
        let payload = unread_request("uids", uids, mtime, mtypes);
        self.quest::<P2PUnreadNum>(&GET_P2P_UNREAD, payload, timeout, callback);
    }

    /// Unread group message counts per group (`getgroupunread`). Mirrors
    /// JavaScript `getGroupUnreadMessageNum(gids, mtime, mtypes, timeout, callback)`.
    ///
    /// `mtime` and `mtypes` as for [`get_p2p_unread_message_num`](Self::get_p2p_unread_message_num):
    /// `Some(0)` counts since the epoch, `None` since the user's last logout. An empty
    /// `gids` completes with 200033 without sending; the gate takes at most 100 (200032
    /// beyond).
    pub fn get_group_unread_message_num(
        &self,
        gids: &[i64],
        mtime: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<GroupUnreadNum>) + Send + 'static,
    ) {
        if gids.is_empty() {
            return self.reject("gids must not be empty", |e| e, callback);
        }
        let payload = unread_request("gids", gids, mtime, mtypes);
        self.quest::<GroupUnreadNum>(&GET_GROUP_UNREAD, payload, timeout, callback);
    }

    /// A page of group history (`getgroupmsg`). Mirrors JavaScript
    /// `getGroupMessage(gid, desc, num, begin, end, lastid, mtypes, timeout, callback)`.
    ///
    /// Pass the answer's `lastid` and `begin` (ascending) or `end`
    /// (descending) back to fetch the next page. Gates return at most 20
    /// messages per page.
    #[allow(clippy::too_many_arguments)]
    pub fn get_group_message(
        &self,
        gid: i64,
        desc: bool,
        num: i32,
        begin: Option<i64>,
        end: Option<i64>,
        lastid: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<GroupMsg>>) + Send + 'static,
    ) {
        let payload = history_request(Some(("gid", gid)), desc, num, begin, end, lastid, mtypes);
        self.quest::<HistoryMessages<GroupMsg>>(&GET_GROUP_MSG, payload, timeout, callback);
    }

    /// A page of room history (`getroommsg`). Mirrors JavaScript
    /// `getRoomMessage(rid, desc, num, begin, end, lastid, mtypes, timeout, callback)`.
    #[allow(clippy::too_many_arguments)]
    pub fn get_room_message(
        &self,
        rid: i64,
        desc: bool,
        num: i32,
        begin: Option<i64>,
        end: Option<i64>,
        lastid: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<RoomMsg>>) + Send + 'static,
    ) {
        let payload = history_request(Some(("rid", rid)), desc, num, begin, end, lastid, mtypes);
        self.quest::<HistoryMessages<RoomMsg>>(&GET_ROOM_MSG, payload, timeout, callback);
    }

    /// A page of broadcast history (`getbroadcastmsg`). Mirrors JavaScript
    /// `getBroadcastMessage(desc, num, begin, end, lastid, mtypes, timeout, callback)`.
    #[allow(clippy::too_many_arguments)]
    pub fn get_broadcast_message(
        &self,
        desc: bool,
        num: i32,
        begin: Option<i64>,
        end: Option<i64>,
        lastid: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<BroadcastMsg>>) + Send + 'static,
    ) {
        let payload = history_request(None, desc, num, begin, end, lastid, mtypes);
        self.quest::<HistoryMessages<BroadcastMsg>>(&GET_BROADCAST_MSG, payload, timeout, callback);
    }

    /// A page of p2p history with `ouid` (`getp2pmsg`). Mirrors JavaScript
    /// `getP2PMessage(ouid, desc, num, begin, end, lastid, mtypes, timeout, callback)`.
    /// Each message's `direction` is 1 when the logged-in user sent it, 2
    /// when it came from `ouid`.
    #[allow(clippy::too_many_arguments)]
    pub fn get_p2p_message(
        &self,
        ouid: i64,
        desc: bool,
        num: i32,
        begin: Option<i64>,
        end: Option<i64>,
        lastid: Option<i64>,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<HistoryMessages<P2PMsg>>) + Send + 'static,
    ) {
        let payload = history_request(Some(("ouid", ouid)), desc, num, begin, end, lastid, mtypes);
        self.quest::<HistoryMessages<P2PMsg>>(&GET_P2P_MSG, payload, timeout, callback);
    }

    /// Fetches one message (`getmsg`). Mirrors JavaScript
    /// `getMessage(from, mid, xid, type, timeout, callback)`.
    ///
    /// `message_type`: 1 p2p (`xid` is the receiver), 2 group, 3 room; any
    /// other value completes with 200033 without sending. A message that does
    /// not exist (or was deleted) completes with 10009
    /// (`FPNN_EC_PROTO_KEY_NOT_FOUND`, "message not found").
    pub fn get_message(
        &self,
        from: i64,
        mid: i64,
        xid: i64,
        message_type: u8,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<RetrievedMessage>) + Send + 'static,
    ) {
        if !(1..=3).contains(&message_type) {
            return self.reject(
                "type must be 1 (p2p), 2 (group) or 3 (room)",
                |e| e,
                callback,
            );
        }
        let payload = message_key(from, mid, xid, message_type);
        self.quest::<Found<Retrieved>>(&GET_MSG, payload, timeout, callback);
    }

    /// Deletes a message (`delmsg`); only its sender may. Mirrors JavaScript
    /// `deleteMessage(from, mid, xid, type, timeout, callback)`. Arguments as
    /// [`RtmClient::get_message`].
    pub fn delete_message(
        &self,
        from: i64,
        mid: i64,
        xid: i64,
        message_type: u8,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if !(1..=3).contains(&message_type) {
            return self.reject(
                "type must be 1 (p2p), 2 (group) or 3 (room)",
                |e| e,
                callback,
            );
        }
        let payload = message_key(from, mid, xid, message_type);
        self.quest::<Empty>(&DEL_MSG, payload, timeout, callback);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::decode::decode;
    use crate::error::error_code;
    use rmpv::Value;
    use std::collections::HashMap;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    #[test]
    fn history_rows_map_and_bad_rows_are_errors() {
        let row = Value::Array(vec![
            9.into(),
            1.into(),
            30.into(),
            5.into(),
            false.into(),
            Value::Binary(vec![0xff]),
            "a".into(),
            123.into(),
            "extra".into(),
        ]);
        let good = map(vec![
            ("num", 1.into()),
            ("lastid", 9u64.into()),
            ("begin", Value::Nil),
            ("end", 123.into()),
            ("msgs", Value::Array(vec![row])),
        ]);
        let h = decode::<HistoryMessages<P2PMsg>>("getp2pmsg", good.clone()).unwrap();
        assert_eq!((h.num, h.lastid, h.begin, h.end), (1, 9, 0, 123));
        assert_eq!(h.msgs[0].direction, 1);
        assert_eq!(
            (h.msgs[0].msg.clone(), h.msgs[0].binary.clone()),
            (None, vec![0xff])
        );
        let g = decode::<HistoryMessages<GroupMsg>>("getgroupmsg", good).unwrap();
        assert_eq!((g.msgs[0].from, g.msgs[0].attrs.as_str()), (1, "a"));

        let bad_row = map(vec![("msgs", Value::Array(vec![1.into()]))]);
        let e = decode::<HistoryMessages<GroupMsg>>("getgroupmsg", bad_row).unwrap_err();
        assert_eq!(e.code, error_code::FPNN_EC_PROTO_TYPE_CONVERT);
        assert!(e.ex.contains("getgroupmsg"), "{e}");
        let short = map(vec![(
            "msgs",
            Value::Array(vec![Value::Array(vec![1.into(); 7])]),
        )]);
        assert!(decode::<HistoryMessages<GroupMsg>>("getgroupmsg", short).is_err());
        let empty = decode::<HistoryMessages<GroupMsg>>("getgroupmsg", map(vec![])).unwrap();
        assert!(empty.msgs.is_empty());
    }

    #[test]
    fn send_and_unread_answers() {
        let a = decode::<SendPayload>("sendmsg", map(vec![("mtime", 7u64.into())])).unwrap();
        assert_eq!(a.mtime, 7);
        let e = decode::<SendPayload>("sendmsg", map(vec![])).unwrap_err();
        assert_eq!(e.code, error_code::FPNN_EC_PROTO_TYPE_CONVERT);
        assert!(e.ex.contains("mtime"), "{e}");

        let u = map(vec![
            ("p2p", Value::Array(vec![1.into(), "2".into()])),
            ("group", Value::Nil),
        ]);
        let u = decode::<UnreadMessage>("getunread", u).unwrap();
        assert_eq!((u.p2p, u.group), (vec![1, 2], vec![]));

        let n = map(vec![
            ("p2p", Value::Map(vec![("5".into(), 3.into())])),
            ("ltime", Value::Map(vec![(5.into(), 99.into())])),
        ]);
        let n = decode::<P2PUnreadNum>("getp2punread", n).unwrap();
        assert_eq!((n.p2p[&5], n.ltime[&5]), (3, 99));
        // An entry whose key or value cannot be read is skipped
        // (docs/Messages.md); the others are kept.
        let bad = map(vec![(
            "group",
            Value::Map(vec![
                ("x".into(), 1.into()),
                ("6".into(), "y".into()),
                ("7".into(), 2.into()),
            ]),
        )]);
        let n = decode::<GroupUnreadNum>("getgroupunread", bad).unwrap();
        assert_eq!(n.group, HashMap::from([(7, 2)]));
    }

    #[test]
    fn retrieved_message_and_not_found() {
        let m = map(vec![
            ("id", 4.into()),
            ("mtype", 30.into()),
            ("msg", "hi".into()),
            ("mtime", 8.into()),
        ]);
        let r = decode::<Found<Retrieved>>("getmsg", m).unwrap();
        assert_eq!(
            (r.id, r.mtype, r.msg.as_deref(), r.attrs.as_str()),
            (4, 30, Some("hi"), "")
        );
        let e = decode::<Found<Retrieved>>("getmsg", map(vec![])).unwrap_err();
        assert_eq!(e.code, error_code::FPNN_EC_PROTO_KEY_NOT_FOUND);
        let e = decode::<Found<Retrieved>>("getmsg", map(vec![("id", 1.into())])).unwrap_err();
        assert_eq!(e.code, error_code::FPNN_EC_PROTO_TYPE_CONVERT);
        assert_eq!(decode::<Empty>("delmsg", Value::Nil).unwrap(), ());
    }

    #[test]
    fn history_request_leaves_out_what_is_none() {
        let v = history_request(Some(("gid", 5)), true, 10, None, Some(7), None, None).to_value();
        let keys: Vec<&str> = v
            .as_map()
            .unwrap()
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["gid", "desc", "num", "end"]);
    }
}
