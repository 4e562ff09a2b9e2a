//! Every transition of the session machine, with time passed in. The login
//! callback is a number here, so the tests can see which one completed.

use super::*;

type A = Action<u32>;

const CLOSED: i32 = error_code::FPNN_EC_CORE_CONNECTION_CLOSED;
const UNREACHABLE: i32 = error_code::FPNN_EC_CORE_INVALID_CONNECTION;

fn config() -> Config {
    Config {
        max_ping: Duration::from_secs(60),
        strategy: RegressiveStrategy::default(),
        auto_reconnect: true,
        delay_divisor: 1,
    }
}

/// A machine and the clock the test moves by hand.
struct Rig {
    m: Machine<u32>,
    t0: Instant,
    now: Duration,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(config())
    }

    fn with(c: Config) -> Rig {
        Rig {
            m: Machine::new(c),
            t0: Instant::now(),
            now: Duration::ZERO,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Moves the clock to `ms` and feeds `e`.
    fn ev(&mut self, ms: u64, e: Event<u32>) -> Vec<A> {
        let ms = Duration::from_millis(ms);
        assert!(ms >= self.now, "time runs forward");
        self.now = ms;
        self.m.handle(e, self.t0 + ms)
    }

    fn now_ms(&self) -> u64 {
        self.now.as_millis() as u64
    }

    /// Feeds `e` at the current time.
    fn step(&mut self, e: Event<u32>) -> Vec<A> {
        let now = self.now_ms();
        self.ev(now, e)
    }

    fn login(&mut self, callback: u32) -> Vec<A> {
        self.step(Event::Login {
            uid: 7,
            token: "secret".into(),
            timeout: 500,
            callback,
        })
    }

    /// Goes online, loses the connection, and answers the auth of relogin
    /// attempt 1 with `answer`: that attempt's serial and the actions.
    fn first_relogin_answered(&mut self, answer: AuthAnswer) -> (u64, Vec<A>) {
        let s = self.online();
        let s2 = connect_of(&self.step(Event::ConnectionLost { serial: s }));
        self.step(Event::Connected { serial: s2 });
        (s2, self.step(Event::AuthAnswered { serial: s2, answer }))
    }

    /// Logs in (callback 1) up to the `auth` of connection 1.
    fn authenticating(&mut self) {
        assert_eq!(connect_of(&self.login(1)), 1);
        self.step(Event::Connected { serial: 1 });
    }

    /// Logs in (callback 1) and returns the online connection's serial.
    fn online(&mut self) -> u64 {
        let serial = connect_of(&self.login(1));
        self.step(Event::Connected { serial });
        let a = self.step(Event::AuthAnswered {
            serial,
            answer: AuthAnswer::Accepted,
        });
        assert_eq!(a[0], complete(1, true, 0));
        assert_eq!(self.m.online_serial(), Some(serial));
        serial
    }
}

fn complete(callback: u32, ok: bool, code: i32) -> A {
    Action::CompleteLogin { callback, ok, code }
}

fn relogin(ok: bool, again: bool, code: i32, attempt: u32) -> A {
    Action::ReloginCompleted {
        ok,
        again,
        code,
        attempt,
    }
}

/// The serial of the `Connect` in `a` (which must hold exactly one).
fn connect_of(a: &[A]) -> u64 {
    let serials: Vec<u64> = a
        .iter()
        .filter_map(|x| match x {
            Action::Connect { serial } => Some(*serial),
            _ => None,
        })
        .collect();
    assert_eq!(serials.len(), 1, "one Connect in {a:?}");
    serials[0]
}

#[test]
fn a_login_connects_sends_auth_and_completes_true_0_when_accepted() {
    let mut r = Rig::new();
    let a = r.login(1);
    assert_eq!(a, vec![Action::Connect { serial: 1 }]);
    assert_eq!(r.m.session_serial(), None);
    let a = r.ev(10, Event::Connected { serial: 1 });
    assert_eq!(
        a,
        vec![Action::SendAuth {
            serial: 1,
            uid: 7,
            token: "secret".into(),
            timeout: 500
        }]
    );
    // Pushes of the authenticating connection are the session's; API calls
    // wait for the answer.
    assert_eq!(r.m.session_serial(), Some(1));
    assert_eq!(r.m.online_serial(), None);
    let a = r.ev(
        20,
        Event::AuthAnswered {
            serial: 1,
            answer: AuthAnswer::Accepted,
        },
    );
    // The watchdog counts from the acceptance, not the connect (a slow auth
    // does not count against it).
    assert_eq!(a, vec![complete(1, true, 0), Action::WakeAt(r.at(60_020))]);
    assert_eq!(r.m.online_serial(), Some(1));
    assert_eq!(r.m.uid(), Some(7));
}

#[test]
fn failed_logins_complete_with_their_codes_and_leave_no_session() {
    for (answer, code) in [
        (AuthAnswer::Rejected, 0),
        (AuthAnswer::Failed(20003), 20003),
        (AuthAnswer::Failed(200999), 200999),
    ] {
        let mut r = Rig::new();
        r.authenticating();
        let a = r.step(Event::AuthAnswered { serial: 1, answer });
        assert_eq!(
            a,
            vec![
                Action::CloseConnection { serial: 1 },
                complete(1, false, code)
            ]
        );
        assert_eq!(r.m.session_serial(), None);
        assert!(r.step(Event::Close).is_empty(), "nothing left to close");
    }
    let mut r = Rig::new();
    r.login(1);
    let a = r.step(Event::ConnectFailed { serial: 1 });
    assert_eq!(a, vec![complete(1, false, UNREACHABLE)]);
    assert_eq!(r.m.next_wake(), None);
}

#[test]
fn a_lost_connection_during_auth_fails_the_login_with_20002() {
    let mut r = Rig::new();
    r.authenticating();
    let a = r.step(Event::ConnectionLost { serial: 1 });
    assert_eq!(
        a,
        vec![
            Action::CloseConnection { serial: 1 },
            complete(1, false, CLOSED)
        ]
    );
    // The auth quest's own 20002 comes after and is stale.
    let a = r.step(Event::AuthAnswered {
        serial: 1,
        answer: AuthAnswer::Failed(CLOSED),
    });
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn the_relogin_schedule_is_exactly_0_0_0_2000_4000_6000_8000_8000() {
    let mut r = Rig::new();
    let s = r.online();
    let mut a = r.ev(1000, Event::ConnectionLost { serial: s });
    assert_eq!(a[0], Action::CloseConnection { serial: s });
    let mut waits = Vec::new();
    for n in 1..=8u32 {
        let failed_at = r.now_ms();
        // The attempt starts at once, or after a WakeAt, whose early ticks
        // only re-arm it.
        let serial = match a.last() {
            Some(Action::WakeAt(t)) => {
                let due = (*t - r.t0).as_millis() as u64;
                assert_eq!(r.ev(due - 1, Event::Tick), vec![Action::WakeAt(*t)]);
                connect_of(&r.ev(due, Event::Tick))
            }
            _ => connect_of(&a),
        };
        waits.push(r.now_ms() - failed_at);
        a = r.ev(r.now_ms() + 5, Event::ConnectFailed { serial });
        assert_eq!(a[0], relogin(false, true, UNREACHABLE, n));
    }
    assert_eq!(waits, [0, 0, 0, 2000, 4000, 6000, 8000, 8000]);
}

#[test]
fn the_divisor_scales_every_wait() {
    let mut r = Rig::with(Config {
        delay_divisor: 100,
        ..config()
    });
    let s = r.online();
    r.step(Event::ConnectionLost { serial: s });
    for serial in 2..=4 {
        let a = r.step(Event::ConnectFailed { serial });
        if serial < 4 {
            assert_eq!(connect_of(&a), serial + 1);
        } else {
            assert_eq!(a[1], Action::WakeAt(r.at(20)), "2000 ms / 100");
        }
    }
}

#[test]
fn a_successful_relogin_is_online_and_a_new_loss_starts_again_at_1() {
    let mut r = Rig::new();
    let s = r.online();
    let a = r.ev(5, Event::ConnectionLost { serial: s });
    let s2 = connect_of(&a);
    r.step(Event::Connected { serial: s2 });
    let a = r.ev(
        7,
        Event::AuthAnswered {
            serial: s2,
            answer: AuthAnswer::Accepted,
        },
    );
    assert_eq!(
        a,
        vec![relogin(true, false, 0, 1), Action::WakeAt(r.at(60_007))]
    );
    assert_eq!(r.m.online_serial(), Some(s2));
    let a = r.step(Event::ConnectionLost { serial: s2 });
    let s3 = connect_of(&a);
    r.step(Event::Connected { serial: s3 });
    let a = r.step(Event::AuthAnswered {
        serial: s3,
        answer: AuthAnswer::Accepted,
    });
    assert_eq!(a[0], relogin(true, false, 0, 1));
}

#[test]
fn fatal_relogin_codes_end_the_session_with_their_code() {
    for code in [
        200001, 200002, 200020, 200021, 200024, 200025, 200026, 200027,
    ] {
        let mut r = Rig::new();
        let (s2, a) = r.first_relogin_answered(AuthAnswer::Failed(code));
        assert_eq!(
            a,
            vec![
                Action::CloseConnection { serial: s2 },
                relogin(false, false, code, 1),
                Action::SessionClosed { code },
            ],
            "code {code}"
        );
        assert_eq!(r.m.next_wake(), None);
        assert!(r.step(Event::Close).is_empty(), "the session is over");
    }
}

#[test]
fn other_relogin_failures_retry_and_a_rejected_token_ends_with_200027() {
    let mut r = Rig::new();
    let (s2, a) = r.first_relogin_answered(AuthAnswer::Failed(20003));
    assert_eq!(
        a[..2],
        [
            Action::CloseConnection { serial: s2 },
            relogin(false, true, 20003, 1)
        ]
    );
    let s3 = connect_of(&a);
    r.step(Event::Connected { serial: s3 });
    let a = r.step(Event::AuthAnswered {
        serial: s3,
        answer: AuthAnswer::Rejected,
    });
    assert_eq!(
        a,
        vec![
            Action::CloseConnection { serial: s3 },
            relogin(false, false, 200027, 2),
            Action::SessionClosed { code: 200027 },
        ]
    );
}

#[test]
fn the_watchdog_fires_at_exactly_max_ping_interval_and_pings_push_it_back() {
    let mut r = Rig::new();
    let s = r.online(); // connected at 0: deadline 60 000
    assert_eq!(r.m.next_wake(), Some(r.at(60_000)));
    r.ev(30_000, Event::Ping { serial: s });
    assert_eq!(r.m.next_wake(), Some(r.at(90_000)));
    // The wake-up armed for 60 000 is early now: it re-arms.
    assert_eq!(
        r.ev(60_000, Event::Tick),
        vec![Action::WakeAt(r.at(90_000))]
    );
    assert_eq!(
        r.ev(89_999, Event::Tick),
        vec![Action::WakeAt(r.at(90_000))]
    );
    let a = r.ev(90_000, Event::Tick);
    assert_eq!(
        a[..2],
        [
            Action::ErrorRecorder {
                code: 20003,
                ex: "no ping from the gate for 60000 ms: connection considered dead".into()
            },
            Action::CloseConnection { serial: s },
        ]
    );
    assert_eq!(connect_of(&a), s + 1, "relogin attempt 1 at once");
}

#[test]
fn a_loss_without_auto_reconnect_ends_with_20001_until_start_auto_reconnect() {
    let mut r = Rig::with(Config {
        auto_reconnect: false,
        ..config()
    });
    let s = r.online();
    let a = r.step(Event::ConnectionLost { serial: s });
    assert_eq!(
        a,
        vec![
            Action::CloseConnection { serial: s },
            Action::SessionClosed { code: 20001 }
        ]
    );
    let s = r.online();
    r.step(Event::StartAutoReconnect);
    let a = r.step(Event::ConnectionLost { serial: s });
    assert_eq!(connect_of(&a), s + 1);
}

#[test]
fn kickout_ends_the_session_with_0_and_no_relogin() {
    let mut r = Rig::new();
    let s = r.online();
    let a = r.step(Event::Kickout { serial: s });
    assert_eq!(
        a,
        vec![
            Action::SessionClosed { code: 0 },
            Action::CloseConnection { serial: s }
        ]
    );
    // The close that follows is the kicked connection's: no relogin.
    assert!(r.step(Event::ConnectionLost { serial: s }).is_empty());
    assert_eq!(r.m.next_wake(), None);
}

#[test]
fn a_kickout_before_the_auth_answer_ends_the_session_after_it() {
    let mut r = Rig::new();
    r.authenticating();
    assert!(r.step(Event::Kickout { serial: 1 }).is_empty());
    let a = r.step(Event::AuthAnswered {
        serial: 1,
        answer: AuthAnswer::Accepted,
    });
    assert_eq!(
        a,
        vec![
            complete(1, true, 0),
            Action::SessionClosed { code: 0 },
            Action::CloseConnection { serial: 1 }
        ]
    );
}

/// A kickout read before a relogin's auth answer ends the session even when the auth
/// then fails (the connection drops, or the token is refused): no further attempt, and
/// `SessionClosed(0)` as for any kickout.
#[test]
fn a_kickout_before_a_failed_relogin_answer_ends_the_session() {
    for (answer, code) in [
        (AuthAnswer::Failed(20002), 20002),
        (AuthAnswer::Failed(20003), 20003),
        (AuthAnswer::Rejected, 200027),
    ] {
        let mut r = Rig::new();
        let s = r.online();
        let s2 = connect_of(&r.step(Event::ConnectionLost { serial: s }));
        r.step(Event::Connected { serial: s2 });
        assert!(r.step(Event::Kickout { serial: s2 }).is_empty());
        let a = r.step(Event::AuthAnswered { serial: s2, answer });
        assert_eq!(
            a,
            vec![
                Action::CloseConnection { serial: s2 },
                relogin(false, false, code, 1),
                Action::SessionClosed { code: 0 },
            ],
            "{answer:?}"
        );
        assert_eq!(r.m.next_wake(), None);
        assert!(r.step(Event::Close).is_empty(), "the session is over");
    }
}

#[test]
fn close_during_connect_aborts_it_and_completes_the_login_with_20002() {
    let mut r = Rig::new();
    r.login(1);
    let a = r.step(Event::Close);
    assert_eq!(
        a,
        vec![
            Action::CancelConnect { serial: 1 },
            complete(1, false, CLOSED)
        ]
    );
    // The aborted connect reports late, either way: nothing happens but
    // closing what it opened.
    assert!(r.step(Event::ConnectFailed { serial: 1 }).is_empty());
    assert_eq!(
        r.step(Event::Connected { serial: 1 }),
        vec![Action::CloseConnection { serial: 1 }]
    );
}

#[test]
fn close_during_auth_closes_and_completes_the_login_with_20002_without_session_closed() {
    let mut r = Rig::new();
    r.authenticating();
    let a = r.step(Event::Close);
    assert_eq!(
        a,
        vec![
            Action::CloseConnection { serial: 1 },
            complete(1, false, CLOSED)
        ]
    );
    for e in [
        Event::AuthAnswered {
            serial: 1,
            answer: AuthAnswer::Accepted,
        },
        Event::ConnectionLost { serial: 1 },
        Event::Ping { serial: 1 },
    ] {
        assert!(r.step(e).is_empty());
    }
    assert_eq!(r.m.session_serial(), None);
}

#[test]
fn close_online_emits_session_closed_0_once() {
    let mut r = Rig::new();
    let s = r.online();
    assert_eq!(
        r.step(Event::Close),
        vec![
            Action::CloseConnection { serial: s },
            Action::SessionClosed { code: 0 }
        ]
    );
    assert!(r.step(Event::Close).is_empty());
    assert!(r.step(Event::ConnectionLost { serial: s }).is_empty());
}

#[test]
fn close_during_the_relogin_wait_or_attempt_ends_the_series_with_0() {
    // In the wait.
    let mut r = Rig::new();
    let s = r.online();
    let mut serial = connect_of(&r.step(Event::ConnectionLost { serial: s }));
    for _ in 0..3 {
        let a = r.step(Event::ConnectFailed { serial });
        if let Some(Action::Connect { serial: n }) = a.last() {
            serial = *n;
        }
    }
    assert!(r.m.next_wake().is_some(), "attempt 4 waits");
    assert_eq!(
        r.step(Event::Close),
        vec![Action::SessionClosed { code: 0 }]
    );
    assert!(
        r.ev(10_000, Event::Tick).is_empty(),
        "no attempt after close"
    );
    // In an attempt's connect and in its auth.
    for authenticating in [false, true] {
        let mut r = Rig::new();
        let s = r.online();
        let s2 = connect_of(&r.step(Event::ConnectionLost { serial: s }));
        let first = if authenticating {
            r.step(Event::Connected { serial: s2 });
            Action::CloseConnection { serial: s2 }
        } else {
            Action::CancelConnect { serial: s2 }
        };
        assert_eq!(
            r.step(Event::Close),
            vec![first, Action::SessionClosed { code: 0 }]
        );
    }
}

#[test]
fn a_second_login_replaces_the_first_without_events() {
    let mut r = Rig::new();
    r.authenticating();
    let a = r.login(2);
    assert_eq!(
        a,
        vec![
            Action::CloseConnection { serial: 1 },
            complete(1, false, CLOSED),
            Action::Connect { serial: 2 }
        ]
    );
    // Online sessions too are replaced without SessionClosed.
    r.step(Event::Connected { serial: 2 });
    r.step(Event::AuthAnswered {
        serial: 2,
        answer: AuthAnswer::Accepted,
    });
    assert_eq!(
        r.login(3),
        vec![
            Action::CloseConnection { serial: 2 },
            Action::Connect { serial: 3 }
        ]
    );
}

#[test]
fn bye_closes_its_own_session_only() {
    let mut r = Rig::new();
    let s = r.online();
    let a = r.step(Event::Bye);
    let generation = match a[..] {
        [Action::SendBye { serial, generation }] if serial == s => generation,
        _ => panic!("{a:?}"),
    };
    assert_eq!(
        r.step(Event::ByeAnswered { generation }),
        vec![
            Action::CloseConnection { serial: s },
            Action::SessionClosed { code: 0 }
        ]
    );
    // bye, then login before bye's answer: the answer closes nothing.
    let s = r.online();
    let generation = match r.step(Event::Bye)[..] {
        [Action::SendBye { generation, .. }] => generation,
        _ => panic!("no bye"),
    };
    let s2 = connect_of(&r.login(2));
    assert_ne!(s, s2);
    assert!(r.step(Event::ByeAnswered { generation }).is_empty());
    assert_eq!(
        r.step(Event::Connected { serial: s2 })[0],
        Action::SendAuth {
            serial: s2,
            uid: 7,
            token: "secret".into(),
            timeout: 500
        }
    );
    // bye without a connection is a close.
    let mut r = Rig::new();
    assert!(r.step(Event::Bye).is_empty());
}

#[test]
fn destroy_ends_the_session_silently_and_later_logins_fail_with_20012() {
    let mut r = Rig::new();
    let s = r.online();
    assert_eq!(
        r.step(Event::Destroy),
        vec![Action::CloseConnection { serial: s }]
    );
    assert_eq!(r.login(2), vec![complete(2, false, UNREACHABLE)]);
    let mut r = Rig::new();
    r.login(1);
    assert_eq!(
        r.step(Event::Destroy),
        vec![
            Action::CancelConnect { serial: 1 },
            complete(1, false, CLOSED)
        ]
    );
}

#[test]
fn events_of_an_old_connection_change_nothing() {
    let mut r = Rig::new();
    let old = r.online();
    let new = connect_of(&r.step(Event::ConnectionLost { serial: old }));
    r.step(Event::Connected { serial: new });
    for e in [
        Event::ConnectionLost { serial: old },
        Event::Kickout { serial: old },
        Event::Ping { serial: old },
        Event::AuthAnswered {
            serial: old,
            answer: AuthAnswer::Rejected,
        },
        Event::ConnectFailed { serial: old },
    ] {
        assert!(r.step(e).is_empty());
    }
    assert_eq!(r.m.session_serial(), Some(new));
}

#[test]
fn huge_intervals_saturate_instead_of_overflowing() {
    let mut r = Rig::with(Config {
        max_ping: Duration::from_secs(u64::MAX),
        strategy: RegressiveStrategy {
            start_connect_failed_count: 0,
            max_interval_seconds: u64::MAX,
            linear_regressive_count: 1,
        },
        ..config()
    });
    let s = r.online();
    assert!(r.m.next_wake().unwrap() > r.at(1_000_000_000));
    let a = r.step(Event::ConnectionLost { serial: s });
    assert!(matches!(a.last(), Some(Action::WakeAt(t)) if *t > r.at(1_000_000_000)));
}

#[test]
fn the_token_is_not_in_the_debug_form_of_an_action() {
    let a: A = Action::SendAuth {
        serial: 1,
        uid: 7,
        token: "secret".into(),
        timeout: 0,
    };
    assert!(!format!("{a:?}").contains("secret"));
}

#[test]
fn a_session_stays_alive_and_keeps_its_generation_through_relogins_only() {
    let mut r = Rig::new();
    assert!(!r.m.session_alive());
    r.authenticating();
    assert!(!r.m.session_alive(), "a first login is no session yet");
    let mut r = Rig::new();
    let s = r.online();
    let g = r.m.generation();
    assert!(r.m.session_alive());
    // Lost: relogin attempt 1 connecting, then authenticating, then waiting.
    let s2 = connect_of(&r.step(Event::ConnectionLost { serial: s }));
    assert!(r.m.session_alive());
    r.step(Event::Connected { serial: s2 });
    assert!(r.m.session_alive());
    r.step(Event::AuthAnswered {
        serial: s2,
        answer: AuthAnswer::Failed(CLOSED),
    });
    assert!(r.m.session_alive());
    assert_eq!(r.m.generation(), g, "a relogin is the same session");
    r.step(Event::Close);
    assert!(!r.m.session_alive());
    assert_ne!(r.m.generation(), g, "close ends it");
    // A new login is another session; a kickout or a refused relogin ends it.
    let s = r.online();
    assert!(r.m.session_alive());
    r.step(Event::Kickout { serial: s });
    assert!(!r.m.session_alive());
    let (_, _) = r.first_relogin_answered(AuthAnswer::Rejected);
    assert!(!r.m.session_alive());
}

/// The gate pings only authenticated connections, so the watchdog of an online
/// connection must start when the auth is accepted: an auth that took longer than
/// `max_ping` (allowed: the login's timeout bounds it, not `max_ping`) must not make
/// the freshly accepted connection "dead" at once (counted from the connect, the
/// login succeeded and the very next tick dropped the connection with "no ping
/// from the gate for 61000 ms").
#[test]
fn an_auth_slower_than_max_ping_does_not_kill_the_connection_it_opens() {
    let mut r = Rig::new();
    let serial = connect_of(&r.step(Event::Login {
        uid: 7,
        token: "secret".into(),
        timeout: 120_000,
        callback: 1,
    }));
    r.ev(0, Event::Connected { serial });
    let a = r.ev(
        61_000,
        Event::AuthAnswered {
            serial,
            answer: AuthAnswer::Accepted,
        },
    );
    assert_eq!(a[0], complete(1, true, 0));
    let a = r.ev(61_000, Event::Tick);
    assert!(
        a.iter().all(|x| !matches!(
            x,
            Action::ErrorRecorder { .. } | Action::CloseConnection { .. }
        )),
        "online for 0 ms and already declared dead: {a:?}"
    );
    assert_eq!(r.m.online_serial(), Some(serial));
}
