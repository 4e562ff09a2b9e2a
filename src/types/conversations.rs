//! The results of the session and conversation methods (the conversation half of the
//! JavaScript docs' Chat page, docs/Conversations.md).
//!
//! A conversation list keeps the answer's three parallel lists as they are, so that
//! JavaScript `data.conversations[i]`, `data.unreads[i]` and `data.msgs[i]` port to
//! `list.conversations[i]`, `list.unreads[i]` and `list.msgs[i]`;
//! [`ConversationList::iter`] walks them as one [`Conversation`] per entry. The client
//! checks that the three lists have the same length (10010 otherwise).

use serde::Deserialize;

use super::{GroupMsg, P2PMsg};

/// The peers and groups the logged-in user has conversations with.
///
/// Mirrors the `data` (`{p2p, group}`) of JavaScript `getSession`'s callback. The
/// JavaScript docs describe maps of id to time; the SDK and the RTM service send lists of
/// ids (docs/Conversations.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
pub struct Session {
    /// The uids of the p2p conversations.
    #[serde(default, deserialize_with = "crate::api::de::ids")]
    pub p2p: Vec<i64>,
    /// The gids of the group conversations.
    #[serde(default, deserialize_with = "crate::api::de::ids")]
    pub group: Vec<i64>,
}

/// A list of conversations with their unread counts and last messages, newest first.
///
/// Mirrors the `data` (`{conversations, unreads, msgs}`) of JavaScript
/// `getP2PConversationList`, `getP2PUnreadConversationList`, `getGroupConversationList`
/// and `getGroupUnreadConversationList`. Entry `i` of the three lists belongs to one
/// conversation; the three always have the same length. `M` is [`P2PMsg`] (p2p lists,
/// with `direction`) or [`GroupMsg`] (group lists, with `from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationList<M> {
    /// The conversation ids: the peer's uid (p2p) or the gid (group).
    pub conversations: Vec<i64>,
    /// The unread message count of each conversation.
    pub unreads: Vec<i32>,
    /// The last message of each conversation.
    pub msgs: Vec<M>,
}

/// A p2p conversation list. Mirrors the `data` of JavaScript `getP2PConversationList`.
pub type P2PConversationList = ConversationList<P2PMsg>;
/// A group conversation list. Mirrors the `data` of JavaScript `getGroupConversationList`.
pub type GroupConversationList = ConversationList<GroupMsg>;

impl<M> Default for ConversationList<M> {
    /// An empty list.
    fn default() -> ConversationList<M> {
        ConversationList {
            conversations: Vec::new(),
            unreads: Vec::new(),
            msgs: Vec::new(),
        }
    }
}

impl<M> ConversationList<M> {
    /// The three parallel lists, checked to have the same length. Rust-only.
    pub(crate) fn zip(
        conversations: Vec<i64>,
        unreads: Vec<i32>,
        msgs: Vec<M>,
    ) -> Result<ConversationList<M>, String> {
        let lens = (conversations.len(), unreads.len(), msgs.len());
        if lens.0 != lens.1 || lens.0 != lens.2 {
            return Err(format!(
                "conversation lists of different lengths: {} conversations, {} unreads, {} msgs",
                lens.0, lens.1, lens.2
            ));
        }
        Ok(ConversationList {
            conversations,
            unreads,
            msgs,
        })
    }

    /// The number of conversations. Rust-only (JavaScript: `data.conversations.length`).
    pub fn len(&self) -> usize {
        self.conversations.len()
    }

    /// Whether the list has no conversation. Rust-only.
    pub fn is_empty(&self) -> bool {
        self.conversations.is_empty()
    }

    /// The conversations in list order (newest first), each with its unread count and last
    /// message. Rust-only: JavaScript indexes the three lists.
    pub fn iter(&self) -> impl Iterator<Item = Conversation<'_, M>> + '_ {
        self.conversations
            .iter()
            .zip(&self.unreads)
            .zip(&self.msgs)
            .map(|((&id, &unread), msg)| Conversation { id, unread, msg })
    }
}

/// One entry of a [`ConversationList`], as [`ConversationList::iter`] yields it.
///
/// Rust-only: JavaScript reads `data.conversations[i]`, `data.unreads[i]` and
/// `data.msgs[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversation<'a, M> {
    /// The peer's uid (p2p) or the gid (group).
    pub id: i64,
    /// The unread message count.
    pub unread: i32,
    /// The last message.
    pub msg: &'a M,
}

/// The unread group and p2p conversations.
///
/// Mirrors the `data` (`{groupConversations, groupUnreads, groupMsgs, p2pConversations,
/// p2pUnreads, p2pMsgs}`) of JavaScript `getUnreadConversationList`:
/// `data.groupConversations[i]` is `list.group.conversations[i]`, `data.p2pMsgs[i]` is
/// `list.p2p.msgs[i]`, and so on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnreadConversationList {
    /// The group conversations with unread messages (`groupConversations`,
    /// `groupUnreads`, `groupMsgs`).
    pub group: GroupConversationList,
    /// The p2p conversations with unread messages (`p2pConversations`, `p2pUnreads`,
    /// `p2pMsgs`).
    pub p2p: P2PConversationList,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_checks_lengths_and_iter_pairs_entries() {
        let m = |id| P2PMsg {
            id,
            ..Default::default()
        };
        let l = ConversationList::zip(vec![5, 6], vec![1, 0], vec![m(50), m(60)]).unwrap();
        assert_eq!((l.len(), l.is_empty()), (2, false));
        let got: Vec<(i64, i32, i64)> = l.iter().map(|c| (c.id, c.unread, c.msg.id)).collect();
        assert_eq!(got, vec![(5, 1, 50), (6, 0, 60)]);
        let e = ConversationList::zip(vec![5], vec![], vec![m(1)]).unwrap_err();
        assert!(e.contains("1 conversations, 0 unreads, 1 msgs"), "{e}");
        assert!(ConversationList::<P2PMsg>::zip(vec![], vec![], vec![m(1)]).is_err());
        assert!(ConversationList::<GroupMsg>::default().is_empty());
    }
}
