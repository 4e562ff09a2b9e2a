//! The server's quests as the handler sees them: [`Quest`], the
//! [`QuestHandler`] trait, and the [`Responder`] that answers a quest exactly
//! once (or declines it).

use std::sync::Arc;

use rmpv::Value;

use super::shared::Shared;
use crate::error::error_code;
use crate::fpnn::packet::{self, Kind};

/// A quest the server sent us.
#[derive(Debug, Clone, PartialEq)]
pub struct Quest {
    /// Method name.
    pub method: String,
    /// Payload (an RTM payload is a map).
    pub payload: Value,
    /// Whether the server waits for an answer.
    pub twoway: bool,
}

/// Answers one server quest. A twoway quest is answered exactly once: by
/// [`Responder::answer`], [`Responder::error`], or, when the responder is
/// dropped unused, with the empty map. [`Responder::decline`] sends nothing
/// (for quests like `kickout` that RTM does not answer). Oneway quests are
/// never answered, whatever is called.
pub struct Responder {
    pub(super) seq: u32,
    pub(super) twoway: bool,
    pub(super) shared: Option<Arc<Shared>>,
}

impl Responder {
    /// Answers with `payload` (status 0).
    /// An answer over the connection's packet limit is replaced by an error
    /// answer (10001) saying so.
    pub fn answer(mut self, payload: &Value) {
        if let Some(s) = self.take() {
            let mut body = Vec::new();
            packet::encode_payload(payload, &mut body);
            let len = packet::packet_len(Kind::Answer, 0, body.len());
            if len > s.max_packet || body.len() > u32::MAX as usize {
                log::debug!("answer of {len} bytes is over the packet limit");
                let e = Value::Map(vec![
                    (
                        Value::from("code"),
                        Value::from(error_code::FPNN_EC_PROTO_UNKNOWN_ERROR),
                    ),
                    (
                        Value::from("ex"),
                        Value::from("answer over the packet size limit"),
                    ),
                ]);
                body.clear();
                packet::encode_payload(&e, &mut body);
                return s.send_answer(self.seq, 1, &body);
            }
            s.send_answer(self.seq, 0, &body);
        }
    }

    /// Answers with an error (status 1, `{code, ex}`).
    pub fn error(mut self, code: i32, ex: &str) {
        if let Some(s) = self.take() {
            let v = Value::Map(vec![
                (Value::from("code"), Value::from(code)),
                (Value::from("ex"), Value::from(ex)),
            ]);
            let mut body = Vec::new();
            packet::encode_payload(&v, &mut body);
            s.send_answer(self.seq, 1, &body);
        }
    }

    /// Leaves the quest unanswered.
    pub fn decline(mut self) {
        self.shared = None;
    }

    /// Whether the server waits for an answer.
    pub fn is_twoway(&self) -> bool {
        self.twoway
    }

    fn take(&mut self) -> Option<Arc<Shared>> {
        if self.twoway {
            self.shared.take()
        } else {
            None
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(s) = self.take() {
            s.send_answer(self.seq, 0, packet::EMPTY_MAP);
        }
    }
}

/// Handles quests the server sends. Runs on the reader thread: return quickly
/// (hand long work to another thread), or answers to this connection wait.
pub trait QuestHandler: Send + Sync + 'static {
    /// One server quest. Answer it through `responder` (or let it drop).
    fn quest(&self, quest: Quest, responder: Responder);

    /// Rust-only and not part of the API promise: the RTM client's way to
    /// read a short quest's payload straight from its bytes. The bytes are
    /// not checked: a handler takes a quest only if it read and checked the
    /// whole payload (as `packet::map_fields` does), so that it takes
    /// exactly payloads [`QuestHandler::quest`] would get. Gives the
    /// responder back for a quest it does not take; the connection then
    /// decodes the payload and calls `quest` (or answers the error). By
    /// default it takes none.
    #[doc(hidden)]
    fn quest_bytes(
        &self,
        _method: &str,
        _payload: &[u8],
        responder: Responder,
    ) -> Option<Responder> {
        Some(responder)
    }
}

impl<F: Fn(Quest, Responder) + Send + Sync + 'static> QuestHandler for F {
    fn quest(&self, quest: Quest, responder: Responder) {
        self(quest, responder)
    }
}
