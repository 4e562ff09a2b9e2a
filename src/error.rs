//! TEMPORARY stub; replaced by the types branch.
use std::fmt;
/// Error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmError {
    /// Code.
    pub code: i32,
    /// Text.
    pub ex: String,
}
impl RtmError {
    /// New.
    pub fn new(code: i32, ex: impl Into<String>) -> Self {
        RtmError { code, ex: ex.into() }
    }
}
impl fmt::Display for RtmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code: {} ex: {}", self.code, self.ex)
    }
}
impl std::error::Error for RtmError {}
/// Codes.
pub mod error_code {
    /// x
    pub const FPNN_EC_CORE_UNKNOWN_ERROR: i32 = 20001;
    /// x
    pub const FPNN_EC_CORE_CONNECTION_CLOSED: i32 = 20002;
    /// x
    pub const FPNN_EC_CORE_TIMEOUT: i32 = 20003;
    /// x
    pub const FPNN_EC_CORE_DECODING: i32 = 20006;
    /// x
    pub const FPNN_EC_CORE_INVALID_CONNECTION: i32 = 20012;
    /// x
    pub const FPNN_EC_PROTO_UNKNOWN_ERROR: i32 = 10001;
    /// x
    pub const RTM_EC_EMPTY_PARAMETER: i32 = 200033;
}
