//! What the bench measures about this process: CPU per thread (from
//! `/proc/self/task/*/schedstat`, nanoseconds on CPU, grouped by thread
//! name), context switches per thread (each time a thread blocked or was
//! preempted: the wake-ups), resident memory and thread counts (`/proc/self/status`), and
//! latency percentiles. Linux only; elsewhere the figures read 0.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Who a thread works for, from its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Group {
    /// The local gate's threads (`rtm-gate-*`), when it runs in this process.
    Gate,
    /// The bench's own load generator (`bench-sender`), not the client measured.
    Sender,
    /// Everything else: the SDK's threads, the bare floor's and the main thread.
    Client,
}

fn group_of(comm: &str) -> Group {
    if comm.starts_with("rtm-gate") {
        Group::Gate
    } else if comm.starts_with("bench-sender") {
        Group::Sender
    } else {
        Group::Client
    }
}

/// The pid of a gate running as a child process (0: none); its threads
/// count as [`Group::Gate`].
pub static GATE_PID: AtomicU32 = AtomicU32::new(0);

/// CPU nanoseconds of each live thread, by thread id.
fn threads() -> HashMap<u64, (Group, u64, u64)> {
    let mut out = HashMap::new();
    read_tasks("/proc/self/task", None, &mut out);
    let child = GATE_PID.load(Ordering::Relaxed);
    if child != 0 {
        read_tasks(&format!("/proc/{child}/task"), Some(Group::Gate), &mut out);
    }
    out
}

fn read_tasks(path: &str, group: Option<Group>, out: &mut HashMap<u64, (Group, u64, u64)>) {
    let Ok(dir) = std::fs::read_dir(path) else {
        return;
    };
    for e in dir.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(e.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let switches = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.insert(
            tid,
            (group.unwrap_or_else(|| group_of(comm.trim())), ns, switches),
        );
    }
}

fn status_field(name: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Current resident memory, KiB.
pub fn rss_kib() -> u64 {
    status_field("VmRSS:")
}

/// Threads of this process (and of a child gate) by group.
pub fn thread_counts() -> HashMap<Group, usize> {
    let mut n = HashMap::new();
    for (g, _, _) in threads().values() {
        *n.entry(*g).or_default() += 1;
    }
    n
}

/// CPU used between [`Meter::start`] and [`Meter::stop`], per group.
pub struct Meter {
    before: HashMap<u64, (Group, u64, u64)>,
    t0: Instant,
}

/// What a [`Meter`] saw.
pub struct Usage {
    pub wall: Duration,
    pub cpu_ns: HashMap<Group, u64>,
    pub switches: HashMap<Group, u64>,
    pub peak_rss_kib: u64,
    pub threads: HashMap<Group, usize>,
}

impl Meter {
    /// Resets the peak-RSS mark (`/proc/self/clear_refs`) and records every
    /// thread's CPU so far.
    pub fn start() -> Meter {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Meter {
            before: threads(),
            t0: Instant::now(),
        }
    }

    /// Reads the threads again; call it while the threads measured are
    /// still alive (a thread that ended in between is not counted).
    pub fn stop(&self) -> Usage {
        let wall = self.t0.elapsed();
        let after = threads();
        let mut cpu_ns: HashMap<Group, u64> = HashMap::new();
        let mut switches: HashMap<Group, u64> = HashMap::new();
        let mut counts: HashMap<Group, usize> = HashMap::new();
        for (tid, (g, ns, sw)) in &after {
            let (was_ns, was_sw) = self.before.get(tid).map_or((0, 0), |b| (b.1, b.2));
            *cpu_ns.entry(*g).or_default() += ns.saturating_sub(was_ns);
            *switches.entry(*g).or_default() += sw.saturating_sub(was_sw);
            *counts.entry(*g).or_default() += 1;
        }
        Usage {
            wall,
            cpu_ns,
            switches,
            peak_rss_kib: status_field("VmHWM:"),
            threads: counts,
        }
    }
}

impl Usage {
    /// CPU microseconds of `g` per message.
    pub fn cpu_us_per(&self, g: Group, n: usize) -> f64 {
        self.cpu_ns.get(&g).copied().unwrap_or(0) as f64 / 1000.0 / n.max(1) as f64
    }

    /// Context switches of `g`'s threads per message.
    pub fn switches_per(&self, g: Group, n: usize) -> f64 {
        self.switches.get(&g).copied().unwrap_or(0) as f64 / n.max(1) as f64
    }

    /// Threads of `g` alive at the end.
    pub fn threads_of(&self, g: Group) -> usize {
        self.threads.get(&g).copied().unwrap_or(0)
    }
}

/// p50, p99 and max of latencies in microseconds.
pub fn percentiles(lat: &mut [u32]) -> (u32, u32, u32) {
    if lat.is_empty() {
        return (0, 0, 0);
    }
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), lat[lat.len() - 1])
}
