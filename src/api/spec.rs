//! Method declarations and the one send path every API method takes
//! (docs/api-internals.md).
//!
//! Each area module declares its wire methods in one [`specs!`] table; a
//! method builds its request map and calls [`RtmClient::quest`] (or
//! [`RtmClient::quest_with`]) with its [`Spec`] and its wire type. The send
//! path resolves the timeout, sends through `RtmClient::call` and decodes the
//! answer through [`Answer`].

use super::decode::{decode_bytes, Answer};
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::value::Encoded;

/// The default timeout of a method, in milliseconds (a `timeout` of 0).
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 20_000;
/// The default timeout of the file sends, in milliseconds (token, proxy connect and
/// upload together).
pub(crate) const FILE_TIMEOUT_MS: u64 = 120_000;

/// Whether a quest may be sent again after a reconnect, when its answer was
/// lost with the connection (docs/api-internals.md, "Resend").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Resend {
    /// Sending it twice leaves the same state and gets the same answer as
    /// sending it once: reads, set-like writes (set, add or remove members
    /// of a set, enter/leave, delete by key) and sends, which carry a mid
    /// the receivers deduplicate by.
    Safe,
    /// Sending it twice would do its effect twice (for example append a
    /// second log entry); it completes with the connection error instead.
    Never,
}

/// One wire method of the RTM API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Spec {
    /// The FPNN method name on the wire.
    pub(crate) method: &'static str,
    /// The timeout a `timeout` of 0 stands for, in milliseconds.
    pub(crate) default_timeout_ms: u64,
    /// Whether the quest may be resent after a reconnect.
    pub(crate) resend: Resend,
}

impl Spec {
    /// A method with the default timeout.
    pub(crate) const fn new(method: &'static str, resend: Resend) -> Spec {
        Spec {
            method,
            default_timeout_ms: DEFAULT_TIMEOUT_MS,
            resend,
        }
    }

    /// The same method with another default timeout.
    pub(crate) const fn timeout(self, ms: u64) -> Spec {
        Spec {
            default_timeout_ms: ms,
            ..self
        }
    }

    /// The timeout a call passes on: `ms`, or this method's default for 0.
    pub(crate) fn resolve(&self, ms: u64) -> u64 {
        if ms == 0 {
            self.default_timeout_ms
        } else {
            ms
        }
    }
}

/// Declares an area's wire methods: one named `Spec` const each and
/// `SPECS`, the slice of all of them.
///
/// ```text
/// specs! {
///     GET_FRIENDS = "getfriends", Safe;
///     SEND_FILE = "sendfile", Never, timeout FILE_TIMEOUT_MS;
/// }
/// ```
macro_rules! specs {
    ($($name:ident = $method:literal, $resend:ident $(, timeout $ms:expr)?;)+) => {
        $(
            pub(crate) const $name: $crate::api::spec::Spec =
                $crate::api::spec::Spec::new($method, $crate::api::spec::Resend::$resend)
                    $(.timeout($ms))?;
        )+
        /// Every wire method this area sends.
        pub(crate) const SPECS: &[$crate::api::spec::Spec] = &[$($name),+];
    };
}
pub(crate) use specs;

impl RtmClient {
    /// Sends `spec`'s quest with `payload` and completes `callback` with the
    /// answer decoded through `W` (or the error).
    pub(crate) fn quest<W: Answer>(
        &self,
        spec: &'static Spec,
        payload: Encoded,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<W::Out>) + Send + 'static,
    ) {
        self.quest_with::<W, _, _>(spec, payload, timeout, |out| out, |e| e, callback);
    }

    /// [`RtmClient::quest`] with the decoded result passed through `then`
    /// and errors through `map_err` (the send methods add their mid).
    pub(crate) fn quest_with<W: Answer, T, E>(
        &self,
        spec: &'static Spec,
        payload: Encoded,
        timeout: u64,
        then: impl FnOnce(W::Out) -> T + Send + 'static,
        map_err: impl FnOnce(RtmError) -> E + Send + 'static,
        callback: impl FnOnce(Option<E>, Option<T>) + Send + 'static,
    ) where
        T: Send + 'static,
        E: Send + 'static,
    {
        let method = spec.method;
        let map = move |v: &[u8]| decode_bytes::<W>(method, v).map(then);
        self.call(spec, payload, spec.resolve(timeout), map, map_err, callback);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_the_methods_default() {
        let s = Spec::new("x", Resend::Safe);
        assert_eq!(s.resolve(0), DEFAULT_TIMEOUT_MS);
        assert_eq!(s.resolve(5), 5);
        let f = s.timeout(FILE_TIMEOUT_MS);
        assert_eq!(f.resolve(0), FILE_TIMEOUT_MS);
        assert_eq!(f.resolve(7), 7);
        assert_eq!((f.method, f.resend), ("x", Resend::Safe));
    }
}
