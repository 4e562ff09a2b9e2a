//! The public data types of the client: options, push events and pushed messages here,
//! and the results of the API methods in one file per area of the JavaScript docs
//! (`messages.rs`, ...), re-exported here so every type is `rtm_client::types::X`.
//!
//! Every type mirrors a JavaScript RTM SDK object (named in its documentation) field by
//! field, with the conventions of docs/porting.md: ids and times are `i64`, `mtype` is
//! `u8`, counts are `i32`. Message bodies are offered twice: as text (`msg`, `None` when the
//! bytes are not valid UTF-8) and as raw bytes (`binary`, always).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

mod conversations;
mod data;
mod files;
mod groups;
mod messages;
mod rooms;
mod system;
mod users;
mod value_added;

pub use conversations::*;
pub use data::*;
pub use files::*;
pub use groups::*;
pub use messages::*;
pub use rooms::*;
pub use system::*;
pub use users::*;
pub use value_added::*;

/// Well-known message types (`mtype`).
///
/// Mirrors `RTMConfig.CHAT_TYPE` and `RTMConfig.FILE_TYPE` of the JavaScript SDK.
/// Applications use 51..=127 for their own message types.
pub mod mtype {
    /// 30: a chat text message. Mirrors `RTMConfig.CHAT_TYPE.text`.
    pub const CHAT_TEXT: u8 = 30;
    /// 31: a chat audio message. Mirrors `RTMConfig.CHAT_TYPE.audio`.
    pub const CHAT_AUDIO: u8 = 31;
    /// 32: a chat command message. Mirrors `RTMConfig.CHAT_TYPE.cmd`.
    pub const CHAT_CMD: u8 = 32;
    /// 40: an image file. Mirrors `RTMConfig.FILE_TYPE.image`.
    pub const FILE_IMAGE: u8 = 40;
    /// 41: an audio file. Mirrors `RTMConfig.FILE_TYPE.audio`.
    pub const FILE_AUDIO: u8 = 41;
    /// 42: a video file. Mirrors `RTMConfig.FILE_TYPE.video`.
    pub const FILE_VIDEO: u8 = 42;
    /// 50: a generic file (the server may rewrite it to 40..=42). Mirrors
    /// `RTMConfig.FILE_TYPE.file`.
    pub const FILE_FILE: u8 = 50;
    /// 40: the first mtype routed to the file events (docs/protocol.md section 7).
    /// Rust-only (a routing bound, no JavaScript constant).
    pub const FILE_FIRST: u8 = 40;
    /// 50: the last mtype routed to the file events (docs/protocol.md section 7).
    /// Rust-only (a routing bound, no JavaScript constant).
    pub const FILE_LAST: u8 = 50;
    /// 51: the first mtype free for applications. Rust-only (no
    /// JavaScript constant).
    pub const APP_FIRST: u8 = 51;
    /// 127: the last mtype free for applications. Rust-only (no
    /// JavaScript constant).
    pub const APP_LAST: u8 = 127;
}

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// Options of a client, given to `RtmClient::new`.
///
/// Mirrors the options object of the JavaScript `new RTMClient({...})`: `endpoint`,
/// `ssl_endpoint`, `pid`, `autoReconnect`, `connectionTimeout`, `maxPingIntervalSeconds`,
/// `attrs` and `regressiveStrategy`, plus Rust additions (`dispatch`, TLS roots, file
/// endpoint). Every field has a default, so
/// `RtmOptions { pid: 1, endpoint: Some("host:13321".into()), ..Default::default() }` works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmOptions {
    /// The gate, as `"host:port"` (ws). A port of 13325 (the TCP gate port) is rewritten
    /// to 13321 (the WebSocket port). Default `None`. Mirrors JavaScript `endpoint`.
    pub endpoint: Option<String>,
    /// The TLS gate, as `"host:port"` (or `wss://host:port`; a `ws://` URL is refused).
    /// When set it replaces `endpoint` and the client connects with wss. Default `None`.
    /// Mirrors JavaScript `ssl_endpoint`.
    pub ssl_endpoint: Option<String>,
    /// The project id. Default 0. Mirrors JavaScript `pid`.
    pub pid: i64,
    /// Whether to log in again automatically after an unexpected close. Default `true`.
    /// Mirrors JavaScript `autoReconnect`.
    pub auto_reconnect: bool,
    /// Connection timeout in milliseconds: DNS, TCP, TLS and the WebSocket
    /// handshake of the gate's connection (and of a file send's proxy connection) must
    /// complete within it. 0 means the default, 30 000, as a call's `timeout` of 0 means
    /// its default and as JavaScript treats `connectionTimeout: 0`. Default 30 000.
    /// Mirrors JavaScript `connectionTimeout`.
    pub connection_timeout: u64,
    /// The connection counts as dead when the gate sent no `ping` for this many seconds.
    /// 0 means the default, 60, as JavaScript treats `maxPingIntervalSeconds: 0` (it
    /// was a one-second watchdog, which dropped every session). Default 60. Mirrors
    /// JavaScript `maxPingIntervalSeconds`.
    pub max_ping_interval_seconds: u64,
    /// Attributes sent with `auth`; `None` leaves the key out. Default `None`. Mirrors
    /// JavaScript `attrs`.
    pub attrs: Option<HashMap<String, String>>,
    /// Delays of the automatic relogin. Default `{3, 8, 4}`. Mirrors JavaScript
    /// `regressiveStrategy`.
    pub regressive_strategy: RegressiveStrategy,
    /// How callbacks and events are delivered. Default [`Dispatch::Threads`]. A Rust
    /// addition (JavaScript has its event loop).
    pub dispatch: Dispatch,
    /// Extra root certificates (DER) to trust for wss, on top of the built-in web roots.
    /// Default empty; an entry that is not a DER certificate makes `RtmClient::new` fail
    /// with 20012. A Rust addition (browsers have their own trust store).
    pub tls_root_certificates: Vec<Vec<u8>>,
    /// The file proxy the file sends (`send_file` and friends) upload to, as
    /// `"host:port"` (wss when the client uses it; a `ws://` or `wss://` prefix chooses).
    /// `None` derives it from the gate: `fileproxy-HOST:13461` (`:13462` with TLS) when
    /// the gate's host is a DNS name, the `endpoint` of the `filetoken` answer when it is
    /// an IP address (docs/Files.md). Default `None`. A Rust addition (JavaScript always
    /// derives it).
    pub file_endpoint: Option<String>,
    /// Whether a quest whose answer a reconnect would lose is sent again on the next
    /// session instead of failing. When on, a call that is safe to send twice (sends,
    /// which keep their mid; reads; set-like writes: docs/reliability.md lists them) and
    /// that was sent but not answered when the connection dropped, or that is made while
    /// the client logs in again after a lost connection, waits for the next session and
    /// is sent there, until its own timeout: then it fails with 20003, never with 20002
    /// or 20012. At most 65,536 quests wait; beyond that a call fails with 20011. When
    /// the session ends for good (`close`, `bye`, kickout, `destroy`, a rejected relogin,
    /// `auto_reconnect` off), the waiting ones fail at once with the code they would get
    /// with the option off (20002 when sent, 20012 when made while reconnecting).
    /// Default `false`, as JavaScript behaves. A Rust addition.
    pub resend_on_reconnect: bool,
}

