//! The session state machine: login, the regressive relogin series, the ping
//! watchdog, kickout, close, bye and destroy, and the generation and serial
//! bookkeeping that keeps a late event of an old connection or session from
//! touching the current one (docs/architecture.md, "The session").
//!
//! It is pure, in the manner of rumqttc's `state.rs`: [`Machine::handle`]
//! takes an [`Event`] and the time it happened and returns [`Action`]s. It
//! has no sockets, threads, locks or clock of its own, so every transition is
//! unit-tested with time passed in (see the tests at the end). The driver
//! (`driver.rs`) feeds it events and performs its actions.
//!
//! Connection attempts are numbered by `serial`; an event carrying a serial
//! other than the current attempt's is stale and changes nothing (its
//! connection, if any, is closed). Sessions are numbered by generation, for
//! the one event that outlives a connection: the answer to `bye`.

use std::time::{Duration, Instant};

use super::schedule::relogin_delay;
use crate::error::error_code;
use crate::fpnn::deadline_from;
use crate::types::RegressiveStrategy;

/// The knobs of a machine, from `RtmOptions`.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The watchdog: an online connection with no ping for this long is dead.
    pub(crate) max_ping: Duration,
    /// The relogin schedule.
    pub(crate) strategy: RegressiveStrategy,
    /// Whether a lost session logs in again.
    pub(crate) auto_reconnect: bool,
    /// Divides every relogin wait (1 in production; a hidden test hook).
    pub(crate) delay_divisor: u32,
}

/// How an `auth` quest was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthAnswer {
    /// `{ok: true}`.
    Accepted,
    /// `{ok: false}` or no `ok`: the token was rejected.
    Rejected,
    /// The quest failed with this code (20003 timeout, 20002 closed, or the
    /// gate's error).
    Failed(i32),
}

/// What happened. `C` is the login callback the machine carries until it
/// hands it back in [`Action::CompleteLogin`].
pub(crate) enum Event<C> {
    /// `login(uid, token, callback, timeout)`.
    Login {
        uid: i64,
        token: String,
        timeout: u64,
        callback: C,
    },
    /// The connection of attempt `serial` is open.
    Connected { serial: u64 },
    /// The connection of attempt `serial` could not be opened.
    ConnectFailed { serial: u64 },
    /// The `auth` quest on connection `serial` was answered.
    AuthAnswered { serial: u64, answer: AuthAnswer },
    /// Connection `serial` closed.
    ConnectionLost { serial: u64 },
    /// The gate sent `kickout` on connection `serial`.
    Kickout { serial: u64 },
    /// The gate sent `ping` on connection `serial`.
    Ping { serial: u64 },
    /// A wake-up asked for by [`Action::WakeAt`] (early ones are harmless).
    Tick,
    /// `close()`.
    Close,
    /// `bye()`.
    Bye,
    /// The `bye` said in session `generation` was answered (or failed).
    ByeAnswered { generation: u64 },
    /// `destroy()`.
    Destroy,
    /// `start_auto_reconnect()`.
    StartAutoReconnect,
}

/// What the driver must do, in order.
#[derive(PartialEq)]
pub(crate) enum Action<C> {
    /// Open connection `serial` (blocking: not on a caller's thread).
    Connect { serial: u64 },
    /// Abort the connect of attempt `serial`.
    CancelConnect { serial: u64 },
    /// Send `auth` on connection `serial`.
    SendAuth {
        serial: u64,
        uid: i64,
        token: String,
        timeout: u64,
    },
    /// Send `bye` on connection `serial`; its answer is
    /// [`Event::ByeAnswered`] with this `generation`.
    SendBye { serial: u64, generation: u64 },
    /// Close connection `serial`.
    CloseConnection { serial: u64 },
    /// Call the login callback with `(ok, code)`.
    CompleteLogin { callback: C, ok: bool, code: i32 },
    /// Emit `ErrorRecorder`.
    ErrorRecorder { code: i32, ex: String },
    /// Emit `ReloginCompleted(ok, again, code, attempt)`.
    ReloginCompleted {
        ok: bool,
        again: bool,
        code: i32,
        attempt: u32,
    },
    /// Emit `SessionClosed(code)`.
    SessionClosed { code: i32 },
    /// Deliver [`Event::Tick`] at this instant.
    WakeAt(Instant),
}

