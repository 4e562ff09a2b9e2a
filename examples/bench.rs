//! The SDK's benchmark, each scenario beside a bare floor (one socket,
//! pre-encoded packets, its own minimal code in `examples/bench/floor.rs`).
//! A benchmark, not a test: nothing here is asserted. Figures and how to
//! read them: docs/performance.md.
//!
//! ```text
//! cargo run --release --example bench -- [--endpoint HOST:PORT] [--n N] [--window W]
//!     [--size BYTES] [--clients C] [--scenario NAME] [--gate-process] [--gate-no-nodelay]
//!     [--gate-pid PID] [--sdk-only] [--floor-only] [--floor one|handoff] [--dispatch threads|inline]
//! ```
//!
//! Without `--endpoint` the local gate runs in this process (its threads,
//! `rtm-gate-*`, are measured apart from the client's), or with
//! `--gate-process` in a child process (this program again), which keeps
//! the gate out of the memory and thread figures (`--gate-pid` names the
//! process of a gate given by `--endpoint`, to measure its CPU too). `--gate-no-nodelay` starts
//! that gate with TCP_NODELAY off, as real FPNN servers run. Scenarios
//! (`--scenario` runs the one named NAME, or those whose name starts with it): `sequential`,
//! `pipelined_100`, `pipelined_1000`, `many_clients`, `pushes`, `idle`; and,
//! only when named, the memory scenarios `pending` (`--n` quests left
//! unanswered, default 100,000) and `soak` (`--n` quests, default 1,000,000)
//! of `examples/bench/memory.rs`. Each message scenario runs the floor and
//! the SDK in halves, floor, SDK, SDK, floor (`paired`). `--sdk-only` skips
//! the floor. `--dispatch` picks the SDK clients' `Dispatch` mode (default
//! `threads`).
//! One JSON line per scenario on stdout.

#[path = "bench/floor.rs"]
mod floor;
#[path = "bench/measure.rs"]
mod measure;
#[path = "bench/memory.rs"]
mod memory;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use measure::{percentiles, Group, Meter, Usage};
use parking_lot::Mutex;
use rtm_client::gate::Gate;
use rtm_client::{Dispatch, PushEvent, RtmClient, RtmOptions};
use serde_json::{json, Value};

struct Args {
    endpoint: Option<String>,
    n: Option<usize>,
    window: Option<usize>,
    size: usize,
    clients: Option<usize>,
    scenario: String,
    gate_process: bool,
    no_nodelay: bool,
    /// Skip the floor (for callgrind: count the SDK's instructions alone).
    sdk_only: bool,
    /// Skip the SDK (for profiling the floor alone).
    floor_only: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        endpoint: None,
        n: None,
        window: None,
        size: 32,
        clients: None,
        scenario: String::new(),
        gate_process: false,
        no_nodelay: false,
        sdk_only: false,
        floor_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().ok_or(format!("{k} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match k.as_str() {
            "--endpoint" => a.endpoint = Some(val()?),
            "--n" => a.n = Some(num(val()?)?.max(1)),
            "--window" => a.window = Some(num(val()?)?.max(1)),
            "--size" => a.size = num(val()?)?,
            "--clients" => a.clients = Some(num(val()?)?.max(1)),
            "--scenario" => a.scenario = val()?,
            "--gate-process" => a.gate_process = true,
            "--gate-no-nodelay" => a.no_nodelay = true,
            "--sdk-only" => a.sdk_only = true,
            "--floor-only" => a.floor_only = true,
            "--floor" => match val()?.as_str() {
                "handoff" => HANDOFF_FLOOR.store(true, Ordering::Relaxed),
                "one" => HANDOFF_FLOOR.store(false, Ordering::Relaxed),
                v => return Err(format!("--floor: {v}: one or handoff")),
            },
            "--dispatch" => {
                let inline = match val()?.as_str() {
                    "threads" => false,
                    "inline" => true,
                    v => return Err(format!("--dispatch: {v}: threads or inline")),
                };
                INLINE.store(inline, Ordering::Relaxed);
            }
            "--gate-pid" => measure::GATE_PID.store(
                val()?.parse().map_err(|e| format!("--gate-pid: {e}"))?,
                Ordering::Relaxed,
            ),
            _ => return Err(format!("unknown option {k}")),
        }
    }
    // A name, or the start of one of the first six (`pipelined` runs both): anything
    // else would run nothing and print nothing.
    const SCENARIOS: [&str; 8] = [
        "sequential",
        "pipelined_100",
        "pipelined_1000",
        "many_clients",
        "pushes",
        "idle",
        "pending",
        "soak",
    ];
    let (by_prefix, exact_only) = SCENARIOS.split_at(6);
    if !by_prefix.iter().any(|s| s.starts_with(&a.scenario))
        && !exact_only.contains(&a.scenario.as_str())
    {
        return Err(format!(
            "--scenario: {}: one of {}",
            a.scenario,
            SCENARIOS.join(", ")
        ));
    }
    if a.sdk_only && a.floor_only {
        return Err(
            "--sdk-only and --floor-only: one or the other (both would run nothing)".into(),
        );
    }
    // A remote gate must answer before anything runs: the runs would panic on
    // their first login otherwise.
    if let Some(e) = &a.endpoint {
        let addrs: Vec<_> = e
            .to_socket_addrs()
            .map_err(|err| format!("--endpoint: {e}: {err}"))?
            .collect();
        let reached = addrs
            .iter()
            .any(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(5)).is_ok());
        if !reached {
            return Err(format!("--endpoint: {e}: no gate answers there"));
        }
    }
    // An empty message is refused by the SDK and the gate; a huge one would not fit
    // in a packet.
    if !(1..=MAX_SIZE).contains(&a.size) {
        return Err(format!("--size: {}: 1 to {MAX_SIZE} bytes", a.size));
    }
    Ok(a)
}

