//! The duplicate push filter (docs/porting.md, "Pushes: the processor"), as a pure structure
//! with the clock passed in. It belongs to the client, not the connection,
//! so it survives reconnects.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant};

/// How long a push is remembered.
pub(crate) const WINDOW: Duration = Duration::from_secs(5);

/// The most keys remembered at once: what 10,000 pushes a second fill in one
/// [`WINDOW`]. Past it the oldest key is forgotten early, so a flood of
/// pushes cannot grow the filter without bound (at most about 6 MiB; a
/// duplicate then passes only if more than this many other pushes came
/// between it and its first copy).
pub(crate) const MAX_KEYS: usize = 50_000;

/// Below this capacity the filter does not give memory back.
const KEEP: usize = 1024;

/// (kind, mid, from, gid|rid or 0)
pub(crate) type PushKey = (u8, i64, i64, i64);

/// A remembered key with its hash, computed once when the push arrives. The
/// keys come from other users' messages (they pick the mids), so the hash is
/// std's keyed SipHash, with this filter's random keys; the set and the
/// queue reuse it, so a push costs one SipHash however often the set looks
/// it up or grows (docs/performance-history.md, "Round 7").
#[derive(Clone, Copy, Debug)]
struct Hashed {
    hash: u64,
    key: PushKey,
}

impl PartialEq for Hashed {
    fn eq(&self, other: &Hashed) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl Eq for Hashed {}

impl Hash for Hashed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hands [`Hashed::hash`] to the set as it is.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    // Only `write_u64` is ever called (`Hashed::hash`); anything else folds in.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

pub(crate) struct DuplicateFilter {
    keys: RandomState,
    /// The keys seen within the window; each has exactly one entry in
    /// `order` (a key is added to both only when absent from `seen`, and
    /// leaves both when its entry expires or, the filter full, is the
    /// oldest).
    seen: HashSet<Hashed, BuildHasherDefault<PassThrough>>,
    /// When each key of `seen` arrived, oldest first.
    order: VecDeque<(Instant, Hashed)>,
}

impl DuplicateFilter {
    pub(crate) fn new() -> Self {
        DuplicateFilter {
            keys: RandomState::new(),
            seen: HashSet::default(),
            order: VecDeque::new(),
        }
    }

    /// Whether the push is new (and remembers it). Pushes with mid 0 are
    /// always new.
    pub(crate) fn admit(&mut self, key: PushKey, now: Instant) -> bool {
        let mut dropped = false;
        while let Some(&(t, k)) = self.order.front() {
            if now.saturating_duration_since(t) < WINDOW {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&k);
            dropped = true;
        }
        // After a burst, the memory goes back once three quarters are free.
        if dropped && self.order.capacity() > KEEP && self.order.len() < self.order.capacity() / 4 {
            let keep = (self.order.len() * 2).max(KEEP);
            self.order.shrink_to(keep);
            self.seen.shrink_to(keep);
        }
        if key.1 == 0 {
            return true;
        }
        let k = Hashed {
            hash: self.hash(key),
            key,
        };
        if !self.seen.insert(k) {
            return false;
        }
        if self.order.len() >= MAX_KEYS {
            if let Some((_, oldest)) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.order.push_back((now, k));
        true
    }

    /// The key's keyed hash, from its 25 bytes in one write.
    fn hash(&self, (kind, mid, from, target): PushKey) -> u64 {
        let mut bytes = [0u8; 25];
        bytes[0] = kind;
        bytes[1..9].copy_from_slice(&mid.to_le_bytes());
        bytes[9..17].copy_from_slice(&from.to_le_bytes());
        bytes[17..].copy_from_slice(&target.to_le_bytes());
        let mut h = self.keys.build_hasher();
        h.write(&bytes);
        h.finish()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        debug_assert_eq!(self.seen.len(), self.order.len());
        self.seen.len()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.order.capacity().max(self.seen.capacity())
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

    #[test]
    fn a_flood_within_the_window_forgets_its_oldest_keys_past_the_limit() {
        let t0 = Instant::now();
        let mut f = DuplicateFilter::new();
        let n = MAX_KEYS as i64 + 10;
        for i in 1..=n {
            assert!(f.admit((1, i, 7, 0), t0));
        }
        assert_eq!(f.len(), MAX_KEYS);
        // The newest are still filtered; the ten oldest were forgotten early.
        assert!(!f.admit((1, n, 7, 0), t0));
        assert!(!f.admit((1, 11, 7, 0), t0));
        assert!(
            f.admit((1, 10, 7, 0), t0),
            "the oldest past the limit is forgotten"
        );
        assert_eq!(f.len(), MAX_KEYS);
    }

    #[test]
    fn the_memory_of_a_burst_goes_back_when_it_expires() {
        let t0 = Instant::now();
        let mut f = DuplicateFilter::new();
        for i in 1..=40_000i64 {
            f.admit((1, i, 7, 0), t0);
        }
        assert!(f.capacity() >= 40_000);
        // Five seconds on, the burst expires as new pushes come.
        let later = t0 + WINDOW;
        for i in 1..=10i64 {
            f.admit((2, i, 7, 0), later);
        }
        assert_eq!(f.len(), 10);
        assert!(f.capacity() <= 4 * KEEP, "kept {}", f.capacity());
    }

    #[test]
    fn a_key_admitted_again_is_remembered_from_its_new_arrival() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut f = DuplicateFilter::new();
        let k = (3, 42, 7, 9);
        assert!(f.admit(k, t0));
        assert!(f.admit(k, ms(5000)), "expired after 5 s");
        assert!(
            !f.admit(k, ms(9999)),
            "remembered 5 s from its second arrival"
        );
        assert!(f.admit(k, ms(10_000)));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn keys_with_the_same_hash_are_still_told_apart() {
        let mut seen: HashSet<Hashed, BuildHasherDefault<PassThrough>> = HashSet::default();
        assert!(seen.insert(Hashed {
            hash: 5,
            key: (1, 1, 7, 0)
        }));
        assert!(seen.insert(Hashed {
            hash: 5,
            key: (1, 2, 7, 0)
        }));
        assert!(!seen.insert(Hashed {
            hash: 5,
            key: (1, 2, 7, 0)
        }));
        assert_eq!(seen.len(), 2);
    }
}
