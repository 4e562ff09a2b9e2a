//! `RtmOptions::resend_on_reconnect` against the gate's fault controls
//! (docs/reliability.md): 10,000 sends in flight when the sender's connection
//! (or every connection) drops in the middle of a frame, and 1,000 more made
//! while it logs in again. Every callback runs exactly once; with the option on no send fails
//! with 20002 or 20012 and the gate stores and pushes every message exactly
//! once (counted by mid on a raw receiver, which has no duplicate filter, and
//! in the stored history); with it off the failures are 20002/20012, as
//! before, and nothing is stored or pushed twice either.
#![cfg(feature = "gate")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmpv::Value;
use rtm_client::fpnn::{ConnectOptions, Connection, Quest, Responder};
use rtm_client::gate::Gate;
use rtm_client::RtmClient;

use common::{map, wait_within, PID};

const SENDER: i64 = 1;
const RECEIVER: i64 = 2;
const IN_FLIGHT: usize = 10_000;
const DURING_RELOGIN: usize = 1_000;
/// A bound for the whole run, only reached when something is broken.
const LONG: Duration = Duration::from_secs(120);

fn wait_long(what: &str, cond: impl FnMut() -> bool) {
    wait_within(LONG, what, cond);
}

/// A receiver on a bare FPNN connection: counts the `pushmsg`s it gets by
/// mid (no duplicate filter in the way) and reads the stored history.
struct Receiver {
    conn: Connection,
    pushes: Arc<Mutex<HashMap<i64, u32>>>,
}

impl Receiver {
    fn start(gate: &Gate) -> Receiver {
        let pushes: Arc<Mutex<HashMap<i64, u32>>> = Arc::default();
        let p = pushes.clone();
        let handler = move |q: Quest, r: Responder| {
            drop(r);
            if q.method == "pushmsg" {
                let mid = common::field(&q.payload, "mid").and_then(Value::as_i64);
                *p.lock().entry(mid.unwrap_or(0)).or_default() += 1;
            }
        };
        let conn = Connection::connect(
            &gate.endpoint(),
            false,
            &ConnectOptions::default(),
            handler,
            |_| {},
        )
        .expect("receiver connects");
        let auth = map(vec![
            ("pid", PID.into()),
            ("uid", RECEIVER.into()),
            ("token", "token".into()),
            ("version", "test".into()),
        ]);
        let ok = Self::ask(&conn, "auth", auth);
        assert_eq!(
            common::field(&ok, "ok").and_then(Value::as_bool),
            Some(true)
        );
        Receiver { conn, pushes }
    }

    fn ask(conn: &Connection, method: &str, payload: Value) -> Value {
        let (tx, rx) = crossbeam_channel::bounded(1);
        conn.send_quest(method, &payload, Duration::from_secs(10), move |r| {
            let _ = tx.send(r);
        });
        rx.recv_timeout(common::WAIT)
            .expect("answered")
            .expect("no error")
    }

    /// How many times each mid is stored in the conversation with the
    /// sender, paging through the whole history.
    fn stored(&self) -> HashMap<i64, u32> {
        let mut out = HashMap::new();
        let mut lastid = 0i64;
        loop {
            let page = Self::ask(
                &self.conn,
                "getp2pmsg",
                map(vec![
                    ("ouid", SENDER.into()),
                    ("desc", false.into()),
                    ("num", 20.into()),
                    ("lastid", lastid.into()),
                ]),
            );
            let msgs = common::field(&page, "msgs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if msgs.is_empty() {
                return out;
            }
            for m in &msgs {
                // Rows are [id, direction, mtype, mid, deleted, msg, attrs, mtime].
                let row = m.as_array().expect("a history row is an array");
                *out.entry(row[3].as_i64().expect("mid")).or_default() += 1;
            }
            lastid = common::field(&page, "lastid")
                .and_then(Value::as_i64)
                .expect("lastid");
        }
    }
}

/// Each mid's callback count and result (0 ok, else the error code).
struct Outcomes {
    calls: Vec<AtomicU32>,
    codes: Mutex<HashMap<i64, i32>>,
}

impl Outcomes {
    fn new(n: usize) -> Arc<Outcomes> {
        Arc::new(Outcomes {
            calls: (0..=n).map(|_| AtomicU32::new(0)).collect(),
            codes: Mutex::default(),
        })
    }