/// Default of [`RtmOptions::connection_timeout`], also what 0 stands for.
pub(crate) const DEFAULT_CONNECTION_TIMEOUT_MS: u64 = 30_000;

impl RtmOptions {
    /// The connection timeout in use: `connection_timeout`, 0 meaning the default.
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(match self.connection_timeout {
            0 => DEFAULT_CONNECTION_TIMEOUT_MS,
            ms => ms,
        })
    }

    /// The ping watchdog's bound in use: `max_ping_interval_seconds`, 0 meaning the
    /// default.
    pub(crate) fn max_ping_interval(&self) -> Duration {
        Duration::from_secs(match self.max_ping_interval_seconds {
            0 => DEFAULT_MAX_PING_INTERVAL_SECONDS,
            s => s,
        })
    }
}

/// Default of [`RtmOptions::max_ping_interval_seconds`], also what 0 stands for.
pub(crate) const DEFAULT_MAX_PING_INTERVAL_SECONDS: u64 = 60;

impl Default for RtmOptions {
    fn default() -> RtmOptions {
        RtmOptions {
            endpoint: None,
            ssl_endpoint: None,
            pid: 0,
            auto_reconnect: true,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT_MS,
            max_ping_interval_seconds: DEFAULT_MAX_PING_INTERVAL_SECONDS,
            attrs: None,
            regressive_strategy: RegressiveStrategy::default(),
            dispatch: Dispatch::default(),
            tls_root_certificates: Vec::new(),
            file_endpoint: None,
            resend_on_reconnect: false,
        }
    }
}