// By hand: the token must never reach a log.
impl<C> std::fmt::Debug for Action<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Connect { serial } => write!(f, "Connect({serial})"),
            Action::CancelConnect { serial } => write!(f, "CancelConnect({serial})"),
            Action::SendAuth {
                serial,
                uid,
                timeout,
                ..
            } => write!(f, "SendAuth({serial}, uid {uid}, timeout {timeout})"),
            Action::SendBye { serial, generation } => {
                write!(f, "SendBye({serial}, generation {generation})")
            }
            Action::CloseConnection { serial } => write!(f, "CloseConnection({serial})"),
            Action::CompleteLogin { ok, code, .. } => write!(f, "CompleteLogin({ok}, {code})"),
            Action::ErrorRecorder { code, ex } => write!(f, "ErrorRecorder({code}, {ex:?})"),
            Action::ReloginCompleted {
                ok,
                again,
                code,
                attempt,
            } => write!(f, "ReloginCompleted({ok}, {again}, {code}, {attempt})"),
            Action::SessionClosed { code } => write!(f, "SessionClosed({code})"),
            Action::WakeAt(t) => write!(f, "WakeAt({t:?})"),
        }
    }
}

/// What a connection attempt is for.
enum Purpose<C> {
    /// The user's login; its callback waits for the outcome.
    Login(C),
    /// Attempt `n` (1-based) of a relogin series.
    Relogin(u32),
}

enum State<C> {
    /// No session: never logged in, closed, failed, or destroyed.
    Idle,
    Connecting {
        serial: u64,
        purpose: Purpose<C>,
    },
    Authenticating {
        serial: u64,
        purpose: Purpose<C>,
        last_ping: Instant,
        /// A kickout that came before the auth answer.
        kicked: bool,
    },
    Online {
        serial: u64,
        last_ping: Instant,
    },
    /// Between relogin attempts: attempt `attempt` starts at `until`.
    Waiting {
        attempt: u32,
        until: Instant,
    },
}

/// What `auth` sends, from the last login (before any: uid 0, no token,
/// and no attempt can start).
#[derive(Default)]
struct Credentials {
    uid: i64,
    token: String,
    timeout: u64,
}

/// The session of one client. See the module comment.
pub(crate) struct Machine<C> {
    config: Config,
    state: State<C>,
    generation: u64,
    last_serial: u64,
    destroyed: bool,
    credentials: Credentials,
    /// A login has set the credentials.
    logged_in_once: bool,
    out: Vec<Action<C>>,
}

impl<C> Machine<C> {
    pub(crate) fn new(config: Config) -> Self {
        Machine {
            config,
            state: State::Idle,
            generation: 0,
            last_serial: 0,
            destroyed: false,
            credentials: Credentials::default(),
            logged_in_once: false,
            out: Vec::new(),
        }
    }

    /// Sets the relogin wait divisor (a test hook; 0 counts as 1).
    pub(crate) fn set_delay_divisor(&mut self, divisor: u32) {
        self.config.delay_divisor = divisor.max(1);
    }

    /// The serial of the connection whose quests are the session's: the one
    /// authenticating or online.
    pub(crate) fn session_serial(&self) -> Option<u64> {
        match self.state {
            State::Authenticating { serial, .. } | State::Online { serial, .. } => Some(serial),
            _ => None,
        }
    }

    /// The serial of the online connection, which API calls use.
    pub(crate) fn online_serial(&self) -> Option<u64> {
        match self.state {
            State::Online { serial, .. } => Some(serial),
            _ => None,
        }
    }

