//! Usage of each key: calls, errors and rate-limited calls per minute and
//! method, and when it was last used. Counted in memory on the hot path and
//! written in batches (one transaction every few seconds, not one write per
//! call); rows older than the retention are deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDateTime, Timelike};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::ids::ApiKeyId;

use crate::db::models::now;
use crate::db::schema::{api_key_usage, api_keys};
use crate::db::{Db, DbError, db_run};

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    calls: i64,
    errors: i64,
    rate_limited: i64,
}

/// Deletes usage older than `retention_days`.
async fn purge(db: &Db, retention_days: u32) -> Result<usize, DbError> {
    let cutoff = now() - chrono::Duration::days(i64::from(retention_days));
    Ok(db_run!(db, |conn| diesel::delete(api_key_usage::table.filter(api_key_usage::minute.lt(cutoff)))
        .execute(conn)
        .await
        .map_err(DbError::from)?))
}

/// What a call of a key counts as in its usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Ok,
    Error,
    RateLimited,
}

#[derive(Default)]
pub(crate) struct UsageRecorder {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    counts: HashMap<(ApiKeyId, NaiveDateTime, &'static str), Counts>,
    last_used: HashMap<ApiKeyId, NaiveDateTime>,
}

fn minute_of(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(t)
}

impl UsageRecorder {
    pub(crate) fn record(&self, key: ApiKeyId, method: &'static str, outcome: Counted) {
        let t = now();
        let mut p = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = p.counts.entry((key, minute_of(t), method)).or_default();
        c.calls += 1;
        match outcome {
            Counted::Ok => {}
            Counted::Error => c.errors += 1,
            Counted::RateLimited => {
                c.errors += 1;
                c.rate_limited += 1;
            }
        }
        p.last_used.insert(key, t);
    }

    /// Writes what was counted since the last flush, in one transaction. On
    /// failure the counts go back, to be written next time.
    pub(crate) async fn flush(&self, db: &Db) -> Result<usize, DbError> {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if batch.counts.is_empty() && batch.last_used.is_empty() {
            return Ok(0);
        }
        let rows: Vec<_> = batch
            .counts
            .iter()
            .map(|((key, minute, method), c)| {
                (
                    api_key_usage::key_id.eq(key),
                    api_key_usage::minute.eq(*minute),
                    api_key_usage::method.eq(*method),
                    api_key_usage::calls.eq(c.calls),
                    api_key_usage::errors.eq(c.errors),
                    api_key_usage::rate_limited.eq(c.rate_limited),
                )
            })
            .collect();
        let used: Vec<(String, NaiveDateTime)> = batch.last_used.iter().map(|(k, t)| (k.to_string(), *t)).collect();
        let result = db_run!(db, |conn| conn
            .transaction(async |conn| {
                for row in &rows {
                    diesel::insert_into(api_key_usage::table)
                        .values(*row)
                        .on_conflict((api_key_usage::key_id, api_key_usage::minute, api_key_usage::method))
                        .do_update()
                        .set((
                            api_key_usage::calls.eq(api_key_usage::calls + excluded(api_key_usage::calls)),
                            api_key_usage::errors.eq(api_key_usage::errors + excluded(api_key_usage::errors)),
                            api_key_usage::rate_limited
                                .eq(api_key_usage::rate_limited + excluded(api_key_usage::rate_limited)),
                        ))
                        .execute(conn)
                        .await?;
                }
                for (key, t) in &used {
                    // Never backwards (another replica may have written a later use).
                    diesel::update(
                        api_keys::table
                            .find(key)
                            .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.lt(Some(*t)))),
                    )
                    .set(api_keys::last_used_at.eq(Some(*t)))
                    .execute(conn)
                    .await?;
                }
                Ok::<_, DbError>(rows.len())
            })
            .await);
        if result.is_err() {
            let mut p = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (k, c) in batch.counts {
                let e = p.counts.entry(k).or_default();
                e.calls += c.calls;
                e.errors += c.errors;
                e.rate_limited += c.rate_limited;
            }
            for (k, t) in batch.last_used {
                p.last_used.entry(k).and_modify(|x| *x = (*x).max(t)).or_insert(t);
            }
        }
        result
    }

    /// Flushes every `every`, and deletes rows older than `retention_days`
    /// once an hour.
    pub(crate) fn spawn(
        this: Arc<Self>,
        db: Arc<Db>,
        every: Duration,
        retention_days: u32,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_purge = std::time::Instant::now();
            loop {
                tick.tick().await;
                if let Err(e) = this.flush(&db).await {
                    tracing::warn!(error = %e, "API key usage not written; kept for the next try");
                }
                if last_purge.elapsed() >= Duration::from_secs(3600) {
                    last_purge = std::time::Instant::now();
                    if let Err(e) = purge(&db, retention_days).await {
                        tracing::warn!(error = %e, "old API key usage not deleted");
                    }
                }
            }
        })
    }
}
