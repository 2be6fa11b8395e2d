//! One bus for "this changed": a replica that ends a session, changes an API
//! key or changes a membership publishes a notice on a Redis channel, and
//! every replica drops what it cached of it at once. Notices are not stored:
//! a replica that was not listening (Redis away, or its subscription lost)
//! resyncs when it subscribes again, and meanwhile the database sync covers
//! it (ended sessions are followed in the database every second; cached keys
//! live a second).

use trellis_schema::ids::{ApiKeyId, SessionId, UserId};

/// A change other replicas must hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// A session ended: its access tokens are refused from now on.
    SessionEnded(SessionId),
    /// An API key was revoked, rotated or updated.
    KeyChanged(ApiKeyId),
    /// A membership changed: what keys made by that member may do changed.
    MembersChanged,
    /// A user has a new notification, with this number: wakes their
    /// subscribers wherever they are connected.
    Notified(UserId, i64),
}

impl Change {
    /// `<replica>|<notice>`: the sender, so a replica skips its own notices.
    pub(crate) fn encode(&self, replica: &str) -> String {
        match self {
            Self::SessionEnded(id) => format!("{replica}|s:{id}"),
            Self::KeyChanged(id) => format!("{replica}|k:{id}"),
            Self::MembersChanged => format!("{replica}|m"),
            Self::Notified(user, seq) => format!("{replica}|n:{user}:{seq}"),
        }
    }

    /// The notice and its sender; `None` for a message that is not one.
    pub(crate) fn decode(message: &str) -> Option<(&str, Self)> {
        let (replica, notice) = message.split_once('|')?;
        let change = match notice.split_once(':') {
            Some(("s", id)) => Self::SessionEnded(id.parse().ok()?),
            Some(("k", id)) => Self::KeyChanged(id.parse().ok()?),
            Some(("n", rest)) => {
                let (user, seq) = rest.split_once(':')?;
                Self::Notified(user.parse().ok()?, seq.parse().ok()?)
            }
            None if notice == "m" => Self::MembersChanged,
            _ => return None,
        };
        Some((replica, change))
    }
}

/// Where changes are published: a handle every part that changes something
/// holds. Without Redis it publishes nothing (one process has nobody to tell).
#[derive(Clone, Default)]
pub(crate) struct Bus {
    tx: Option<tokio::sync::mpsc::Sender<Change>>,
}

/// Notices waiting to be sent; past it they are dropped (the database sync
/// covers them) rather than slowing the calls that made them.
pub(crate) const QUEUE: usize = 10_000;

impl Bus {
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<Change>) -> Self {
        Self { tx: Some(tx) }
    }

    /// Queues a notice for every other replica; never waits.
    pub(crate) fn publish(&self, change: Change) {
        if let Some(tx) = &self.tx
            && tx.try_send(change).is_err()
        {
            tracing::warn!(?change, "change notice queue full: other replicas learn of it from the database");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_junk_is_ignored() {
        for change in [
            Change::SessionEnded(SessionId::new()),
            Change::KeyChanged(ApiKeyId::new()),
            Change::MembersChanged,
            Change::Notified(UserId::new(), 42),
        ] {
            assert_eq!(Change::decode(&change.encode("r1")), Some(("r1", change)));
        }
        for junk in ["", "r1", "r1|", "r1|s:", "r1|s:nope", "r1|x:1", "r1|mm", "r1|n:nope:1", "r1|n:x"] {
            assert_eq!(Change::decode(junk), None, "{junk}");
        }
    }
}
