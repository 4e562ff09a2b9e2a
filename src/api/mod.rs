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

/// Fuzzing entry point (Rust-only, not part of the API): decodes `payload`
/// as a msgpack answer, the way every method's answer is decoded (straight
/// from the bytes, `decode::decode_bytes`), into the wire type `which` picks among the
/// answer types reachable from here (the public result types and the shared
/// id list; the area modules' private wire types are reached through them,
/// since they share the helpers of `de`). Returns whether it decoded; it
/// must never panic, whatever the bytes, except that for `SendPayload`,
/// whose answer is read without serde when it is plain enough
/// (`Answer::quick`), it panics when that read and serde differ.
#[doc(hidden)]
pub fn fuzz_decode_answer(which: u8, payload: &[u8]) -> bool {
    use crate::types::*;
    use decode::{decode_bytes as decode, Found, IdList};
    let (m, v) = ("fuzz", payload);
    match which % 22 {
        0 => decode::<IdList>(m, v).is_ok(),
        1 => decode::<decode::Empty>(m, v).is_ok(),
        2 => decode::<Session>(m, v).is_ok(),
        3 => decode::<RoomInfo>(m, v).is_ok(),
        4 => decode::<RoomOpenInfo>(m, v).is_ok(),
        5 => decode::<DevicePushOption>(m, v).is_ok(),
        6 => decode::<UserInfo>(m, v).is_ok(),
        7 => decode::<UserOpenInfo>(m, v).is_ok(),
        8 => decode::<Translation>(m, v).is_ok(),
        9 => decode::<ProfanityResult>(m, v).is_ok(),
        10 => decode::<CheckResult>(m, v).is_ok(),
        11 => decode::<Transcript>(m, v).is_ok(),
        12 => decode::<GroupMembers>(m, v).is_ok(),
        13 => decode::<GroupCount>(m, v).is_ok(),
        14 => decode::<GroupInfo>(m, v).is_ok(),
        15 => decode::<GroupOpenInfo>(m, v).is_ok(),
        16 => decode::<GroupsOpenInfo>(m, v).is_ok(),
        17 => decode::quick_checked::<SendPayload>(m, v).is_ok(),
        18 => decode::<UnreadMessage>(m, v).is_ok(),
        19 => decode::<P2PUnreadNum>(m, v).is_ok(),
        20 => decode::<HistoryMessages<HistoryMsg>>(m, v).is_ok(),
        _ => {
            decode::<Found<HistoryMessages<P2PMsg>>>(m, v).is_ok()
                | decode::<GroupUnreadNum>(m, v).is_ok()
        }
    }
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
