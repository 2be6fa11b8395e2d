//! `perf_minutes`: one row per minute, method, organization (`''` for none)
//! and replica, holding the serialized histogram (V2; rows written before
//! 2026-12-01 are V2 deflate, which every reader still reads). A flush
//! reads its own row, merges and writes it back in one transaction; no other
//! replica writes that row, so nothing is lost to a race.

use std::collections::HashMap;
use std::io::Read as _;

use chrono::{DateTime, NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

use super::sample::{Counts, Entry, HIGHEST_US, Key, LOWEST_US, SIGNIFICANT_DIGITS, counters, index_of};
use crate::db::schema::{perf_days, perf_dirty, perf_hours, perf_minutes, perf_quarters};
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
    for_each_count(bytes, |index, n| out.push((index as u32, n)))
}

/// Calls `f(index, count)` for each non-zero counter of a stored histogram,
/// in the layout of [`super::sample::histogram`] (what [`read_counts`]
/// reads, without a list in between: a report adds millions of them).
pub(super) fn for_each_count(bytes: &[u8], mut f: impl FnMut(usize, u64)) -> anyhow::Result<()> {
    match be_u32(bytes, 0)? {
        V2_COOKIE => read_v2(bytes, &mut f),
        V2_DEFLATE_COOKIE => {
            let len = be_u32(bytes, 4)? as usize;
            let deflated = bytes.get(8..8 + len).ok_or_else(|| anyhow::anyhow!("histogram truncated"))?;
            let mut plain = Vec::with_capacity(len * 4);
            flate2::read::ZlibDecoder::new(deflated).read_to_end(&mut plain)?;
            read_v2(&plain, &mut f)
        }
        other => anyhow::bail!("histogram not read: unknown cookie {other:#x}"),
    }
}

/// The 7-bit groups of up to eight LEB128 bytes (high bits cleared), little
/// end first, packed into one number.
fn squeeze(x: u64) -> u64 {
    let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

fn read_v2(b: &[u8], f: &mut impl FnMut(usize, u64)) -> anyhow::Result<()> {
    anyhow::ensure!(be_u32(b, 0)? == V2_COOKIE, "histogram not read: not V2");
    let len = be_u32(b, 4)? as usize;
    anyhow::ensure!(be_u32(b, 8)? == 0, "histogram not read: normalizing offset");
    let layout = (be_u32(b, 12)?, be_u64(b, 16)?, be_u64(b, 24)?);
    anyhow::ensure!(f64::from_bits(be_u64(b, 32)?) == 1.0, "histogram not read: double ratio");
    if layout != (u32::from(SIGNIFICANT_DIGITS), LOWEST_US, HIGHEST_US) {
        // Other bounds: merged value by value, as `Histogram::add` does.
        let h = decode(b)?;
        for v in h.iter_recorded() {
            f(index_of(h.lowest_equivalent(v.value_iterated_to())), v.count_at_value());
        }
        return Ok(());
    }
    let payload = b.get(V2_HEADER..V2_HEADER + len).ok_or_else(|| anyhow::anyhow!("histogram truncated"))?;
    let (mut at, mut index, end) = (0, 0usize, counters());
    while at < payload.len() {
        // LEB128, at most 9 bytes (the ninth holds 8 bits), zig-zag signed:
        // a count, or minus a run of zeros.
        let raw = match payload.get(at..at + 8) {
            Some(eight) => {
                let word = u64::from_le_bytes(eight.try_into()?);
                let ends = !word & 0x8080_8080_8080_8080;
                if ends == 0 {
                    // Nine bytes: the ninth holds 8 bits.
                    let ninth = *payload.get(at + 8).ok_or_else(|| anyhow::anyhow!("histogram truncated"))?;
                    at += 9;
                    squeeze(word & 0x7f7f_7f7f_7f7f_7f7f) | (u64::from(ninth) << 56)
                } else {
                    let len = ends.trailing_zeros() as usize / 8 + 1;
                    at += len;
                    let kept = if len == 8 { u64::MAX } else { (1u64 << (8 * len)) - 1 };
                    squeeze(word & kept & 0x7f7f_7f7f_7f7f_7f7f)
                }
            }
            // The last few bytes, one at a time.
            None => {
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
                raw
            }
        };
        let n = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs() as usize);
        } else {
            anyhow::ensure!(index < end, "histogram not read: more counters than its bounds hold");
            if n > 0 {
                f(index, n as u64);
            }
            index += 1;
        }
    }
    Ok(())
}