    fn send(self: &Arc<Self>, client: &RtmClient, mid: i64) {
        let me = self.clone();
        client.send_message(RECEIVER, 30, "hello", "", mid, 30_000, move |e, a| {
            me.calls[mid as usize].fetch_add(1, Ordering::SeqCst);
            let code = match (e, a) {
                (None, Some(_)) => 0,
                (Some(e), None) => e.error.code,
                _ => -1,
            };
            me.codes.lock().insert(mid, code);
        });
    }

    fn done(&self) -> usize {
        self.codes.lock().len()
    }
}

/// A frame header announcing 200 bytes, and 10 of them: the connection
/// drops in the middle of this frame.
fn partial_frame() -> Vec<u8> {
    let mut f = vec![0x82, 126, 0, 200];
    f.extend_from_slice(&[0u8; 10]);
    f
}

/// With `all`, every connection is dropped, the receiver's too: its pushes
/// are then only checked for doubles, and the history is read on a new one.
fn run(resend: bool, all: bool) {
    let gate = Gate::builder().record_quests(true).start().unwrap();
    let receiver = Receiver::start(&gate);
    let client = RtmClient::new(rtm_client::RtmOptions {
        resend_on_reconnect: resend,
        ..common::options(&gate)
    })
    .unwrap();
    let (tx, relogged) = crossbeam_channel::unbounded();
    client.on_relogin_completed(move |ok, _, _, _| {
        if ok {
            let _ = tx.send(());
        }
    });
    assert_eq!(common::login(&client, SENDER, "token", 0), (true, 0));
    // The gate holds its answer to the first send (stored, not yet answered)
    // until the connection is dropped: the drop always meets all the sends
    // in flight, the rest unread behind it, however fast the client and the
    // gate are. (Without this, a fast enough gate answered all 10,000 first
    // and there was nothing left to resend.)
    let (release, held) = crossbeam_channel::bounded::<()>(1);
    let hold = Arc::new(AtomicBool::new(true));
    let first = hold.clone();
    gate.rewrite_answers(Some(Box::new(move |method, _, _| {
        if method == "sendmsg" && first.swap(false, Ordering::SeqCst) {
            let _ = held.recv_timeout(LONG);
        }
        None
    })));
    let total = IN_FLIGHT + DURING_RELOGIN;
    let out = Outcomes::new(total);
    for mid in 1..=IN_FLIGHT as i64 {
        out.send(&client, mid);
    }
    wait_long("the gate holds the first send", || {
        !hold.load(Ordering::SeqCst)
    });
    assert!(gate.send_raw(PID, SENDER, &partial_frame()) >= 1);
    if all {
        assert!(gate.drop_all() >= 2);
    } else {
        assert!(gate.drop_user(PID, SENDER) >= 1);
    }
    gate.rewrite_answers(None);
    let _ = release.send(());
    for mid in IN_FLIGHT as i64 + 1..=total as i64 {
        out.send(&client, mid);
    }
    wait_long("every callback ran", || out.done() == total);
    relogged
        .recv_timeout(common::WAIT)
        .expect("the client logs in again");
    // One more round trip, so a second call of any callback has had its
    // chance to run before counting.
    let mid = total as i64 + 1;
    let fence = rtm_client::blocking(|cb| client.send_message(RECEIVER, 30, "x", "", mid, 0, cb));
    assert!(fence.is_ok(), "{fence:?}");
    let twice: Vec<usize> = (1..=total)
        .filter(|&m| out.calls[m].load(Ordering::SeqCst) != 1)
        .collect();
    assert!(
        twice.is_empty(),
        "callbacks not run exactly once: {twice:?}"
    );

    let codes = out.codes.lock().clone();
    let mut by_code: HashMap<i32, usize> = HashMap::new();
    for c in codes.values() {
        *by_code.entry(*c).or_default() += 1;
    }
    eprintln!("resend_on_reconnect = {resend}: results by code {by_code:?}");
    if resend {
        assert_eq!(
            by_code.get(&0),
            Some(&total),
            "every send succeeds: {by_code:?}"
        );
        let sent = gate.received("sendmsg").len();
        assert!(sent > total + 1, "the drop made the client resend ({sent})");
    } else {
        assert!(
            by_code.keys().all(|c| [0, 20002, 20012].contains(c)),
            "{by_code:?}"
        );
        assert!(
            by_code.contains_key(&20002) || by_code.contains_key(&20012),
            "the drop failed some sends: {by_code:?}"
        );
    }

    // Stored and pushed exactly once each (the fence included).
    let ok: Vec<i64> = codes
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(m, _)| *m)
        .chain([mid])
        .collect();
    if !all {
        wait_long("every message was pushed", || {
            let p = receiver.pushes.lock();
            ok.iter().all(|m| p.contains_key(m))
        });
    }
    let pushes = receiver.pushes.lock().clone();
    let doubled: Vec<_> = pushes.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubled.is_empty(), "pushed more than once: {doubled:?}");
    let stored = if all {
        Receiver::start(&gate).stored()
    } else {
        receiver.stored()
    };
    let doubled: Vec<_> = stored.iter().filter(|(_, n)| **n != 1).collect();
    assert!(doubled.is_empty(), "stored more than once: {doubled:?}");
    for m in &ok {
        assert_eq!(stored.get(m), Some(&1), "mid {m} answered but not stored");
    }
    client.destroy();
}