/// The delays between automatic relogin attempts (docs/protocol.md section 6).
///
/// Mirrors JavaScript `regressiveStrategy` (`startConnectFailedCount`,
/// `maxIntervalSeconds`, `linearRegressiveCount`). With the default `{3, 8, 4}` the attempts
/// wait 0, 0, 0, 2000, 4000, 6000, 8000, 8000, ... ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegressiveStrategy {
    /// How many attempts are made at once before delays start. Default 3. Mirrors
    /// JavaScript `startConnectFailedCount`.
    pub start_connect_failed_count: u32,
    /// The longest delay, in seconds. Default 8. Mirrors JavaScript `maxIntervalSeconds`.
    pub max_interval_seconds: u64,
    /// In how many equal steps the delay grows to its maximum. Default 4. 0 counts as
    /// 1: every delayed attempt waits `max_interval_seconds`, as JavaScript's step
    /// `maxIntervalSeconds * 1000 / 0` (infinite, capped at the maximum) makes it
    /// wait. Mirrors JavaScript `linearRegressiveCount`.
    pub linear_regressive_count: u32,
}

impl Default for RegressiveStrategy {
    fn default() -> RegressiveStrategy {
        RegressiveStrategy {
            start_connect_failed_count: 3,
            max_interval_seconds: 8,
            linear_regressive_count: 4,
        }
    }
}

/// How the client delivers callbacks and events.
///
/// A Rust addition with no JavaScript counterpart: JavaScript runs everything on its event
/// loop, which `Queued` imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Dispatch {
    /// Callbacks and events run as soon as they are ready, in order, on the one dispatcher
    /// thread the process shares between its clients (a callback that blocks delays every
    /// client's callbacks; docs/architecture.md).
    #[default]
    Threads,
    /// Callbacks and events wait until the application calls `dispatch_pending()`, and run
    /// on the caller's thread.
    Queued,
    /// As `Threads`, except that the callback of an answer, and the handlers of a message
    /// push, run on the connection's reader thread as soon as it is read, when nothing of
    /// this client waits in its queue or runs on the dispatcher thread: the way JavaScript
    /// runs callbacks on the event loop that reads the socket, with no thread hand-off per
    /// answer or push. Timeouts, calls refused at once and the client's other events
    /// (`ReloginCompleted`, `SessionClosed`, `ErrorRecorder`, ping and kickouts) still go
    /// through the dispatcher thread, and the client's callbacks and handlers keep one
    /// order and never run two at a time.
    ///
    /// A push's handlers run after its answer has gone out (with the answers of the other
    /// pushes of the same read, in one write; docs/protocol.md, "Answer first").
    ///
    /// The price: while such a callback or handler runs, the connection reads nothing (no
    /// answers, pushes or pings), so it must not wait long; and
    /// [`blocking`](crate::blocking) inside one fails at once with 20013
    /// (`FPNN_EC_CORE_FORBIDDEN`), since its answer would wait for the very thread that
    /// waits on it (docs/architecture.md).
    Inline,
}

// ---------------------------------------------------------------------------------------
// Pushes
// ---------------------------------------------------------------------------------------

