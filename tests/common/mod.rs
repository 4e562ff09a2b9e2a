//! Shared helpers of the session tests: every test starts its own gate on a
//! free port, and waits on conditions with bounded deadlines (channels with
//! `recv_timeout`, or [`wait_until`]), never on fixed sleeps.

#![allow(dead_code)]

pub mod raw;

use std::net::TcpListener;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
#[path = "../shared/mod.rs"]
mod shared;
#[allow(unused_imports)] // not every test binary uses every helper
pub use shared::{map, silent_server, wait_until, wait_within, WAIT};

use parking_lot::Mutex;
use rmpv::Value;
use rtm_client::gate::{Gate, GateBuilder};
use rtm_client::ws::frame::{encode_frame, Opcode};
use rtm_client::{PushEvent, PushMessage, RtmClient, RtmError, RtmOptions};

/// The project id every test uses.
pub const PID: i64 = 1;

/// Sender uid of the fence pushes (see [`Events::fence`]).
pub const FENCE_FROM: i64 = 999_999;

/// Waits until the gate holds exactly one authenticated connection of `uid`.
pub fn one_connection(gate: &Gate, uid: i64) {
    wait_until(&format!("uid {uid} has exactly one connection"), || {
        gate.connections_of(PID, uid) == 1
    });
}

/// A gate with the test defaults (free port, any token).
pub fn gate() -> Gate {
    Gate::builder().start().expect("start gate")
}

/// Starts `builder` on `port`, retrying while the port is still held by a
/// gate that just shut down.
pub fn start_on_port(builder: GateBuilder, port: u16) -> Gate {
    let deadline = Instant::now() + WAIT;
    loop {
        match builder.clone().port(port).start() {
            Ok(g) => return g,
            Err(e) if Instant::now() < deadline && e.kind() == std::io::ErrorKind::AddrInUse => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("cannot start a gate on port {port}: {e}"),
        }
    }
}

/// A port nothing listens on (bound, read, released).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

/// Options for a client of `gate`: pid [`PID`].
pub fn options(gate: &Gate) -> RtmOptions {
    RtmOptions {
        endpoint: Some(gate.endpoint()),
        pid: PID,
        ..Default::default()
    }
}

/// Logs in and waits for the callback; returns `(ok, error_code)`.
pub fn login(client: &RtmClient, uid: i64, token: &str, timeout: u64) -> (bool, i32) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(
        uid,
        token,
        move |ok, code| {
            let _ = tx.send((ok, code));
        },
        timeout,
    );
    rx.recv_timeout(WAIT)
        .expect("the login callback was not called")
}

/// A client of `gate` with `options`, logged in as `uid`.
pub fn online(options: RtmOptions, uid: i64) -> RtmClient {
    let client = RtmClient::new(options).expect("client");
    assert_eq!(login(&client, uid, "token", 0), (true, 0));
    client
}

/// Something that happened on a client, with when the handler ran.
#[derive(Debug, Clone)]
pub enum Ev {
    Relogin {
        ok: bool,
        again: bool,
        code: i32,
        n: u32,
        at: Instant,
    },
    Closed {
        code: i32,
        at: Instant,
    },
    Error {
        err: RtmError,
        at: Instant,
    },
    Ping {
        at: Instant,
    },
    Kickout,
    KickoutRoom(i64),
    Push {
        event: PushEvent,
        m: PushMessage,
        thread: std::thread::ThreadId,
    },
}

/// Every event of a client, in the order its handlers ran.
pub struct Events {
    rx: Receiver<Ev>,
    /// Everything received so far.
    pub seen: Vec<Ev>,
    client: RtmClient,
}

impl Events {
    /// Listens to every event and push of `client`.
    pub fn attach(client: &RtmClient) -> Events {
        let (tx, rx) = crossbeam_channel::unbounded::<Ev>();
        let t = tx.clone();
        client.on_relogin_completed(move |ok, again, code, n| {
            let _ = t.send(Ev::Relogin {
                ok,
                again,
                code,
                n,
                at: Instant::now(),
            });
        });
        let t = tx.clone();
        client.on_session_closed(move |code| {
            let _ = t.send(Ev::Closed {
                code,
                at: Instant::now(),
            });
        });
        let t = tx.clone();
        client.on_error_recorder(move |err| {
            let _ = t.send(Ev::Error {
                err: err.clone(),
                at: Instant::now(),
            });
        });
        let p = client.processor();
        let t = tx.clone();
        p.on_ping(move || {
            let _ = t.send(Ev::Ping { at: Instant::now() });
        });
        let t = tx.clone();
        p.on_kickout(move || {
            let _ = t.send(Ev::Kickout);
        });
        let t = tx.clone();
        p.on_kickout_room(move |rid| {
            let _ = t.send(Ev::KickoutRoom(rid));
        });
        for event in PushEvent::ALL {
            let t: Sender<Ev> = tx.clone();
            p.on(event, move |m| {
                let _ = t.send(Ev::Push {
                    event,
                    m: m.clone(),
                    thread: std::thread::current().id(),
                });
            });
        }
        Events {
            rx,
            seen: Vec::new(),
            client: client.clone(),
        }
    }

    /// Waits for the next event for which `f` gives `Some`, keeping every
    /// event in [`Events::seen`].
    pub fn wait<T>(&mut self, what: &str, mut f: impl FnMut(&Ev) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(ev) => {
                    let r = f(&ev);
                    self.seen.push(ev);
                    if let Some(r) = r {
                        return r;
                    }
                }
                Err(_) => panic!(
                    "timed out waiting for {what}; events so far: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Takes what has arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok(ev) = self.rx.try_recv() {
            self.seen.push(ev);
        }
    }

