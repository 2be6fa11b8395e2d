//! `perf_minutes`: one row per minute, method, organization (`''` for none)
//! and replica, holding the serialized histogram (V2; rows written before
//! 2026-12-01 are V2 deflate, which every reader still reads). A flush
//! reads its own row, merges and writes it back in one transaction; no other
//! replica writes that row, so nothing is lost to a race.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

use super::sample::{Counts, Entry, HIGHEST_US, Key, LOWEST_US, SIGNIFICANT_DIGITS, counters, index_of};
use crate::db::schema::{perf_hours, perf_minutes};
use crate::db::{Db, DbError, db_read, db_run};

/// Stored as V2 without deflate: a report reads thousands of rows, and
/// inflating each cost more than the bytes it saves (V2 already writes runs
/// of zeros as one number).
pub(super) fn encode(h: &Histogram<u64>) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    V2Serializer::new().serialize(h, &mut out).map_err(|e| anyhow::anyhow!("histogram not serialized: {e:?}"))?;
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

const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// Cookie, payload length, normalizing offset, digits, lowest, highest, ratio.
const V2_HEADER: usize = 40;

fn be_u32(b: &[u8], at: usize) -> anyhow::Result<u32> {
    let bytes = b.get(at..at + 4).ok_or_else(|| anyhow::anyhow!("histogram truncated"))?;
    Ok(u32::from_be_bytes(bytes.try_into()?))
}

fn be_u64(b: &[u8], at: usize) -> anyhow::Result<u64> {
    let bytes = b.get(at..at + 8).ok_or_else(|| anyhow::anyhow!("histogram truncated"))?;
    Ok(u64::from_be_bytes(bytes.try_into()?))
}

/// Reads a stored histogram's non-zero counters into `out` (cleared first),
/// as `(index, count)` in the layout of [`super::sample::histogram`], without
/// building a histogram: merging many rows needs only these. The same counts
/// as [`decode`] (a test checks it).
pub(super) fn read_counts(bytes: &[u8], out: &mut Vec<(u32, u64)>) -> anyhow::Result<()> {
    out.clear();
    match be_u32(bytes, 0)? {
        V2_COOKIE => read_v2(bytes, out),
        V2_DEFLATE_COOKIE => {
            let len = be_u32(bytes, 4)? as usize;
            let deflated = bytes.get(8..8 + len).ok_or_else(|| anyhow::anyhow!("histogram truncated"))?;
            let mut plain = Vec::with_capacity(len * 4);
            flate2::read::ZlibDecoder::new(deflated).read_to_end(&mut plain)?;
            read_v2(&plain, out)
        }
        other => anyhow::bail!("histogram not read: unknown cookie {other:#x}"),
    }
}

fn read_v2(b: &[u8], out: &mut Vec<(u32, u64)>) -> anyhow::Result<()> {
    anyhow::ensure!(be_u32(b, 0)? == V2_COOKIE, "histogram not read: not V2");
    let len = be_u32(b, 4)? as usize;
    anyhow::ensure!(be_u32(b, 8)? == 0, "histogram not read: normalizing offset");
    let layout = (be_u32(b, 12)?, be_u64(b, 16)?, be_u64(b, 24)?);
    anyhow::ensure!(f64::from_bits(be_u64(b, 32)?) == 1.0, "histogram not read: double ratio");
    if layout != (u32::from(SIGNIFICANT_DIGITS), LOWEST_US, HIGHEST_US) {
        // Other bounds: merged value by value, as `Histogram::add` does.
        let h = decode(b)?;
        out.extend(
            h.iter_recorded()
                .map(|v| (index_of(h.lowest_equivalent(v.value_iterated_to())) as u32, v.count_at_value())),
        );
        return Ok(());
    }
    let payload = b.get(V2_HEADER..V2_HEADER + len).ok_or_else(|| anyhow::anyhow!("histogram truncated"))?;
    let (mut at, mut index, end) = (0, 0usize, counters());
    while at < payload.len() {
        // LEB128, at most 9 bytes (the ninth holds 8 bits), zig-zag signed:
        // a count, or minus a run of zeros.
        let mut raw = 0u64;
        let mut shift = 0;
        loop {
            let byte = *payload.get(at).ok_or_else(|| anyhow::anyhow!("histogram truncated"))?;
            at += 1;
            if shift == 56 {
                raw |= u64::from(byte) << 56;
                break;
            }
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let n = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs() as usize);
        } else {
            anyhow::ensure!(index < end, "histogram not read: more counters than its bounds hold");
            if n > 0 {
                out.push((index as u32, n as u64));
            }
            index += 1;
        }
    }
    Ok(())
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
/// not rolled up yet into hour rows, all replicas merged, an hour at a time
/// (a backlog of days is never read at once). Idempotent: an hour row is
/// written once (two replicas rolling the same hour write the same row; the
/// second is ignored). Returns the hour rows written.
pub(super) async fn roll_up(db: &Db, before: NaiveDateTime) -> anyhow::Result<usize> {
    let end = hour_of(before);
    let mut from = rolled_until(db).await?;
    let mut written = 0;
    // Hour by hour, skipping hours without rows.
    while let Some(first) = first_minute(db, from).await? {
        let hour = hour_of(first);
        if hour >= end {
            break;
        }
        written += roll_up_hour(db, hour).await?;
        from = Some(hour + TimeDelta::hours(1));
    }
    Ok(written)
}