fn org_key(k: &Key) -> String {
    k.2.map(|o| o.to_string()).unwrap_or_default()
}

/// Bumps the version of the `span` marks of `buckets` (creating them), in
/// the caller's transaction: their rollup is behind.
macro_rules! mark {
    ($conn:ident, $span:expr, $buckets:expr) => {
        for b in $buckets {
            diesel::insert_into(perf_dirty::table)
                .values((perf_dirty::span.eq($span), perf_dirty::bucket_start.eq(b), perf_dirty::version.eq(1i64)))
                .on_conflict((perf_dirty::span, perf_dirty::bucket_start))
                .do_update()
                .set(perf_dirty::version.eq(perf_dirty::version + 1i64))
                .execute($conn)
                .await?;
        }
    };
}

/// Merges `batch` into this replica's rows, and marks their hours for the
/// rollup (in the same transaction).
pub(super) async fn merge_into(db: &Db, replica: &str, batch: &HashMap<Key, Entry>) -> anyhow::Result<usize> {
    let replica = replica.to_owned();
    let rows: Vec<(Key, String, &Entry)> = batch.iter().map(|(k, e)| (*k, org_key(k), e)).collect();
    // In order: two replicas' flushes bump shared marks without deadlock.
    let hours: std::collections::BTreeSet<NaiveDateTime> = rows.iter().map(|((m, _, _), _, _)| hour_of(*m)).collect();
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
            mark!(conn, HOUR, hours.iter().copied());
            Ok::<_, DbError>(rows.len())
        })
        .await)?;
    Ok(n)
}

/// The method of the rows that merge all methods (of one organization).
pub(super) const ALL_METHODS: &str = "*";
const HOUR: &str = "hour";
const QUARTER: &str = "quarter";
const DAY: &str = "day";

/// The start of the hour `t` is in.
pub(super) fn hour_of(t: NaiveDateTime) -> NaiveDateTime {
    floor(t, 3600)
}

/// The start of the quarter of a day (6 hours, UTC) `t` is in.
pub(super) fn quarter_of(t: NaiveDateTime) -> NaiveDateTime {
    floor(t, 6 * 3600)
}

/// The start of the day (UTC) `t` is in.
pub(super) fn day_of(t: NaiveDateTime) -> NaiveDateTime {
    floor(t, 86_400)
}

/// The start of the block of `width` seconds (from the epoch) `t` is in.
pub(super) fn floor(t: NaiveDateTime, width: i64) -> NaiveDateTime {
    let secs = t.and_utc().timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(width), 0).map_or(t, |d| d.naive_utc())
}

/// One row of a window.
pub(super) struct Row {
    pub bucket_start: NaiveDateTime,
    pub method: String,
    pub calls: i64,
    pub errors: i64,
    pub max_us: i64,
    /// The stored 95th percentile (hour and day rows), in microseconds.
    pub p95_us: Option<i64>,
    pub histogram: Vec<u8>,
}

/// Which rollup a window is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rollup {
    Minutes,
    Hours,
    Quarters,
    Days,
}

/// What to read of a window: the rows of `[from, to)` (by the start of
/// their bucket) of a rollup, of one method (`Some`; [`ALL_METHODS`] for the
/// all-methods rows of hours and days) or each method (`None`), of one
/// organization (`Some`; [`ALL_METHODS`] with it for the whole server's
/// all-methods rows) or every organization.
pub(super) struct Read {
    pub rollup: Rollup,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub method: Option<String>,
    pub org: Option<String>,
    /// Whether rows with a stored 95th percentile need their histogram
    /// (a series point made of one row does not).
    pub histograms: bool,
}

