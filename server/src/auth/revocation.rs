//! Sessions ended before their access tokens expire. Checked on every
//! authenticated call, so it lives in memory: a lookup, no database query.
//! An entry is kept as long as an access token of that session could still
//! be valid, then dropped. Sessions ended by another replica reach this one
//! through a once-a-second query for recently ended sessions.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use uuid::Uuid;

pub(crate) struct RevokedSessions {
    entries: RwLock<HashMap<Uuid, Instant>>,
    keep_for: Duration,
}

impl RevokedSessions {
    pub(crate) fn new(access_ttl: Duration) -> Self {
        Self { entries: RwLock::new(HashMap::new()), keep_for: access_ttl + Duration::from_secs(30) }
    }

    pub(crate) fn revoke(&self, session_id: Uuid) {
        let now = Instant::now();
        let mut map = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, until| *until > now);
        map.insert(session_id, now + self.keep_for);
    }

    pub(crate) fn is_revoked(&self, session_id: &Uuid) -> bool {
        let map = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(session_id).is_some_and(|until| *until > Instant::now())
    }
}

impl RevokedSessions {
    /// Every `every` (a second by default), adds the sessions ended since the
    /// last look, on any replica, to this process's set, following the
    /// database's log of ends (see [`super::session_ends`]). Once a minute,
    /// drops log entries older than any live access token.
    pub(crate) fn spawn_sync(
        state: std::sync::Arc<crate::state::State>,
        every: Duration,
        mut follower: super::session_ends::Follower,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = Instant::now();
            loop {
                tick.tick().await;
                match follower.poll(&state.db).await {
                    Ok(ids) => {
                        for id in ids {
                            if !state.revoked.is_revoked(&id) {
                                state.revoked.revoke(id);
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "ended sessions not synced this round"),
                }
                if last_prune.elapsed() >= Duration::from_secs(60) {
                    last_prune = Instant::now();
                    let keep = state.revoked.keep_for + Duration::from_secs(60);
                    if let Err(e) = super::session_ends::prune(&state.db, keep).await {
                        tracing::debug!(error = %e, "old session ends not pruned this round");
                    }
                }
            }
        })
    }
}
