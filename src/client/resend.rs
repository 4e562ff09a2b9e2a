//! Resend across reconnects (`RtmOptions::resend_on_reconnect`,
//! docs/reliability.md): the session's waiting list of quests that are safe
//! to send twice ([`Resend::Safe`](crate::api::spec::Resend)) and wait for the
//! next connection, either because theirs ended before the answer (the
//! connection hands them back, `Connection::on_unanswered`) or because they
//! were made while the client was logging in again.
//!
//! The list is part of the session (`driver.rs` keeps it under the session
//! lock) and is settled after every event the machine handles
//! ([`WaitingList::settle`]): once the session is online on a newer
//! connection the quests go out there, in the order they waited; those past
//! their deadline fail with 20003 (the timer thread wakes the session for
//! the earliest); when the session ends for good, every one fails at once
//! with the code it would have had without the option. Whoever takes a quest
//! out of the list owns its callback, as with the request table.

use std::collections::VecDeque;
use std::time::Instant;

use crate::error::{error_code, RtmError};
use crate::fpnn::{Reply, Unanswered};

/// How many quests may wait for the next connection; beyond it a quest fails
/// with 20011 (`FPNN_EC_CORE_WORK_QUEUE_FULL`).
pub(crate) const WAITING_LIMIT: usize = 65_536;

struct Waiting {
    quest: Unanswered,
    /// The session it belongs to (`Machine::generation`).
    generation: u64,
    /// The connection it was last sent on (0: none); it is not sent there
    /// again.
    from: u64,
    /// The code it fails with when the session ends (what it would get with
    /// the option off: 20002 when it had been sent, 20012 otherwise).
    closed_code: i32,
}

/// What [`WaitingList::settle`] decided, to perform after the session lock.
#[derive(Default)]
pub(super) struct Settled {
    /// To send on the online connection, in order, each with the code it fails with
    /// when the session ends (a send that finds the connection closed waits again).
    pub(super) send: Vec<(Unanswered, i32)>,
    /// To fail.
    pub(super) fail: Vec<(Reply, RtmError)>,
    /// The earliest deadline still waiting.
    pub(super) wake: Option<Instant>,
}

/// The session's waiting quests, in the order they started waiting.
#[derive(Default)]
pub(super) struct WaitingList {
    items: VecDeque<Waiting>,
}

impl WaitingList {
    /// Adds quests of session `generation`, last sent on connection `from`
    /// (0: none), each with the code it fails with when the session ends; beyond
    /// [`WAITING_LIMIT`] they go to `fail` with 20011.
    pub(super) fn add(
        &mut self,
        quests: Vec<(Unanswered, i32)>,
        generation: u64,
        from: u64,
        fail: &mut Vec<(Reply, RtmError)>,
    ) {
        for (quest, closed_code) in quests {
            if self.items.len() >= WAITING_LIMIT {
                let e = RtmError::new(
                    error_code::FPNN_EC_CORE_WORK_QUEUE_FULL,
                    format!(
                        "{}: {WAITING_LIMIT} quests already wait for the next connection",
                        quest.method
                    ),
                );
                fail.push((quest.callback, e));
                continue;
            }
            // In the order the quests were made: a connection's hand-back may come
            // after a newer quest that found it closed.
            let at = self.items.partition_point(|w| w.quest.order < quest.order);
            self.items.insert(
                at,
                Waiting {
                    quest,
                    generation,
                    from,
                    closed_code,
                },
            );
        }
    }