    /// The session's number: a login, `close` or `destroy` starts a new one;
    /// a relogin keeps it.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a logged-in session is online or logging in again after a
    /// lost connection (so a quest may wait for its next connection).
    pub(crate) fn session_alive(&self) -> bool {
        match &self.state {
            State::Online { .. } | State::Waiting { .. } => true,
            State::Connecting { purpose, .. } | State::Authenticating { purpose, .. } => {
                matches!(purpose, Purpose::Relogin(_))
            }
            State::Idle => false,
        }
    }

    /// The uid of the last login.
    pub(crate) fn uid(&self) -> Option<i64> {
        self.logged_in_once.then_some(self.credentials.uid)
    }

    /// When the machine next wants [`Event::Tick`].
    #[cfg(test)]
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        match self.state {
            State::Online { last_ping, .. } => Some(deadline_from(last_ping, self.config.max_ping)),
            State::Waiting { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Feeds one event that happened at `now`; returns what to do, in order.
    pub(crate) fn handle(&mut self, event: Event<C>, now: Instant) -> Vec<Action<C>> {
        match event {
            Event::Login {
                uid,
                token,
                timeout,
                callback,
            } => self.login(uid, token, timeout, callback),
            Event::Connected { serial } => self.connected(serial, now),
            Event::ConnectFailed { serial } => self.connect_failed(serial, now),
            Event::AuthAnswered { serial, answer } => self.auth_answered(serial, answer, now),
            Event::ConnectionLost { serial } => match self.state {
                State::Online { serial: s, .. } if s == serial => self.lost(serial, now),
                // The auth quest fails with 20002 too; whichever comes first
                // decides, the other is stale.
                State::Authenticating { serial: s, .. } if s == serial => {
                    self.auth_answered(serial, AuthAnswer::Failed(closed()), now)
                }
                _ => {}
            },
            Event::Kickout { serial } => match &mut self.state {
                State::Online { serial: s, .. } if *s == serial => self.kicked_out(serial),
                State::Authenticating {
                    serial: s, kicked, ..
                } if *s == serial => *kicked = true,
                _ => {}
            },
            Event::Ping { serial } => match &mut self.state {
                State::Online {
                    serial: s,
                    last_ping,
                }
                | State::Authenticating {
                    serial: s,
                    last_ping,
                    ..
                } if *s == serial => *last_ping = now,
                _ => {}
            },
            Event::Tick => self.tick(now),
            Event::Close => self.close(),
            Event::Bye => match self.state {
                State::Online { serial, .. } => self.out.push(Action::SendBye {
                    serial,
                    generation: self.generation,
                }),
                _ => self.close(),
            },
            Event::ByeAnswered { generation } => {
                // Only the session `bye` was said in: a login since then has
                // started another one.
                if generation == self.generation {
                    self.close()
                }
            }
            Event::Destroy => {
                self.destroyed = true;
                self.retire();
            }
            Event::StartAutoReconnect => self.config.auto_reconnect = true,
        }
        std::mem::take(&mut self.out)
    }

    fn login(&mut self, uid: i64, token: String, timeout: u64, callback: C) {
        if self.destroyed {
            return self.out.push(Action::CompleteLogin {
                callback,
                ok: false,
                code: error_code::FPNN_EC_CORE_INVALID_CONNECTION,
            });
        }
        // The old session ends without events; its login, if any, with 20002.
        self.retire();
        self.credentials = Credentials {
            uid,
            token,
            timeout,
        };
        self.logged_in_once = true;
        self.attempt(Purpose::Login(callback));
    }

    /// Starts a connection attempt.
    fn attempt(&mut self, purpose: Purpose<C>) {
        self.last_serial += 1;
        let serial = self.last_serial;
        self.state = State::Connecting { serial, purpose };
        self.out.push(Action::Connect { serial });
    }

    fn connected(&mut self, serial: u64, now: Instant) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Connecting { serial: s, purpose } if s == serial => {
                let c = &self.credentials;
                self.out.push(Action::SendAuth {
                    serial,
                    uid: c.uid,
                    token: c.token.clone(),
                    timeout: c.timeout,
                });
                self.state = State::Authenticating {
                    serial,
                    purpose,
                    last_ping: now,
                    kicked: false,
                };
            }
            other => {
                self.state = other;
                self.out.push(Action::CloseConnection { serial });
            }
        }
    }

