//! What every test suite's helper module shares (tests/support for the
//! engine, tests/common for the session, tests/msg_common for the message
//! API): the bound on waits, waiting on a condition, building a map.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use rmpv::Value;

/// The bound on any single wait of a test. Generous: it is only reached when
/// something is broken, and then the test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `cond` until it holds; fails the test after [`WAIT`].
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_within(WAIT, what, cond);
}

/// Polls `cond` until it holds; fails the test after `limit` (for the long
/// runs whose whole course is one wait).
pub fn wait_within(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A msgpack map from `(key, value)` pairs.
pub fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// A server that accepts TCP connections and never says anything (no TLS or
/// WebSocket handshake): its address, and what keeps the accepted sockets
/// open (drop it to let them go).
pub fn silent_server() -> (String, crossbeam_channel::Receiver<std::net::TcpStream>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (hold, held) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            if hold.send(s).is_err() {
                return;
            }
        }
    });
    (addr, held)
}
