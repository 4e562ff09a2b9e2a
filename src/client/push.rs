//! The gate's quests to the client, on the connection's reader thread: `ping`
//! and `kickout` go to the session machine, `kickoutroom` and the message
//! pushes to the user's handlers, after parsing, the `excludedUids` rule and
//! the duplicate filter (docs/porting.md, "Pushes: the processor").

use std::sync::{Arc, Weak};
use std::time::Instant;

use rmpv::Value;

use super::machine::Event;
use super::{json, Inner};
use crate::error::{error_code, RtmError};
use crate::fpnn::packet;
use crate::fpnn::{Quest, QuestHandler, Responder};
use crate::types::{push_event_for, PushKind, PushMessage};
use crate::value;

/// Receives the gate's quests on a connection's reader thread. Acknowledges
/// first, then filters and queues the user's handlers.
pub(super) struct PushHandler {
    pub(super) inner: Weak<Inner>,
    /// The connection this handler serves.
    pub(super) serial: u64,
}

impl QuestHandler for PushHandler {
    fn quest(&self, q: Quest, r: Responder) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        // Anything from a connection the session has let go of (closed or
        // replaced) is answered (by dropping `r`) and otherwise ignored. The
        // fence's read lock is held while queuing: the driver takes its write
        // lock when the session changes, before `SessionClosed` is queued,
        // so nothing of an ended session is queued after that event. It is
        // released before stepping the machine (which takes the write lock).
        let fence = inner.fence.read();
        if fence.serial != Some(self.serial) {
            return;
        }
        let step = match q.method.as_str() {
            "ping" => {
                drop(r);
                for h in inner.processor.ping_handlers() {
                    inner.dispatcher.event(Box::new(move || h()));
                }
                Event::Ping {
                    serial: self.serial,
                }
            }
            "kickout" => {
                r.decline();
                for h in inner.processor.kickout_handlers() {
                    inner.dispatcher.event(Box::new(move || h()));
                }
                Event::Kickout {
                    serial: self.serial,
                }
            }
            "kickoutroom" => {
                r.decline();
                match value::map_get(&q.payload, "rid").and_then(value::as_i64) {
                    Some(rid) => {
                        for h in inner.processor.kickout_room_handlers() {
                            inner.dispatcher.event(Box::new(move || h(rid)));
                        }
                    }
                    None => inner.emit_error(RtmError::new(
                        error_code::FPNN_EC_PROTO_TYPE_CONVERT,
                        format!("kickoutroom without a rid: {}", q.payload),
                    )),
                }
                return;
            }
            m => {
                drop(r);
                match PushKind::from_method(m) {
                    Some(kind) => inner.on_push(kind, &q.payload, fence.uid),
                    None => inner.emit_error(RtmError::new(
                        error_code::FPNN_EC_CORE_UNKNOWN_METHOD,
                        format!("unknown push method {m:?}, answered and ignored"),
                    )),
                }
                return;
            }
        };
        drop(fence);
        inner.step(step);
    }

    /// A short message push, read from its bytes: only the fields a
    /// `PushMessage` needs are decoded ([`packet::map_fields`]), with the
    /// same rules as on the whole `Value` ([`parse_push_with`]). Everything
    /// else (other methods, a payload that is not a map) goes to
    /// [`PushHandler::quest`].
    fn quest_bytes(&self, method: &str, payload: &[u8], r: Responder) -> Option<Responder> {
        let Some(kind) = PushKind::from_method(method) else {
            return Some(r);
        };
        let Some(fields) = packet::map_fields(payload, PUSH_KEYS) else {
            return Some(r);
        };
        // As in `quest`: answered (by dropping `r`) in every case, and
        // queued under the fence's read lock.
        let inner = self.inner.upgrade()?;
        let fence = inner.fence.read();
        if fence.serial != Some(self.serial) {
            return None;
        }
        drop(r);
        match parse_push_with(kind, field_of(&fields)) {
            Some(m) => inner.deliver_push(kind, m, fence.uid),
            // Only to name it in the report: decoded whole.
            None => match packet::decode_payload(payload) {
                Ok(v) => inner.on_push(kind, &v, fence.uid),
                Err(e) => inner.emit_error(RtmError::new(
                    error_code::FPNN_EC_PROTO_TYPE_CONVERT,
                    format!("malformed {kind:?} push: {e}"),
                )),
            },
        }
        None
    }
}

/// The keys of a message push that `parse_push_with` reads.
const PUSH_KEYS: [&str; 8] = [
    "from", "gid", "rid", "mtype", "mid", "msg", "attrs", "mtime",
];

/// Looks a key up among the fields `packet::map_fields` found for [`PUSH_KEYS`].
fn field_of<'a>(fields: &'a [Option<Value>; 8]) -> impl Fn(&str) -> Option<&'a Value> + 'a {
    move |k| {
        let i = PUSH_KEYS.iter().position(|key| *key == k)?;
        fields[i].as_ref()
    }
}

