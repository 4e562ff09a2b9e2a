//! The reader thread: reads frames, completes answered quests, hands the
//! server's quests to the handler, and ends the connection when the peer
//! closes or breaks the protocol.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;

use super::responder::{Quest, QuestHandler, Responder};
use super::shared::{err, guarded, Shared};
use super::{CloseReason, Reply};
use crate::error::{error_code, RtmError};
use crate::fpnn::packet::{self, Kind, PacketError, PacketRef};
use crate::fpnn::transport::ReadHalf;
use crate::value;
use crate::ws::{IncomingRef, WsError, WsReader};

pub(super) fn reader_loop(
    shared: Arc<Shared>,
    mut reader: WsReader<ReadHalf>,
    handler: Arc<dyn QuestHandler>,
) {
    // Frames sent while handling what one read brought go out together,
    // before the next read that waits (see `ReadHalf::set_before_read`).
    let _batch = super::writer::write_batch();
    // What it hands to the dispatcher thread may leave its ACK there.
    super::writer::set_reader(Some(shared.outbox.written.clone()));
    let _not_reader = NotReader;
    loop {
        // Answers the server does not read make us stop reading its quests
        // (see writer.rs): never inside a callback, only between frames.
        if shared.outbox.backlogged() {
            shared.outbox.wait_for_room();
        }
        let msg = match reader.read_ref() {
            Ok(m) => m,
            Err(e) => {
                let status = e.close_code();
                let reason = match e {
                    WsError::Eof { mid_frame: false } => CloseReason::Peer,
                    e => CloseReason::Error(e.to_string()),
                };
                shared.shut_with(reason, status);
                return;
            }
        };
        match msg {
            IncomingRef::Binary(data) => {
                if let Err(e) = on_packet(&shared, data, handler.as_ref()) {
                    shared.shut(CloseReason::Error(e));
                    return;
                }
            }
            IncomingRef::Text(_) => {
                shared.shut(CloseReason::Error("server sent a text message".into()));
                return;
            }
            IncomingRef::Ping(p) => shared.outbox.push_pong(p),
            IncomingRef::Pong(_) => {}
            IncomingRef::Close(_) => {
                shared.shut(CloseReason::Peer);
                return;
            }
        }
        if !shared.open.load(Ordering::Acquire) {
            return;
        }
    }
}

/// Ends [`super::writer::set_reader`] when the reader loop returns.
struct NotReader;

impl Drop for NotReader {
    fn drop(&mut self) {
        super::writer::set_reader(None);
    }
}

fn on_packet(shared: &Arc<Shared>, data: &[u8], handler: &dyn QuestHandler) -> Result<(), String> {
    let p = match PacketRef::parse(data, shared.max_packet) {
        Ok(p) => p,
        // A whole, well-framed quest whose method name no handler can know
        // (empty, or not UTF-8): like an unknown method (docs/protocol.md),
        // a twoway one gets the error answer 20004 so the server does not
        // wait for it; the connection stays open.
        Err(PacketError::BadMethod) => {
            log::debug!("server quest with an empty or non-UTF-8 method name");
            if let Some(seq) = packet::twoway_seq(data) {
                if shared.open.load(Ordering::Acquire) {
                    let responder = Responder {
                        seq,
                        twoway: true,
                        shared: Some(shared.clone()),
                    };
                    responder.error(
                        error_code::FPNN_EC_CORE_UNKNOWN_METHOD,
                        "method name is empty or not UTF-8",
                    );
                }
            }
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    match p.kind {
        Kind::Answer => {
            let pending = shared.table.lock().complete(p.seq);
            let Some((q, deadline)) = pending else {
                log::debug!("late or unknown answer seq {} dropped", p.seq);
                return Ok(());
            };
            // Sent when its deadline was stamped; a quest answered before
            // its batch was stamped shows 0.
            log::trace!(
                "quest {} seq {} answered in {} us ({})",
                q.method,
                p.seq,
                deadline
                    .and_then(|d| d.checked_sub(Duration::from_millis(q.timeout_ms)))
                    .map_or(0, |sent| sent.elapsed().as_micros()),
                if p.status == 0 { "ok" } else { "error" }
            );
            // A raw callback decodes its answer itself, straight from the
            // frame; the others, and every error answer, get a `Value`.
            let value = |payload| match packet::decode_payload_within(payload, shared.max_packet) {
                Err(e) => Err(err(error_code::FPNN_EC_CORE_DECODING, e)),
                Ok(v) if p.status == 0 => Ok(v),
                Ok(v) => Err(error_answer(&v)),
            };
            match q.callback {
                Reply::Raw(cb) if p.status == 0 => {
                    guarded("answer callback", || cb.answer_on_reader(Ok(p.payload)))
                }
                Reply::Raw(cb) => {
                    let e = value(p.payload).err().unwrap_or_else(|| {
                        err(error_code::FPNN_EC_CORE_UNKNOWN_ERROR, "error answer")
                    });
                    guarded("answer callback", || cb.answer_on_reader(Err(e)))
                }
                Reply::Value(cb) => {
                    let result = value(p.payload);
                    guarded("answer callback", || cb(result))
                }
            }
        }
        Kind::Twoway | Kind::Oneway => {
            // A quest read just as the connection closed is not delivered:
            // after `close` returns, the handler hears nothing more.
            if !shared.open.load(Ordering::Acquire) {
                return Ok(());
            }
            let twoway = p.kind == Kind::Twoway;
            let mut responder = Responder {
                seq: p.seq,
                twoway,
                shared: Some(shared.clone()),
            };
            // A short payload may be read from its bytes by the handler (the
            // client's message pushes), which checks them as it reads
            // (`packet::map_fields`); what it gives back is decoded below.
            if packet::fields_readable(p.payload.len(), shared.max_packet) {
                let mut back = None;
                guarded("quest handler", || {
                    back = handler.quest_bytes(p.method, p.payload, responder)
                });
                let Some(r) = back else {
                    return Ok(());
                };
                responder = r;
            }
            match packet::decode_payload_within(p.payload, shared.max_packet) {
                Ok(payload) => {
                    let quest = Quest {
                        method: p.method.to_owned(),
                        payload,
                        twoway,
                    };
                    guarded("quest handler", || handler.quest(quest, responder));
                }
                Err(e) => {
                    log::debug!("server quest {} has a bad payload: {e}", p.method);
                    responder.error(error_code::FPNN_EC_CORE_DECODING, &e);
                }
            }
        }
    }
    Ok(())
}

/// `{code, ex}` of an error answer; anything else becomes 20001 with the text.
/// A `code` of 0 (`FPNN_EC_OK`) is malformed too: an error must not read as
/// success (a login would call back `(false, 0)`, a rejected token).
/// `ex` may be a str or a bin (docs/protocol.md: strings may arrive as bin),
/// read as UTF-8 with invalid bytes replaced.
fn error_answer(v: &Value) -> RtmError {
    let code = value::map_get(v, "code")
        .and_then(value::as_i64)
        .and_then(|c| i32::try_from(c).ok())
        .filter(|&c| c != error_code::FPNN_EC_OK);
    let ex = value::string_lossy(value::map_get(v, "ex").and_then(value::as_bytes));
    match code {
        Some(code) => RtmError::new(code, ex),
        None => RtmError::new(
            error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
            format!("malformed error answer: {v}"),
        ),
    }
}
