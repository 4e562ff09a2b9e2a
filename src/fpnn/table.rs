//! The request table: pending twoway quests by seq, with their deadlines.
//!
//! A pure state machine: no threads, no clock reads (callers pass `now`), so
//! exactly-once completion and deadline order are tested without sockets.
//! Whoever removes an entry (answer, timeout or close) owns its callback and
//! runs it after dropping the table's lock.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as Slot;
use std::collections::{BinaryHeap, VecDeque};

use crate::hash::FastMap;
use std::time::Instant;

/// Seqs hash with one multiplication (`src/hash.rs`): this side chooses them.
type SeqMap<V> = FastMap<u32, V>;

struct Entry<C> {
    callback: C,
    deadline: Instant,
}

/// Pending quests of one connection.
pub(crate) struct RequestTable<C> {
    last_seq: u32,
    pending: SeqMap<Entry<C>>,
    /// Deadlines in order. Completed quests leave stale entries behind, which
    /// are skipped when they reach the top and compacted away when they
    /// outnumber live ones, so memory stays proportional to what is pending.
    deadlines: Deadlines,
    closed: bool,
}

/// Deadlines, earliest first: a queue for those that arrive in order (the
/// usual case: quests made with the same timeout), which costs no
/// comparisons beyond one, and a heap for the others.
#[derive(Default)]
struct Deadlines {
    in_order: VecDeque<(Instant, u32)>,
    others: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl Deadlines {
    fn push(&mut self, d: Instant, seq: u32) {
        match self.in_order.back() {
            Some(&(last, _)) if last > d => self.others.push(Reverse((d, seq))),
            _ => self.in_order.push_back((d, seq)),
        }
    }

    /// The earliest, and whether it is in the queue.
    fn peek(&self) -> Option<((Instant, u32), bool)> {
        match (self.in_order.front(), self.others.peek()) {
            (Some(&a), Some(&Reverse(b))) if b < a => Some((b, false)),
            (Some(&a), _) => Some((a, true)),
            (None, Some(&Reverse(b))) => Some((b, false)),
            (None, None) => None,
        }
    }

    fn pop(&mut self) -> Option<(Instant, u32)> {
        let (_, queued) = self.peek()?;
        if queued {
            self.in_order.pop_front()
        } else {
            self.others.pop().map(|Reverse(e)| e)
        }
    }

    /// Drops `(d, seq)` when it is first in the queue: the quest just
    /// completed, when answers come in the order quests were sent.
    fn forget_first(&mut self, d: Instant, seq: u32) {
        if self.in_order.front() == Some(&(d, seq)) {
            self.in_order.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.in_order.len() + self.others.len()
    }

    fn clear(&mut self) {
        self.in_order.clear();
        self.others.clear();
    }

    fn retain(&mut self, mut live: impl FnMut(&(Instant, u32)) -> bool) {
        self.in_order.retain(&mut live);
        self.others.retain(|Reverse(e)| live(e));
    }
}

impl<C> RequestTable<C> {
    pub(crate) fn new() -> Self {
        RequestTable {
            last_seq: 0,
            pending: SeqMap::default(),
            deadlines: Deadlines::default(),
            closed: false,
        }
    }

    /// Registers a quest and returns its seq: 1, 2, 3, ... wrapping at u32
    /// and skipping 0 and any seq still pending. A closed table gives the
    /// callback back.
    pub(crate) fn insert(&mut self, callback: C, deadline: Instant) -> Result<u32, C> {
        if self.closed {
            return Err(callback);
        }
        let seq = loop {
            self.last_seq = self.last_seq.wrapping_add(1);
            if self.last_seq == 0 {
                continue;
            }
            if let Slot::Vacant(slot) = self.pending.entry(self.last_seq) {
                slot.insert(Entry { callback, deadline });
                break self.last_seq;
            }
        };
        self.deadlines.push(deadline, seq);
        if self.deadlines.len() > 1024 && self.deadlines.len() > 2 * self.pending.len() {
            self.compact();
        }
        Ok(seq)
    }

    /// Takes the callback of an answered quest, with its deadline; `None`
    /// for an unknown or already completed seq (a late answer).
    #[inline(always)]
    pub(crate) fn complete(&mut self, seq: u32) -> Option<(C, Instant)> {
        let e = self.pending.remove(&seq)?;
        // Its deadline goes now if it is the first one (answers in order, the
        // usual case), rather than in a compaction (a hash lookup each).
        self.deadlines.forget_first(e.deadline, seq);
        Some((e.callback, e.deadline))
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(((d, seq), _)) = self.deadlines.peek() {
            match self.pending.get(&seq) {
                Some(e) if e.deadline == d => return Some(d),
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    /// Takes every quest whose deadline is at or before `now`, earliest first.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<C>) {
        while let Some(d) = self.next_deadline() {
            if d > now {
                break;
            }
            if let Some((_, seq)) = self.deadlines.pop() {
                if let Some(e) = self.pending.remove(&seq) {
                    out.push(e.callback);
                }
            }
        }
    }

    /// Closes the table: takes every pending callback; later inserts fail.
    pub(crate) fn close(&mut self) -> Vec<C> {
        self.closed = true;
        self.deadlines.clear();
        let mut all: Vec<(u32, Entry<C>)> = self.pending.drain().collect();
        all.sort_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, e)| e.callback).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    fn compact(&mut self) {
        let pending = &self.pending;
        self.deadlines
            .retain(|(d, seq)| pending.get(seq).is_some_and(|e| e.deadline == *d));
    }

    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.deadlines.len()
    }

    #[cfg(test)]
    fn set_last_seq(&mut self, s: u32) {
        self.last_seq = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn seqs_start_at_one_and_wrap_skipping_zero_and_pending() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        assert_eq!(t.insert('a', t0), Ok(1));
        assert_eq!(t.insert('b', t0), Ok(2));
        t.set_last_seq(u32::MAX - 1);
        assert_eq!(t.insert('c', t0), Ok(u32::MAX));
        // 0 is skipped, 1 and 2 are still pending.
        assert_eq!(t.insert('d', t0), Ok(3));
    }

    #[test]
    fn each_quest_completes_once_whoever_gets_there_first() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        let a = t.insert("a", ms(t0, 10)).unwrap();
        let b = t.insert("b", ms(t0, 20)).unwrap();
        assert_eq!(t.complete(a), Some(("a", ms(t0, 10))));
        assert_eq!(t.complete(a), None, "late answer is dropped");
        let mut out = vec![];
        t.expire(ms(t0, 30), &mut out);
        assert_eq!(out, vec!["b"]);
        assert_eq!(t.complete(b), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn deadlines_fire_in_order_and_not_early() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        for (name, d) in [("c", 30), ("a", 10), ("b", 20)] {
            t.insert(name, ms(t0, d)).unwrap();
        }
        assert_eq!(t.next_deadline(), Some(ms(t0, 10)));
        let mut out = vec![];
        t.expire(ms(t0, 9), &mut out);
        assert!(out.is_empty());
        t.expire(ms(t0, 20), &mut out);
        assert_eq!(out, vec!["a", "b"]);
        assert_eq!(t.next_deadline(), Some(ms(t0, 30)));
    }

    #[test]
    fn deadlines_in_and_out_of_order_fire_earliest_first() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        // In order (the queue), then earlier ones (the heap), interleaved.
        let order = [50, 60, 20, 70, 10, 70, 30, 80, 5];
        let seqs: Vec<u32> = (0..order.len())
            .map(|i| t.insert(i, ms(t0, order[i])).unwrap())
            .collect();
        assert_eq!(t.complete(seqs[3]), Some((3, ms(t0, 70)))); // the first 70: stale in the queue
        assert_eq!(t.complete(seqs[6]), Some((6, ms(t0, 30)))); // 30: stale in the heap
        let mut out = vec![];
        t.expire(ms(t0, 100), &mut out);
        let fired: Vec<u64> = out.iter().map(|&i| order[i]).collect();
        assert_eq!(fired, [5, 10, 20, 50, 60, 70, 80]);
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn close_takes_everything_and_refuses_new_quests() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        for i in 0..1000 {
            t.insert(i, ms(t0, 1000)).unwrap();
        }
        let all = t.close();
        assert_eq!(all.len(), 1000);
        assert_eq!(all[0], 0);
        assert_eq!(t.insert(5, t0), Err(5));
        assert!(t.close().is_empty());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn memory_stays_flat_when_answers_come_before_deadlines() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        for i in 0..100_000u64 {
            let seq = t.insert(i, ms(t0, 20_000 + i)).unwrap();
            assert_eq!(t.complete(seq), Some((i, ms(t0, 20_000 + i))));
        }
        assert!(t.heap_len() <= 2048, "heap grew to {}", t.heap_len());
    }

    #[test]
    fn answers_in_order_take_their_deadlines_with_them() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        // 100 in flight, answered in the order sent: no stale deadline is
        // left behind for a compaction.
        let mut seqs = std::collections::VecDeque::new();
        for i in 0..10_000u64 {
            seqs.push_back(t.insert(i, ms(t0, 20_000 + i)).unwrap());
            if seqs.len() == 100 {
                t.complete(seqs.pop_front().unwrap()).unwrap();
            }
            assert_eq!(t.heap_len(), t.len(), "after {i}");
        }
        // Out of order, the stale deadline stays until it is first or
        // compacted, and is never fired.
        let last = *seqs.back().unwrap();
        t.complete(last).unwrap();
        assert_eq!(t.heap_len(), t.len() + 1);
        let mut out = vec![];
        t.expire(ms(t0, 40_000), &mut out);
        assert_eq!(out.len(), 98);
        assert_eq!(t.heap_len(), 0);
    }
}
