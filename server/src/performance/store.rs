//! `perf_minutes`: one row per minute, method, organization (`''` for none)
//! and replica, holding the V2 (deflate) serialized histogram. A flush
//! reads its own row, merges and writes it back in one transaction; no other
//! replica writes that row, so nothing is lost to a race.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use super::sample::{Entry, Key};
use crate::db::schema::{perf_hours, perf_minutes};
use crate::db::{Db, DbError, db_read, db_run};

pub(super) fn encode(h: &Histogram<u64>) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .map_err(|e| anyhow::anyhow!("histogram not serialized: {e:?}"))?;
    Ok(out)
}

pub(super) fn decode(bytes: &[u8]) -> anyhow::Result<Histogram<u64>> {
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| anyhow::anyhow!("histogram not read: {e:?}"))?;
    let mut merged = super::sample::histogram();
    merged.add(&h).map_err(|e| anyhow::anyhow!("histogram out of bounds: {e:?}"))?;
    Ok(merged)
}

fn org_key(k: &Key) -> String {
    k.2.map(|o| o.to_string()).unwrap_or_default()
}

/// Merges `batch` into this replica's rows.
pub(super) async fn merge_into(db: &Db, replica: &str, batch: &HashMap<Key, Entry>) -> anyhow::Result<usize> {
    let replica = replica.to_owned();
    let rows: Vec<(Key, String, &Entry)> = batch.iter().map(|(k, e)| (*k, org_key(k), e)).collect();
    let n = db_run!(db, |conn| conn
        .transaction(async |conn| {
            for ((minute, method, _), org, e) in &rows {
                let pk = perf_minutes::table.find((*minute, *method, org.as_str(), replica.as_str()));
                let old: Option<(i64, i64, i64, Vec<u8>)> = pk
                    .select((perf_minutes::calls, perf_minutes::errors, perf_minutes::max_us, perf_minutes::histogram))
                    .first(conn)
                    .await
                    .optional()?;
                let mut merged = Entry { hist: super::sample::histogram(), calls: 0, errors: 0, max_us: 0 };
                merged.merge(e);
                if let Some((calls, errors, max_us, blob)) = &old {
                    let hist = decode(blob).map_err(DbError::Other)?;
                    merged.merge(&Entry { hist, calls: *calls, errors: *errors, max_us: *max_us });
                }
                let blob = encode(&merged.hist).map_err(DbError::Other)?;
                let values = (
                    perf_minutes::calls.eq(merged.calls),
                    perf_minutes::errors.eq(merged.errors),
                    perf_minutes::max_us.eq(merged.max_us),
                    perf_minutes::histogram.eq(blob),
                );
                if old.is_some() {
                    diesel::update(pk).set(values).execute(conn).await?;
                } else {
                    diesel::insert_into(perf_minutes::table)
                        .values((
                            perf_minutes::bucket_start.eq(*minute),
                            perf_minutes::method.eq(*method),
                            perf_minutes::org_id.eq(org.as_str()),
                            perf_minutes::replica.eq(replica.as_str()),
                            values,
                        ))
                        .execute(conn)
                        .await?;
                }
            }
            Ok::<_, DbError>(rows.len())
        })
        .await)?;
    Ok(n)
}

/// One row of a window.
pub(super) struct Row {
    pub bucket_start: NaiveDateTime,
    pub method: String,
    pub calls: i64,
    pub errors: i64,
    pub max_us: i64,
    pub histogram: Vec<u8>,
}

/// Which rollup a window is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rollup {
    Minutes,
    Hours,
}

/// The rows of `[from, to)` (by the start of their bucket), of one
/// organization (`Some`) or all, of one method or all.
pub(super) async fn window(
    db: &Db,
    rollup: Rollup,
    from: NaiveDateTime,
    to: NaiveDateTime,
    org: Option<String>,
    method: Option<String>,
) -> Result<Vec<Row>, DbError> {
    macro_rules! load {
        ($t:ident) => {
            db_read!(db, |conn| {
                let mut q = $t::table
                    .filter($t::bucket_start.ge(from))
                    .filter($t::bucket_start.lt(to))
                    .select(($t::bucket_start, $t::method, $t::calls, $t::errors, $t::max_us, $t::histogram))
                    .into_boxed();
                if let Some(org) = &org {
                    q = q.filter($t::org_id.eq(org.clone()));
                }
                if let Some(m) = &method {
                    q = q.filter($t::method.eq(m.clone()));
                }
                q.load(conn).await.map_err(DbError::from)
            })
        };
    }
    let rows: Vec<(NaiveDateTime, String, i64, i64, i64, Vec<u8>)> = match rollup {
        Rollup::Minutes => load!(perf_minutes)?,
        Rollup::Hours => load!(perf_hours)?,
    };
    Ok(rows
        .into_iter()
        .map(|(bucket_start, method, calls, errors, max_us, histogram)| Row {
            bucket_start,
            method,
            calls,
            errors,
            max_us,
            histogram,
        })
        .collect())
}

