//! The writer thread: batches queued frames into few writes, fires quests'
//! timeouts (20003), and sends the one close frame when the connection ends.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::shared::{control_frame, guarded, Pending, Shared, WriterCmd};
use super::CloseReason;
use crate::fpnn::transport::{self, WriteHalf};
use crate::ws::frame::Opcode;

/// Completes every quest whose deadline has passed with 20003.
fn fire_expired(shared: &Shared, expired: &mut Vec<Pending>) {
    shared.table.lock().expire(Instant::now(), expired);
    for p in expired.drain(..) {
        let (cb, e) = p.timed_out();
        guarded("timeout callback", || cb(Err(e)));
    }
}

pub(super) fn writer_loop(shared: Arc<Shared>, mut write: WriteHalf, rx: Receiver<WriterCmd>) {
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut expired = Vec::new();
    let mut waiting = Vec::new();
    loop {
        let next = shared.table.lock().next_deadline();
        let cmd = match next {
            Some(d) => rx.recv_deadline(d),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let mut close: Option<Option<u16>> = None;
        match cmd {
            Ok(WriterCmd::Frame(f)) => {
                batch.extend_from_slice(&f);
                // Coalesce what is already queued into one write.
                while batch.len() < 256 * 1024 {
                    match rx.try_recv() {
                        Ok(WriterCmd::Frame(f)) => batch.extend_from_slice(&f),
                        Ok(WriterCmd::Flush) => {}
                        Ok(WriterCmd::Close(status)) => {
                            close = Some(status);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            Ok(WriterCmd::Flush) => {
                if let Err(e) = write.flush_session(&mut || fire_expired(&shared, &mut waiting)) {
                    shared.shut(CloseReason::Error(format!("write failed: {e}")));
                }
            }
            Ok(WriterCmd::Close(status)) => close = Some(status),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => close = Some(None),
        }
        if !batch.is_empty() {
            let r = write.send(&batch, &mut || fire_expired(&shared, &mut waiting));
            batch.clear();
            if batch.capacity() > 1 << 20 {
                batch.shrink_to(64 * 1024);
            }
            if let Err(e) = r {
                shared.shut(CloseReason::Error(format!("write failed: {e}")));
                close = Some(None);
            }
        }
        if let Some(status) = close {
            // Best effort: the one close frame, then close_notify.
            if let Some(code) = status {
                let _ = write.send(
                    &control_frame(Opcode::Close, &code.to_be_bytes()),
                    &mut || {},
                );
            }
            write.close_notify();
            transport::shutdown(&shared.control);
            shared.shut(CloseReason::Local);
            return;
        }
        fire_expired(&shared, &mut expired);
    }
}
