//! `close`, `bye`, `login` and `destroy`, including from inside callbacks
//! (docs/porting.md: a callback may call any method of the client).
#![cfg(feature = "gate")]

mod common;

use std::time::Duration;

use common::*;
use rtm_client::gate::Gate;
use rtm_client::{blocking, error_code, RtmClient, RtmError};

const ME: i64 = 1001;

#[test]
fn close_inside_the_login_callback_ends_the_session_without_deadlock() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let c = client.clone();
    client.login(
        ME,
        "t",
        move |ok, code| {
            c.close();
            tx.send((ok, code)).unwrap();
        },
        0,
    );
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (true, 0));
    assert_eq!(ev.closed(), 0);
    wait_until("the connection is closed", || gate.connection_count() == 0);
    // Fence: a new login is the next auth, and no relogin happened.
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    assert_eq!(gate.auth_requests().len(), 2);
    ev.fence(&gate, ME);
    assert_eq!(ev.count(|e| matches!(e, Ev::Relogin { .. })), 0);
}

#[test]
fn login_inside_the_session_closed_handler_starts_a_fresh_session() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    let (tx, rx) = crossbeam_channel::unbounded();
    let c = client.clone();
    client.on_session_closed(move |code| {
        if code == 0 {
            let tx = tx.clone();
            c.login(ME, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        }
    });
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    gate.kickout(PID, ME);
    assert_eq!(ev.closed(), 0);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (true, 0));
    one_connection(&gate, ME);
    ev.fence(&gate, ME);
    client.destroy(); // the handler holds a handle: end the client explicitly
}

#[test]
fn login_again_inside_a_rejected_login_callback() {
    let gate = Gate::builder().token(ME, "right").start().unwrap();
    let client = RtmClient::new(options(&gate)).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let c = client.clone();
    let tx2 = tx.clone();
    client.login(
        ME,
        "wrong",
        move |ok, code| {
            tx2.send((ok, code)).unwrap();
            let tx = tx2.clone();
            c.login(ME, "right", move |ok, code| tx.send((ok, code)).unwrap(), 0);
        },
        0,
    );
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (false, 0));
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (true, 0));
    one_connection(&gate, ME);
}

#[test]
fn destroy_inside_a_push_handler_returns_and_completes_pending_calls() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    gate.pause(Duration::from_secs(60));
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let (cb_tx, cb_rx) = crossbeam_channel::unbounded();
    client.enter_room(5, 0, move |e, _| cb_tx.send(e.map(|e| e.code)).unwrap());
    let c = client.clone();
    client
        .processor()
        .on(rtm_client::PushEvent::RecvChat, move |_| {
            c.destroy();
            let _ = done_tx.send(());
        });
    gate.send_quest(PID, ME, "pushmsg", p2p_push(2, ME, 30, 1, "bye", ""), true);
    done_rx
        .recv_timeout(WAIT)
        .expect("destroy returned inside the handler");
    assert_eq!(
        cb_rx.recv_timeout(WAIT).unwrap(),
        Some(error_code::FPNN_EC_CORE_CONNECTION_CLOSED)
    );
    assert_eq!(
        login(&client, ME, "t", 0),
        (false, error_code::FPNN_EC_CORE_INVALID_CONNECTION)
    );
}

#[test]
fn after_destroy_login_and_calls_complete_with_20012() {
    let gate = gate();
    let client = online(options(&gate), ME);
    client.destroy();
    assert_eq!(
        login(&client, ME, "t", 0),
        (false, error_code::FPNN_EC_CORE_INVALID_CONNECTION)
    );
    let e: RtmError = blocking(|cb| client.enter_room(1, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.enter_room(1, 0, move |e, _| tx.send(e.map(|e| e.code)).unwrap());
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        Some(error_code::FPNN_EC_CORE_INVALID_CONNECTION)
    );
    client.destroy(); // twice is fine
}

#[test]
fn close_emits_session_closed_0_once_and_login_works_again() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    client.close();
    client.close(); // no session any more: no second event
    assert_eq!(ev.closed(), 0);
    wait_until("the connection is closed", || gate.connection_count() == 0);
    let e = blocking(|cb| client.enter_room(1, 0, cb)).unwrap_err();
    assert_eq!(e.code, error_code::FPNN_EC_CORE_INVALID_CONNECTION);
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    ev.fence(&gate, ME);
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Closed { .. })),
        1,
        "{:#?}",
        ev.seen
    );
}

