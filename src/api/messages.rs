//! The message API: the 13 methods of the JavaScript docs' Messages page
//! (docs/Messages.md), with the wire names and keys of API.md section 5.

use std::collections::HashMap;

use rmpv::Value;

use super::answer::{bad, i64_of, i64_or_zero, ids_of, map_of};
use crate::client::RtmClient;
use crate::error::{error_code, RtmError, SendError};
use crate::types::{
    BroadcastMsg, GroupMsg, GroupUnreadNum, HistoryMessages, HistoryMsg, P2PMsg, P2PUnreadNum,
    RetrievedMessage, RoomMsg, SendAnswer, SendPayload, UnreadMessage,
};
use crate::value::{self, MapBuilder};

/// A history row, `[id, from|direction, mtype, mid, deleted, msg, attrs, mtime]`.
struct Row {
    id: i64,
    second: i64,
    mtype: u8,
    mid: i64,
    deleted: bool,
    msg: Option<String>,
    binary: Vec<u8>,
    attrs: String,
    mtime: i64,
}

fn row(v: &Value) -> Option<Row> {
    let a = v.as_array()?;
    if a.len() < 8 {
        return None;
    }
    let (msg, binary) = value::text_and_bytes(&a[5]);
    Some(Row {
        id: value::as_i64(&a[0])?,
        second: value::as_i64(&a[1])?,
        mtype: value::as_u8(&a[2])?,
        mid: value::as_i64(&a[3])?,
        deleted: value::as_bool(&a[4])?,
        msg,
        binary,
        attrs: value::as_string_lossy(&a[6]),
        mtime: value::as_i64(&a[7])?,
    })
}

fn history_msg(r: Row) -> HistoryMsg {
    HistoryMsg {
        id: r.id,
        from: r.second,
        mtype: r.mtype,
        mid: r.mid,
        deleted: r.deleted,
        msg: r.msg,
        binary: r.binary,
        attrs: r.attrs,
        mtime: r.mtime,
    }
}

fn p2p_msg(r: Row) -> P2PMsg {
    P2PMsg {
        id: r.id,
        direction: r.second.clamp(0, 255) as u8,
        mtype: r.mtype,
        mid: r.mid,
        deleted: r.deleted,
        msg: r.msg,
        binary: r.binary,
        attrs: r.attrs,
        mtime: r.mtime,
    }
}