impl Inner {
    pub(super) fn on_push(&self, kind: PushKind, payload: &Value, uid: Option<i64>) {
        match parse_push(kind, payload) {
            Some(m) => self.deliver_push(kind, m, uid),
            None => self.emit_error(RtmError::new(
                error_code::FPNN_EC_PROTO_TYPE_CONVERT,
                format!("malformed {kind:?} push: {payload}"),
            )),
        }
    }

    /// A parsed push: the `excludedUids` rule, the duplicate filter, then
    /// the handlers of its event.
    fn deliver_push(&self, kind: PushKind, m: PushMessage, uid: Option<i64>) {
        if let (Some(uid), Some(ex)) = (uid, json::excluded_uids(&m.attrs)) {
            if ex.contains(&uid) {
                return;
            }
        }
        let target = m.gid.or(m.rid).unwrap_or(0);
        if !self
            .dedup
            .lock()
            .admit((kind.code(), m.mid, m.from, target), Instant::now())
        {
            log::debug!("duplicate push {kind:?} mid {} dropped", m.mid);
            return;
        }
        let event = push_event_for(kind, m.mtype);
        let Some(handlers) = self.processor.push_handlers(event) else {
            return;
        };
        // One job per handler, so that a handler that panics does not keep
        // the next from running; the message is shared only when there are
        // several.
        match &*handlers {
            [] => {}
            [h] => {
                let h = h.clone();
                self.dispatcher.event(Box::new(move || h(&m)));
            }
            several => {
                let m = Arc::new(m);
                for h in several {
                    let (h, m) = (h.clone(), m.clone());
                    self.dispatcher.event(Box::new(move || h(&m)));
                }
            }
        }
    }
}

/// Fuzzing entry point (Rust-only): parses `payload` (msgpack) as the push
/// `method`, both ways the reader may (from its bytes, and decoded whole).
/// Whatever the bytes, it panics only when the two disagree: the bug the
/// fuzz target looks for.
pub(crate) fn fuzz_parse_push(method: &str, payload: &[u8]) -> bool {
    let (Some(kind), Ok(v)) = (
        PushKind::from_method(method),
        crate::fpnn::packet::decode_payload_within(payload, 1 << 16),
    ) else {
        return false;
    };
    let whole = parse_push(kind, &v);
    // The short-payload path must parse exactly the same push.
    if let Some(fields) = packet::map_fields(payload, PUSH_KEYS) {
        assert_eq!(parse_push_with(kind, field_of(&fields)), whole, "{v}");
    }
    whole.map(|m| json::excluded_uids(&m.attrs)).is_some()
}

fn parse_push(kind: PushKind, p: &Value) -> Option<PushMessage> {
    p.as_map()?;
    parse_push_with(kind, |k| value::map_get(p, k))
}

/// A push from its fields (`get` finds a key's value, as `value::map_get`
/// does on a map): `from`, `mtype` and the group's or room's id are
/// required; `mid` and `mtime` of another type read as 0.
fn parse_push_with<'a>(
    kind: PushKind,
    get: impl Fn(&str) -> Option<&'a Value>,
) -> Option<PushMessage> {
    let id = |k: &str| get(k).and_then(value::as_i64);
    let (msg, binary) = value::text_and_bytes(get("msg").unwrap_or(&value::NIL));
    Some(PushMessage {
        from: id("from")?,
        gid: if kind == PushKind::Group {
            Some(id("gid")?)
        } else {
            None
        },
        rid: if kind == PushKind::Room {
            Some(id("rid")?)
        } else {
            None
        },
        mtype: get("mtype").and_then(value::as_u8)?,
        mid: id("mid").unwrap_or(0),
        msg,
        binary,
        attrs: value::as_string_lossy(get("attrs").unwrap_or(&value::NIL)),
        mtime: id("mtime").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::MapBuilder;

    #[test]
    fn pushes_parse_text_and_binary_bodies() {
        let p = MapBuilder::new()
            .put("from", 7)
            .put("gid", 9)
            .put("mtype", 30)
            .put("mid", 5)
            .put("msg", Value::Binary(vec![0xff, 0x00]))
            .put("attrs", "a")
            .put("mtime", 11)
            .build()
            .to_value();
        let m = parse_push(PushKind::Group, &p).unwrap();
        assert_eq!(
            (m.from, m.gid, m.rid, m.mtype, m.mid, m.mtime),
            (7, Some(9), None, 30, 5, 11)
        );
        assert_eq!((m.msg, m.binary), (None, vec![0xff, 0]));
        assert!(
            parse_push(PushKind::Room, &p).is_none(),
            "room push without rid"
        );
        assert!(parse_push(PushKind::P2p, &Value::from(3)).is_none());
    }
}
