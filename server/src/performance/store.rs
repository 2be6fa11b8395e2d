//! `perf_minutes`: one row per minute, method, organization (`''` for none)
//! and replica, holding the V2 (deflate) serialized histogram. A flush
//! reads its own row, merges and writes it back in one transaction; no other
//! replica writes that row, so nothing is lost to a race.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use super::recorder::{Entry, Key};
use crate::db::schema::perf_minutes;
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
    let mut merged = super::recorder::histogram();
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
                let mut merged = Entry { hist: super::recorder::histogram(), calls: 0, errors: 0, max_us: 0 };
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

/// The rows of `[from, to)`, of one organization (`Some`) or all, of one
/// method or all.
pub(super) async fn window(
    db: &Db,
    from: NaiveDateTime,
    to: NaiveDateTime,
    org: Option<String>,
    method: Option<String>,
) -> Result<Vec<Row>, DbError> {
    let rows: Vec<(NaiveDateTime, String, i64, i64, i64, Vec<u8>)> = db_read!(db, |conn| {
        let mut q = perf_minutes::table
            .filter(perf_minutes::bucket_start.ge(from))
            .filter(perf_minutes::bucket_start.lt(to))
            .select((
                perf_minutes::bucket_start,
                perf_minutes::method,
                perf_minutes::calls,
                perf_minutes::errors,
                perf_minutes::max_us,
                perf_minutes::histogram,
            ))
            .into_boxed();
        if let Some(org) = &org {
            q = q.filter(perf_minutes::org_id.eq(org.clone()));
        }
        if let Some(m) = &method {
            q = q.filter(perf_minutes::method.eq(m.clone()));
        }
        q.load(conn).await.map_err(DbError::from)
    })?;
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