/// The largest `--size`: well within the gate's packet limit.
const MAX_SIZE: usize = 1 << 20;

/// Where the gate runs; keeps it alive.
enum GateHere {
    InProcess(Gate),
    Child(Child, String),
    Remote(String),
}

impl GateHere {
    fn endpoint(&self) -> String {
        match self {
            GateHere::InProcess(g) => g.endpoint(),
            GateHere::Child(_, e) | GateHere::Remote(e) => e.clone(),
        }
    }
    /// Stops (`true`) or restarts the gate's answers.
    fn pause(&mut self, on: bool) {
        match self {
            GateHere::InProcess(g) if on => g.pause(Duration::from_secs(24 * 3600)),
            GateHere::InProcess(g) => g.resume(),
            GateHere::Child(c, _) => {
                let stdin = c.stdin.as_mut().expect("the gate's stdin");
                let _ = stdin.write_all(if on { b"pause\n" } else { b"resume\n" });
                let _ = stdin.flush();
            }
            GateHere::Remote(_) => panic!("pending needs the local gate"),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            GateHere::InProcess(_) => "in-process",
            GateHere::Child(..) => "child-process",
            GateHere::Remote(_) => "endpoint",
        }
    }
}

/// The gate the bench measures against: no pings, and a short history, so
/// that what it keeps of a long run does not grow its work per message
/// (docs/performance-history.md, "Round 10").
fn gate_builder(no_nodelay: bool) -> rtm_client::gate::GateBuilder {
    Gate::builder()
        .ping_interval(Duration::ZERO)
        .nodelay(!no_nodelay)
        .history_limit(10_000)
}

fn start_gate(a: &Args) -> GateHere {
    if let Some(e) = &a.endpoint {
        return GateHere::Remote(e.clone());
    }
    if !a.gate_process {
        return GateHere::InProcess(gate_builder(a.no_nodelay).start().expect("start the gate"));
    }
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.arg("--serve-gate");
    if a.no_nodelay {
        cmd.arg("--gate-no-nodelay");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the gate process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the gate's first line");
    let endpoint = line.trim().rsplit(' ').next().unwrap_or("").to_owned();
    measure::GATE_PID.store(child.id(), Ordering::Relaxed);
    GateHere::Child(child, endpoint)
}

/// `--serve-gate`: be the gate of a parent bench until its stdin closes.
fn serve_gate(no_nodelay: bool) {
    let gate = gate_builder(no_nodelay).start().expect("start the gate");
    println!("listening on {}", gate.endpoint());
    // Commands from the parent, one a line, until stdin closes.
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
        match line.trim() {
            "pause" => gate.pause(Duration::from_secs(24 * 3600)),
            "resume" => gate.resume(),
            _ => {}
        }
        line.clear();
    }
    gate.shutdown();
}

