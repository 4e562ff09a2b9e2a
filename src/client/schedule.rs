//! The regressive relogin schedule (docs/architecture.md, "The session"), as a pure function.

use std::time::Duration;

use crate::types::RegressiveStrategy;

/// The wait before relogin attempt `attempt` (1-based): the first
/// `start_connect_failed_count` attempts go at once; each later one waits
/// `max_interval / linear_regressive_count` longer than the one before,
/// capped at `max_interval`. A `linear_regressive_count` of 0 counts as 1:
/// every later attempt waits `max_interval`, as in JavaScript, whose step
/// `max_interval / 0` is infinite and capped (and `0 / 0`, NaN, is a
/// `setTimeout` of 0, as `max_interval` 0 waits here).
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

    /// The JavaScript SDK's `reConnect`, in floating point as there: each
    /// delayed attempt waits the previous wait plus `maxIntervalSeconds *
    /// 1000 / linearRegressiveCount`, capped at the maximum; a NaN wait is a
    /// `setTimeout` of 0.
    fn javascript_waits(s: &RegressiveStrategy, attempts: u32) -> Vec<u128> {
        let max = s.max_interval_seconds as f64 * 1000.0;
        let step = max / f64::from(s.linear_regressive_count);
        let mut interval = 0.0f64;
        (0..attempts)
            .map(|done| {
                let mut wait = 0.0;
                if done >= s.start_connect_failed_count {
                    wait = interval + step;
                    if wait > max {
                        wait = max;
                    }
                    interval = wait;
                }
                if wait.is_nan() {
                    0
                } else {
                    wait as u128
                }
            })
            .collect()
    }

    /// `linear_regressive_count: 0` counts as 1: every attempt after the
    /// first `start_connect_failed_count` waits the maximum, as JavaScript's
    /// infinite step capped at the maximum makes it wait; with a maximum of 0
    /// every attempt goes at once, as JavaScript's NaN wait does.
    #[test]
    fn a_linear_regressive_count_of_0_waits_the_maximum_as_javascript_does() {
        for (start, max) in [(3, 8), (0, 1), (1, 0), (0, 0), (5, 120)] {
            let s = RegressiveStrategy {
                start_connect_failed_count: start,
                max_interval_seconds: max,
                linear_regressive_count: 0,
            };
            let waits: Vec<u128> = (1..=12).map(|n| relogin_delay(&s, n).as_millis()).collect();
            assert_eq!(waits, javascript_waits(&s, 12), "{s:?}");
            let one = RegressiveStrategy {
                linear_regressive_count: 1,
                ..s
            };
            assert!((1..=12).all(|n| relogin_delay(&s, n) == relogin_delay(&one, n)));
        }
        // The model agrees with the default schedule too.
        let d = RegressiveStrategy::default();
        assert_eq!(
            javascript_waits(&d, 9),
            [0, 0, 0, 2000, 4000, 6000, 8000, 8000, 8000]
        );
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
