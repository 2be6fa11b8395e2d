//! Following the log of session ends (`session_ends`) that every replica
//! writes through the database: each end has a number the database gives it,
//! and a replica asks for the numbers after the last it has seen. Nothing
//! depends on a replica's clock, and a replica that stalls picks up where it
//! left off.
//!
//! On PostgreSQL numbers are handed out when a row is written, not when its
//! transaction commits, so a number may become visible after a higher one.
//! The follower remembers every number it skipped (a gap) and asks again from
//! the lowest gap until it shows up or [`GAP_WAIT`] has passed (then it was a
//! rolled-back transaction's, and no end will ever carry it).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use trellis_schema::ids::SessionId;

use crate::db::pool::BackendKind;
use crate::db::schema::session_ends;
use crate::db::{Db, DbError, db_read, db_run};

/// How long a skipped number is waited for.
const GAP_WAIT: Duration = Duration::from_secs(60);
/// Rows read per query.
const PAGE: i64 = 1000;
/// Most gaps remembered (a jump past more is taken as numbers never used).
const MAX_GAPS: i64 = 10_000;

/// Where a replica is in the log.
pub(crate) struct Follower {
    /// The number after the highest seen.
    next: i64,
    /// Numbers below `next` not seen yet, with when they were first missed.
    gaps: BTreeMap<i64, Instant>,
}

#[derive(QueryableByName)]
struct Start {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// The database's clock, in milliseconds since the Unix epoch.
fn db_now_ms(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Postgres => "(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
        BackendKind::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    }
}

impl Follower {
    /// A follower that starts with the ends of the last `window` (by the
    /// database's clock): those whose access tokens may still be live.
    pub(crate) async fn start(db: &Db, window: Duration) -> Result<Self, DbError> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
        let sql = format!(
            "SELECT COALESCE(MIN(seq), (SELECT COALESCE(MAX(seq), 0) + 1 FROM session_ends)) AS seq \
             FROM session_ends WHERE ended_ms >= {} - {window_ms}",
            db_now_ms(db.kind())
        );
        let start: Start =
            db_read!(db, |conn| diesel::sql_query(&sql).get_result(conn).await.map_err(DbError::from)?);
        Ok(Self { next: start.seq, gaps: BTreeMap::new() })
    }

    /// Reads the ends written since the last call and returns the sessions
    /// they ended.
    pub(crate) async fn poll(&mut self, db: &Db) -> Result<Vec<SessionId>, DbError> {
        let mut ended = Vec::new();
        let mut from = self.gaps.keys().next().copied().unwrap_or(self.next).min(self.next);
        loop {
            let rows: Vec<(i64, String)> = db_read!(db, |conn| session_ends::table
                .filter(session_ends::seq.ge(from))
                .order(session_ends::seq.asc())
                .limit(PAGE)
                .select((session_ends::seq, session_ends::session_id))
                .load(conn)
                .await
                .map_err(DbError::from)?);
            let full = rows.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
            for (seq, session) in &rows {
                if self.see(*seq)
                    && let Ok(id) = session.parse::<SessionId>()
                {
                    ended.push(id);
                }
                from = seq + 1;
            }
            if !full {
                break;
            }
        }
        let now = Instant::now();
        self.gaps.retain(|_, missed_at| now.duration_since(*missed_at) < GAP_WAIT);
        Ok(ended)
    }

    /// Marks `seq` seen; `false` if it had been seen before.
    fn see(&mut self, seq: i64) -> bool {
        if seq < self.next {
            return self.gaps.remove(&seq).is_some();
        }
        let now = Instant::now();
        for skipped in self.next.max(seq - MAX_GAPS)..seq {
            self.gaps.insert(skipped, now);
        }
        self.next = seq + 1;
        true
    }
}

/// Deletes ends older than `keep` (their sessions' tokens have expired), a
/// batch at a time.
pub(crate) async fn prune(db: &Db, keep: Duration) -> Result<u64, DbError> {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX / 2);
    let sql = format!(
        "DELETE FROM session_ends WHERE seq IN \
         (SELECT seq FROM session_ends WHERE ended_ms < {} - {keep_ms} ORDER BY seq LIMIT {PAGE})",
        db_now_ms(db.kind())
    );
    crate::db::in_batches(usize::try_from(PAGE).unwrap_or(1000), |_| async {
        let n = db_run!(db, |conn| diesel::sql_query(&sql).execute(conn).await.map_err(DbError::from)?);
        Ok(n)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_seen_out_of_order_are_taken_once_and_gaps_remembered() {
        let mut f = Follower { next: 5, gaps: BTreeMap::new() };
        assert!(f.see(5));
        assert!(f.see(8)); // 6 and 7 are not visible yet
        assert_eq!(f.next, 9);
        assert_eq!(f.gaps.keys().copied().collect::<Vec<_>>(), vec![6, 7]);
        assert!(f.see(7)); // committed late: still taken
        assert!(!f.see(7)); // and only once
        assert!(!f.see(8));
        assert_eq!(f.gaps.keys().copied().collect::<Vec<_>>(), vec![6]);
    }
}
