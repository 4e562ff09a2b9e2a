//! Helpers of the unit tests.

use std::time::{Duration, Instant};

/// How long a unit test waits for a condition before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Waits until `cond` holds, failing the test with `what` after [`WAIT`]:
/// a condition with a deadline, never a fixed sleep.
pub(crate) fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        // Polls every millisecond, as tests/shared does: a spin on `yield_now`
        // took a core from the threads the test waits on (2-core machines).
        std::thread::sleep(Duration::from_millis(1));
    }
}