/// The rows of one [`Read`].
pub(super) async fn window(db: &Db, read: Read) -> Result<Vec<Row>, DbError> {
    Ok(windows(db, vec![read]).await?.pop().unwrap_or_default())
}

/// The rows of each [`Read`], from one snapshot (a rollup replacing rows
/// meanwhile is seen by all or none).
pub(super) async fn windows(db: &Db, reads: Vec<Read>) -> Result<Vec<Vec<Row>>, DbError> {
    use diesel::sql_types::{BigInt, Binary, Nullable};
    type Loaded = Vec<(NaiveDateTime, String, i64, i64, i64, Option<i64>, Option<Vec<u8>>)>;
    macro_rules! load {
        ($conn:ident, $t:ident, $r:expr, $p95:expr, $histogram:expr) => {{
            let mut q = $t::table
                .filter($t::bucket_start.ge($r.from))
                .filter($t::bucket_start.lt($r.to))
                .select(($t::bucket_start, $t::method, $t::calls, $t::errors, $t::max_us, $p95, $histogram))
                .into_boxed();
            if let Some(org) = &$r.org {
                q = q.filter($t::org_id.eq(org.clone()));
            }
            q = match &$r.method {
                Some(m) => q.filter($t::method.eq(m.clone())),
                None => q.filter($t::method.ne(ALL_METHODS)),
            };
            q.load($conn).await?
        }};
    }
    let pg = db.is_postgres();
    let loaded: Vec<Loaded> = db_read!(db, |conn| conn
        .transaction(async |conn| {
            if pg && reads.len() > 1 {
                diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(conn).await?;
            }
            let mut out = Vec::with_capacity(reads.len());
            for r in &reads {
                let rows: Loaded = if r.from >= r.to {
                    Vec::new()
                } else {
                    match r.rollup {
                        Rollup::Minutes => load!(
                            conn,
                            perf_minutes,
                            r,
                            diesel::dsl::sql::<Nullable<BigInt>>("NULL"),
                            perf_minutes::histogram.nullable()
                        ),
                        Rollup::Hours if !r.histograms => load!(
                            conn,
                            perf_hours,
                            r,
                            perf_hours::p95_us,
                            diesel::dsl::sql::<Nullable<Binary>>("CASE WHEN p95_us IS NULL THEN histogram END")
                        ),
                        Rollup::Hours => {
                            load!(conn, perf_hours, r, perf_hours::p95_us, perf_hours::histogram.nullable())
                        }
                        Rollup::Quarters if !r.histograms => load!(
                            conn,
                            perf_quarters,
                            r,
                            perf_quarters::p95_us,
                            diesel::dsl::sql::<Nullable<Binary>>("CASE WHEN p95_us IS NULL THEN histogram END")
                        ),
                        Rollup::Quarters => {
                            load!(conn, perf_quarters, r, perf_quarters::p95_us, perf_quarters::histogram.nullable())
                        }
                        Rollup::Days if !r.histograms => load!(
                            conn,
                            perf_days,
                            r,
                            perf_days::p95_us,
                            diesel::dsl::sql::<Nullable<Binary>>("CASE WHEN p95_us IS NULL THEN histogram END")
                        ),
                        Rollup::Days => load!(conn, perf_days, r, perf_days::p95_us, perf_days::histogram.nullable()),
                    }
                };
                out.push(rows);
            }
            Ok::<_, DbError>(out)
        })
        .await)?;
    Ok(loaded
        .into_iter()
        .map(|rows| {
            rows.into_iter()
                .map(|(bucket_start, method, calls, errors, max_us, p95_us, histogram)| Row {
                    bucket_start,
                    method,
                    calls,
                    errors,
                    max_us,
                    p95_us,
                    histogram: histogram.unwrap_or_default(),
                })
                .collect()
        })
        .collect())
}

