//! Wake-ups: "user X has something new", to the subscriptions of X on this
//! replica. A wake-up carries the number of the user's newest notification;
//! each subscriber reads from the database what came after its own cursor,
//! so a wake-up is never the item itself and a lost one costs latency only:
//! while anyone here subscribes, a sweep every poll interval wakes the users
//! with notifications newer than their subscribers last heard of.
//!
//! The subscribers of one user here share their reads ([`Recent`]): woken
//! together, the first reads what is new from the database and the others
//! take it from memory, so a notification costs one read per user and
//! replica, not one per subscriber.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use trellis_schema::ids::UserId;

use super::store;
use crate::db::models::NotificationRow;
use crate::db::{Db, DbError};

/// Rows one user's subscribers here share, at most.
const KEPT: usize = 128;

/// The users with subscriptions on this replica, and the newest
/// notification number each was woken for.
#[derive(Default)]
pub(crate) struct Hub {
    users: Mutex<HashMap<UserId, Entry>>,
}

struct Entry {
    newest: watch::Sender<i64>,
    watchers: usize,
    recent: Arc<Recent>,
}

/// A user's latest notifications read here, in order of number: a
/// subscriber whose next number is among them takes it and those after it
/// from here. One
/// subscriber at a time reads the database for them, and the others wait
/// for what it read.
#[derive(Default)]
pub(crate) struct Recent(tokio::sync::Mutex<VecDeque<NotificationRow>>);

impl Recent {
    /// `user`'s notifications numbered after `seq`, oldest first, at most
    /// `limit`: from memory when the next one is there, else from the
    /// database (then kept for the others).
    pub(crate) async fn after(
        &self,
        db: &Db,
        user: UserId,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, DbError> {
        let mut kept = self.0.lock().await;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // The next number must be kept (not merely a later one): a
        // notification is never numbered into a gap, but retention may leave one.
        if let Some(start) = kept.iter().position(|r| r.seq == seq + 1) {
            return Ok(kept.iter().skip(start).take(limit).cloned().collect());
        }
        let rows = store::after_seq(db, user, seq, i64::try_from(limit).unwrap_or(i64::MAX)).await?;
        // Keep them, in order: after what is kept, or instead of it.
        let follows = kept.back().is_some_and(|r| rows.first().is_some_and(|f| f.seq == r.seq + 1));
        if !follows && !rows.is_empty() {
            kept.clear();
        }
        kept.extend(rows.iter().cloned());
        while kept.len() > KEPT {
            kept.pop_front();
        }
        Ok(rows)
    }
}

/// A subscription's hold on its user's wake-ups; released when dropped.
pub(crate) struct Watch {
    hub: Arc<Hub>,
    user: UserId,
    pub rx: watch::Receiver<i64>,
    /// What the user's subscribers here have read lately.
    pub recent: Arc<Recent>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut users = self.hub.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = users.get_mut(&self.user) {
            e.watchers -= 1;
            if e.watchers == 0 {
                users.remove(&self.user);
            }
        }
    }
}

impl Hub {
    pub(crate) fn watch(self: &Arc<Self>, user: UserId) -> Watch {
        let mut users = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = users.entry(user).or_insert_with(|| Entry {
            newest: watch::Sender::new(0),
            watchers: 0,
            recent: Arc::default(),
        });
        e.watchers += 1;
        let rx = e.newest.subscribe();
        Watch { hub: self.clone(), user, rx, recent: e.recent.clone() }
    }

    /// User `user` has notification number `seq`: wake their subscribers
    /// here unless they were already woken for it (or a later one).
    pub(crate) fn wake(&self, user: UserId, seq: i64) {
        let users = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = users.get(&user) {
            e.newest.send_if_modified(|newest| {
                let newer = seq > *newest;
                if newer {
                    *newest = seq;
                }
                newer
            });
        }
    }

    /// The users someone here subscribes for.
    pub(crate) fn users(&self) -> Vec<UserId> {
        self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner).keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> NotificationRow {
        NotificationRow {
            id: trellis_schema::ids::NotificationId::new(),
            user_id: UserId::EXAMPLE,
            seq,
            event_id: String::new(),
            kind: "apiKey.created".into(),
            title: String::new(),
            body: String::new(),
            data: "{}".into(),
            created_at: crate::db::models::now(),
            read_at: None,
        }
    }

    /// What is kept answers only a subscriber whose next number is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_rows_answer_from_the_next_number_only() {
        let recent = Recent::default();
        recent.0.lock().await.extend([row(5), row(6), row(8), row(9)]);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let opts = crate::db::pool::PoolOptions { max_size: 2, connect_timeout: std::time::Duration::from_secs(5) };
        let db = crate::db::Db::connect(&path.to_string_lossy(), &opts).await.expect("database");
        db.migrate().await.expect("migrated");
        let reads = db.query_counter();
        let seqs = |rows: Vec<NotificationRow>| rows.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(recent.after(&db, UserId::EXAMPLE, 4, 10).await.expect("kept")), [5, 6, 8, 9]);
        assert_eq!(seqs(recent.after(&db, UserId::EXAMPLE, 7, 10).await.expect("kept")), [8, 9]);
        assert_eq!(seqs(recent.after(&db, UserId::EXAMPLE, 5, 1).await.expect("kept")), [6]);
        assert_eq!(reads.get(), 0, "all from memory");
        // 7 is not kept (a gap): the database is asked, and has nothing.
        assert!(recent.after(&db, UserId::EXAMPLE, 6, 10).await.expect("read").is_empty());
        assert!(recent.after(&db, UserId::EXAMPLE, 9, 10).await.expect("read").is_empty());
        assert_eq!(reads.get(), 2);
    }
}
