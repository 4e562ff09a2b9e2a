//! The regressive relogin schedule (docs/architecture.md, "The session"), as a pure function.

use std::time::Duration;

use crate::types::RegressiveStrategy;

/// The wait before relogin attempt `attempt` (1-based): the first
/// `start_connect_failed_count` attempts go at once; each later one waits
/// `max_interval / linear_regressive_count` longer than the one before,
/// capped at `max_interval`.
pub(crate) fn relogin_delay(s: &RegressiveStrategy, attempt: u32) -> Duration {
    if attempt <= s.start_connect_failed_count {
        return Duration::ZERO;
    }
    let max_ms = s.max_interval_seconds.saturating_mul(1000);
    // max_ms * n / count, in u128 so that a step below 1 ms still grows.
    let count = u128::from(s.linear_regressive_count.max(1));
    let n = u128::from(attempt - s.start_connect_failed_count);
    let ms = (u128::from(max_ms) * n / count).min(u128::from(max_ms));
    Duration::from_millis(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_strategy_waits_0_0_0_2000_4000_6000_8000_8000() {
        let s = RegressiveStrategy::default();
        let waits: Vec<u128> = (1..=9).map(|n| relogin_delay(&s, n).as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 2000, 4000, 6000, 8000, 8000, 8000]);
    }

    #[test]
    fn custom_strategies_follow_the_same_rule() {
        let s = RegressiveStrategy {
            start_connect_failed_count: 1,
            max_interval_seconds: 3,
            linear_regressive_count: 3,
        };
        let waits: Vec<u128> = (1..=5).map(|n| relogin_delay(&s, n).as_millis()).collect();
        assert_eq!(waits, [0, 1000, 2000, 3000, 3000]);
        let zero = RegressiveStrategy {
            start_connect_failed_count: 0,
            max_interval_seconds: 1,
            linear_regressive_count: 0,
        };
        assert_eq!(relogin_delay(&zero, 1).as_millis(), 1000);
        assert_eq!(relogin_delay(&zero, u32::MAX).as_millis(), 1000);
    }

    /// With more steps than the maximum has milliseconds, each step is under
    /// 1 ms; the waits still grow to the maximum (a step rounded down to 0 made
    /// every attempt go at once, for ever: a tight relogin loop).
    #[test]
    fn a_step_below_one_millisecond_still_grows_to_the_maximum() {
        let s = RegressiveStrategy {
            start_connect_failed_count: 0,
            max_interval_seconds: 1,
            linear_regressive_count: 2000,
        };
        // After linear_regressive_count attempts the wait has reached the maximum.
        assert_eq!(relogin_delay(&s, 2000).as_millis(), 1000);
        assert_eq!(relogin_delay(&s, 1_000_000).as_millis(), 1000);
    }
}