/// Rows of one method and organization merged.
#[derive(Default)]
struct Sum {
    counts: Counts,
    calls: i64,
    errors: i64,
    max_us: i64,
}

impl Sum {
    fn add(&mut self, pairs: &[(u32, u64)], calls: i64, errors: i64, max_us: i64) {
        self.counts.add_all(pairs);
        self.calls += calls;
        self.errors += errors;
        self.max_us = self.max_us.max(max_us);
    }
}

/// A source row of a rollup: method, organization, calls, errors, max, histogram.
type SourceRow = (String, String, i64, i64, i64, Vec<u8>);

/// Brings the rollups up to date with their rows: every hour a flush
/// marked since its last rollup is rolled up again from its minute rows,
/// then every quarter so marked from its hour rows, then every day from its
/// quarter rows (oldest first, at most 500 of each a round). Run by one replica at a time (the `perf_rollup` lease).
/// Returns the rows written.
pub(super) async fn roll_up(db: &Db) -> anyhow::Result<usize> {
    let mut written = 0;
    for span in [HOUR, QUARTER, DAY] {
        let marks: Vec<(NaiveDateTime, i64)> = db_read!(db, |conn| perf_dirty::table
            .filter(perf_dirty::span.eq(span))
            .select((perf_dirty::bucket_start, perf_dirty::version))
            .order(perf_dirty::bucket_start)
            .limit(500)
            .load(conn)
            .await
            .map_err(DbError::from))?;
        for (bucket, version) in marks {
            written += roll(db, span, bucket, version).await?;
        }
    }
    Ok(written)
}

/// Marks every hour that has minute rows for the rollup.
pub(super) async fn mark_all(db: &Db) -> Result<(), DbError> {
    let minutes: Vec<NaiveDateTime> = db_read!(db, |conn| perf_minutes::table
        .select(perf_minutes::bucket_start)
        .distinct()
        .load(conn)
        .await
        .map_err(DbError::from))?;
    let hours: std::collections::BTreeSet<NaiveDateTime> = minutes.into_iter().map(hour_of).collect();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            mark!(conn, HOUR, hours.iter().copied());
            Ok::<_, DbError>(())
        })
        .await)
}