/// A push event an application can listen to with `RtmProcessor::on`.
///
/// Mirrors the message events of JavaScript `RTMConfig.SERVER_PUSH` (`recvMessage`
/// `'pushmsg'`, ...); [`PushEvent::name`] gives the JavaScript event name. `kickout`,
/// `kickoutroom` and `ping` have their own handlers. Routing by mtype: docs/protocol.md
/// section 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushEvent {
    /// `pushmsg`: a p2p message of an application mtype. Mirrors `recvMessage`.
    RecvMessage,
    /// `pushgroupmsg`: a group message of an application mtype. Mirrors `recvGroupMessage`.
    RecvGroupMessage,
    /// `pushroommsg`: a room message of an application mtype. Mirrors `recvRoomMessage`.
    RecvRoomMessage,
    /// `pushbroadcastmsg`: a broadcast message of an application mtype. Mirrors
    /// `recvBroadcastMessage`.
    RecvBroadcastMessage,
    /// `pushfile`: a p2p file (mtype 40..=50). Mirrors `recvFile`.
    RecvFile,
    /// `pushgroupfile`: a group file (mtype 40..=50). Mirrors `recvGroupFile`.
    RecvGroupFile,
    /// `pushroomfile`: a room file (mtype 40..=50). Mirrors `recvRoomFile`.
    RecvRoomFile,
    /// `pushbroadcastfile`: a broadcast file (mtype 40..=50). Mirrors `recvBroadcastFile`.
    RecvBroadcastFile,
    /// `pushchat`: a p2p chat text (mtype 30). Mirrors `recvChat`.
    RecvChat,
    /// `pushgroupchat`: a group chat text (mtype 30). Mirrors `recvGroupChat`.
    RecvGroupChat,
    /// `pushroomchat`: a room chat text (mtype 30). Mirrors `recvRoomChat`.
    RecvRoomChat,
    /// `pushbroadcastchat`: a broadcast chat text (mtype 30). Mirrors `recvBroadcastChat`.
    RecvBroadcastChat,
    /// `pushaudio`: a p2p chat audio (mtype 31). Mirrors `recvAudio`.
    RecvAudio,
    /// `pushgroupaudio`: a group chat audio (mtype 31). Mirrors `recvGroupAudio`.
    RecvGroupAudio,
    /// `pushroomaudio`: a room chat audio (mtype 31). Mirrors `recvRoomAudio`.
    RecvRoomAudio,
    /// `pushbroadcastaudio`: a broadcast chat audio (mtype 31). Mirrors
    /// `recvBroadcastAudio`.
    RecvBroadcastAudio,
    /// `pushcmd`: a p2p chat command (mtype 32). Mirrors `recvCmd`.
    RecvCmd,
    /// `pushgroupcmd`: a group chat command (mtype 32). Mirrors `recvGroupCmd`.
    RecvGroupCmd,
    /// `pushroomcmd`: a room chat command (mtype 32). Mirrors `recvRoomCmd`.
    RecvRoomCmd,
    /// `pushbroadcastcmd`: a broadcast chat command (mtype 32). Mirrors `recvBroadcastCmd`.
    RecvBroadcastCmd,
}

impl PushEvent {
    /// All 20 events, in declaration order. Rust-only (for iterating
    /// over the events).
    pub const ALL: [PushEvent; 20] = [
        PushEvent::RecvMessage,
        PushEvent::RecvGroupMessage,
        PushEvent::RecvRoomMessage,
        PushEvent::RecvBroadcastMessage,
        PushEvent::RecvFile,
        PushEvent::RecvGroupFile,
        PushEvent::RecvRoomFile,
        PushEvent::RecvBroadcastFile,
        PushEvent::RecvChat,
        PushEvent::RecvGroupChat,
        PushEvent::RecvRoomChat,
        PushEvent::RecvBroadcastChat,
        PushEvent::RecvAudio,
        PushEvent::RecvGroupAudio,
        PushEvent::RecvRoomAudio,
        PushEvent::RecvBroadcastAudio,
        PushEvent::RecvCmd,
        PushEvent::RecvGroupCmd,
        PushEvent::RecvRoomCmd,
        PushEvent::RecvBroadcastCmd,
    ];

