//! The request table: pending twoway quests by seq, with their deadlines.
//!
//! A pure state machine: no threads, no clock reads (callers pass `now`), so
//! exactly-once completion and deadline order are tested without sockets.
//!
//! A quest gets its deadline when it is registered ([`RequestTable::insert`]),
//! or, when it is made inside a write batch (src/fpnn/connection/writer.rs),
//! when the batch is flushed ([`RequestTable::insert_unstamped`], then
//! [`RequestTable::stamp`]): one clock read per batch instead of one per
//! quest, and its timeout counts from when it is handed to the socket, which
//! is never before it was made.
//! Whoever removes an entry (answer, timeout or close) owns its callback and
//! runs it after dropping the table's lock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::fpnn::transport::deadline_from;

struct Entry<C> {
    callback: C,
    /// `None` until [`RequestTable::stamp`] gives it one (an unstamped quest
    /// does not time out).
    deadline: Option<Instant>,
}

/// Pending entries by seq, in a power-of-two array indexed by the seq's low
/// bits. This side chooses the seqs, so it chooses only seqs whose slot is
/// free ([`RequestTable::insert`]): a slot holds at most one seq, found with
/// one index and one comparison, no hashing and no probing. Seqs go up by
/// one, so with answers in the usual order the next seq's slot is the one
/// the oldest answer freed. The array doubles when 7/8 full (every entry
/// keeps a slot of its own in the larger array: two seqs with the same low
/// bits there had the same low bits here) and never shrinks, as a hash
/// table's does not.
struct Slots<C> {
    slots: Vec<Option<(u32, Entry<C>)>>,
    len: usize,
}

impl<C> Slots<C> {
    fn new() -> Self {
        Slots {
            slots: Vec::new(),
            len: 0,
        }
    }

    #[inline(always)]
    fn index(&self, seq: u32) -> usize {
        seq as usize & (self.slots.len().wrapping_sub(1))
    }

    /// Whether `seq`'s slot is free (false when there are no slots).
    fn is_free(&self, seq: u32) -> bool {
        matches!(self.slots.get(self.index(seq)), Some(None))
    }

    /// Whether one more entry fits under the 7/8 load limit.
    fn has_room(&self) -> bool {
        (self.len + 1) * 8 <= self.slots.len() * 7
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, (0..cap).map(|_| None).collect());
        for (seq, e) in old.into_iter().flatten() {
            let i = self.index(seq);
            debug_assert!(self.slots[i].is_none());
            self.slots[i] = Some((seq, e));
        }
    }

    /// Puts `seq`, whose slot [`Slots::is_free`].
    fn put(&mut self, seq: u32, e: Entry<C>) {
        let i = self.index(seq);
        self.slots[i] = Some((seq, e));
        self.len += 1;
    }

    #[inline(always)]
    fn get(&self, seq: u32) -> Option<&Entry<C>> {
        match self.slots.get(self.index(seq)) {
            Some(Some((s, e))) if *s == seq => Some(e),
            _ => None,
        }
    }

    /// Gives `seq`'s entry deadline `d` if it is pending without one. A seq
    /// comes back only after the u32 wraps, so an entry found without a
    /// deadline is the one stamped for.
    #[inline(always)]
    fn stamp(&mut self, seq: u32, d: Instant) -> bool {
        let i = self.index(seq);
        match self.slots.get_mut(i) {
            Some(Some((s, e))) if *s == seq && e.deadline.is_none() => {
                e.deadline = Some(d);
                true
            }
            _ => false,
        }
    }

    #[inline(always)]
    fn remove(&mut self, seq: u32) -> Option<Entry<C>> {
        let i = self.index(seq);
        let slot = self.slots.get_mut(i)?;
        match slot {
            Some((s, _)) if *s == seq => {
                self.len -= 1;
                slot.take().map(|(_, e)| e)
            }
            _ => None,
        }
    }

    /// Takes every entry, with its seq, in no order; the slots stay.
    fn take_all(&mut self) -> Vec<(u32, Entry<C>)> {
        let all: Vec<_> = self.slots.iter_mut().filter_map(Option::take).collect();
        self.len = 0;
        all
    }
}

/// Pending quests of one connection.
pub(crate) struct RequestTable<C> {
    last_seq: u32,
    pending: Slots<C>,
    /// Deadlines in order. Completed quests leave stale entries behind, which
    /// are skipped when they reach the top and compacted away when they
    /// outnumber live ones, so memory stays proportional to what is pending.
    deadlines: Deadlines,
    /// Quests registered without a deadline, for the next
    /// [`RequestTable::stamp`]. Completed ones stay until then.
    unstamped: Unstamped,
    closed: bool,
}

