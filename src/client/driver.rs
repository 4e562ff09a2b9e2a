//! The session driver: the thin layer between the pure machine
//! (`machine.rs`) and the world. It owns the session lock ([`Core`]: the
//! machine, the current connection and the connect in progress), feeds the
//! machine events from any thread ([`Inner::step`]), and performs its
//! actions: events and login callbacks are queued under the lock (queuing
//! runs no user code, and keeps them in the machine's order); connections
//! are closed, `auth` and `bye` sent after it is released (a closed
//! connection completes a quest on the calling thread, which steps again).
//! A connect runs on a thread of its own, which becomes the connection's
//! reader (`Connection::connect_then`); timers go to the process-wide timer
//! thread (`timers.rs`). So a client has no session thread of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmpv::Value;

use super::machine::{Action, AuthAnswer, Config, Event, Machine};
use super::push::PushHandler;
use super::{dur, timers, Inner, SDK_VERSION};
use crate::fpnn::{ConnectCancel, ConnectOptions, Connection};
use crate::types::RtmOptions;
use crate::value::{self, MapBuilder};

/// The login callback, carried by the machine until it completes.
pub(super) type LoginCallback = Box<dyn FnOnce(bool, i32) + Send>;

/// The session, behind the client's session lock.
pub(crate) struct Core {
    machine: Machine<LoginCallback>,
    /// The connection of the machine's current attempt, once open.
    conn: Option<(u64, Connection)>,
    /// The connect in progress, to abort it.
    connecting: Option<(u64, ConnectCancel)>,
}

impl Core {
    pub(super) fn new(o: &RtmOptions) -> Core {
        Core {
            machine: Machine::new(Config {
                max_ping: Duration::from_secs(o.max_ping_interval_seconds.max(1)),
                strategy: o.regressive_strategy,
                auto_reconnect: o.auto_reconnect,
                delay_divisor: 1,
            }),
            conn: None,
            connecting: None,
        }
    }

    /// The connection API calls use: only once the session is online.
    pub(super) fn online_connection(&self) -> Option<Connection> {
        let serial = self.machine.online_serial()?;
        self.connection(serial)
    }

    /// The connection whose quests are the session's (authenticating or
    /// online).
    pub(super) fn session_serial(&self) -> Option<u64> {
        self.machine.session_serial()
    }

    /// The uid of the last login.
    pub(super) fn uid(&self) -> Option<i64> {
        self.machine.uid()
    }

    pub(super) fn set_delay_divisor(&mut self, divisor: u32) {
        self.machine.set_delay_divisor(divisor);
    }

    fn connection(&self, serial: u64) -> Option<Connection> {
        match &self.conn {
            Some((s, c)) if *s == serial => Some(c.clone()),
            _ => None,
        }
    }
}

/// An action to perform once the session lock is released.
enum Later {
    Close(Connection),
    Cancel(ConnectCancel),
    Send {
        conn: Connection,
        method: &'static str,
        payload: Value,
        timeout: u64,
        on_answer: Box<dyn FnOnce(Result<Value, crate::RtmError>) + Send>,
    },
    Connect(u64, ConnectCancel),
    Wake(Instant),
}

impl Inner {
    /// Feeds the machine one event and performs its actions.
    pub(super) fn step(self: &Arc<Self>, event: Event<LoginCallback>) {
        let later = self.step_locked(event, |_| {});
        self.perform(later, false);
    }

    /// [`Inner::step`], running `prepare` on the session first, under the
    /// same lock.
    fn step_locked(
        self: &Arc<Self>,
        event: Event<LoginCallback>,
        prepare: impl FnOnce(&mut Core),
    ) -> Vec<Later> {
        let mut later = Vec::new();
        let mut core = self.core.lock();
        prepare(&mut core);
        let actions = core.machine.handle(event, Instant::now());
        for action in actions {
            self.act(&mut core, action, &mut later);
        }
        later
    }

