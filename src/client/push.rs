//! The gate's quests to the client, on the connection's reader thread: `ping`
//! and `kickout` go to the session machine, `kickoutroom` and the message
//! pushes to the user's handlers, after parsing, the `excludedUids` rule and
//! the duplicate filter (docs/porting.md, "Pushes: the processor").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use rmpv::Value;

use super::dispatch::Job;
use super::machine::Event;
use super::{json, FenceGuard, Inner};
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
    /// A `kickout` was read on this connection: its handlers were queued as
    /// an event of the session's lifecycle, never dropped
    /// (`Dispatcher::lifecycle_event`); those of a later one on the same
    /// connection (a gate may send several while the auth answer is
    /// pending, when the session does not end at the first) are an event
    /// like a push's, dropped while the queue is full, so that a gate
    /// cannot grow the queue past its limit with kickouts.
    pub(super) kicked: AtomicBool,
}

impl QuestHandler for PushHandler {
    fn quest(&self, q: Quest, r: Responder) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        // Anything from a connection the session has let go of (closed or
        // replaced) is answered (by dropping `r`) and otherwise ignored. The
        // fence's read lock is held while queuing (or, for a message push in
        // `Dispatch::Inline` mode, while taking the client's queue to run its
        // handlers here, `Inner::deliver_push`): the driver takes its write
        // lock when the session changes, before `SessionClosed` is queued,
        // so nothing of an ended session is queued after that event. It is
        // released before stepping the machine (which takes the write lock)
        // and before any handler runs here.
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
                let first = !self.kicked.swap(true, Ordering::Relaxed);
                for h in inner.processor.kickout_handlers() {
                    let job: Job = Box::new(move || h());
                    if first {
                        inner.dispatcher.lifecycle_event(job);
                    } else {
                        inner.dispatcher.event(job);
                    }
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
                    Some(kind) => inner.on_push(kind, &q.payload, fence),
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

    /// A short message push, read from its bytes: the fields a `PushMessage`
    /// needs are found in the frame ([`packet::map_fields`]) and read from
    /// there, with nothing decoded into a `Value`, by the same rules as on
    /// the whole `Value` ([`parse_push_with`]). Everything else (other
    /// methods, a payload that is not a map) goes to [`PushHandler::quest`].
    fn quest_bytes(&self, method: &str, payload: &[u8], r: Responder) -> Option<Responder> {
        let Some(kind) = PushKind::from_method(method) else {
            return Some(r);
        };
        let Some(at) = packet::map_fields(payload, PUSH_KEYS) else {
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
        match parse_push_with(kind, &InBytes { payload, at }) {
            Some(m) => inner.deliver_push(kind, m, fence),
            // Only to name it in the report: decoded whole.
            None => match packet::decode_payload(payload) {
                Ok(v) => inner.on_push(kind, &v, fence),
                Err(e) => inner.emit_error(RtmError::new(
                    error_code::FPNN_EC_PROTO_TYPE_CONVERT,
                    format!("malformed {kind:?} push: {e}"),
                )),
            },
        }
        None
    }
}

/// The keys of a message push that `parse_push_with` reads, in the order of
/// [`Field`].
const PUSH_KEYS: [&str; 8] = [
    "from", "gid", "rid", "mtype", "mid", "msg", "attrs", "mtime",
];

/// A key of [`PUSH_KEYS`], by its index.
#[derive(Clone, Copy)]
enum Field {
    From,
    Gid,
    Rid,
    Mtype,
    Mid,
    Msg,
    Attrs,
    Mtime,
}

/// How [`parse_push_with`] reads a push's fields: from the decoded map, or
/// straight from the payload's bytes. Both read a field as the first entry
/// whose key is that str (`value::map_get`).
trait PushFields {
    /// The field's integer, as `value::as_i64` reads it; `None` when it is
    /// missing or of another type.
    fn int(&self, f: Field) -> Option<i64>;
    /// The bytes of the field's str or bin, as `value::as_bytes` reads them;
    /// `None` when it is missing or of another type.
    fn body(&self, f: Field) -> Option<&[u8]>;
}

/// A decoded push.
struct Decoded<'a>(&'a Value);

impl PushFields for Decoded<'_> {
    fn int(&self, f: Field) -> Option<i64> {
        value::map_get(self.0, PUSH_KEYS[f as usize]).and_then(value::as_i64)
    }

    fn body(&self, f: Field) -> Option<&[u8]> {
        value::map_get(self.0, PUSH_KEYS[f as usize]).and_then(value::as_bytes)
    }
}

/// A short push's bytes, with where [`packet::map_fields`] found each of
/// [`PUSH_KEYS`].
struct InBytes<'a> {
    payload: &'a [u8],
    at: [Option<usize>; 8],
}

impl PushFields for InBytes<'_> {
    fn int(&self, f: Field) -> Option<i64> {
        packet::int_value(self.payload, self.at[f as usize]?)
    }

    fn body(&self, f: Field) -> Option<&[u8]> {
        packet::bytes_value(self.payload, self.at[f as usize]?)
    }
}

impl Inner {
    /// A decoded push, with the fence held as in [`PushHandler::quest`].
    pub(super) fn on_push(&self, kind: PushKind, payload: &Value, fence: FenceGuard<'_>) {
        match parse_push(kind, payload) {
            Some(m) => self.deliver_push(kind, m, fence),
            None => self.emit_error(RtmError::new(
                error_code::FPNN_EC_PROTO_TYPE_CONVERT,
                format!("malformed {kind:?} push: {payload}"),
            )),
        }
    }