/// The seqs of quests waiting for [`RequestTable::stamp`]: those made with
/// the batch's first timeout (the usual case: one timeout for every quest),
/// which get one deadline, and the others with theirs.
#[derive(Default)]
struct Unstamped {
    timeout: Duration,
    seqs: Vec<u32>,
    others: Vec<(u32, Duration)>,
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
    #[inline(always)]
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

impl<C> Default for RequestTable<C> {
    fn default() -> Self {
        RequestTable::new()
    }
}

impl<C> RequestTable<C> {
    pub(crate) fn new() -> Self {
        RequestTable {
            last_seq: 0,
            pending: Slots::new(),
            deadlines: Deadlines::default(),
            unstamped: Unstamped::default(),
            closed: false,
        }
    }

    /// Registers a quest and returns its seq: 1, 2, 3, ... wrapping at u32
    /// and skipping 0 and any seq whose slot holds a quest still pending
    /// (every seq still pending among them). A closed table gives the
    /// callback back.
    pub(crate) fn insert(&mut self, callback: C, deadline: Instant) -> Result<u32, C> {
        let seq = self.register(callback, Some(deadline))?;
        self.deadlines.push(deadline, seq);
        self.compact_if_sparse();
        Ok(seq)
    }

    /// [`RequestTable::insert`] without a deadline yet: the next
    /// [`RequestTable::stamp`] gives it one, `timeout` after the stamp's
    /// `now`. Until then it does not time out.
    pub(crate) fn insert_unstamped(&mut self, callback: C, timeout: Duration) -> Result<u32, C> {
        let seq = self.register(callback, None)?;
        let u = &mut self.unstamped;
        if u.seqs.is_empty() {
            u.timeout = timeout;
        }
        if timeout == u.timeout {
            u.seqs.push(seq);
        } else {
            u.others.push((seq, timeout));
        }
        Ok(seq)
    }

    /// Gives every quest registered by [`RequestTable::insert_unstamped`]
    /// since the last stamp, and still pending, its deadline: `now` plus its
    /// timeout. Returns the earliest of them.
    pub(crate) fn stamp(&mut self, now: Instant) -> Option<Instant> {
        let mut u = std::mem::take(&mut self.unstamped);
        let mut earliest = None;
        if !u.seqs.is_empty() {
            let d = deadline_from(now, u.timeout);
            // One deadline for the run: it joins the ordered queue whole, or
            // (an earlier deadline than the queue's last) the heap.
            let in_order = self
                .deadlines
                .in_order
                .back()
                .map_or(true, |&(last, _)| last <= d);
            let mut any = false;
            for &seq in &u.seqs {
                if self.pending.stamp(seq, d) {
                    any = true;
                    if in_order {
                        self.deadlines.in_order.push_back((d, seq));
                    } else {
                        self.deadlines.others.push(Reverse((d, seq)));
                    }
                }
            }
            if any {
                earliest = Some(d);
            }
        }
        for &(seq, timeout) in &u.others {
            let d = deadline_from(now, timeout);
            if self.pending.stamp(seq, d) {
                self.deadlines.push(d, seq);
                earliest = Some(earliest.map_or(d, |e: Instant| e.min(d)));
            }
        }
        // The lists' allocations are kept for the next batch, unless a burst
        // made them large.
        u.seqs.clear();
        u.others.clear();
        if u.seqs.capacity() <= 4096 && u.others.capacity() <= 4096 {
            self.unstamped = u;
        }
        self.compact_if_sparse();
        earliest
    }

    /// Registers `callback` under a new seq (see [`RequestTable::insert`]).
    #[inline(always)]
    fn register(&mut self, callback: C, deadline: Option<Instant>) -> Result<u32, C> {
        if self.closed {
            return Err(callback);
        }
        if !self.pending.has_room() {
            self.pending.grow();
        }
        // Under the load limit, the slots of the next `len + 1` seqs (0 aside)
        // are all different and not all taken: the loop ends within them.
        let seq = loop {
            self.last_seq = self.last_seq.wrapping_add(1);
            if self.last_seq != 0 && self.pending.is_free(self.last_seq) {
                break self.last_seq;
            }
        };
        self.pending.put(seq, Entry { callback, deadline });
        Ok(seq)
    }

    /// Drops the stale deadlines when they outnumber live quests.
    fn compact_if_sparse(&mut self) {
        if self.deadlines.len() > 1024 && self.deadlines.len() > 2 * self.pending.len {
            self.compact();
        }
    }