/// Rolls one hour (from its minute rows), quarter (from its hour rows) or
/// day (from its quarter rows) up, replacing its rows and marking the span
/// above; the mark read at `version` is removed in the same transaction
/// unless it was bumped meanwhile.
async fn roll(db: &Db, span: &'static str, bucket: NaiveDateTime, version: i64) -> anyhow::Result<usize> {
    macro_rules! source {
        ($t:ident, $width:expr) => {{
            let next = bucket + $width;
            db_read!(db, |conn| $t::table
                .filter($t::bucket_start.ge(bucket))
                .filter($t::bucket_start.lt(next))
                .filter($t::method.ne(ALL_METHODS))
                .select(($t::method, $t::org_id, $t::calls, $t::errors, $t::max_us, $t::histogram))
                .load(conn)
                .await
                .map_err(DbError::from))?
        }};
    }
    let rows: Vec<SourceRow> = match span {
        HOUR => source!(perf_minutes, TimeDelta::hours(1)),
        QUARTER => source!(perf_hours, TimeDelta::hours(6)),
        _ => source!(perf_quarters, TimeDelta::days(1)),
    };
    let mut merged: HashMap<(String, String), Sum> = HashMap::new();
    let mut pairs = Vec::new();
    for (method, org, calls, errors, max_us, blob) in rows {
        read_counts(&blob, &mut pairs)?;
        merged.entry((ALL_METHODS.to_owned(), ALL_METHODS.to_owned())).or_default().add(&pairs, calls, errors, max_us);
        merged.entry((ALL_METHODS.to_owned(), org.clone())).or_default().add(&pairs, calls, errors, max_us);
        merged.entry((method, org)).or_default().add(&pairs, calls, errors, max_us);
    }
    let mut values = Vec::with_capacity(merged.len());
    for ((method, org), sum) in merged {
        let p95 = sum.counts.value_at_quantile(0.95) as i64;
        values.push((method, org, sum.calls, sum.errors, sum.max_us, p95, encode(&sum.counts.to_histogram())?));
    }
    let n = values.len();
    macro_rules! replace {
        ($conn:ident, $t:ident) => {{
            diesel::delete($t::table.filter($t::bucket_start.eq(bucket))).execute($conn).await?;
            for (method, org, calls, errors, max_us, p95, blob) in &values {
                diesel::insert_into($t::table)
                    .values((
                        $t::bucket_start.eq(bucket),
                        $t::method.eq(method),
                        $t::org_id.eq(org),
                        $t::calls.eq(calls),
                        $t::errors.eq(errors),
                        $t::max_us.eq(max_us),
                        $t::p95_us.eq(Some(*p95)),
                        $t::histogram.eq(blob),
                    ))
                    .execute($conn)
                    .await?;
            }
        }};
    }
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            // The span above is behind now.
            match span {
                HOUR => {
                    replace!(conn, perf_hours);
                    mark!(conn, QUARTER, [quarter_of(bucket)]);
                }
                QUARTER => {
                    replace!(conn, perf_quarters);
                    mark!(conn, DAY, [day_of(bucket)]);
                }
                _ => replace!(conn, perf_days),
            }
            diesel::delete(
                perf_dirty::table
                    .filter(perf_dirty::span.eq(span))
                    .filter(perf_dirty::bucket_start.eq(bucket))
                    .filter(perf_dirty::version.eq(version)),
            )
            .execute(conn)
            .await?;
            Ok::<_, DbError>(())
        })
        .await)?;
    Ok(n)
}

/// Deletes minute rows older than `cutoff`, in batches, and the rollup
/// marks of the hours before it (nothing is left to roll them up from).
pub(crate) async fn prune(db: &Db, cutoff: NaiveDateTime) -> Result<u64, DbError> {
    let before = hour_of(cutoff) + TimeDelta::hours(1);
    db_run!(db, |conn| diesel::delete(
        perf_dirty::table.filter(perf_dirty::span.eq(HOUR)).filter(perf_dirty::bucket_start.lt(before))
    )
    .execute(conn)
    .await
    .map_err(DbError::from))?;
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

/// Deletes hour and day rows older than `cutoff`, in batches.
pub(crate) async fn prune_hours(db: &Db, cutoff: NaiveDateTime) -> Result<u64, DbError> {
    macro_rules! prune {
        ($t:ident, $cutoff:expr) => {{
            let cutoff = $cutoff;
            crate::db::in_batches(1000, |size| async move {
                let size = size as i64;
                db_run!(db, |conn| {
                    let old: Vec<(NaiveDateTime, String, String)> = $t::table
                        .filter($t::bucket_start.lt(cutoff))
                        .select(($t::bucket_start, $t::method, $t::org_id))
                        .limit(size)
                        .load(conn)
                        .await
                        .map_err(DbError::from)?;
                    for (b, m, o) in &old {
                        diesel::delete($t::table.find((*b, m.as_str(), o.as_str())))
                            .execute(conn)
                            .await
                            .map_err(DbError::from)?;
                    }
                    Ok::<_, DbError>(old.len())
                })
            })
            .await
        }};
    }
    let hours = prune!(perf_hours, cutoff)?;
    // A quarter or a day once all its hours are.
    let quarters = prune!(perf_quarters, quarter_of(cutoff))?;
    Ok(hours + quarters + prune!(perf_days, day_of(cutoff))?)
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
        // Counts of one to nine bytes.
        for (v, n) in [(5, 1u64 << 20), (6, 1 << 40), (7, (1 << 55) + 3), (8, 1 << 61)] {
            ours.record_n(v, n).expect("in bounds");
        }
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
