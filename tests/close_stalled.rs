//! `close()` on a connection whose writer is stalled on a peer that does not
//! read ends the connection promptly: the writer gives up what is left to
//! write after its close linger and shuts the socket, so the connection's
//! reader and writer threads end without waiting for the 30 s write stall.
//!
//! Alone in its test binary: it counts the process's threads by name, which
//! other tests' connections would change.
#![cfg(feature = "gate")]

mod support;

use std::time::{Duration, Instant};

use rtm_client::error_code;
use rtm_client::fpnn::{CloseReason, ConnectOptions};
use support::*;

const LIMIT: usize = 256 * 1024;

/// The number of this process's threads with this name.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .map(|c| c.trim() == name)
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

fn connection_threads() -> (usize, usize) {
    (threads_named("rtm-writer"), threads_named("rtm-reader"))
}

#[cfg(target_os = "linux")]
#[test]
fn close_ends_the_connection_promptly_when_the_writer_is_stalled() {
    for server in [TestServer::start(), TestServer::start_tls()] {
        let (writers, readers) = connection_threads();
        // The server never reads.
        let (client, _s) = server.connect_with(ConnectOptions {
            write_queue_limit: LIMIT,
            ..server.options()
        });
        // (A new thread takes its name as it starts.)
        wait_until("the connection's threads to start", || {
            connection_threads() == (writers + 1, readers + 1)
        });
        // Fill the kernel's buffers and the queue until the writer is
        // stalled: every quest refused (20011) for half a second.
        let big = payload_of_len(16 * 1024);
        let give_up = Instant::now() + WAIT;
        let mut refused_since: Option<Instant> = None;
        loop {
            assert!(Instant::now() < give_up, "the writer never stalled");
            let rx = send(&client.conn, "big", &big, Duration::from_secs(120));
            match rx.try_recv() {
                Ok(Err(e)) => {
                    assert_eq!(e.code, error_code::FPNN_EC_CORE_WORK_QUEUE_FULL);
                    let since = *refused_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(500) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => refused_since = None,
            }
        }
        client.conn.close();
        assert_eq!(client.closed(), CloseReason::Local);
        // Within WAIT, well short of the writer's 30 s stall limit.
        wait_until("the connection's threads to end after close()", || {
            connection_threads() == (writers, readers)
        });
    }
}