    pub fn relogin(&mut self) -> (bool, bool, i32, u32, Instant) {
        self.wait("ReloginCompleted", |e| match *e {
            Ev::Relogin {
                ok,
                again,
                code,
                n,
                at,
            } => Some((ok, again, code, n, at)),
            _ => None,
        })
    }

    pub fn closed(&mut self) -> i32 {
        self.wait("SessionClosed", |e| match *e {
            Ev::Closed { code, .. } => Some(code),
            _ => None,
        })
    }

    pub fn error(&mut self) -> (RtmError, Instant) {
        self.wait("ErrorRecorder", |e| match e {
            Ev::Error { err, at } => Some((err.clone(), *at)),
            _ => None,
        })
    }

    /// Waits for the push with this mid and sender.
    pub fn push(&mut self, from: i64, mid: i64) -> (PushEvent, PushMessage) {
        self.wait(
            &format!("the push from {from} with mid {mid}"),
            |e| match e {
                Ev::Push { event, m, .. } if m.from == from && m.mid == mid => {
                    Some((*event, m.clone()))
                }
                _ => None,
            },
        )
    }

    /// Sends `uid` a p2p push from [`FENCE_FROM`] and waits for it. Pushes
    /// travel one connection and one dispatch queue in order, so once the
    /// fence is delivered everything the gate sent before it has been
    /// delivered or dropped.
    pub fn fence(&mut self, gate: &Gate, uid: i64) {
        static NEXT: AtomicI64 = AtomicI64::new(1);
        let mid = NEXT.fetch_add(1, Ordering::Relaxed);
        // A connection the client or the gate just dropped leaves the gate's
        // books a moment later.
        one_connection(gate, uid);
        let sent = gate.send_quest(
            PID,
            uid,
            "pushmsg",
            p2p_push(FENCE_FROM, uid, 80, mid, "fence", ""),
            true,
        );
        assert_eq!(sent, 1, "the fence needs one connection");
        self.push(FENCE_FROM, mid);
    }

    /// The pushes seen so far, fences left out.
    pub fn pushes(&self) -> Vec<(PushEvent, PushMessage)> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Ev::Push { event, m, .. } if m.from != FENCE_FROM => Some((*event, m.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, f: impl Fn(&Ev) -> bool) -> usize {
        self.seen.iter().filter(|e| f(e)).count()
    }

    pub fn client(&self) -> &RtmClient {
        &self.client
    }
}

/// A `pushmsg` payload.
pub fn p2p_push(from: i64, to: i64, mtype: u8, mid: i64, msg: &str, attrs: &str) -> Value {
    map(vec![
        ("from", from.into()),
        ("to", to.into()),
        ("mtype", mtype.into()),
        ("mid", mid.into()),
        ("msg", msg.into()),
        ("attrs", attrs.into()),
        ("mtime", 1_700_000_000_000i64.into()),
    ])
}

/// A WebSocket frame (FPNN framing, as the gate writes) holding a one-way
/// `pushmsg` from `from` to `to` with this mid, for [`Gate::send_raw`]:
/// frames sent in one call reach the client in one write.
pub fn push_frame(from: i64, to: i64, mid: i64) -> Vec<u8> {
    let mut body = Vec::new();
    rtm_client::fpnn::packet::encode_payload(&p2p_push(from, to, 80, mid, "f", ""), &mut body);
    let mut packet = Vec::new();
    rtm_client::fpnn::packet::encode_quest(&mut packet, false, 0, "pushmsg", &body);
    let mut frame = Vec::new();
    encode_frame(&mut frame, Opcode::Binary, true, &packet, None, true);
    frame
}

/// The payload of `method` (`pushmsg`, `pushgroupmsg`, `pushroommsg`,
/// `pushbroadcastmsg`), with `gid` or `rid` = `target` where it belongs.
pub fn push_payload(
    method: &str,
    from: i64,
    target: i64,
    mtype: u8,
    mid: i64,
    msg: Value,
    attrs: &str,
) -> Value {
    let mut pairs = vec![
        ("from", Value::from(from)),
        ("mtype", mtype.into()),
        ("mid", mid.into()),
        ("msg", msg),
        ("attrs", attrs.into()),
        ("mtime", 1_700_000_000_000i64.into()),
    ];
    match method {
        "pushmsg" => pairs.push(("to", target.into())),
        "pushgroupmsg" => pairs.push(("gid", target.into())),
        "pushroommsg" => pairs.push(("rid", target.into())),
        _ => {}
    }
    map(pairs)
}

/// A field of a msgpack map.
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Names of this process's threads that belong to RTM clients (`rtm-*`,
/// the local gate's `rtm-gate-*` left out).
pub fn client_threads() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let Ok(entry) = entry else { continue };
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        let comm = comm.trim().to_owned();
        if comm.starts_with("rtm-") && !comm.starts_with("rtm-gate") {
            names.push(comm);
        }
    }
    names.sort();
    names
}

/// Collects values from callbacks running on any thread.
pub struct Log<T>(pub Arc<Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Log<T> {
    pub fn push(&self, t: T) {
        self.0.lock().push(t);
    }
    pub fn get(&self) -> Vec<T> {
        self.0.lock().clone()
    }
    pub fn len(&self) -> usize {
        self.0.lock().len()
    }
}