/// Fresh uids and mids for every run, so no two runs share users or messages.
static NEXT_UID: AtomicI64 = AtomicI64::new(1_000_000);
fn uid() -> i64 {
    NEXT_UID.fetch_add(1, Ordering::Relaxed)
}
static NEXT_MID: AtomicI64 = AtomicI64::new(1);
fn mids(n: usize) -> i64 {
    NEXT_MID.fetch_add(n as i64, Ordering::Relaxed)
}

/// `--floor handoff`: the floor hands each read's answers to a second thread
/// that sends (`floor::pipelined_handoff`), or in `pushes` each read's pushes
/// to a second thread that handles them (`floor::receive_pushes_handoff`).
static HANDOFF_FLOOR: AtomicBool = AtomicBool::new(false);

/// `--dispatch inline`: the SDK clients run in `Dispatch::Inline` mode.
static INLINE: AtomicBool = AtomicBool::new(false);

fn dispatch() -> Dispatch {
    if INLINE.load(Ordering::Relaxed) {
        Dispatch::Inline
    } else {
        Dispatch::Threads
    }
}

fn sdk_client(endpoint: &str, uid: i64) -> RtmClient {
    let c = RtmClient::new(RtmOptions {
        endpoint: Some(endpoint.to_owned()),
        pid: 1,
        dispatch: dispatch(),
        ..Default::default()
    })
    .expect("client");
    let (tx, rx) = crossbeam_channel::bounded(1);
    c.login(
        uid,
        "t",
        move |ok, code| {
            let _ = tx.send((ok, code));
        },
        0,
    );
    let r = rx.recv_timeout(Duration::from_secs(30));
    assert!(matches!(r, Ok((true, _))), "login failed: {r:?}");
    c
}

/// One measured run: round trips in microseconds and what the process used.
struct Run {
    n: usize,
    lat: Vec<u32>,
    usage: Usage,
    errors: usize,
}

impl Run {
    /// Two runs of the same client as one: messages, latencies, CPU and
    /// wall time added, the peaks of memory and threads kept.
    fn merge(mut self, other: Run) -> Run {
        self.n += other.n;
        self.lat.extend(other.lat);
        self.errors += other.errors;
        let (u, o) = (&mut self.usage, other.usage);
        u.wall += o.wall;
        for (g, ns) in o.cpu_ns {
            *u.cpu_ns.entry(g).or_default() += ns;
        }
        for (g, s) in o.switches {
            *u.switches.entry(g).or_default() += s;
        }
        u.peak_rss_kib = u.peak_rss_kib.max(o.peak_rss_kib);
        for (g, t) in o.threads {
            let e = u.threads.entry(g).or_default();
            *e = (*e).max(t);
        }
        self
    }

    fn figures(&mut self) -> Value {
        let (p50, p99, max) = percentiles(&mut self.lat);
        let u = &self.usage;
        json!({
            "msgs_per_s": (self.n as f64 / u.wall.as_secs_f64()).round(),
            "p50_us": p50, "p99_us": p99, "max_us": max,
            "cpu_us_per_msg": round2(u.cpu_us_per(Group::Client, self.n)),
            "switches_per_msg": round2(u.switches_per(Group::Client, self.n)),
            "gate_switches_per_msg": round2(u.switches_per(Group::Gate, self.n)),
            "gate_cpu_us_per_msg": round2(u.cpu_us_per(Group::Gate, self.n)),
            "peak_rss_kib": u.peak_rss_kib,
            "threads": u.threads_of(Group::Client),
            "gate_threads": u.threads_of(Group::Gate),
            "errors": self.errors,
        })
    }
}