#[test]
fn close_during_the_first_auth_completes_the_login_with_20002() {
    let gate = gate();
    gate.pause(Duration::from_secs(60));
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(ME, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    wait_until("the login's connection is open", || {
        gate.connection_count() == 1
    });
    client.close();
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        (false, error_code::FPNN_EC_CORE_CONNECTION_CLOSED)
    );
    // The session never logged in, so it ends without SessionClosed.
    gate.resume();
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    ev.fence(&gate, ME);
    assert_eq!(
        ev.count(|e| matches!(e, Ev::Closed { .. })),
        0,
        "{:#?}",
        ev.seen
    );
}

#[test]
fn bye_says_goodbye_then_closes_with_session_closed_0() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    client.bye();
    assert_eq!(ev.closed(), 0);
    wait_until("the connection is closed", || gate.connection_count() == 0);
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    assert_eq!(gate.auth_requests().len(), 2, "no relogin after bye");
    ev.fence(&gate, ME);
    assert_eq!(ev.count(|e| matches!(e, Ev::Relogin { .. })), 0);
    assert_eq!(ev.count(|e| matches!(e, Ev::Closed { .. })), 1);
}

#[test]
fn a_client_can_log_in_many_times_in_a_row() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    let mut ev = Events::attach(&client);
    for i in 0..20 {
        assert_eq!(login(&client, ME, "t", 0), (true, 0), "login {i}");
        if i % 2 == 0 {
            client.close();
            assert_eq!(ev.closed(), 0);
        }
    }
    wait_until("one connection is left", || gate.connection_count() == 1);
    ev.fence(&gate, ME);
    assert_eq!(ev.count(|e| matches!(e, Ev::Closed { .. })), 10);
}

/// A server that accepts TCP and never answers the WebSocket upgrade: a
/// login to it hangs in the handshake until `connection_timeout`.
fn silent_server() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = l.local_addr().unwrap().to_string();
    (l, ep)
}

fn hanging_login(endpoint: String) -> (RtmClient, crossbeam_channel::Receiver<(bool, i32)>) {
    let client = RtmClient::new(rtm_client::RtmOptions {
        endpoint: Some(endpoint),
        connection_timeout: 60_000,
        ..Default::default()
    })
    .unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    client.login(ME, "t", move |ok, code| tx.send((ok, code)).unwrap(), 0);
    (client, rx)
}

#[test]
fn close_aborts_a_login_stuck_in_the_handshake_with_20002() {
    let (listener, ep) = silent_server();
    let (client, rx) = hanging_login(ep);
    let _peer = listener.accept().unwrap(); // the TCP connect went through
    client.close();
    // Far less than the 60 s connection timeout.
    let got = rx.recv_timeout(WAIT).expect("the login callback ran");
    assert_eq!(got, (false, error_code::FPNN_EC_CORE_CONNECTION_CLOSED));
}

#[test]
fn destroy_does_not_wait_for_a_login_stuck_in_the_handshake() {
    let (listener, ep) = silent_server();
    let (client, rx) = hanging_login(ep);
    let _peer = listener.accept().unwrap();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        client.destroy();
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(WAIT)
        .expect("destroy returned well before the connection timeout");
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        (false, error_code::FPNN_EC_CORE_CONNECTION_CLOSED)
    );
}