    /// Whether a quest waits that may go out on connection `serial` (one not last
    /// sent there).
    pub(super) fn has_sendable(&self, serial: u64) -> bool {
        self.items.iter().any(|w| w.from != serial)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Decides the fate of every waiting quest at `now`, given the session:
    /// its `generation`, whether it is `alive` (online or logging in again)
    /// and the serial of its online connection, if any.
    pub(super) fn settle(
        &mut self,
        now: Instant,
        generation: u64,
        alive: bool,
        online: Option<u64>,
        out: &mut Settled,
    ) {
        if self.items.is_empty() {
            return;
        }
        let mut keep = VecDeque::new();
        for w in self.items.drain(..) {
            if !alive || w.generation != generation {
                let e = RtmError::new(
                    w.closed_code,
                    match w.closed_code {
                        error_code::FPNN_EC_CORE_CONNECTION_CLOSED => "connection closed",
                        _ => "not logged in",
                    },
                );
                out.fail.push((w.quest.callback, e));
            } else if w.quest.deadline <= now {
                let e = RtmError::new(
                    error_code::FPNN_EC_CORE_TIMEOUT,
                    format!(
                        "{} timed out after {} ms (waiting for the next connection)",
                        w.quest.method,
                        w.quest.timeout.as_millis()
                    ),
                );
                out.fail.push((w.quest.callback, e));
            } else if online.is_some_and(|s| s != w.from) {
                out.send.push((w.quest, w.closed_code));
            } else {
                out.wake = Some(match out.wake {
                    Some(t) if t <= w.quest.deadline => t,
                    _ => w.quest.deadline,
                });
                keep.push_back(w);
            }
        }
        self.items = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    type Log = Arc<Mutex<Vec<(u32, Result<(), i32>)>>>;

    fn quest(log: &Log, n: u32, deadline: Instant) -> Unanswered {
        let log = log.clone();
        Unanswered {
            method: "sendmsg".into(),
            payload: Arc::from(vec![0x80u8]),
            deadline,
            timeout: Duration::from_millis(100),
            callback: Reply::Raw(Box::new(move |r: Result<&[u8], RtmError>| {
                log.lock()
                    .unwrap()
                    .push((n, r.map(|_| ()).map_err(|e| e.code)))
            })),
            order: u64::from(n),
        }
    }

    fn coded(quests: Vec<Unanswered>, code: i32) -> Vec<(Unanswered, i32)> {
        quests.into_iter().map(|q| (q, code)).collect()
    }

    fn run(s: Settled) {
        for (cb, e) in s.fail {
            cb.fail(e);
        }
        for (q, _) in s.send {
            match q.callback {
                Reply::Raw(cb) => cb.answer(Ok(&[0xc0])),
                Reply::Value(cb) => cb(Ok(rmpv::Value::Nil)),
            }
        }
    }

    #[test]
    fn waits_then_goes_out_in_order_on_a_newer_connection_only() {
        let t0 = Instant::now();
        let log = Log::default();
        let mut w = WaitingList::default();
        let mut fail = vec![];
        let qs = (0..3)
            .map(|n| quest(&log, n, t0 + Duration::from_secs(1)))
            .collect();
        w.add(coded(qs, 20002), 1, 5, &mut fail);
        assert!(fail.is_empty());
        // Still online on the connection they came from: they wait.
        let mut s = Settled::default();
        w.settle(t0, 1, true, Some(5), &mut s);
        assert!(s.send.is_empty() && s.fail.is_empty());
        assert_eq!(s.wake, Some(t0 + Duration::from_secs(1)));
        let mut s = Settled::default();
        w.settle(t0, 1, true, Some(6), &mut s);
        assert_eq!(s.send.len(), 3);
        assert_eq!(w.len(), 0);
        run(s);
        let got: Vec<_> = log.lock().unwrap().iter().map(|(n, _)| *n).collect();
        assert_eq!(got, vec![0, 1, 2]);
    }

    #[test]
    fn deadlines_fail_with_20003_and_an_ended_session_with_its_code() {
        let t0 = Instant::now();
        let log = Log::default();
        let mut w = WaitingList::default();
        let mut fail = vec![];
        w.add(vec![(quest(&log, 0, t0), 20002)], 1, 5, &mut fail);
        let later = t0 + Duration::from_secs(9);
        w.add(vec![(quest(&log, 1, later), 20012)], 1, 0, &mut fail);
        w.add(vec![(quest(&log, 2, later), 20002)], 1, 5, &mut fail);
        let mut s = Settled::default();
        w.settle(t0, 1, true, None, &mut s);
        run(s);
        assert_eq!(*log.lock().unwrap(), vec![(0, Err(20003))]);
        // A new session (generation 2): the rest fail with their own codes.
        let mut s = Settled::default();
        w.settle(t0, 2, true, Some(7), &mut s);
        run(s);
        assert_eq!(log.lock().unwrap()[1..], [(1, Err(20012)), (2, Err(20002))]);
    }

    /// A quest made while logging in again, taken out to be sent on the new connection
    /// and given back because that connection had closed (the driver's `Later::Resend`),
    /// still fails with 20012 when the session ends: it was never sent.
    #[test]
    fn a_quest_given_back_unsent_keeps_its_code() {
        let t0 = Instant::now();
        let log = Log::default();
        let mut w = WaitingList::default();
        let mut fail = vec![];
        let later = t0 + Duration::from_secs(9);
        w.add(vec![(quest(&log, 0, later), 20012)], 1, 0, &mut fail);
        let mut s = Settled::default();
        w.settle(t0, 1, true, Some(6), &mut s);
        assert_eq!(s.send.len(), 1);
        w.add(std::mem::take(&mut s.send), 1, 6, &mut fail);
        let mut s = Settled::default();
        w.settle(t0, 1, false, None, &mut s);
        run(s);
        assert_eq!(*log.lock().unwrap(), vec![(0, Err(20012))]);
    }

    #[test]
    fn beyond_the_limit_quests_fail_with_20011() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let log = Log::default();
        let mut w = WaitingList::default();
        let mut fail = vec![];
        let qs = (0..WAITING_LIMIT as u32 + 2)
            .map(|n| quest(&log, n, t0))
            .collect();
        w.add(coded(qs, 20012), 1, 0, &mut fail);
        assert_eq!(w.len(), WAITING_LIMIT);
        assert_eq!(fail.len(), 2);
        assert!(fail.iter().all(|(_, e)| e.code == 20011));
    }
}
