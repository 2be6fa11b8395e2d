//! Sessions ended before their access tokens expire. Checked on every
//! authenticated call, so it lives in memory: a lookup, no database query.
//! An entry is kept as long as an access token of that session could still
//! be valid, then dropped. Sessions ended by another replica reach this one
//! at once through the bus of change notices (Redis), and in any case
//! through a once-a-second query for recently ended sessions. Open
//! WebSocket connections watch their session here, so they are closed the
//! moment it ends.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use trellis_schema::ids::SessionId;

use crate::cache::{Bus, Change};

pub(crate) struct RevokedSessions {
    entries: RwLock<HashMap<SessionId, Instant>>,
    keep_for: Duration,
    /// Open WebSocket connections waiting to hear that their session ended,
    /// by session (see [`RevokedSessions::watch`]).
    watchers: Mutex<Watchers>,
    /// Where ends are told to the other replicas.
    bus: Bus,
    /// Asks the database sync to run now (notices may have been missed).
    resync: Notify,
}

#[derive(Default)]
struct Watchers {
    by_session: HashMap<SessionId, watch::Sender<bool>>,
    /// Size after the last sweep of unwatched entries; the next sweep runs at twice it.
    swept_at: usize,
}

impl RevokedSessions {
    pub(crate) fn new(access_ttl: Duration, bus: Bus) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            keep_for: access_ttl + Duration::from_secs(30),
            watchers: Mutex::new(Watchers::default()),
            bus,
            resync: Notify::new(),
        }
    }

    /// Ends `session_id` here and on every other replica.
    pub(crate) fn revoke(&self, session_id: SessionId) {
        self.revoke_here(session_id);
        self.bus.publish(Change::SessionEnded(session_id));
    }

    /// Runs the database sync now rather than at its next tick (after the
    /// bus was away: notices sent meanwhile were lost).
    pub(crate) fn resync(&self) {
        self.resync.notify_one();
    }

    /// Ends `session_id` in this process (the sync, or a notice from another
    /// replica).
    pub(crate) fn revoke_here(&self, session_id: SessionId) {
        let now = Instant::now();
        {
            let mut map = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            map.retain(|_, until| *until > now);
            map.insert(session_id, now + self.keep_for);
        }
        let watcher = self.watchers.lock().unwrap_or_else(PoisonError::into_inner).by_session.remove(&session_id);
        if let Some(tx) = watcher {
            tx.send_replace(true);
        }
    }

    /// Tells when `session_id` ends: the receiver turns `true` as soon as the
    /// session is revoked here (by this replica, or by the sync with the
    /// others), or at once if it already was.
    pub(crate) fn watch(&self, session_id: SessionId) -> watch::Receiver<bool> {
        let rx = {
            let mut w = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
            if w.by_session.len() >= (2 * w.swept_at).max(64) {
                w.by_session.retain(|_, tx| tx.receiver_count() > 0);
                w.swept_at = w.by_session.len();
            }
            w.by_session.entry(session_id).or_insert_with(|| watch::channel(false).0).subscribe()
        };
        // Revoked before the watcher was in place: the revocation did not see it.
        if self.is_revoked(&session_id) {
            let watcher = self.watchers.lock().unwrap_or_else(PoisonError::into_inner).by_session.remove(&session_id);
            if let Some(tx) = watcher {
                tx.send_replace(true);
            }
        }
        rx
    }

    pub(crate) fn is_revoked(&self, session_id: &SessionId) -> bool {
        let map = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        map.get(session_id).is_some_and(|until| *until > Instant::now())
    }
}

impl RevokedSessions {
    /// Every `every` (a second by default), adds the sessions ended since the
    /// last look, on any replica, to this process's set, following the
    /// database's log of ends (see [`super::session_ends`]). Once a minute,
    /// drops log entries older than any live access token.
    pub(crate) fn spawn_sync(
        self: std::sync::Arc<Self>,
        db: std::sync::Arc<crate::db::Db>,
        every: Duration,
        mut follower: super::session_ends::Follower,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = Instant::now();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = self.resync.notified() => {}
                }
                match follower.poll(&db).await {
                    Ok(ids) => {
                        for id in ids {
                            if !self.is_revoked(&id) {
                                self.revoke_here(id);
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "ended sessions not synced this round"),
                }
                if last_prune.elapsed() >= Duration::from_secs(60) {
                    last_prune = Instant::now();
                    let keep = self.keep_for + Duration::from_secs(60);
                    if let Err(e) = super::session_ends::prune(&db, keep).await {
                        tracing::debug!(error = %e, "old session ends not pruned this round");
                    }
                }
            }
        })
    }
}
