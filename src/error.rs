//! Errors of the RTM client and the FPNN / RTM error codes.
//!
//! Mirrors the JavaScript SDK's `Error` objects (`err.code`, `err.ex`), the `{mid, error}`
//! object that the JavaScript send methods pass as `err`, and the error code tables
//! `FPConfig.ERROR_CODE` and `RTMConfig.ERROR_CODE` (see docs/protocol.md section 9).

use std::fmt;

/// An error reported by the SDK or by the server: an FPNN / RTM error code and a message.
///
/// Mirrors the JavaScript SDK's `Error` objects, which carry `code` and `ex`; a server error
/// answer `{code, ex}` becomes one of these unchanged. See [`error_code`] for the codes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtmError {
    /// The error code: one of [`error_code`], or any code a server sent.
    pub code: i32,
    /// The human-readable explanation (the `ex` of an FPNN error answer).
    pub ex: String,
}

impl RtmError {
    /// Builds an error from a code and an explanation. A Rust addition (a plain
    /// constructor; JavaScript code reads `err.code` and `err.ex`).
    pub fn new(code: i32, ex: impl Into<String>) -> RtmError {
        RtmError {
            code,
            ex: ex.into(),
        }
    }
}

impl fmt::Display for RtmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code: {} ex: {}", self.code, self.ex)
    }
}

impl std::error::Error for RtmError {}

/// The error of the send methods: the message id that was used and what went wrong.
///
/// Mirrors the `err` object `{mid, error}` that JavaScript `sendMessage`,
/// `sendGroupMessage`, `sendRoomMessage` (and the chat, audio, cmd and file variants) pass to
/// their callback. `mid` is the id actually sent (generated when the caller passed 0), so the
/// caller can resend with the same id and let the gate drop the duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SendError {
    /// The message id of the failed send (the generated one when the caller passed 0).
    pub mid: i64,
    /// What went wrong.
    pub error: RtmError,
}