/// The floor and the SDK, each for `n` messages in two halves, in the order
/// floor, SDK, SDK, floor: on this VM whichever client runs first in a
/// process can get faster wake-ups than the one after it (docs/performance.md,
/// "The machine"), and a drift over the seconds of a scenario would favour
/// one of the two; this way each has one earlier and one later half. The
/// floor's peak RSS is its first half's: the second runs in a process that
/// has just held the SDK's clients.
fn paired(n: usize, floor: impl Fn(usize) -> Run, sdk: impl Fn(usize) -> Run) -> (Value, Value) {
    let (first, second) = (n / 2, n - n / 2);
    let f1 = floor(first);
    let s1 = sdk(first);
    let s2 = sdk(second);
    let f2 = floor(second);
    let rss = f1.usage.peak_rss_kib;
    let mut f = f1.merge(f2);
    f.usage.peak_rss_kib = rss;
    (f.figures(), s1.merge(s2).figures())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A client sending callback-driven: each answer's callback sends the next.
struct Chain {
    client: RtmClient,
    to: i64,
    msg: String,
    n: usize,
    window: usize,
    first_mid: i64,
    /// Counted with a plain load and store: a client's callbacks never run
    /// two at a time (and each sees what the one before did), which this
    /// relies on; were it broken, answers would go uncounted and the run
    /// would not finish.
    answered: AtomicUsize,
    errors: AtomicUsize,
    /// Round trips by send index: a plain store each, where a locked `Vec`
    /// would cost the measured callback two atomic read-modify-writes that
    /// the floor's loop does not pay.
    lat: Vec<AtomicU32>,
    done: crossbeam_channel::Sender<()>,
}

/// Sends message `i`; its callback sends `i + window`, so each of the
/// `window` first messages starts a lane and `window` stay in flight, with no
/// counter shared between the lanes (the first sends, on the calling thread,
/// race with the first callbacks).
fn send_next(c: &Arc<Chain>, i: usize) {
    if i >= c.n {
        return;
    }
    let t0 = Instant::now();
    let me = c.clone();
    c.client.send_message(
        c.to,
        30,
        &c.msg,
        "",
        c.first_mid + i as i64,
        60_000,
        move |err, _| {
            let us = t0.elapsed().as_micros() as u32;
            if err.is_some() {
                me.errors.fetch_add(1, Ordering::Relaxed);
            }
            me.lat[i].store(us, Ordering::Relaxed);
            send_next(&me, i + me.window);
            let answered = me.answered.load(Ordering::Relaxed) + 1;
            me.answered.store(answered, Ordering::Relaxed);
            if answered == me.n {
                let _ = me.done.send(());
            }
        },
    );
}

/// `clients` SDK clients, each sending `n / clients` messages with `window` in flight.
fn sdk_send(endpoint: &str, n: usize, window: usize, clients: usize, size: usize) -> Run {
    let (tx, rx) = crossbeam_channel::unbounded();
    let per = n / clients;
    let chains: Vec<Arc<Chain>> = (0..clients)
        .map(|_| {
            Arc::new(Chain {
                client: sdk_client(endpoint, uid()),
                to: uid(),
                msg: "x".repeat(size),
                n: per,
                window,
                first_mid: mids(per),
                answered: AtomicUsize::new(0),
                errors: AtomicUsize::new(0),
                lat: (0..per).map(|_| AtomicU32::new(0)).collect(),
                done: tx.clone(),
            })
        })
        .collect();
    let meter = Meter::start();
    for c in &chains {
        for i in 0..window.min(per) {
            send_next(c, i);
        }
    }
    for _ in 0..clients {
        rx.recv_timeout(Duration::from_secs(600))
            .expect("the run finished");
    }
    let usage = meter.stop();
    let mut lat = Vec::with_capacity(per * clients);
    let mut errors = 0;
    for c in &chains {
        lat.extend(c.lat.iter().map(|l| l.load(Ordering::Relaxed)));
        errors += c.errors.load(Ordering::Relaxed);
        c.client.destroy();
    }
    Run {
        n: per * clients,
        lat,
        usage,
        errors,
    }
}

/// The floor of [`sdk_send`]: one bare socket and one thread per client.
fn floor_send(endpoint: &str, n: usize, window: usize, clients: usize, size: usize) -> Run {
    let per = n / clients;
    let conns: Vec<_> = (0..clients)
        .map(|_| floor::Bare::login(endpoint, uid()).expect("bare login"))
        .collect();
    let go = Arc::new(std::sync::Barrier::new(clients + 1));
    let (tx, rx) = crossbeam_channel::unbounded();
    let threads: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let (go, tx, to, mid) = (go.clone(), tx.clone(), uid(), mids(per));
            std::thread::Builder::new()
                .name("bench-bare".into())
                .spawn(move || {
                    go.wait();
                    // Stay alive (and measurable) until the meter has read us.
                    let finish = |lat| {
                        let _ = tx.send(lat);
                        go.wait();
                    };
                    if HANDOFF_FLOOR.load(Ordering::Relaxed) {
                        floor::pipelined_handoff(&mut c, to, size, per, window, mid, finish)
                            .expect("bare run");
                    } else {
                        let lat =
                            floor::pipelined(&mut c, to, size, per, window, mid).expect("bare run");
                        finish(lat);
                    }
                })
                .expect("thread")
        })
        .collect();
    let meter = Meter::start();
    go.wait();
    let mut lat = Vec::with_capacity(per * clients);
    for _ in 0..clients {
        lat.extend(rx.recv().expect("bare result"));
    }
    let usage = meter.stop();
    go.wait();
    for t in threads {
        let _ = t.join();
    }
    Run {
        n: per * clients,
        lat,
        usage,
        errors: 0,
    }
}