    fn connect_failed(&mut self, serial: u64, now: Instant) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Connecting { serial: s, purpose } if s == serial => {
                // As the login callback says it: the gate is unreachable.
                let code = error_code::FPNN_EC_CORE_INVALID_CONNECTION;
                match purpose {
                    Purpose::Login(callback) => self.out.push(Action::CompleteLogin {
                        callback,
                        ok: false,
                        code,
                    }),
                    Purpose::Relogin(n) => self.retry(n, code, now),
                }
            }
            other => self.state = other,
        }
    }

    fn auth_answered(&mut self, serial: u64, answer: AuthAnswer, now: Instant) {
        let (purpose, last_ping, kicked) = match std::mem::replace(&mut self.state, State::Idle) {
            State::Authenticating {
                serial: s,
                purpose,
                last_ping,
                kicked,
            } if s == serial => (purpose, last_ping, kicked),
            other => {
                self.state = other;
                return;
            }
        };
        if answer != AuthAnswer::Accepted {
            self.out.push(Action::CloseConnection { serial });
        }
        match (answer, purpose) {
            (AuthAnswer::Accepted, purpose) => {
                // The gate pings a connection once it has logged in: the
                // watchdog counts from the acceptance (or a later ping), not
                // from the connect, so a slow auth does not count against it.
                let last_ping = last_ping.max(now);
                self.state = State::Online { serial, last_ping };
                self.out.push(match purpose {
                    Purpose::Login(callback) => Action::CompleteLogin {
                        callback,
                        ok: true,
                        code: 0,
                    },
                    Purpose::Relogin(attempt) => Action::ReloginCompleted {
                        ok: true,
                        again: false,
                        code: 0,
                        attempt,
                    },
                });
                if kicked {
                    self.kicked_out(serial);
                } else {
                    self.out.push(Action::WakeAt(deadline_from(
                        last_ping,
                        self.config.max_ping,
                    )));
                }
            }
            // A kickout came before the answer of a relogin that then failed: the
            // session ends as a kickout ends it, with no further attempt.
            (answer, Purpose::Relogin(n)) if kicked => {
                let code = match answer {
                    AuthAnswer::Failed(code) => code,
                    _ => error_code::RTM_EC_INVALID_AUTH_TOEKN,
                };
                self.end_series(n, code, 0)
            }
            (AuthAnswer::Rejected, Purpose::Login(callback)) => {
                self.out.push(Action::CompleteLogin {
                    callback,
                    ok: false,
                    code: 0,
                })
            }
            (AuthAnswer::Failed(code), Purpose::Login(callback)) => {
                self.out.push(Action::CompleteLogin {
                    callback,
                    ok: false,
                    code,
                })
            }
            (AuthAnswer::Rejected, Purpose::Relogin(n)) => {
                let code = error_code::RTM_EC_INVALID_AUTH_TOEKN;
                self.end_series(n, code, code)
            }
            (AuthAnswer::Failed(code), Purpose::Relogin(n))
                if error_code::is_fatal_relogin_code(code) =>
            {
                self.end_series(n, code, code)
            }
            (AuthAnswer::Failed(code), Purpose::Relogin(n)) => self.retry(n, code, now),
        }
    }

    /// Relogin attempt `n` failed with `code`; the series goes on.
    fn retry(&mut self, n: u32, code: i32, now: Instant) {
        self.out.push(Action::ReloginCompleted {
            ok: false,
            again: true,
            code,
            attempt: n,
        });
        self.schedule(n.saturating_add(1), now);
    }

    /// Relogin attempt `n` failed with `code` and the series ends: the session
    /// ends with `SessionClosed(closed)` (the code, or 0 after a kickout).
    fn end_series(&mut self, n: u32, code: i32, closed: i32) {
        self.out.push(Action::ReloginCompleted {
            ok: false,
            again: false,
            code,
            attempt: n,
        });
        self.out.push(Action::SessionClosed { code: closed });
        self.state = State::Idle;
    }

    /// Relogin attempt `n`, after its wait from `now`.
    fn schedule(&mut self, n: u32, now: Instant) {
        let wait = relogin_delay(&self.config.strategy, n) / self.config.delay_divisor.max(1);
        if wait.is_zero() {
            log::debug!("relogin attempt {n} now");
            return self.attempt(Purpose::Relogin(n));
        }
        log::debug!("relogin attempt {n} in {} ms", wait.as_millis());
        let until = deadline_from(now, wait);
        self.state = State::Waiting { attempt: n, until };
        self.out.push(Action::WakeAt(until));
    }

    /// The online connection `serial` is gone (closed, or silent too long).
    fn lost(&mut self, serial: u64, now: Instant) {
        self.out.push(Action::CloseConnection { serial });
        if self.config.auto_reconnect {
            self.schedule(1, now);
        } else {
            self.state = State::Idle;
            self.out.push(Action::SessionClosed {
                code: error_code::FPNN_EC_CORE_UNKNOWN_ERROR,
            });
        }
    }

    fn kicked_out(&mut self, serial: u64) {
        self.state = State::Idle;
        self.out.push(Action::SessionClosed { code: 0 });
        self.out.push(Action::CloseConnection { serial });
    }

    fn tick(&mut self, now: Instant) {
        match self.state {
            State::Online { serial, last_ping } => {
                let deadline = deadline_from(last_ping, self.config.max_ping);
                if now < deadline {
                    return self.out.push(Action::WakeAt(deadline));
                }
                let silent = now.saturating_duration_since(last_ping);
                self.out.push(Action::ErrorRecorder {
                    code: error_code::FPNN_EC_CORE_TIMEOUT,
                    ex: format!(
                        "no ping from the gate for {} ms: connection considered dead",
                        silent.as_millis()
                    ),
                });
                self.lost(serial, now);
            }
            State::Waiting { attempt, until } => {
                if now < until {
                    return self.out.push(Action::WakeAt(until));
                }
                self.attempt(Purpose::Relogin(attempt));
            }
            _ => {}
        }
    }

    fn close(&mut self) {
        if self.retire() {
            self.out.push(Action::SessionClosed { code: 0 });
        }
    }

    /// Ends the current session without events: its connect is aborted, its
    /// connection closed, its login completed with 20002. Returns whether it
    /// had logged in (so that `close` owes it a `SessionClosed`).
    fn retire(&mut self) -> bool {
        self.generation += 1;
        let (purpose, established) = match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => (None, false),
            State::Connecting { serial, purpose } => {
                self.out.push(Action::CancelConnect { serial });
                (Some(purpose), false)
            }
            State::Authenticating {
                serial, purpose, ..
            } => {
                self.out.push(Action::CloseConnection { serial });
                (Some(purpose), false)
            }
            State::Online { serial, .. } => {
                self.out.push(Action::CloseConnection { serial });
                (None, true)
            }
            State::Waiting { .. } => (None, true),
        };
        match purpose {
            Some(Purpose::Login(callback)) => {
                self.out.push(Action::CompleteLogin {
                    callback,
                    ok: false,
                    code: closed(),
                });
                false
            }
            Some(Purpose::Relogin(_)) => true,
            None => established,
        }
    }
}

fn closed() -> i32 {
    error_code::FPNN_EC_CORE_CONNECTION_CLOSED
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