/// The start of the first minute row at or after `from` (of all, if `None`).
async fn first_minute(db: &Db, from: Option<NaiveDateTime>) -> Result<Option<NaiveDateTime>, DbError> {
    db_read!(db, |conn| {
        let mut q = perf_minutes::table.select(diesel::dsl::min(perf_minutes::bucket_start)).into_boxed();
        if let Some(from) = from {
            q = q.filter(perf_minutes::bucket_start.ge(from));
        }
        q.first(conn).await.map_err(DbError::from)
    })
}

/// Rolls the minute rows of the hour starting at `hour` into its hour rows.
async fn roll_up_hour(db: &Db, hour: NaiveDateTime) -> anyhow::Result<usize> {
    let next = hour + TimeDelta::hours(1);
    let rows: Vec<MinuteRow> = db_read!(db, |conn| perf_minutes::table
        .filter(perf_minutes::bucket_start.ge(hour))
        .filter(perf_minutes::bucket_start.lt(next))
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
    let mut merged: HashMap<(String, String), (Counts, i64, i64, i64)> = HashMap::new();
    let mut pairs = Vec::new();
    for (_, method, org, calls, errors, max_us, blob) in rows {
        read_counts(&blob, &mut pairs)?;
        let e = merged.entry((method, org)).or_default();
        e.0.add_all(&pairs);
        e.1 += calls;
        e.2 += errors;
        e.3 = e.3.max(max_us);
    }
    let mut values = Vec::with_capacity(merged.len());
    for ((method, org), (counts, calls, errors, max_us)) in merged {
        values.push((
            perf_hours::bucket_start.eq(hour),
            perf_hours::method.eq(method),
            perf_hours::org_id.eq(org),
            perf_hours::calls.eq(calls),
            perf_hours::errors.eq(errors),
            perf_hours::max_us.eq(max_us),
            perf_hours::histogram.eq(encode(&counts.to_histogram())?),
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

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::V2DeflateSerializer;

    use super::*;

    /// The counters `read_counts` reads are those of the decoded histogram,
    /// in either stored form and for other bounds too.
    #[test]
    fn read_counts_reads_what_decode_reads() {
        let mut ours = super::super::sample::histogram();
        let mut other = Histogram::<u64>::new_with_bounds(10, 10_000_000, 2).expect("bounds");
        for v in [1, 2, 3, 999, 1000, 2047, 2048, 2049, 65_537, 1_000_000, 1_000_000, 3_600_000_000] {
            ours.record(v).expect("in bounds");
            if (10..=10_000_000).contains(&v) {
                other.record(v).expect("in bounds");
            }
        }
        let mut deflated = Vec::new();
        V2DeflateSerializer::new().serialize(&ours, &mut deflated).expect("serialized");
        let mut other_bytes = Vec::new();
        V2Serializer::new().serialize(&other, &mut other_bytes).expect("serialized");
        for bytes in [encode(&ours).expect("encoded"), deflated, other_bytes] {
            let mut pairs = Vec::new();
            read_counts(&bytes, &mut pairs).expect("read");
            let mut counts = Counts::default();
            counts.add_all(&pairs);
            assert_eq!(counts.to_histogram(), decode(&bytes).expect("decoded"));
        }
    }
}