    /// Takes the callback of an answered quest, with its deadline (`None`
    /// when not stamped yet); `None` for an unknown or already completed seq
    /// (a late answer).
    #[inline(always)]
    pub(crate) fn complete(&mut self, seq: u32) -> Option<(C, Option<Instant>)> {
        let e = self.pending.remove(seq)?;
        // Its deadline goes now if it is the first one (answers in order, the
        // usual case), rather than in a compaction (a hash lookup each).
        if let Some(d) = e.deadline {
            self.deadlines.forget_first(d, seq);
        }
        Some((e.callback, e.deadline))
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(((d, seq), _)) = self.deadlines.peek() {
            match self.pending.get(seq) {
                Some(e) if e.deadline == Some(d) => return Some(d),
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
                if let Some(e) = self.pending.remove(seq) {
                    out.push(e.callback);
                }
            }
        }
    }

    /// Closes the table: takes every pending callback; later inserts fail.
    pub(crate) fn close(&mut self) -> Vec<C> {
        self.closed = true;
        self.deadlines.clear();
        self.unstamped = Unstamped::default();
        let mut all = self.pending.take_all();
        all.sort_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, e)| e.callback).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len
    }

    fn compact(&mut self) {
        let pending = &self.pending;
        self.deadlines
            .retain(|(d, seq)| pending.get(*seq).is_some_and(|e| e.deadline == Some(*d)));
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
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[derive(Debug, Clone)]
    enum Op {
        /// A quest with this deadline (ms after t0).
        Insert(u64),
        /// A quest with this timeout (ms), stamped later.
        InsertUnstamped(u64),
        /// Stamps the unstamped quests this many ms after t0.
        Stamp(u64),
        /// Completes the pending quest at this position (or an unknown seq).
        Complete(usize),
        /// Expires what is due this many ms after t0.
        Expire(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..50u64).prop_map(Op::Insert),
            2 => (0..30u64).prop_map(Op::InsertUnstamped),
            1 => (0..30u64).prop_map(Op::Stamp),
            3 => any::<usize>().prop_map(Op::Complete),
            1 => (0..50u64).prop_map(Op::Expire),
        ]
    }

    proptest! {
        /// The table against a plain map: seqs are unique among pending
        /// quests and never 0, each quest completes once, with its own
        /// callback, and expiry takes exactly the due ones, earliest first
        /// (seqs start near the wrap, so it is crossed in some cases). An
        /// unstamped quest never expires; a stamp gives each unstamped quest
        /// still pending the stamp's time plus its timeout, and returns the
        /// earliest of those.
        #[test]
        fn the_table_keeps_what_a_map_keeps(
            start in prop_oneof![Just(0u32), Just(u32::MAX - 40)],
            ops in proptest::collection::vec(op(), 0..400),
        ) {
            let t0 = Instant::now();
            let mut t = RequestTable::new();
            t.set_last_seq(start);
            // seq -> (callback, deadline or, unstamped, timeout)
            let mut model: BTreeMap<u32, (usize, Result<u64, u64>)> = BTreeMap::new();
            let mut done: Vec<u32> = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(d) => {
                        let seq = t.insert(n, ms(t0, d)).unwrap();
                        prop_assert!(seq != 0);
                        prop_assert!(model.insert(seq, (n, Ok(d))).is_none(), "seq {} reused", seq);
                    }
                    Op::InsertUnstamped(timeout) => {
                        let seq = t.insert_unstamped(n, Duration::from_millis(timeout)).unwrap();
                        prop_assert!(seq != 0);
                        prop_assert!(model.insert(seq, (n, Err(timeout))).is_none(), "seq {} reused", seq);
                    }
                    Op::Stamp(now) => {
                        let mut earliest = None;
                        for (_, d) in model.values_mut() {
                            if let Err(timeout) = *d {
                                *d = Ok(now + timeout);
                                earliest = Some(earliest.map_or(now + timeout, |e: u64| e.min(now + timeout)));
                            }
                        }
                        prop_assert_eq!(t.stamp(ms(t0, now)), earliest.map(|e| ms(t0, e)));
                    }
                    Op::Complete(i) => {
                        // A pending seq, a late answer's (one completed
                        // already), or any seq at all.
                        let seq = match i % 4 {
                            0 | 1 if !model.is_empty() => *model.keys().nth(i % model.len()).unwrap(),
                            2 if !done.is_empty() => done[i % done.len()],
                            _ => (i >> 2) as u32,
                        };
                        let want = model.remove(&seq).map(|(v, d)| (v, d.ok().map(|d| ms(t0, d))));
                        prop_assert_eq!(t.complete(seq), want);
                        done.push(seq);
                    }
                    Op::Expire(now) => {
                        let due: Vec<(u64, u32, usize)> = model
                            .iter()
                            .filter_map(|(s, (v, d))| match d {
                                Ok(d) if *d <= now => Some((*d, *s, *v)),
                                _ => None,
                            })
                            .collect();
                        for (_, s, _) in &due {
                            model.remove(s);
                        }
                        let mut out = vec![];
                        t.expire(ms(t0, now), &mut out);
                        // Earliest first (the order among equal deadlines is
                        // not promised), and exactly the due ones.
                        let deadline_of = |v: usize| due.iter().find(|e| e.2 == v).map(|e| e.0);
                        let fired: Vec<Option<u64>> = out.iter().map(|&v| deadline_of(v)).collect();
                        prop_assert!(fired.iter().all(Option::is_some), "fired {:?}, due {:?}", out, due);
                        prop_assert!(fired.windows(2).all(|w| w[0] <= w[1]), "out of order: {:?}", fired);
                        let mut got = out.clone();
                        got.sort();
                        let mut want: Vec<usize> = due.iter().map(|e| e.2).collect();
                        want.sort();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let mut rest: Vec<(u32, usize)> = model.iter().map(|(s, (v, _))| (*s, *v)).collect();
            rest.sort();
            prop_assert_eq!(t.close(), rest.into_iter().map(|e| e.1).collect::<Vec<_>>());
        }
    }

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
    fn a_seq_whose_slot_is_taken_is_skipped_and_growth_keeps_every_quest() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        // Seq 1 stays pending while the next ones come and go: the 16 slots
        // go round, and seq 17, whose slot seq 1 holds, is skipped.
        assert_eq!(t.insert(1000, t0), Ok(1));
        for i in 2..=16u32 {
            let seq = t.insert(i as u64, t0).unwrap();
            assert_eq!(seq, i);
            assert_eq!(t.complete(seq), Some((i as u64, Some(t0))));
        }
        assert_eq!(t.insert(18, t0), Ok(18));
        assert_eq!(t.complete(17), None);
        // Fill past 7/8 of the slots: they double, and every quest is still
        // found under its seq.
        let mut seqs = vec![(1, 1000), (18, 18)];
        for i in 0..100u64 {
            seqs.push((t.insert(i, t0).unwrap(), i));
        }
        assert_eq!(t.len(), 102);
        for (seq, v) in seqs {
            assert_eq!(t.complete(seq), Some((v, Some(t0))), "seq {seq}");
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_unstamped_quest_times_out_only_after_its_stamp() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        let a = t.insert_unstamped("a", Duration::from_millis(10)).unwrap();
        let b = t.insert_unstamped("b", Duration::from_millis(5)).unwrap();
        let c = t.insert("c", ms(t0, 50)).unwrap();
        assert_eq!(t.next_deadline(), Some(ms(t0, 50)));
        let mut out = vec![];
        t.expire(ms(t0, 40), &mut out);
        assert!(out.is_empty(), "unstamped quests expired: {out:?}");
        // An answer before the stamp completes it (no deadline yet) and the
        // stamp passes it by.
        assert_eq!(t.complete(b), Some(("b", None)));
        assert_eq!(t.stamp(ms(t0, 100)), Some(ms(t0, 110)));
        assert_eq!(t.stamp(ms(t0, 200)), None, "stamped twice");
        t.expire(ms(t0, 109), &mut out);
        assert_eq!(out, vec!["c"]);
        t.expire(ms(t0, 110), &mut out);
        assert_eq!(out, vec!["c", "a"]);
        assert_eq!(t.complete(a), None);
        assert_eq!(t.complete(c), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn each_quest_completes_once_whoever_gets_there_first() {
        let t0 = Instant::now();
        let mut t = RequestTable::new();
        let a = t.insert("a", ms(t0, 10)).unwrap();
        let b = t.insert("b", ms(t0, 20)).unwrap();
        assert_eq!(t.complete(a), Some(("a", Some(ms(t0, 10)))));
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
        assert_eq!(t.complete(seqs[3]), Some((3, Some(ms(t0, 70))))); // the first 70: stale in the queue
        assert_eq!(t.complete(seqs[6]), Some((6, Some(ms(t0, 30))))); // 30: stale in the heap
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
            assert_eq!(t.complete(seq), Some((i, Some(ms(t0, 20_000 + i)))));
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
