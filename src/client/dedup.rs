//! The duplicate push filter (docs/porting.md, "Pushes: the processor"), as a pure structure
//! with the clock passed in. It belongs to the client, not the connection,
//! so it survives reconnects.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a push is remembered.
pub(crate) const WINDOW: Duration = Duration::from_secs(5);

/// (kind, mid, from, gid|rid or 0)
pub(crate) type PushKey = (u8, i64, i64, i64);

pub(crate) struct DuplicateFilter {
    seen: HashMap<PushKey, Instant>,
    order: VecDeque<(Instant, PushKey)>,
}

impl DuplicateFilter {
    pub(crate) fn new() -> Self {
        DuplicateFilter {
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether the push is new (and remembers it). Pushes with mid 0 are
    /// always new.
    pub(crate) fn admit(&mut self, key: PushKey, now: Instant) -> bool {
        while let Some(&(t, k)) = self.order.front() {
            if now.saturating_duration_since(t) < WINDOW {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&k) == Some(&t) {
                self.seen.remove(&k);
            }
        }
        if key.1 == 0 {
            return true;
        }
        // One lookup (the keys come from other users' messages, so the map
        // keeps std's keyed hash).
        match self.seen.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(now);
                self.order.push_back((now, key));
                true
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_five_seconds_is_dropped_and_admitted_after() {
        let t0 = Instant::now();
        let mut f = DuplicateFilter::new();
        let k = (1, 42, 7, 0);
        assert!(f.admit(k, t0));
        assert!(!f.admit(k, t0 + Duration::from_millis(4999)));
        assert!(f.admit(k, t0 + Duration::from_millis(5000)));
    }

    #[test]
    fn kind_sender_and_target_are_part_of_the_key_and_mid_zero_passes() {
        let t0 = Instant::now();
        let mut f = DuplicateFilter::new();
        assert!(f.admit((1, 42, 7, 0), t0));
        assert!(f.admit((2, 42, 7, 9), t0));
        assert!(f.admit((2, 42, 7, 10), t0));
        assert!(f.admit((1, 42, 8, 0), t0));
        assert!(f.admit((1, 0, 7, 0), t0));
        assert!(f.admit((1, 0, 7, 0), t0));
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let t0 = Instant::now();
        let mut f = DuplicateFilter::new();
        for i in 0..10_000i64 {
            f.admit((1, i + 1, 7, 0), t0 + Duration::from_millis(i as u64 * 10));
        }
        assert!(f.len() <= 501, "{}", f.len());
    }
}
