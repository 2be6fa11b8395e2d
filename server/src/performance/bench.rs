//! For the load generator only (`examples/bench`, scenario `perf_report`):
//! writes minute rows straight into `perf_minutes`, as the flushes of many
//! replicas over days would have, and runs the hourly rollup on demand. Not
//! part of the server's API.

use chrono::{DateTime, NaiveDateTime};
use diesel::ExpressionMethods;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::sample::{HIGHEST_US, histogram};
use super::store;
use crate::db::pool::Backend;
use crate::db::schema::perf_minutes;
use crate::db::{Db, DbError};

/// One minute row, as a replica's flush writes it.
pub struct MinuteRow {
    /// The minute's start, in seconds since the Unix epoch.
    pub minute: i64,
    pub method: String,
    /// `""` for calls acting in no organization.
    pub org_id: String,
    pub replica: String,
    pub calls: i64,
    pub errors: i64,
    pub max_us: i64,
    /// From [`encode_latencies`].
    pub histogram: Vec<u8>,
}

/// The stored form of a histogram of these durations (microseconds), as the
/// recorder would store it.
pub fn encode_latencies(us: &[u64]) -> anyhow::Result<Vec<u8>> {
    let mut h = histogram();
    for &v in us {
        h.saturating_record(v.clamp(1, HIGHEST_US));
    }
    store::encode(&h)
}

fn timestamp(secs: i64) -> anyhow::Result<NaiveDateTime> {
    DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc()).ok_or_else(|| anyhow::anyhow!("{secs} is out of range"))
}

/// Inserts `rows` (new keys only), a few thousand a statement.
pub async fn insert_minutes(db: &Db, rows: &[MinuteRow]) -> anyhow::Result<()> {
    let mut values = Vec::with_capacity(rows.len());
    for r in rows {
        values.push((
            perf_minutes::bucket_start.eq(timestamp(r.minute)?),
            perf_minutes::method.eq(r.method.clone()),
            perf_minutes::org_id.eq(r.org_id.clone()),
            perf_minutes::replica.eq(r.replica.clone()),
            perf_minutes::calls.eq(r.calls),
            perf_minutes::errors.eq(r.errors),
            perf_minutes::max_us.eq(r.max_us),
            perf_minutes::histogram.eq(r.histogram.clone()),
        ));
    }
    match db.checkout() {
        // One statement per 2,000 rows (eight parameters a row).
        Backend::Pg(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_pool)?;
            for chunk in values.chunks(2000) {
                diesel::insert_into(perf_minutes::table).values(chunk.to_vec()).execute(&mut *conn).await?;
            }
        }
        // Diesel has no multi-row INSERT for SQLite: one transaction of single-row inserts.
        Backend::Sqlite { write, .. } => {
            let mut conn = write.get().await.map_err(DbError::from_pool)?;
            conn.transaction(async |conn| {
                for v in values {
                    diesel::insert_into(perf_minutes::table).values(v).execute(conn).await?;
                }
                Ok::<_, DbError>(())
            })
            .await?;
        }
    }
    Ok(())
}

/// Marks every hour of the minute rows for the rollup (as their flushes
/// would have) and runs the rollup as its periodic task does, until nothing
/// is left to roll up. Returns the hour and day rows written.
pub async fn roll_up(db: &Db) -> anyhow::Result<usize> {
    store::mark_all(db).await?;
    let mut written = 0;
    loop {
        let n = store::roll_up(db).await?;
        if n == 0 {
            return Ok(written);
        }
        written += n;
    }
}