impl SendError {
    /// Builds a send error from a message id and an error. A Rust addition (a
    /// plain constructor; JavaScript code reads `err.mid` and `err.error`).
    pub fn new(mid: i64, error: RtmError) -> SendError {
        SendError { mid, error }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mid: {} {}", self.mid, self.error)
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<SendError> for RtmError {
    /// Drops the message id and keeps the error.
    fn from(e: SendError) -> RtmError {
        e.error
    }
}

/// Every FPNN and RTM error code, under its JavaScript name (typos included).
///
/// Mirrors `FPConfig.ERROR_CODE` (the `FPNN_EC_*` codes) and `RTMConfig.ERROR_CODE` (the
/// `RTM_EC_*` codes) of the JavaScript SDK; docs/protocol.md section 9. The JavaScript names
/// `RTM_EC_DUPLCATED_AUTH`, `RTM_EC_INVALID_AUTH_TOEKN` and `RTM_EC_DUPLCATED_MID` are kept
/// as they are, so ported code compiles unchanged; correctly spelled aliases are provided.
pub mod error_code {
    // ---- FPNN: protocol ----

    /// 0: no error. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_OK`.
    pub const FPNN_EC_OK: i32 = 0;
    /// 10001: unknown protocol error.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_UNKNOWN_ERROR`.
    pub const FPNN_EC_PROTO_UNKNOWN_ERROR: i32 = 10001;
    /// 10002: protocol feature not supported.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_NOT_SUPPORTED`.
    pub const FPNN_EC_PROTO_NOT_SUPPORTED: i32 = 10002;
    /// 10003: invalid packet. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_INVALID_PACKAGE`.
    pub const FPNN_EC_PROTO_INVALID_PACKAGE: i32 = 10003;
    /// 10004: JSON conversion failed. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_JSON_CONVERT`.
    pub const FPNN_EC_PROTO_JSON_CONVERT: i32 = 10004;
    /// 10005: a map key is not a string.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_STRING_KEY`.
    pub const FPNN_EC_PROTO_STRING_KEY: i32 = 10005;
    /// 10006: a map value has the wrong type.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_MAP_VALUE`.
    pub const FPNN_EC_PROTO_MAP_VALUE: i32 = 10006;
    /// 10007: wrong method type. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_METHOD_TYPE`.
    pub const FPNN_EC_PROTO_METHOD_TYPE: i32 = 10007;
    /// 10008: wrong protocol type. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_PROTO_TYPE`.
    pub const FPNN_EC_PROTO_PROTO_TYPE: i32 = 10008;
    /// 10009: a required key is missing (also: `getMessage` found no such message).
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_KEY_NOT_FOUND`.
    pub const FPNN_EC_PROTO_KEY_NOT_FOUND: i32 = 10009;
    /// 10010: a value could not be converted to the expected type.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_PROTO_TYPE_CONVERT`.
    pub const FPNN_EC_PROTO_TYPE_CONVERT: i32 = 10010;

    // ---- FPNN: core ----

    /// 20001: unknown core error (also: connection lost without auto-reconnect).
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_UNKNOWN_ERROR`.
    pub const FPNN_EC_CORE_UNKNOWN_ERROR: i32 = 20001;
    /// 20002: the connection was closed before the answer arrived.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_CONNECTION_CLOSED`.
    pub const FPNN_EC_CORE_CONNECTION_CLOSED: i32 = 20002;
    /// 20003: the quest timed out. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_TIMEOUT`.
    pub const FPNN_EC_CORE_TIMEOUT: i32 = 20003;
    /// 20004: the server does not know the method.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_UNKNOWN_METHOD`.
    pub const FPNN_EC_CORE_UNKNOWN_METHOD: i32 = 20004;
    /// 20005: encoding failed. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_ENCODING`.
    pub const FPNN_EC_CORE_ENCODING: i32 = 20005;
    /// 20006: decoding failed. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_DECODING`.
    pub const FPNN_EC_CORE_DECODING: i32 = 20006;
    /// 20007: sending failed. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_SEND_ERROR`.
    pub const FPNN_EC_CORE_SEND_ERROR: i32 = 20007;
    /// 20008: receiving failed. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_RECV_ERROR`.
    pub const FPNN_EC_CORE_RECV_ERROR: i32 = 20008;
    /// 20009: invalid packet at the core level.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_INVALID_PACKAGE`.
    pub const FPNN_EC_CORE_INVALID_PACKAGE: i32 = 20009;
    /// 20010: HTTP error. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_HTTP_ERROR`.
    pub const FPNN_EC_CORE_HTTP_ERROR: i32 = 20010;
    /// 20011: the server's work queue is full.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_WORK_QUEUE_FULL`.
    pub const FPNN_EC_CORE_WORK_QUEUE_FULL: i32 = 20011;
    /// 20012: no usable connection (could not connect, or not connected).
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_INVALID_CONNECTION`.
    pub const FPNN_EC_CORE_INVALID_CONNECTION: i32 = 20012;
    /// 20013: forbidden. JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_FORBIDDEN`.
    pub const FPNN_EC_CORE_FORBIDDEN: i32 = 20013;
    /// 20014: the server is stopping.
    /// JavaScript: `FPConfig.ERROR_CODE.FPNN_EC_CORE_SERVER_STOPPING`.
    pub const FPNN_EC_CORE_SERVER_STOPPING: i32 = 20014;

    // ---- RTM ----

    /// 200001: invalid project id or user id.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_INVALID_PROJECT_ID_OR_USER_ID`.
    pub const RTM_EC_INVALID_PROJECT_ID_OR_USER_ID: i32 = 200001;
    /// 200002: invalid project id or signature.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_INVALID_PROJECT_ID_OR_SIGN`.
    pub const RTM_EC_INVALID_PROJECT_ID_OR_SIGN: i32 = 200002;
    /// 200003: invalid file, signature or token.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_INVALID_FILE_OR_SIGN_OR_TOKEN`.
    pub const RTM_EC_INVALID_FILE_OR_SIGN_OR_TOKEN: i32 = 200003;
    /// 200004: file attrs lack the signature or the extension.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_ATTRS_WITHOUT_SIGN_OR_EXT`.
    pub const RTM_EC_ATTRS_WITHOUT_SIGN_OR_EXT: i32 = 200004;
    /// 200010: API call frequency limited.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_API_FREQUENCY_LIMITED`.
    pub const RTM_EC_API_FREQUENCY_LIMITED: i32 = 200010;
    /// 200011: message frequency limited.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_MESSAGE_FREQUENCY_LIMITED`.
    pub const RTM_EC_MESSAGE_FREQUENCY_LIMITED: i32 = 200011;
    /// 200020: forbidden method. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_FORBIDDEN_METHOD`.
    pub const RTM_EC_FORBIDDEN_METHOD: i32 = 200020;
    /// 200021: permission denied. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_PERMISSION_DENIED`.
    pub const RTM_EC_PERMISSION_DENIED: i32 = 200021;
    /// 200022: not authenticated (a quest before `auth`).
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_UNAUTHORIZED`.
    pub const RTM_EC_UNAUTHORIZED: i32 = 200022;
    /// 200023: duplicated authentication (JavaScript spelling; see [`RTM_EC_DUPLICATED_AUTH`]).
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_DUPLCATED_AUTH`.
    pub const RTM_EC_DUPLCATED_AUTH: i32 = 200023;
    /// 200023: correctly spelled alias of [`RTM_EC_DUPLCATED_AUTH`].
    /// Rust-only (JavaScript has only the misspelled name).
    pub const RTM_EC_DUPLICATED_AUTH: i32 = RTM_EC_DUPLCATED_AUTH;
    /// 200024: authentication denied. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_AUTH_DENIED`.
    pub const RTM_EC_AUTH_DENIED: i32 = 200024;
    /// 200025: admin login. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_ADMIN_LOGIN`.
    pub const RTM_EC_ADMIN_LOGIN: i32 = 200025;
    /// 200026: admin only. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_ADMIN_ONLY`.
    pub const RTM_EC_ADMIN_ONLY: i32 = 200026;
    /// 200027: invalid auth token (JavaScript spelling; see [`RTM_EC_INVALID_AUTH_TOKEN`]).
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_INVALID_AUTH_TOEKN`.
    pub const RTM_EC_INVALID_AUTH_TOEKN: i32 = 200027;
    /// 200027: correctly spelled alias of [`RTM_EC_INVALID_AUTH_TOEKN`].
    /// Rust-only (JavaScript has only the misspelled name).
    pub const RTM_EC_INVALID_AUTH_TOKEN: i32 = RTM_EC_INVALID_AUTH_TOEKN;
    /// 200030: message or attrs too large.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_LARGE_MESSAGE_OR_ATTRS`.
    pub const RTM_EC_LARGE_MESSAGE_OR_ATTRS: i32 = 200030;
    /// 200031: file or attrs too large.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_LARGE_FILE_OR_ATTRS`.
    pub const RTM_EC_LARGE_FILE_OR_ATTRS: i32 = 200031;
    /// 200032: too many items in a parameter.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_TOO_MANY_ITEMS_IN_PARAMETERS`.
    pub const RTM_EC_TOO_MANY_ITEMS_IN_PARAMETERS: i32 = 200032;
    /// 200033: empty or invalid parameter (also: invalid client options or arguments).
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_EMPTY_PARAMETER`.
    pub const RTM_EC_EMPTY_PARAMETER: i32 = 200033;
    /// 200040: not in the room. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_NOT_IN_ROOM`.
    pub const RTM_EC_NOT_IN_ROOM: i32 = 200040;
    /// 200041: not a member of the group.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_NOT_GROUP_MEMBER`.
    pub const RTM_EC_NOT_GROUP_MEMBER: i32 = 200041;
    /// 200042: the group has reached its maximum member count.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_MAX_GROUP_MEMBER_COUNT`.
    pub const RTM_EC_MAX_GROUP_MEMBER_COUNT: i32 = 200042;
    /// 200043: not a friend. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_NOT_FRIEND`.
    pub const RTM_EC_NOT_FRIEND: i32 = 200043;
    /// 200044: banned in the group. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_BANNED_IN_GROUP`.
    pub const RTM_EC_BANNED_IN_GROUP: i32 = 200044;
    /// 200045: banned in the room. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_BANNED_IN_ROOM`.
    pub const RTM_EC_BANNED_IN_ROOM: i32 = 200045;
    /// 200046: the group is empty. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_EMPTY_GROUP`.
    pub const RTM_EC_EMPTY_GROUP: i32 = 200046;
    /// 200047: entered too many rooms.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_ENTER_TOO_MANY_ROOMS`.
    pub const RTM_EC_ENTER_TOO_MANY_ROOMS: i32 = 200047;
    /// 200050: unsupported language.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_UNSUPPORTED_LANGUAGE`.
    pub const RTM_EC_UNSUPPORTED_LANGUAGE: i32 = 200050;
    /// 200051: the translation is empty.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_EMPTY_TRANSLATION`.
    pub const RTM_EC_EMPTY_TRANSLATION: i32 = 200051;
    /// 200052: sending to oneself. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_SEND_TO_SELF`.
    pub const RTM_EC_SEND_TO_SELF: i32 = 200052;
    /// 200053: duplicated message id (JavaScript spelling; see [`RTM_EC_DUPLICATED_MID`]).
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_DUPLCATED_MID`.
    pub const RTM_EC_DUPLCATED_MID: i32 = 200053;
    /// 200053: correctly spelled alias of [`RTM_EC_DUPLCATED_MID`].
    /// Rust-only (JavaScript has only the misspelled name).
    pub const RTM_EC_DUPLICATED_MID: i32 = RTM_EC_DUPLCATED_MID;
    /// 200054: the text contains sensitive words.
    /// JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_SENSITIVE_WORDS`.
    pub const RTM_EC_SENSITIVE_WORDS: i32 = 200054;
    /// 200999: unknown RTM error. JavaScript: `RTMConfig.ERROR_CODE.RTM_EC_UNKNOWN_ERROR`.
    pub const RTM_EC_UNKNOWN_ERROR: i32 = 200999;

    /// Whether an automatic relogin that failed with `code` must stop for good.
    ///
    /// True for the codes after which retrying cannot help (docs/protocol.md section 10 item 5):
    /// 200001, 200002, 200020, 200021, 200024, 200025, 200026 and 200027. The session then
    /// ends with `SessionClosed(code)`. Every other code (timeouts, closed connections, other
    /// server errors) keeps the regressive reconnect strategy going.
    ///
    /// Rust-only: the JavaScript SDK has no such list, since it stops reconnecting
    /// after any failed relogin `auth` (docs/protocol.md section 10 item 5).
    pub fn is_fatal_relogin_code(code: i32) -> bool {
        matches!(
            code,
            RTM_EC_INVALID_PROJECT_ID_OR_USER_ID
                | RTM_EC_INVALID_PROJECT_ID_OR_SIGN
                | RTM_EC_FORBIDDEN_METHOD
                | RTM_EC_PERMISSION_DENIED
                | RTM_EC_AUTH_DENIED
                | RTM_EC_ADMIN_LOGIN
                | RTM_EC_ADMIN_ONLY
                | RTM_EC_INVALID_AUTH_TOEKN
        )
    }
}

#[cfg(test)]
mod tests {
    use super::error_code::*;
    use super::*;
    use std::error::Error;

    #[test]
    fn rtm_error_display_and_new() {
        let e = RtmError::new(20003, "timeout");
        assert_eq!(e.to_string(), "code: 20003 ex: timeout");
        assert_eq!(e, RtmError::new(20003, String::from("timeout")));
        assert!(e.source().is_none());
    }

    #[test]
    fn send_error_display_source_and_conversion() {
        let inner = RtmError::new(FPNN_EC_CORE_CONNECTION_CLOSED, "closed");
        let e = SendError::new(1700000000123007, inner.clone());
        assert_eq!(
            e.to_string(),
            "mid: 1700000000123007 code: 20002 ex: closed"
        );
        let src = e.source().expect("source");
        assert_eq!(src.to_string(), inner.to_string());
        let back: RtmError = e.into();
        assert_eq!(back, inner);
    }

    #[test]
    fn codes_match_protocol_section_8() {
        let fpnn = [
            (FPNN_EC_OK, 0),
            (FPNN_EC_PROTO_UNKNOWN_ERROR, 10001),
            (FPNN_EC_PROTO_NOT_SUPPORTED, 10002),
            (FPNN_EC_PROTO_INVALID_PACKAGE, 10003),
            (FPNN_EC_PROTO_JSON_CONVERT, 10004),
            (FPNN_EC_PROTO_STRING_KEY, 10005),
            (FPNN_EC_PROTO_MAP_VALUE, 10006),
            (FPNN_EC_PROTO_METHOD_TYPE, 10007),
            (FPNN_EC_PROTO_PROTO_TYPE, 10008),
            (FPNN_EC_PROTO_KEY_NOT_FOUND, 10009),
            (FPNN_EC_PROTO_TYPE_CONVERT, 10010),
            (FPNN_EC_CORE_UNKNOWN_ERROR, 20001),
            (FPNN_EC_CORE_CONNECTION_CLOSED, 20002),
            (FPNN_EC_CORE_TIMEOUT, 20003),
            (FPNN_EC_CORE_UNKNOWN_METHOD, 20004),
            (FPNN_EC_CORE_ENCODING, 20005),
            (FPNN_EC_CORE_DECODING, 20006),
            (FPNN_EC_CORE_SEND_ERROR, 20007),
            (FPNN_EC_CORE_RECV_ERROR, 20008),
            (FPNN_EC_CORE_INVALID_PACKAGE, 20009),
            (FPNN_EC_CORE_HTTP_ERROR, 20010),
            (FPNN_EC_CORE_WORK_QUEUE_FULL, 20011),
            (FPNN_EC_CORE_INVALID_CONNECTION, 20012),
            (FPNN_EC_CORE_FORBIDDEN, 20013),
            (FPNN_EC_CORE_SERVER_STOPPING, 20014),
        ];
        let rtm = [
            (RTM_EC_INVALID_PROJECT_ID_OR_USER_ID, 200001),
            (RTM_EC_INVALID_PROJECT_ID_OR_SIGN, 200002),
            (RTM_EC_INVALID_FILE_OR_SIGN_OR_TOKEN, 200003),
            (RTM_EC_ATTRS_WITHOUT_SIGN_OR_EXT, 200004),
            (RTM_EC_API_FREQUENCY_LIMITED, 200010),
            (RTM_EC_MESSAGE_FREQUENCY_LIMITED, 200011),
            (RTM_EC_FORBIDDEN_METHOD, 200020),
            (RTM_EC_PERMISSION_DENIED, 200021),
            (RTM_EC_UNAUTHORIZED, 200022),
            (RTM_EC_DUPLCATED_AUTH, 200023),
            (RTM_EC_AUTH_DENIED, 200024),
            (RTM_EC_ADMIN_LOGIN, 200025),
            (RTM_EC_ADMIN_ONLY, 200026),
            (RTM_EC_INVALID_AUTH_TOEKN, 200027),
            (RTM_EC_LARGE_MESSAGE_OR_ATTRS, 200030),
            (RTM_EC_LARGE_FILE_OR_ATTRS, 200031),
            (RTM_EC_TOO_MANY_ITEMS_IN_PARAMETERS, 200032),
            (RTM_EC_EMPTY_PARAMETER, 200033),
            (RTM_EC_NOT_IN_ROOM, 200040),
            (RTM_EC_NOT_GROUP_MEMBER, 200041),
            (RTM_EC_MAX_GROUP_MEMBER_COUNT, 200042),
            (RTM_EC_NOT_FRIEND, 200043),
            (RTM_EC_BANNED_IN_GROUP, 200044),
            (RTM_EC_BANNED_IN_ROOM, 200045),
            (RTM_EC_EMPTY_GROUP, 200046),
            (RTM_EC_ENTER_TOO_MANY_ROOMS, 200047),
            (RTM_EC_UNSUPPORTED_LANGUAGE, 200050),
            (RTM_EC_EMPTY_TRANSLATION, 200051),
            (RTM_EC_SEND_TO_SELF, 200052),
            (RTM_EC_DUPLCATED_MID, 200053),
            (RTM_EC_SENSITIVE_WORDS, 200054),
            (RTM_EC_UNKNOWN_ERROR, 200999),
        ];
        for (got, want) in fpnn.iter().chain(rtm.iter()) {
            assert_eq!(got, want);
        }
        assert_eq!(RTM_EC_DUPLICATED_AUTH, 200023);
        assert_eq!(RTM_EC_INVALID_AUTH_TOKEN, 200027);
        assert_eq!(RTM_EC_DUPLICATED_MID, 200053);
    }

    #[test]
    fn fatal_relogin_codes() {
        for code in [
            200001, 200002, 200020, 200021, 200024, 200025, 200026, 200027,
        ] {
            assert!(is_fatal_relogin_code(code), "{code} should be fatal");
        }
        for code in [
            0, 20001, 20002, 20003, 20012, 200003, 200010, 200022, 200023, 200033, 200999, -1,
        ] {
            assert!(!is_fatal_relogin_code(code), "{code} should not be fatal");
        }
    }
}