#[test]
fn with_resend_on_reconnect_no_send_is_lost_or_doubled_by_a_mid_frame_drop() {
    run(true, false);
}

#[test]
fn without_it_a_mid_frame_drop_fails_sends_with_20002_or_20012_exactly_once() {
    run(false, false);
}

#[test]
fn with_resend_on_reconnect_dropping_every_connection_stores_each_send_once() {
    run(true, true);
}

/// A client with the option on, its gate refusing connections and its
/// connection dropped: it is logging in again, and cannot.
fn reconnecting(gate: &Gate) -> RtmClient {
    let client = RtmClient::new(rtm_client::RtmOptions {
        resend_on_reconnect: true,
        ..common::options(gate)
    })
    .unwrap();
    let (tx, relogins) = crossbeam_channel::unbounded();
    client.on_relogin_completed(move |ok, again, _, _| {
        let _ = tx.send((ok, again));
    });
    assert_eq!(common::login(&client, SENDER, "token", 0), (true, 0));
    gate.refuse_connections(true);
    assert_eq!(gate.drop_user(PID, SENDER), 1);
    // The client has seen the loss once a relogin attempt has failed.
    let first = relogins
        .recv_timeout(common::WAIT)
        .expect("a relogin attempt");
    assert_eq!(first, (false, true));
    client
}

/// Sends `n` messages with `timeout`; the results arrive on the channel.
fn sends(
    client: &RtmClient,
    n: i64,
    timeout: u64,
) -> crossbeam_channel::Receiver<(i64, Result<(), i32>)> {
    let (tx, rx) = crossbeam_channel::unbounded();
    for mid in 1..=n {
        let tx = tx.clone();
        client.send_message(RECEIVER, 30, "x", "", mid, timeout, move |e, _| {
            let _ = tx.send((mid, e.map_or(Ok(()), |e| Err(e.error.code))));
        });
    }
    rx
}

#[test]
fn waiting_quests_fail_with_20003_at_their_own_deadline_and_never_ones_at_once() {
    let gate = common::gate();
    let client = reconnecting(&gate);
    let (tx, never) = crossbeam_channel::bounded(1);
    client.add_debug_log("x", "", 0, move |e, _| {
        let _ = tx.send(e.map(|e| e.code));
    });
    let t0 = Instant::now();
    let rx = sends(&client, 100, 300);
    assert_eq!(never.recv_timeout(common::WAIT).unwrap(), Some(20012));
    for _ in 0..100 {
        let (_, r) = rx.recv_timeout(common::WAIT).expect("every callback runs");
        assert_eq!(r, Err(20003));
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "not before the deadline"
    );
    assert!(rx.try_recv().is_err(), "each callback once");
    client.destroy();
}