    /// The JavaScript event name, e.g. `"pushgroupchat"` for [`PushEvent::RecvGroupChat`].
    pub fn name(&self) -> &'static str {
        match self {
            PushEvent::RecvMessage => "pushmsg",
            PushEvent::RecvGroupMessage => "pushgroupmsg",
            PushEvent::RecvRoomMessage => "pushroommsg",
            PushEvent::RecvBroadcastMessage => "pushbroadcastmsg",
            PushEvent::RecvFile => "pushfile",
            PushEvent::RecvGroupFile => "pushgroupfile",
            PushEvent::RecvRoomFile => "pushroomfile",
            PushEvent::RecvBroadcastFile => "pushbroadcastfile",
            PushEvent::RecvChat => "pushchat",
            PushEvent::RecvGroupChat => "pushgroupchat",
            PushEvent::RecvRoomChat => "pushroomchat",
            PushEvent::RecvBroadcastChat => "pushbroadcastchat",
            PushEvent::RecvAudio => "pushaudio",
            PushEvent::RecvGroupAudio => "pushgroupaudio",
            PushEvent::RecvRoomAudio => "pushroomaudio",
            PushEvent::RecvBroadcastAudio => "pushbroadcastaudio",
            PushEvent::RecvCmd => "pushcmd",
            PushEvent::RecvGroupCmd => "pushgroupcmd",
            PushEvent::RecvRoomCmd => "pushroomcmd",
            PushEvent::RecvBroadcastCmd => "pushbroadcastcmd",
        }
    }

    /// The event with the given JavaScript event name, or `None` (the inverse of
    /// [`PushEvent::name`]).
    pub fn from_name(name: &str) -> Option<PushEvent> {
        PushEvent::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for PushEvent {
    /// Writes the JavaScript event name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of the four push methods a message arrived by.
///
/// Used for routing (docs/protocol.md section 7) and by the duplicate filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PushKind {
    /// `pushmsg`.
    P2p,
    /// `pushgroupmsg`.
    Group,
    /// `pushroommsg`.
    Room,
    /// `pushbroadcastmsg`.
    Broadcast,
}

impl PushKind {
    /// The kind of a gate push method, or `None` for any other method.
    pub(crate) fn from_method(method: &str) -> Option<PushKind> {
        match method {
            "pushmsg" => Some(PushKind::P2p),
            "pushgroupmsg" => Some(PushKind::Group),
            "pushroommsg" => Some(PushKind::Room),
            "pushbroadcastmsg" => Some(PushKind::Broadcast),
            _ => None,
        }
    }

    /// The kind number of the duplicate filter key: 1 p2p, 2 group, 3 room, 4 broadcast.
    pub(crate) fn code(self) -> u8 {
        match self {
            PushKind::P2p => 1,
            PushKind::Group => 2,
            PushKind::Room => 3,
            PushKind::Broadcast => 4,
        }
    }
}

/// The event a push of `kind` and `mtype` is dispatched to (docs/protocol.md section 7):
/// 40..=50 the file event, 30 chat, 31 audio, 32 cmd, anything else the message event.
pub(crate) fn push_event_for(kind: PushKind, mtype: u8) -> PushEvent {
    use PushEvent::*;
    #[derive(Clone, Copy)]
    enum Class {
        Message,
        File,
        Chat,
        Audio,
        Cmd,
    }
    let class = match mtype {
        mtype::FILE_FIRST..=mtype::FILE_LAST => Class::File,
        mtype::CHAT_TEXT => Class::Chat,
        mtype::CHAT_AUDIO => Class::Audio,
        mtype::CHAT_CMD => Class::Cmd,
        _ => Class::Message,
    };
    match (kind, class) {
        (PushKind::P2p, Class::Message) => RecvMessage,
        (PushKind::P2p, Class::File) => RecvFile,
        (PushKind::P2p, Class::Chat) => RecvChat,
        (PushKind::P2p, Class::Audio) => RecvAudio,
        (PushKind::P2p, Class::Cmd) => RecvCmd,
        (PushKind::Group, Class::Message) => RecvGroupMessage,
        (PushKind::Group, Class::File) => RecvGroupFile,
        (PushKind::Group, Class::Chat) => RecvGroupChat,
        (PushKind::Group, Class::Audio) => RecvGroupAudio,
        (PushKind::Group, Class::Cmd) => RecvGroupCmd,
        (PushKind::Room, Class::Message) => RecvRoomMessage,
        (PushKind::Room, Class::File) => RecvRoomFile,
        (PushKind::Room, Class::Chat) => RecvRoomChat,
        (PushKind::Room, Class::Audio) => RecvRoomAudio,
        (PushKind::Room, Class::Cmd) => RecvRoomCmd,
        (PushKind::Broadcast, Class::Message) => RecvBroadcastMessage,
        (PushKind::Broadcast, Class::File) => RecvBroadcastFile,
        (PushKind::Broadcast, Class::Chat) => RecvBroadcastChat,
        (PushKind::Broadcast, Class::Audio) => RecvBroadcastAudio,
        (PushKind::Broadcast, Class::Cmd) => RecvBroadcastCmd,
    }
}

/// A message pushed by the gate, handed to the handlers of [`PushEvent`]s.
///
/// Mirrors the `data` that JavaScript `processor.on('pushmsg' | 'pushgroupmsg' | ...,
/// function(data) {...})` handlers receive: `{from, gid?, rid?, mtype, mid, msg, attrs,
/// mtime}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushMessage {
    /// The sender's uid.
    pub from: i64,
    /// The group id, for group pushes; `None` otherwise.
    pub gid: Option<i64>,
    /// The room id, for room pushes; `None` otherwise.
    pub rid: Option<i64>,
    /// The message type.
    pub mtype: u8,
    /// The message id chosen by the sender.
    pub mid: i64,
    /// The body as text; `None` when its bytes are not valid UTF-8.
    pub msg: Option<String>,
    /// The body's raw bytes, always (whether it arrived as msgpack str or bin).
    pub binary: Vec<u8>,
    /// The message's attributes (invalid UTF-8 replaced by U+FFFD).
    pub attrs: String,
    /// The server time of the message, in milliseconds since the epoch.
    pub mtime: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn options_defaults() {
        let o = RtmOptions::default();
        assert_eq!(o.endpoint, None);
        assert_eq!(o.ssl_endpoint, None);
        assert_eq!(o.pid, 0);
        assert!(o.auto_reconnect);
        assert_eq!(o.connection_timeout, 30_000);
        assert_eq!(o.connect_timeout(), Duration::from_secs(30));
        let zero = RtmOptions {
            connection_timeout: 0,
            ..RtmOptions::default()
        };
        assert_eq!(zero.connect_timeout(), Duration::from_secs(30));
        let one = RtmOptions {
            connection_timeout: 1,
            ..RtmOptions::default()
        };
        assert_eq!(one.connect_timeout(), Duration::from_millis(1));
        let zero = RtmOptions {
            max_ping_interval_seconds: 0,
            ..RtmOptions::default()
        };
        assert_eq!(zero.max_ping_interval(), Duration::from_secs(60));
        let one = RtmOptions {
            max_ping_interval_seconds: 1,
            ..RtmOptions::default()
        };
        assert_eq!(one.max_ping_interval(), Duration::from_secs(1));
        assert_eq!(o.max_ping_interval_seconds, 60);
        assert_eq!(o.attrs, None);
        assert_eq!(
            o.regressive_strategy,
            RegressiveStrategy {
                start_connect_failed_count: 3,
                max_interval_seconds: 8,
                linear_regressive_count: 4,
            }
        );
        assert_eq!(o.dispatch, Dispatch::Threads);
        assert!(!o.resend_on_reconnect);
        assert!(o.tls_root_certificates.is_empty());
        assert_eq!(o.file_endpoint, None);

        let o2 = RtmOptions {
            pid: 1,
            ..Default::default()
        };
        assert_eq!(o2.pid, 1);
        assert_ne!(o, o2);
        assert_eq!(Dispatch::default(), Dispatch::Threads);
    }

    #[test]
    fn push_event_names() {
        let expected = [
            "pushmsg",
            "pushgroupmsg",
            "pushroommsg",
            "pushbroadcastmsg",
            "pushfile",
            "pushgroupfile",
            "pushroomfile",
            "pushbroadcastfile",
            "pushchat",
            "pushgroupchat",
            "pushroomchat",
            "pushbroadcastchat",
            "pushaudio",
            "pushgroupaudio",
            "pushroomaudio",
            "pushbroadcastaudio",
            "pushcmd",
            "pushgroupcmd",
            "pushroomcmd",
            "pushbroadcastcmd",
        ];
        for (e, name) in PushEvent::ALL.iter().zip(expected) {
            assert_eq!(e.name(), name);
            assert_eq!(e.to_string(), name);
            assert_eq!(PushEvent::from_name(name), Some(*e));
        }
        let distinct: HashSet<PushEvent> = PushEvent::ALL.into_iter().collect();
        assert_eq!(distinct.len(), 20);
        assert_eq!(PushEvent::from_name("ping"), None);
        assert_eq!(PushEvent::from_name("kickout"), None);
        assert_eq!(PushEvent::from_name(""), None);
    }

    #[test]
    fn push_kind_methods_and_codes() {
        assert_eq!(PushKind::from_method("pushmsg"), Some(PushKind::P2p));
        assert_eq!(PushKind::from_method("pushgroupmsg"), Some(PushKind::Group));
        assert_eq!(PushKind::from_method("pushroommsg"), Some(PushKind::Room));
        assert_eq!(
            PushKind::from_method("pushbroadcastmsg"),
            Some(PushKind::Broadcast)
        );
        assert_eq!(PushKind::from_method("pushchat"), None);
        assert_eq!(PushKind::from_method("ping"), None);
        assert_eq!(PushKind::P2p.code(), 1);
        assert_eq!(PushKind::Group.code(), 2);
        assert_eq!(PushKind::Room.code(), 3);
        assert_eq!(PushKind::Broadcast.code(), 4);
    }

    /// Every row of docs/protocol.md section 7's dispatch table, for every mtype 0..=255.
    #[test]
    fn push_routing_every_row() {
        use PushEvent::*;
        let table = [
            (
                PushKind::P2p,
                [RecvMessage, RecvFile, RecvChat, RecvAudio, RecvCmd],
            ),
            (
                PushKind::Group,
                [
                    RecvGroupMessage,
                    RecvGroupFile,
                    RecvGroupChat,
                    RecvGroupAudio,
                    RecvGroupCmd,
                ],
            ),
            (
                PushKind::Room,
                [
                    RecvRoomMessage,
                    RecvRoomFile,
                    RecvRoomChat,
                    RecvRoomAudio,
                    RecvRoomCmd,
                ],
            ),
            (
                PushKind::Broadcast,
                [
                    RecvBroadcastMessage,
                    RecvBroadcastFile,
                    RecvBroadcastChat,
                    RecvBroadcastAudio,
                    RecvBroadcastCmd,
                ],
            ),
        ];
        for (kind, [message, file, chat, audio, cmd]) in table {
            for m in 0..=255u8 {
                let want = match m {
                    40..=50 => file,
                    30 => chat,
                    31 => audio,
                    32 => cmd,
                    _ => message,
                };
                assert_eq!(push_event_for(kind, m), want, "{kind:?} mtype {m}");
            }
            // Spot checks of the boundaries, spelled out.
            assert_eq!(push_event_for(kind, 29), message);
            assert_eq!(push_event_for(kind, 33), message);
            assert_eq!(push_event_for(kind, 39), message);
            assert_eq!(push_event_for(kind, 40), file);
            assert_eq!(push_event_for(kind, 41), file);
            assert_eq!(push_event_for(kind, 42), file);
            assert_eq!(push_event_for(kind, 50), file);
            assert_eq!(push_event_for(kind, 51), message);
            assert_eq!(push_event_for(kind, 0), message);
            assert_eq!(push_event_for(kind, 255), message);
        }
    }
}