/// The pushes scenario's bookkeeping: when each mid was sent, and how many
/// pushes arrived (the sender keeps at most `window` pushes unreceived).
struct Pushes {
    sent: Vec<AtomicU64>,
    first: i64,
    base: Instant,
    received: Mutex<usize>,
    more: parking_lot::Condvar,
}

impl Pushes {
    fn new(n: usize) -> Arc<Pushes> {
        Arc::new(Pushes {
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
            first: mids(n),
            base: Instant::now(),
            received: Mutex::new(0),
            more: parking_lot::Condvar::new(),
        })
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// A push arrived: its latency in microseconds.
    fn got(&self, mid: i64) -> u32 {
        let at = self.sent[(mid - self.first) as usize].load(Ordering::Relaxed);
        *self.received.lock() += 1;
        self.more.notify_one();
        (self.now_ns().saturating_sub(at) / 1000) as u32
    }
}

/// A bare sender (threads `bench-sender*`, not counted as the client) sends
/// `p.sent.len()` messages to `to`, keeping at most `window` sent but not yet
/// received as pushes (refilled when half of them have arrived). The threads return the connection, so it stays open
/// until joined (after the meter has read the gate's threads).
fn sender(
    endpoint: &str,
    to: i64,
    window: usize,
    size: usize,
    p: Arc<Pushes>,
) -> [std::thread::JoinHandle<Option<floor::Bare>>; 2] {
    let mut c = floor::Bare::login(endpoint, uid()).expect("sender login");
    let mut w = c.s.try_clone().expect("clone");
    let n = p.sent.len();
    let answers = std::thread::Builder::new()
        .name("bench-sender-r".into())
        .spawn(move || {
            let mut answered = 0;
            while answered < n {
                answered += usize::from(c.next().expect("sender's answers").mtype == 2);
            }
            Some(c)
        })
        .expect("thread");
    let sends = std::thread::Builder::new()
        .name("bench-sender".into())
        .spawn(move || {
            let mut t = floor::Template::sendmsg(to, size);
            let mut out = Vec::new();
            let mut sent = 0;
            while sent < n {
                let room = {
                    let mut r = p.received.lock();
                    // Refill once half the window is free: one wake-up
                    // per window/2 pushes, not one per push.
                    while sent > *r && sent - *r > window / 2 {
                        p.more.wait(&mut r);
                    }
                    window - (sent - *r)
                };
                out.clear();
                for _ in 0..room.min(n - sent) {
                    let mid = p.first + sent as i64;
                    out.extend_from_slice(t.set(sent as u32 + 1, mid));
                    p.sent[sent].store(p.now_ns(), Ordering::Relaxed);
                    sent += 1;
                }
                w.write_all(&out).expect("sender write");
            }
            None
        })
        .expect("thread");
    [answers, sends]
}

fn sdk_pushes(endpoint: &str, n: usize, window: usize, size: usize) -> Run {
    let me = uid();
    let client = sdk_client(endpoint, me);
    let lat = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let p = Pushes::new(n);
    let (tx, rx) = crossbeam_channel::bounded(1);
    {
        let (lat, p) = (lat.clone(), p.clone());
        client.processor().on(PushEvent::RecvChat, move |m| {
            let us = p.got(m.mid);
            let mut l = lat.lock();
            l.push(us);
            if l.len() == n {
                let _ = tx.send(());
            }
        });
    }
    let meter = Meter::start();
    let threads = sender(endpoint, me, window, size, p);
    rx.recv_timeout(Duration::from_secs(600))
        .expect("all pushes");
    let usage = meter.stop();
    let _ = threads.map(|t| t.join());
    client.destroy();
    let lat = std::mem::take(&mut *lat.lock());
    Run {
        n,
        lat,
        usage,
        errors: 0,
    }
}

fn floor_pushes(endpoint: &str, n: usize, window: usize, size: usize) -> Run {
    let me = uid();
    let mut c = floor::Bare::login(endpoint, me).expect("bare login");
    let p = Pushes::new(n);
    let meter = Meter::start();
    let threads = sender(endpoint, me, window, size, p.clone());
    let mut lat = Vec::with_capacity(n);
    let got = |mid| lat.push(p.got(mid));
    let usage = if HANDOFF_FLOOR.load(Ordering::Relaxed) {
        // Read while the handler thread still runs (its CPU leaves with it).
        let mut usage = None;
        floor::receive_pushes_handoff(&mut c, n, got, || usage = Some(meter.stop()))
            .expect("bare pushes");
        usage.expect("the handler finished")
    } else {
        floor::receive_pushes(&mut c, n, got).expect("bare pushes");
        meter.stop()
    };
    let _ = threads.map(|t| t.join());
    Run {
        n,
        lat,
        usage,
        errors: 0,
    }
}

/// Memory and threads per logged-in idle client.
fn idle(endpoint: &str, clients: usize, sdk: bool) -> Value {
    let rss0 = measure::rss_kib();
    let t0 = measure::thread_counts();
    let mut keep_sdk = Vec::new();
    let mut keep_bare = Vec::new();
    for _ in 0..clients {
        if sdk {
            keep_sdk.push(sdk_client(endpoint, uid()));
        } else {
            keep_bare.push(floor::Bare::login(endpoint, uid()).expect("bare login"));
        }
    }
    let rss1 = measure::rss_kib();
    let t1 = measure::thread_counts();
    let d = |g: Group| {
        t1.get(&g).copied().unwrap_or(0) as f64 - t0.get(&g).copied().unwrap_or(0) as f64
    };
    let v = json!({
        "rss_kib_per_client": round2((rss1 as f64 - rss0 as f64) / clients as f64),
        "threads_per_client": round2(d(Group::Client) / clients as f64),
        "gate_threads_per_client": round2(d(Group::Gate) / clients as f64),
        "threads": t1.get(&Group::Client).copied().unwrap_or(0),
        "rss_kib": rss1,
    });
    for c in &keep_sdk {
        c.destroy();
    }
    v
}

fn ratio(a: &Value, b: &Value, key: &str) -> Value {
    match (a[key].as_f64(), b[key].as_f64()) {
        (Some(x), Some(y)) if y > 0.0 => json!(round2(x / y)),
        _ => Value::Null,
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--serve-gate") {
        return serve_gate(std::env::args().any(|a| a == "--gate-no-nodelay"));
    }
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: bench [--endpoint HOST:PORT] [--n N] [--window W] [--size BYTES] [--clients C] [--scenario NAME] [--gate-process] [--gate-no-nodelay] [--gate-pid PID] [--sdk-only] [--floor-only] [--floor one|handoff] [--dispatch threads|inline]");
            std::process::exit(2);
        }
    };
    let mut gate = start_gate(&a);
    let ep = gate.endpoint();
    let size = a.size;
    let msg_scenarios: [(&str, usize, usize, usize); 5] = [
        ("sequential", 10_000, 1, 1),
        ("pipelined_100", 100_000, 100, 1),
        ("pipelined_1000", 100_000, 1000, 1),
        ("many_clients", 100_000, 10, 100),
        ("pushes", 100_000, 100, 1),
    ];
    for (name, n, window, clients) in msg_scenarios {
        let exact = msg_scenarios.iter().any(|s| s.0 == a.scenario);
        if (exact && name != a.scenario) || !name.starts_with(&a.scenario) {
            continue;
        }
        let window = if name == "sequential" {
            1
        } else {
            a.window.unwrap_or(window)
        };
        let clients = if name == "many_clients" {
            a.clients.unwrap_or(clients)
        } else {
            1
        };
        // Each half of a paired run, and each client, sends at least one.
        let n = a.n.unwrap_or(n).max(2 * clients);
        let (floor, sdk) = if a.sdk_only {
            let sdk = if name == "pushes" {
                sdk_pushes(&ep, n, window, size).figures()
            } else {
                sdk_send(&ep, n, window, clients, size).figures()
            };
            (Value::Null, sdk)
        } else if a.floor_only {
            let floor = if name == "pushes" {
                floor_pushes(&ep, n, window, size).figures()
            } else {
                floor_send(&ep, n, window, clients, size).figures()
            };
            (floor, Value::Null)
        } else if name == "pushes" {
            paired(
                n,
                |n| floor_pushes(&ep, n, window, size),
                |n| sdk_pushes(&ep, n, window, size),
            )
        } else {
            paired(
                n,
                |n| floor_send(&ep, n, window, clients, size),
                |n| sdk_send(&ep, n, window, clients, size),
            )
        };
        let mut line = json!({
            "scenario": name, "n": n, "window": window, "clients": clients, "size": size,
            "gate": gate.kind(), "gate_nodelay": !a.no_nodelay,
            "dispatch": format!("{:?}", dispatch()),
            "floor_kind": if HANDOFF_FLOOR.load(Ordering::Relaxed) { "handoff" } else { "one" },
        });
        for (k, v) in sdk.as_object().into_iter().flatten() {
            line[k] = v.clone();
        }
        line["ratio"] = json!({
            "msgs_per_s": ratio(&sdk, &floor, "msgs_per_s"),
            "cpu_us_per_msg": ratio(&sdk, &floor, "cpu_us_per_msg"),
            "p50_us": ratio(&sdk, &floor, "p50_us"),
            "peak_rss_kib": ratio(&sdk, &floor, "peak_rss_kib"),
        });
        line["floor"] = floor;
        println!("{line}");
    }
    if "idle".starts_with(&a.scenario) {
        let clients = a.clients.unwrap_or(1000);
        let floor = if a.sdk_only {
            Value::Null
        } else {
            idle(&ep, clients, false)
        };
        let sdk = idle(&ep, clients, true);
        let mut line = json!({
            "scenario": "idle", "n": clients, "window": 0, "clients": clients,
            "gate": gate.kind(), "msgs_per_s": 0, "p50_us": 0, "p99_us": 0, "max_us": 0,
            "cpu_us_per_msg": 0, "peak_rss_kib": measure::rss_kib(),
        });
        for (k, v) in sdk.as_object().into_iter().flatten() {
            line[k] = v.clone();
        }
        line["ratio"] = json!({ "rss_kib_per_client": ratio(&sdk, &floor, "rss_kib_per_client") });
        line["floor"] = floor;
        println!("{line}");
    }
    // The memory scenarios run only when named.
    if a.scenario == "pending" {
        let c = sdk_client(&ep, uid());
        let n = a.n.unwrap_or(100_000);
        let gate = std::cell::RefCell::new(&mut gate);
        let pause = |on: bool| gate.borrow_mut().pause(on);
        let mut line = memory::pending(&c, n, size, &pause, mids(2 * n));
        line["gate"] = json!(gate.borrow().kind());
        println!("{line}");
        c.destroy();
    }
    if a.scenario == "soak" {
        let c = sdk_client(&ep, uid());
        let n = a.n.unwrap_or(1_000_000);
        let mut line = memory::soak(&c, n, size, mids(n));
        line["gate"] = json!(gate.kind());
        println!("{line}");
        c.destroy();
    }
    if let GateHere::Child(mut c, _) = gate {
        drop(c.stdin.take());
        let _ = c.wait();
    }
}
