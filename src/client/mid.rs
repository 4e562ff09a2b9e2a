//! Message ids generated when the caller passes 0 (docs/Messages.md, "Ids, mids and bodies").

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch followed by three digits of a counter. The
/// JavaScript SDK repeats after 1000 ids in one millisecond; this one never
/// repeats: when the counter would run past 999 (or the clock steps back) it
/// borrows from the next millisecond, so ids are strictly increasing.
pub(crate) struct MidGenerator {
    last: i64,
    counter: i64,
}

impl MidGenerator {
    pub(crate) fn new() -> Self {
        MidGenerator {
            last: 0,
            counter: 0,
        }
    }

    pub(crate) fn next(&mut self) -> i64 {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        self.next_at(ms)
    }

    pub(crate) fn next_at(&mut self, ms: i64) -> i64 {
        self.counter = (self.counter + 1) % 1000;
        let id = ms.saturating_mul(1000).saturating_add(self.counter);
        self.last = if id > self.last { id } else { self.last + 1 };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_milliseconds_then_three_counter_digits() {
        let mut g = MidGenerator::new();
        g.counter = 6;
        assert_eq!(g.next_at(1_700_000_000_123), 1_700_000_000_123_007);
    }

    #[test]
    fn thousands_in_one_millisecond_never_repeat() {
        let mut g = MidGenerator::new();
        let mut ids: Vec<i64> = (0..5000).map(|_| g.next_at(1_700_000_000_000)).collect();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_clock_stepping_back_does_not_repeat() {
        let mut g = MidGenerator::new();
        let a = g.next_at(2_000);
        let b = g.next_at(1_000);
        assert!(b > a);
    }
}