#[test]
fn when_the_session_ends_waiting_quests_fail_at_once_with_their_old_codes() {
    let gate = Gate::builder().record_quests(true).start().unwrap();
    // Made while reconnecting: 20012 at close.
    let client = reconnecting(&gate);
    let rx = sends(&client, 100, 60_000);
    client.close();
    for _ in 0..100 {
        let (_, r) = rx.recv_timeout(common::WAIT).expect("every callback runs");
        assert_eq!(r, Err(20012));
    }
    client.destroy();
    gate.refuse_connections(false);

    // In flight when the connection dropped: 20002 at destroy.
    let client = RtmClient::new(rtm_client::RtmOptions {
        resend_on_reconnect: true,
        ..common::options(&gate)
    })
    .unwrap();
    assert_eq!(common::login(&client, SENDER, "token", 0), (true, 0));
    gate.pause(Duration::from_secs(30));
    let rx = sends(&client, 100, 60_000);
    // Paused: read, never answered.
    common::wait_until("the sends reached the gate", || {
        gate.received("sendmsg").len() == 100
    });
    gate.refuse_connections(true);
    assert_eq!(gate.drop_user(PID, SENDER), 1);
    client.destroy();
    let mut codes = Vec::new();
    for _ in 0..100 {
        let (_, r) = rx.recv_timeout(common::WAIT).expect("every callback runs");
        codes.push(r);
    }
    assert!(
        codes.iter().all(|r| *r == Err(20002) || *r == Err(20012)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&Err(20002)),
        "some were in flight: {codes:?}"
    );
    gate.resume();
}

/// The mid of a `sendmsg` quest read by the raw server.
fn mid_of(p: &rtm_client::fpnn::packet::Packet) -> i64 {
    let v = common::raw::RawConn::payload(p);
    common::field(&v, "mid")
        .and_then(Value::as_i64)
        .expect("mid")
}

/// One thread's sends reach the new connection in the order they were made, across a
/// reconnect: the quests the old connection hands back, those made while logging in
/// again, and those made once online again, which used to overtake the waiting ones
/// still being resent by the thread that completed the relogin, or land before the
/// old connection's hand-back when they found it closed (found by an audit).
#[test]
fn one_threads_sends_keep_their_order_across_a_reconnect() {
    use common::raw::RawServer;
    use rtm_client::fpnn::packet::Kind;
    use rtm_client::RtmOptions;
    const CAP: i64 = 10_000;
    for round in 0..5 {
        let srv = RawServer::bind();
        let client = RtmClient::new(RtmOptions {
            resend_on_reconnect: true,
            ..srv.options()
        })
        .unwrap();
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.login(SENDER, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        let mut conn = srv.accept();
        conn.accept_auth(&[]);
        assert_eq!(rx.recv_timeout(common::WAIT).unwrap(), (true, 0));
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (client, stop) = (client.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut mid = 0;
                while mid < CAP && !stop.load(Ordering::Acquire) {
                    mid += 1;
                    client.send_message(RECEIVER, 30, "m", "", mid, 60_000, |_, _| {});
                    std::thread::yield_now();
                }
                mid
            })
        };
        // Sends on the first connection, unanswered; then it drops.
        for _ in 0..200 {
            conn.read();
        }
        conn.kill();
        let mut conn = srv.accept();
        conn.accept_auth(&[]);
        let mut order = Vec::new();
        let carry = |conn: &mut common::raw::RawConn, order: &mut Vec<i64>| {
            let p = conn.read();
            assert_eq!((p.kind, p.method.as_str()), (Kind::Twoway, "sendmsg"));
            order.push(mid_of(&p));
            let a = conn.answer_bytes(p.seq, &map(vec![("mtime", 1.into())]));
            conn.write(&a);
        };
        // Sends go on while the new connection carries these.
        while order.len() < 500 {
            carry(&mut conn, &mut order);
        }
        stop.store(true, Ordering::Release);
        let last = sender.join().unwrap();
        while order.len() < last as usize {
            carry(&mut conn, &mut order);
        }
        let out_of_order: Vec<_> = order
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[1] <= w[0])
            .map(|(i, w)| (i, w[0], w[1]))
            .take(5)
            .collect();
        assert!(
            out_of_order.is_empty(),
            "round {round}: the new connection carried the sends out of order \
             (index, mid, next mid): {out_of_order:?}; its first: {:?}",
            &order[..order.len().min(12)]
        );
        client.destroy();
    }
}