    /// A parsed push: the `excludedUids` rule, the duplicate filter, then
    /// the handlers of its event, taken or queued under the fence, which is
    /// let go before any of them runs (`Dispatcher::events_on_reader`).
    fn deliver_push(&self, kind: PushKind, m: PushMessage, fence: FenceGuard<'_>) {
        if let (Some(uid), Some(ex)) = (fence.uid, json::excluded_uids(&m.attrs)) {
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
        let unlock = move || drop(fence);
        match &*handlers {
            [] => unlock(),
            [h] => {
                let h = h.clone();
                let job: Job = Box::new(move || h(&m));
                self.dispatcher.events_on_reader([job], unlock);
            }
            several => {
                let m = Arc::new(m);
                let jobs = several.iter().map(|h| {
                    let (h, m) = (h.clone(), m.clone());
                    Box::new(move || h(&m)) as Job
                });
                self.dispatcher.events_on_reader(jobs, unlock);
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
    assert_eq!(parse_push_bytes(kind, payload), whole, "{v}");
    whole.map(|m| json::excluded_uids(&m.attrs)).is_some()
}

/// A push read from its bytes, as the reader reads a short one; `None` too
/// when the bytes are not a short map.
fn parse_push_bytes(kind: PushKind, payload: &[u8]) -> Option<PushMessage> {
    let at = packet::map_fields(payload, PUSH_KEYS)?;
    parse_push_with(kind, &InBytes { payload, at })
}

fn parse_push(kind: PushKind, p: &Value) -> Option<PushMessage> {
    p.as_map()?;
    parse_push_with(kind, &Decoded(p))
}

/// A push from its fields: `from`, `mtype` and the group's or room's id are
/// required; `mid` and `mtime` of another type read as 0.
fn parse_push_with(kind: PushKind, f: &impl PushFields) -> Option<PushMessage> {
    let (msg, binary) = value::text_and_bytes(f.body(Field::Msg));
    Some(PushMessage {
        from: f.int(Field::From)?,
        gid: if kind == PushKind::Group {
            Some(f.int(Field::Gid)?)
        } else {
            None
        },
        rid: if kind == PushKind::Room {
            Some(f.int(Field::Rid)?)
        } else {
            None
        },
        mtype: u8::try_from(f.int(Field::Mtype)?).ok()?,
        mid: f.int(Field::Mid).unwrap_or(0),
        msg,
        binary,
        attrs: value::string_lossy(f.body(Field::Attrs)),
        mtime: f.int(Field::Mtime).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::MapBuilder;
    use proptest::prelude::*;

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
        let mut bytes = Vec::new();
        packet::encode_payload(&p, &mut bytes);
        for kind in [PushKind::Group, PushKind::Room, PushKind::P2p] {
            assert_eq!(parse_push_bytes(kind, &bytes), parse_push(kind, &p));
        }
    }

    /// Values of every msgpack family, at the widths that read differently
    /// (an integer above `i64::MAX`, a str that is not UTF-8, a bin).
    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..300).prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::F64),
            ".{0,12}".prop_map(Value::from),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(|b| {
                let mut raw = vec![0xa0 | b.len() as u8];
                raw.extend_from_slice(&b);
                rmpv::decode::read_value(&mut &raw[..]).unwrap()
            }),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Binary),
            proptest::collection::vec(any::<i8>(), 0..3)
                .prop_map(|v| Value::Array(v.into_iter().map(Value::from).collect())),
        ]
    }

    proptest! {
        /// The reader's two ways of reading a message push (from its
        /// bytes when short, decoded whole otherwise) give the same push:
        /// a valid push's fields, shuffled among entries of any key and
        /// value (repeated keys, where the first counts; fields of the
        /// wrong type; keys that are not strs).
        #[test]
        fn a_push_read_from_its_bytes_is_the_push_decoded_whole(
            valid in (any::<i64>(), any::<u8>(), any::<i64>(), any::<i64>()),
            extra in proptest::collection::vec(
                (prop_oneof![
                    proptest::sample::select(PUSH_KEYS.to_vec()).prop_map(Value::from),
                    Just(Value::from("other")),
                    Just(Value::from(1)),
                ], field_value()),
                0..8,
            ),
            order in Just((0..12usize).collect::<Vec<_>>()).prop_shuffle(),
        ) {
            let (from, mtype, gid, rid) = valid;
            let mut entries: Vec<(Value, Value)> = vec![
                ("from".into(), from.into()),
                ("mtype".into(), mtype.into()),
                ("gid".into(), gid.into()),
                ("rid".into(), rid.into()),
            ];
            entries.extend(extra);
            let entries: Vec<_> = order.iter().filter_map(|&i| entries.get(i).cloned()).collect();
            let v = Value::Map(entries);
            let mut bytes = Vec::new();
            packet::encode_payload(&v, &mut bytes);
            prop_assume!(bytes.len() <= packet::FIELDS_MAX);
            for kind in [PushKind::P2p, PushKind::Group, PushKind::Room, PushKind::Broadcast] {
                prop_assert_eq!(parse_push_bytes(kind, &bytes), parse_push(kind, &v), "{}", v);
            }
        }
    }
}
