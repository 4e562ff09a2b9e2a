//! The RTM API methods, one module per area of the JavaScript docs
//! (docs/api-internals.md).
//!
//! Every method is declared the same way: its wire method in its area's
//! [`specs!`](spec::specs) table (name, default timeout, resend class), its
//! request map, and its wire type decoded through the [`Answer`](decode::Answer)
//! trait with the shared serde helpers of [`de`]. One send path,
//! `RtmClient::quest`, resolves the timeout, sends through `RtmClient::call`
//! (exactly-once completion, delivery) and decodes the answer.

mod chat;
mod conversations;
mod data;
pub(crate) mod de;
pub(crate) mod decode;
pub(crate) mod files;
mod friends;
mod groups;
mod messages;
mod rooms;
pub(crate) mod spec;
mod system;
mod users;
mod value_added;

use spec::Spec;

/// Every wire method the client sends, over all areas (compared with the
/// gate's routes by tests). The chat area is not listed: its methods send the
/// messages area's wire methods.
#[allow(dead_code)]
pub(crate) fn all_specs() -> impl Iterator<Item = &'static Spec> {
    [
        messages::SPECS,
        friends::SPECS,
        groups::SPECS,
        users::SPECS,
        data::SPECS,
        conversations::SPECS,
        rooms::SPECS,
        system::SPECS,
        value_added::SPECS,
        files::SPECS,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn every_wire_method_is_declared_once() {
        let methods: Vec<&str> = super::all_specs().map(|s| s.method).collect();
        let distinct: HashSet<&str> = methods.iter().copied().collect();
        assert_eq!(distinct.len(), methods.len(), "{methods:?}");
        assert!(distinct.contains("sendmsg") && distinct.contains("enterroom"));
        // Only the uploads take longer.
        assert!(super::all_specs().all(|s| s.default_timeout_ms
            == if s.method.starts_with("send") && s.method.ends_with("file") {
                super::spec::FILE_TIMEOUT_MS
            } else {
                super::spec::DEFAULT_TIMEOUT_MS
            }));
    }
}