/// The end of the last hour rolled up (hour rows cover everything before
/// it that minute rows held), if any.
pub(super) async fn rolled_until(db: &Db) -> Result<Option<NaiveDateTime>, DbError> {
    let last: Option<NaiveDateTime> = db_read!(db, |conn| perf_hours::table
        .select(diesel::dsl::max(perf_hours::bucket_start))
        .first(conn)
        .await
        .map_err(DbError::from))?;
    Ok(last.map(|h| h + TimeDelta::hours(1)))
}

/// A minute row: start, method, organization, calls, errors, max, histogram.
type MinuteRow = (NaiveDateTime, String, String, i64, i64, i64, Vec<u8>);

fn hour_of(t: NaiveDateTime) -> NaiveDateTime {
    let secs = t.and_utc().timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(3600), 0).map_or(t, |d| d.naive_utc())
}

/// Rolls the minute rows of every hour that ended before `before` and is
/// not rolled up yet into hour rows, all replicas merged. Idempotent: an
/// hour row is written once (two replicas rolling the same hour write the
/// same row; the second is ignored). Returns the hour rows written.
pub(super) async fn roll_up(db: &Db, before: NaiveDateTime) -> anyhow::Result<usize> {
    let end = hour_of(before);
    let start = match rolled_until(db).await? {
        Some(t) => t,
        None => {
            let first: Option<NaiveDateTime> = db_read!(db, |conn| perf_minutes::table
                .select(diesel::dsl::min(perf_minutes::bucket_start))
                .first(conn)
                .await
                .map_err(DbError::from))?;
            let Some(first) = first else { return Ok(0) };
            hour_of(first)
        }
    };
    if start >= end {
        return Ok(0);
    }
    let rows: Vec<MinuteRow> = db_read!(db, |conn| perf_minutes::table
        .filter(perf_minutes::bucket_start.ge(start))
        .filter(perf_minutes::bucket_start.lt(end))
        .select((
            perf_minutes::bucket_start,
            perf_minutes::method,
            perf_minutes::org_id,
            perf_minutes::calls,
            perf_minutes::errors,
            perf_minutes::max_us,
            perf_minutes::histogram,
        ))
        .load(conn)
        .await
        .map_err(DbError::from))?;
    let mut hours: HashMap<(NaiveDateTime, String, String), Entry> = HashMap::new();
    for (minute, method, org, calls, errors, max_us, blob) in rows {
        let hist = decode(&blob)?;
        hours
            .entry((hour_of(minute), method, org))
            .or_insert_with(|| Entry { hist: super::sample::histogram(), calls: 0, errors: 0, max_us: 0 })
            .merge(&Entry { hist, calls, errors, max_us });
    }
    let mut values = Vec::with_capacity(hours.len());
    for ((hour, method, org), e) in &hours {
        values.push((
            perf_hours::bucket_start.eq(*hour),
            perf_hours::method.eq(method.clone()),
            perf_hours::org_id.eq(org.clone()),
            perf_hours::calls.eq(e.calls),
            perf_hours::errors.eq(e.errors),
            perf_hours::max_us.eq(e.max_us),
            perf_hours::histogram.eq(encode(&e.hist)?),
        ));
    }
    let n = values.len();
    if n == 0 {
        return Ok(0);
    }
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            for v in &values {
                diesel::insert_into(perf_hours::table).values(v.clone()).on_conflict_do_nothing().execute(conn).await?;
            }
            Ok::<_, DbError>(())
        })
        .await)?;
    Ok(n)
}

/// Deletes minute rows older than `cutoff`, in batches.
pub(crate) async fn prune(db: &Db, cutoff: NaiveDateTime) -> Result<u64, DbError> {
    crate::db::in_batches(1000, |size| async move {
        let size = size as i64;
        db_run!(db, |conn| {
            let old: Vec<(NaiveDateTime, String, String, String)> = perf_minutes::table
                .filter(perf_minutes::bucket_start.lt(cutoff))
                .select((perf_minutes::bucket_start, perf_minutes::method, perf_minutes::org_id, perf_minutes::replica))
                .limit(size)
                .load(conn)
                .await
                .map_err(DbError::from)?;
            for (b, m, o, r) in &old {
                diesel::delete(perf_minutes::table.find((*b, m.as_str(), o.as_str(), r.as_str())))
                    .execute(conn)
                    .await
                    .map_err(DbError::from)?;
            }
            Ok::<_, DbError>(old.len())
        })
    })
    .await
}

/// Deletes hour rows older than `cutoff`, in batches.
pub(crate) async fn prune_hours(db: &Db, cutoff: NaiveDateTime) -> Result<u64, DbError> {
    crate::db::in_batches(1000, |size| async move {
        let size = size as i64;
        db_run!(db, |conn| {
            let old: Vec<(NaiveDateTime, String, String)> = perf_hours::table
                .filter(perf_hours::bucket_start.lt(cutoff))
                .select((perf_hours::bucket_start, perf_hours::method, perf_hours::org_id))
                .limit(size)
                .load(conn)
                .await
                .map_err(DbError::from)?;
            for (b, m, o) in &old {
                diesel::delete(perf_hours::table.find((*b, m.as_str(), o.as_str())))
                    .execute(conn)
                    .await
                    .map_err(DbError::from)?;
            }
            Ok::<_, DbError>(old.len())
        })
    })
    .await
}