fn history<M>(v: Value, make: fn(Row) -> M) -> Result<HistoryMessages<M>, RtmError> {
    let msgs = match value::map_get(&v, "msgs") {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::Array(rows)) => rows
            .iter()
            .map(|r| row(r).map(make).ok_or_else(|| bad("msgs", r)))
            .collect::<Result<Vec<M>, RtmError>>()?,
        Some(_) => return Err(bad("msgs", &v)),
    };
    Ok(HistoryMessages {
        num: i64_or_zero(&v, "num")?.clamp(0, i64::from(i32::MAX)) as i32,
        lastid: i64_or_zero(&v, "lastid")?,
        begin: i64_or_zero(&v, "begin")?,
        end: i64_or_zero(&v, "end")?,
        msgs,
    })
}

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
) -> Value {
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

/// Counts and newest mtimes, by id.
type UnreadCounts = (HashMap<i64, i32>, HashMap<i64, i64>);

fn unread_counts(v: &Value, key: &str) -> Result<UnreadCounts, RtmError> {
    let counts = value::id_map(&map_of(v, key)?, value::as_i32);
    let ltime = value::id_map(&map_of(v, "ltime")?, value::as_i64);
    Ok((counts, ltime))
}

fn message_key(from: i64, mid: i64, xid: i64, message_type: u8) -> Value {
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
        method: &'static str,
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
        let map = move |v: Value| {
            Ok(SendAnswer {
                mid,
                payload: SendPayload {
                    mtime: i64_of(&v, "mtime")?,
                },
            })
        };
        self.call(
            method,
            payload,
            timeout,
            map,
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
            "sendmsg", "to", to, mtype, msg, attrs, mid, timeout, callback,
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
            "sendgroupmsg",
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
            "sendroommsg",
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
        let map = |v: Value| {
            Ok(UnreadMessage {
                p2p: ids_of(&v, "p2p")?,
                group: ids_of(&v, "group")?,
            })
        };
        self.call("getunread", payload, timeout, map, |e| e, callback);
    }

    /// Moves the unread mark to now (`cleanunread`). Mirrors JavaScript
    /// `cleanUnreadMessage(timeout, callback)`.
    pub fn clean_unread_message(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.call(
            "cleanunread",
            MapBuilder::new().build(),
            timeout,
            super::answer::empty,
            |e| e,
            callback,
        );
    }

    /// Unread p2p message counts per peer (`getp2punread`). Mirrors
    /// JavaScript `getP2PUnreadMessageNum(uids, mtime, mtypes, timeout, callback)`.
    ///
    /// `mtime` `None`: since the last logout; `mtypes` `None`: the chat types.
    /// An empty `uids` completes with 200033 without sending.
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
        let payload = MapBuilder::new()
            .put("uids", value::i64_array(uids))
            .put_opt("mtime", mtime)
            .put_opt("mtypes", mtypes.map(value::u8_array))
            .build();
        let map =
            |v: Value| unread_counts(&v, "p2p").map(|(p2p, ltime)| P2PUnreadNum { p2p, ltime });
        self.call("getp2punread", payload, timeout, map, |e| e, callback);
    }

    /// Unread group message counts per group (`getgroupunread`). Mirrors
    /// JavaScript `getGroupUnreadMessageNum(gids, mtime, mtypes, timeout, callback)`.
    /// An empty `gids` completes with 200033 without sending.
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
        let payload = MapBuilder::new()
            .put("gids", value::i64_array(gids))
            .put_opt("mtime", mtime)
            .put_opt("mtypes", mtypes.map(value::u8_array))
            .build();
        let map = |v: Value| {
            unread_counts(&v, "group").map(|(group, ltime)| GroupUnreadNum { group, ltime })
        };
        self.call("getgroupunread", payload, timeout, map, |e| e, callback);
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
        self.call(
            "getgroupmsg",
            payload,
            timeout,
            |v| history(v, history_msg),
            |e| e,
            callback,
        );
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
        self.call(
            "getroommsg",
            payload,
            timeout,
            |v| history(v, history_msg),
            |e| e,
            callback,
        );
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
        self.call(
            "getbroadcastmsg",
            payload,
            timeout,
            |v| history(v, history_msg),
            |e| e,
            callback,
        );
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
        self.call(
            "getp2pmsg",
            payload,
            timeout,
            |v| history(v, p2p_msg),
            |e| e,
            callback,
        );
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
        let map = |v: Value| {
            if v.as_map().is_some_and(|m| m.is_empty()) {
                return Err(RtmError::new(
                    error_code::FPNN_EC_PROTO_KEY_NOT_FOUND,
                    "message not found",
                ));
            }
            let (msg, binary) = value::text_and_bytes(value::get_or_nil(&v, "msg"));
            Ok(RetrievedMessage {
                id: i64_of(&v, "id")?,
                mtype: value::map_get(&v, "mtype")
                    .and_then(value::as_u8)
                    .ok_or_else(|| bad("mtype", &v))?,
                msg,
                binary,
                attrs: value::as_string_lossy(value::get_or_nil(&v, "attrs")),
                mtime: i64_of(&v, "mtime")?,
            })
        };
        let payload = message_key(from, mid, xid, message_type);
        self.call("getmsg", payload, timeout, map, |e| e, callback);
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
        self.call(
            "delmsg",
            payload,
            timeout,
            super::answer::empty,
            |e| e,
            callback,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_rows_map_and_bad_rows_are_errors() {
        let good = Value::Map(vec![
            (Value::from("num"), Value::from(1)),
            (Value::from("lastid"), Value::from(9u64)),
            (Value::from("begin"), Value::from(0)),
            (Value::from("end"), Value::from(123)),
            (
                Value::from("msgs"),
                Value::Array(vec![Value::Array(vec![
                    Value::from(9),
                    Value::from(1),
                    Value::from(30),
                    Value::from(5),
                    Value::from(false),
                    Value::Binary(vec![0xff]),
                    Value::from("a"),
                    Value::from(123),
                ])]),
            ),
        ]);
        let h = history(good.clone(), p2p_msg).unwrap();
        assert_eq!((h.num, h.lastid, h.end), (1, 9, 123));
        assert_eq!(h.msgs[0].direction, 1);
        assert_eq!(
            (h.msgs[0].msg.clone(), h.msgs[0].binary.clone()),
            (None, vec![0xff])
        );
        let bad_row = Value::Map(vec![(
            Value::from("msgs"),
            Value::Array(vec![Value::from(1)]),
        )]);
        assert_eq!(
            history(bad_row, history_msg).unwrap_err().code,
            error_code::FPNN_EC_PROTO_TYPE_CONVERT
        );
        assert!(history(Value::Map(vec![]), history_msg)
            .unwrap()
            .msgs
            .is_empty());
    }

    #[test]
    fn history_request_leaves_out_what_is_none() {
        let v = history_request(Some(("gid", 5)), true, 10, None, Some(7), None, None);
        let keys: Vec<&str> = v
            .as_map()
            .unwrap()
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["gid", "desc", "num", "end"]);
    }
}