    fn act(
        self: &Arc<Self>,
        core: &mut Core,
        action: Action<LoginCallback>,
        later: &mut Vec<Later>,
    ) {
        log::trace!("session: {action:?}");
        match action {
            Action::CompleteLogin { callback, ok, code } => {
                log::debug!("login of uid {:?} completed: ({ok}, {code})", core.uid());
                // Always through the queue: `blocking()`'s direct path is for
                // the one `(err, data)` callback it wraps.
                self.dispatcher
                    .callback(Box::new(move || callback(ok, code)));
            }
            Action::ErrorRecorder { code, ex } => self.emit_error(crate::RtmError::new(code, ex)),
            Action::ReloginCompleted {
                ok,
                again,
                code,
                attempt,
            } => self.emit_relogin(ok, again, code, attempt),
            Action::SessionClosed { code } => self.emit_closed(code),
            Action::CloseConnection { serial } => {
                if matches!(core.conn, Some((s, _)) if s == serial) {
                    if let Some((_, c)) = core.conn.take() {
                        later.push(Later::Close(c));
                    }
                }
            }
            Action::CancelConnect { serial } => {
                if matches!(core.connecting, Some((s, _)) if s == serial) {
                    if let Some((_, c)) = core.connecting.take() {
                        later.push(Later::Cancel(c));
                    }
                }
            }
            Action::Connect { serial } => {
                let cancel = ConnectCancel::new();
                core.connecting = Some((serial, cancel.clone()));
                later.push(Later::Connect(serial, cancel));
            }
            Action::WakeAt(at) => later.push(Later::Wake(at)),
            Action::SendAuth {
                serial,
                uid,
                token,
                timeout,
            } => {
                let Some(conn) = core.connection(serial) else {
                    return;
                };
                let payload = MapBuilder::new()
                    .put("pid", self.options.pid)
                    .put("uid", uid)
                    .put("token", token.as_str())
                    .put("version", SDK_VERSION)
                    .put_opt("attrs", self.options.attrs.as_ref().map(value::string_map))
                    .build();
                let weak = Arc::downgrade(self);
                later.push(Later::Send {
                    conn,
                    method: "auth",
                    payload,
                    timeout,
                    on_answer: Box::new(move |r| {
                        let answer = match r {
                            Ok(v)
                                if value::map_get(&v, "ok").and_then(value::as_bool)
                                    == Some(true) =>
                            {
                                AuthAnswer::Accepted
                            }
                            Ok(_) => AuthAnswer::Rejected,
                            Err(e) => AuthAnswer::Failed(e.code),
                        };
                        log::debug!("auth of uid {uid} answered: {answer:?}");
                        if let Some(inner) = weak.upgrade() {
                            inner.step(Event::AuthAnswered { serial, answer });
                        }
                    }),
                });
            }
            Action::SendBye { serial, generation } => {
                let Some(conn) = core.connection(serial) else {
                    return;
                };
                let weak = Arc::downgrade(self);
                later.push(Later::Send {
                    conn,
                    method: "bye",
                    payload: Value::Map(vec![]),
                    timeout: 0,
                    on_answer: Box::new(move |_| {
                        if let Some(inner) = weak.upgrade() {
                            inner.step(Event::ByeAnswered { generation });
                        }
                    }),
                });
            }
        }
    }

    /// Performs what [`Inner::act`] left for after the lock; with `join`,
    /// closed connections' threads are waited for.
    fn perform(self: &Arc<Self>, later: Vec<Later>, join: bool) {
        for l in later {
            match l {
                Later::Close(c) if join => c.close_and_join(),
                Later::Close(c) => c.close(),
                Later::Cancel(c) => c.cancel(),
                Later::Send {
                    conn,
                    method,
                    payload,
                    timeout,
                    on_answer,
                } => conn.send_quest(method, &payload, dur(timeout), on_answer),
                Later::Connect(serial, cancel) => self.connect(serial, cancel),
                Later::Wake(at) => timers::wake(self, at),
            }
        }
    }

    /// Opens the connection of attempt `serial`, on the thread that becomes
    /// its reader.
    fn connect(self: &Arc<Self>, serial: u64, cancel: ConnectCancel) {
        let options = ConnectOptions {
            connect_timeout: Duration::from_millis(self.options.connection_timeout.max(1)),
            extra_roots: self.options.tls_root_certificates.clone(),
            cancel: Some(cancel),
            ..ConnectOptions::default()
        };
        let handler = PushHandler {
            inner: Arc::downgrade(self),
            serial,
        };
        let weak = Arc::downgrade(self);
        log::debug!(
            "connecting to {} ({}), connection #{serial}",
            self.endpoint,
            if self.tls { "wss" } else { "ws" }
        );
        let on_close = move |_| {
            if let Some(inner) = weak.upgrade() {
                inner.step(Event::ConnectionLost { serial });
            }
        };
        let weak = Arc::downgrade(self);
        let started = Connection::connect_then(
            self.endpoint.clone(),
            self.tls,
            options,
            handler,
            on_close,
            move |r| {
                if let Some(inner) = weak.upgrade() {
                    inner.connected(serial, r);
                }
            },
        );
        if let Err(e) = started {
            log::error!("cannot start a connection thread: {e}");
            self.step(Event::ConnectFailed { serial });
        }
    }

    /// The connect of attempt `serial` is done, one way or the other.
    fn connected(self: &Arc<Self>, serial: u64, r: Result<Connection, crate::RtmError>) {
        let later = match r {
            Ok(conn) => {
                log::debug!("connected to {} (connection #{serial})", self.endpoint);
                let mut stale = None;
                let later = self.step_locked(Event::Connected { serial }, |core| {
                    if matches!(core.connecting, Some((s, _)) if s == serial) {
                        core.connecting = None;
                    }
                    // The machine closes it at once if the attempt is stale;
                    // one that finishes while a newer connection is in
                    // place is closed here.
                    match core.conn {
                        None => core.conn = Some((serial, conn)),
                        Some(_) => stale = Some(conn),
                    }
                });
                if let Some(c) = stale {
                    c.close();
                }
                later
            }
            Err(e) => {
                log::debug!("cannot connect to {}: {e}", self.endpoint);
                // The only place the reason reaches the application: the
                // login and relogin callbacks carry just the code (20012).
                self.emit_error(e);
                self.step_locked(Event::ConnectFailed { serial }, |core| {
                    if matches!(core.connecting, Some((s, _)) if s == serial) {
                        core.connecting = None;
                    }
                })
            }
        };
        self.perform(later, false);
    }

    /// `destroy()`: ends the session, waits for the connection's threads,
    /// drops the pending timer (after `mark_destroyed`, which `timers::wake`
    /// checks), then stops the dispatcher
    /// (docs/architecture.md). A connect in progress is aborted; its thread
    /// ends on its own.
    pub(super) fn destroy(self: &Arc<Self>) {
        self.dispatcher.mark_destroyed();
        let later = self.step_locked(Event::Destroy, |_| {});
        self.perform(later, true);
        timers::cancel(self.id);
        self.dispatcher.shutdown();
    }
}