#[test]
fn login_right_after_bye_starts_a_session_the_bye_does_not_close() {
    let gate = gate();
    let client = RtmClient::new(options(&gate)).unwrap();
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    client.bye();
    // The bye's answer (or its 20002) arrives after this login began; it
    // must close only the session it was said on.
    assert_eq!(login(&client, ME, "t", 0), (true, 0));
    let sent = blocking(|cb| client.send_message(2, 30, "after bye", "", 0, 0, cb));
    assert!(sent.is_ok(), "the new session is usable: {sent:?}");
    client.destroy();
}

/// A listener whose accept queue is full: further SYNs go unanswered, so a
/// TCP connect to it hangs until its timeout, like a firewalled gate.
fn unanswered_syn() -> (std::net::TcpListener, Vec<std::net::TcpStream>, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut held = Vec::new();
    while let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        held.push(s);
        assert!(held.len() < 10_000, "the accept queue never filled");
    }
    (l, held, addr.to_string())
}

#[test]
fn close_and_destroy_abort_a_login_whose_tcp_connect_hangs() {
    let (_l, _held, ep) = unanswered_syn();
    for destroy in [false, true] {
        let (client, rx) = hanging_login(ep.clone());
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let started = std::time::Instant::now();
        std::thread::spawn(move || {
            if destroy {
                client.destroy();
            } else {
                client.close();
            }
            done_tx.send(()).unwrap();
        });
        done_rx.recv_timeout(WAIT).expect("close/destroy returned");
        let got = rx.recv_timeout(WAIT).expect("the login callback ran");
        assert_eq!(got, (false, error_code::FPNN_EC_CORE_CONNECTION_CLOSED));
        // The connection timeout is 60 s: nothing waited for it.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

/// Where a login's callback and `SessionClosed` are recorded, in the order
/// they were delivered.
type Delivered = std::sync::Arc<parking_lot::Mutex<Vec<String>>>;

/// `client.login(ME, ..)` on a thread of its own, its result logged as
/// `login(ok, code)`.
fn login_on_a_thread(client: &RtmClient, log: &Delivered) -> std::thread::JoinHandle<()> {
    let (c, l) = (client.clone(), log.clone());
    std::thread::spawn(move || {
        c.login(
            ME,
            "token",
            move |ok, code| l.lock().push(format!("login({ok}, {code})")),
            0,
        )
    })
}

/// A `Dispatch::Inline` client whose session another thread is still ending:
/// a `close` on thread U shut the connection and waits to join its reader,
/// which runs a push handler until `release` is sent. `before_close` runs
/// while the handler holds the reader, before the close. `SessionClosed` goes
/// to the log returned (given to `before_close` too).
fn closing_on_another_thread(
    gate: &Gate,
    before_close: impl FnOnce(&RtmClient, &Delivered),
) -> (
    RtmClient,
    Delivered,
    crossbeam_channel::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    use rtm_client::{Dispatch, PushEvent, RtmOptions};

    const PEER: i64 = 2002;
    let name = || std::thread::current().name().unwrap_or("").to_owned();
    let client = online(
        RtmOptions {
            dispatch: Dispatch::Inline,
            ..options(gate)
        },
        ME,
    );
    // Until a probe's callback runs on the reader: the queue is idle, so the
    // next push's handler runs on the reader too.
    wait_until("a probe's callback runs on the reader thread", || {
        let (tx, rx) = crossbeam_channel::bounded(1);
        client.send_message(PEER, 30, "probe", "", 0, 0, move |_, _| {
            tx.send(name()).unwrap()
        });
        rx.recv_timeout(WAIT).unwrap() == "rtm-reader"
    });
    let log: Delivered = Delivered::default();
    let l = log.clone();
    client.on_session_closed(move |code| l.lock().push(format!("closed({code})")));
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (release, release_rx) = crossbeam_channel::bounded::<()>(1);
    client.processor().on(PushEvent::RecvChat, move |_| {
        let _ = entered_tx.send(name());
        let _ = release_rx.recv_timeout(WAIT);
    });
    gate.inject_message(PID, 1, PEER, ME, 77, 30, b"hold", "")
        .unwrap();
    assert_eq!(entered.recv_timeout(WAIT).unwrap(), "rtm-reader");
    before_close(&client, &log);

    // Thread U closes: its step ends the session, then it joins the reader
    // (busy in the handler) before it queues SessionClosed(0).
    let c = client.clone();
    let closer = std::thread::spawn(move || c.close());
    wait_until("the close shut the connection", || {
        gate.connection_count() == 0
    });
    (client, log, release, closer)
}

/// A `login` made while another thread's `close` is still ending the session
/// (joining a connection whose reader runs a slow `Dispatch::Inline` push
/// handler) waits for that close: the old session's `SessionClosed(0)` comes
/// before the new session's login callback, in the order the session handled
/// them (docs/architecture.md). The test releases the handler once the login
/// either waits for the close or has had its callback queued: the latter is
/// the old order, which the assertion catches.
#[test]
fn a_login_during_another_threads_close_is_called_back_after_its_session_closed() {
    let gate = gate();
    let (client, log, release, closer) = closing_on_another_thread(&gate, |_, _| {});

    // Meanwhile a login on thread L.
    let login = login_on_a_thread(&client, &log);
    wait_until("the login waits for the close, or is called back", || {
        client.closing_waiters_for_tests() >= 1
            || (gate.connection_count() == 1 && client.dispatch_queue_len_for_tests() >= 1)
    });
    release.send(()).unwrap();
    closer.join().unwrap();
    login.join().unwrap();
    wait_until("both are delivered", || log.lock().len() == 2);
    assert_eq!(
        *log.lock(),
        ["closed(0)", "login(true, 0)"],
        "the old session's SessionClosed came after the new session's login callback"
    );
    client.destroy();
}

/// The same with the dispatch queue full (docs/reliability.md): the login
/// fails with `(false, 20011)` without connecting, but only after the close
/// another thread is performing, as a login that proceeds does, so the old
/// session's `SessionClosed(0)` comes before its callback (src/client/handle.rs,
/// `RtmClient::login`). The test releases the handler once the login either
/// waits for the close or has returned (its callback queued at once: the old
/// order, which the assertion catches), after making room in the queue, so
/// that the close's `SessionClosed` is not dropped as an event queued while
/// the queue is full is (docs/reliability.md).
#[test]
fn a_login_refused_by_a_full_queue_during_another_threads_close_is_called_back_after_its_session_closed(
) {
    let gate = gate();
    let (client, log, release, closer) = closing_on_another_thread(&gate, |client, log| {
        // The queue is full: one job, queued behind the handler the reader
        // runs, against a limit of 1. A call refused at once (an empty
        // message) is that job.
        client.set_dispatch_limit_for_tests(1);
        let l = log.clone();
        client.send_message(2002, 30, "", "", 0, 0, move |e, _| {
            l.lock()
                .push(format!("send({})", e.map_or(0, |e| e.error.code)))
        });
        assert_eq!(client.dispatch_queue_len_for_tests(), 1, "full");
    });

    let login = login_on_a_thread(&client, &log);
    wait_until("the login waits for the close, or has returned", || {
        client.closing_waiters_for_tests() >= 1 || login.is_finished()
    });
    // Room again before the close queues `SessionClosed`, which a full queue
    // would drop (docs/reliability.md): the login has seen the queue full.
    client.set_dispatch_limit_for_tests(1 << 16);
    release.send(()).unwrap();
    closer.join().unwrap();
    login.join().unwrap();
    wait_until("all three are delivered", || log.lock().len() == 3);
    assert_eq!(
        *log.lock(),
        [
            format!("send({})", error_code::RTM_EC_EMPTY_PARAMETER),
            "closed(0)".to_owned(),
            format!("login(false, {})", error_code::FPNN_EC_CORE_WORK_QUEUE_FULL),
        ],
        "the old session's SessionClosed came after the refused login's callback"
    );
    assert_eq!(gate.connection_count(), 0, "the refused login connected");
    client.destroy();
}
