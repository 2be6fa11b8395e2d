//! `performance.report`: the window's rows merged, histogram by histogram
//! (never averaged percentiles). Reads what the replicas have flushed, so it
//! lags by at most `TRELLIS_PERF_FLUSH_MS`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use trellis_schema::ApiError;
use trellis_schema::error::FieldError;
use trellis_schema::error::NoReason;
use trellis_schema::performance::{
    Bucket, MethodStats, PerformanceReport, Report, ReportParams, SeriesPoint, Stats, Window,
};

use super::sample::Counts;
use super::store::{self, Rollup};
use crate::access::OrgOrAdminCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

const MAX_WINDOW_DAYS: i64 = 31;

fn invalid(path: &str, message: &str) -> HandlerError<NoReason> {
    HandlerError::Common(ApiError::validation(vec![FieldError { path: path.into(), message: message.into() }]))
}

/// One method's, one series bucket's or the window's merged rows.
#[derive(Default)]
struct Agg {
    counts: Counts,
    calls: u64,
    errors: u64,
    max_us: u64,
    /// A stored 95th percentile, taken as it is (a series point of one row).
    p95_us: Option<u64>,
}

impl Agg {
    /// Adds a row (its histogram's counters, its counts).
    fn add(&mut self, row: &store::Row) -> anyhow::Result<()> {
        store::for_each_count(&row.histogram, |index, count| self.counts.add(index, count))?;
        self.calls += row.calls.max(0) as u64;
        self.errors += row.errors.max(0) as u64;
        self.max_us = self.max_us.max(row.max_us.max(0) as u64);
        Ok(())
    }

    fn merge(&mut self, other: &Agg) {
        self.counts.merge(&other.counts);
        self.calls += other.calls;
        self.errors += other.errors;
        self.max_us = self.max_us.max(other.max_us);
    }

    fn ms(&self, q: f64) -> f64 {
        if self.counts.is_empty() { 0.0 } else { self.counts.value_at_quantile(q) as f64 / 1000.0 }
    }

    fn stats(&self) -> Stats {
        Stats {
            calls: self.calls,
            errors: self.errors,
            error_rate: if self.calls == 0 { 0.0 } else { self.errors as f64 / self.calls as f64 },
            p50_ms: self.ms(0.5),
            p95_ms: self.ms(0.95),
            p99_ms: self.ms(0.99),
            max_ms: self.max_us as f64 / 1000.0,
        }
    }
}

/// The window's rows merged: in total, per method, per series bucket. Each
/// row's histogram is read once; the totals are the methods' merged.
struct Merged {
    totals: Agg,
    methods: HashMap<String, Agg>,
    series: BTreeMap<NaiveDateTime, Agg>,
}

/// The rows a report merges: each method's, and the series' (all methods
/// merged, when the methods' rows are not read for it).
struct Rows {
    methods: Vec<store::Row>,
    series: Option<Vec<store::Row>>,
}

fn merge_rows(rows: &Rows, bucket: Bucket) -> anyhow::Result<Merged> {
    let mut methods: HashMap<String, Agg> = HashMap::new();
    let mut series: BTreeMap<NaiveDateTime, Agg> = BTreeMap::new();
    for row in &rows.methods {
        match methods.get_mut(&row.method) {
            Some(a) => a.add(row)?,
            None => methods.entry(row.method.clone()).or_default().add(row)?,
        }
        if rows.series.is_none() {
            series.entry(bucket_start(row.bucket_start, bucket)).or_default().add(row)?;
        }
    }
    // A series bucket of one stored row takes its counts and stored p95 as
    // they are; others merge their rows' histograms.
    let mut by_bucket: BTreeMap<NaiveDateTime, Vec<&store::Row>> = BTreeMap::new();
    for row in rows.series.iter().flatten() {
        by_bucket.entry(bucket_start(row.bucket_start, bucket)).or_default().push(row);
    }
    for (start, rows) in by_bucket {
        let agg = series.entry(start).or_default();
        match rows.as_slice() {
            [row] if row.p95_us.is_some() => {
                agg.calls = row.calls.max(0) as u64;
                agg.errors = row.errors.max(0) as u64;
                agg.p95_us = row.p95_us.map(|p| p.max(0) as u64);
            }
            rows => {
                for row in rows {
                    agg.add(row)?;
                }
            }
        }
    }
    let mut totals = Agg::default();
    for a in methods.values() {
        totals.merge(a);
    }
    Ok(Merged { totals, methods, series })
}

/// [`merge_rows`] off the runtime's threads (a long window adds millions of
/// counters), each method's rows on one of two threads.
async fn merge(mut rows: Rows, bucket: Bucket) -> anyhow::Result<Merged> {
    async fn blocking(rows: Rows, bucket: Bucket) -> anyhow::Result<Merged> {
        tokio::task::spawn_blocking(move || merge_rows(&rows, bucket))
            .await
            .map_err(|e| anyhow::anyhow!("the report's rows were not merged: {e}"))?
    }
    if rows.series.is_none() || rows.methods.len() < 64 {
        return blocking(rows, bucket).await;
    }
    // The methods' rows are in method order: split between two methods.
    let mut mid = rows.methods.len() / 2;
    while mid < rows.methods.len() && rows.methods[mid].method == rows.methods[mid - 1].method {
        mid += 1;
    }
    let second = Rows { methods: rows.methods.split_off(mid), series: rows.series.take() };
    let first = Rows { methods: rows.methods, series: Some(Vec::new()) };
    let (first, second) = futures::try_join!(blocking(first, bucket), blocking(second, bucket))?;
    let Merged { mut totals, mut methods, series } = second;
    totals.merge(&first.totals);
    methods.extend(first.methods);
    Ok(Merged { totals, methods, series })
}

fn bucket_of(span: TimeDelta) -> Bucket {
    if span <= TimeDelta::hours(6) {
        Bucket::Minute
    } else if span <= TimeDelta::days(7) {
        Bucket::Hour
    } else {
        Bucket::Day
    }
}

fn bucket_start(t: NaiveDateTime, b: Bucket) -> NaiveDateTime {
    let secs = t.and_utc().timestamp();
    let width = match b {
        Bucket::Minute => 60,
        Bucket::Hour => 3600,
        Bucket::Day => 86_400,
    };
    DateTime::from_timestamp(secs - secs.rem_euclid(width), 0).map_or(t, |d| d.naive_utc())
}

fn top_by<F: Fn(&MethodStats) -> f64>(all: &[MethodStats], top: usize, key: F) -> Vec<MethodStats> {
    let mut v = all.to_vec();
    v.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.method.cmp(&b.method)));
    v.truncate(top);
    v
}

/// The first multiple of `width` seconds at or after `t`.
fn ceil(t: NaiveDateTime, width: i64) -> NaiveDateTime {
    let secs = t.and_utc().timestamp();
    let over = secs.rem_euclid(width);
    let secs = if over == 0 { secs } else { secs - over + width };
    DateTime::from_timestamp(secs, 0).map_or(t, |d| d.naive_utc())
}

const HOUR: i64 = 3600;
const QUARTER: i64 = 6 * HOUR;
const DAY: i64 = 24 * HOUR;

/// How a window over 6 hours is tiled by rollups: hours `[h0, q0)`,
/// quarters `[q0, d0)`, days `[d0, d1)`, quarters `[d1, q1)`, hours
/// `[q1, h1)` (empty spans where the window holds no whole quarter or day).
/// It counts the hours that start in the window; the quarter and the day of
/// the present hour count as whole when the window reaches it (nothing
/// after it is recorded yet).
#[derive(Debug, PartialEq, Eq)]
struct Tiles {
    h0: NaiveDateTime,
    q0: NaiveDateTime,
    d0: NaiveDateTime,
    d1: NaiveDateTime,
    q1: NaiveDateTime,
    h1: NaiveDateTime,
}

impl Tiles {
    fn of(from: NaiveDateTime, to: NaiveDateTime, now: NaiveDateTime) -> Self {
        let (h0, h1) = (ceil(from, HOUR), ceil(to, HOUR));
        let now_hour = ceil(now, HOUR);
        // The end of the last whole block of `width` before h1 (reaching the
        // present hour, of the block holding it).
        let end = |width: i64| {
            let whole = store::floor(h1, width);
            if h1 >= now_hour { whole.max(ceil(now_hour, width)) } else { whole }
        };
        let (q0, q1) = (ceil(h0, QUARTER), end(QUARTER));
        if q1 <= q0 {
            return Self { h0, q0: h1, d0: h1, d1: h1, q1: h1, h1 };
        }
        let (d0, d1) = (ceil(q0, DAY), end(DAY));
        let (d0, d1) = if d1 > d0 { (d0, d1) } else { (q1, q1) };
        Self { h0, q0, d0, d1, q1, h1 }
    }

    /// The spans, as `(rollup, from, to)`, in order, none empty and none
    /// overlapping another (the present day may end after `h1`).
    fn spans(&self) -> Vec<(Rollup, NaiveDateTime, NaiveDateTime)> {
        let Self { h0, q0, d0, d1, q1, h1 } = *self;
        let mut spans = Vec::with_capacity(5);
        let mut start = h0;
        for (rollup, end) in [
            (Rollup::Hours, q0),
            (Rollup::Quarters, d0),
            (Rollup::Days, d1),
            (Rollup::Quarters, q1),
            (Rollup::Hours, h1),
        ] {
            if end > start {
                spans.push((rollup, start, end));
                start = end;
            }
        }
        spans
    }
}

/// The rows of the window: a row counts when its bucket starts in it. A
/// window of up to 6 hours reads minute rows. A longer one counts the hours
/// that start in it, read by the fewest rows (see [`Tiles`]): each method's,
/// and the series from the all-methods rows; with `method`, that method's
/// hour rows for both.
async fn rows_of(
    state: &crate::state::State,
    bucket: Bucket,
    from: NaiveDateTime,
    to: NaiveDateTime,
    p: &ReportParams,
) -> Result<Rows, crate::db::DbError> {
    let org = p.org_id.map(|o| o.to_string());
    // Each method's rows of `org` (or of all organizations).
    let read = |rollup, from, to, method: Option<&str>| store::Read {
        rollup,
        from,
        to,
        method: method.map(str::to_owned),
        org: org.clone(),
        histograms: true,
    };
    let one = |r| store::window(&state.db, r);
    if bucket == Bucket::Minute {
        return Ok(Rows { methods: one(read(Rollup::Minutes, from, to, p.method.as_deref())).await?, series: None });
    }
    let tiles = Tiles::of(from, to, crate::db::models::now());
    if p.method.is_some() {
        let hours = read(Rollup::Hours, tiles.h0, tiles.h1, p.method.as_deref());
        return Ok(Rows { methods: one(hours).await?, series: None });
    }
    // The all-methods rows of the organization, or the whole server's.
    let all = |rollup, from, to| store::Read {
        rollup,
        from,
        to,
        method: Some(store::ALL_METHODS.to_owned()),
        org: Some(org.clone().unwrap_or_else(|| store::ALL_METHODS.to_owned())),
        // A series point of one row takes its stored p95.
        histograms: bucket == Bucket::Day && rollup != Rollup::Days,
    };
    let spans = tiles.spans();
    let mut reads: Vec<store::Read> = spans.iter().map(|&(r, a, b)| read(r, a, b, None)).collect();
    if bucket == Bucket::Day {
        reads.extend(spans.iter().map(|&(r, a, b)| all(r, a, b)));
    } else {
        reads.push(all(Rollup::Hours, tiles.h0, tiles.h1));
    }
    let mut read = store::windows(&state.db, reads).await?.into_iter();
    let mut methods: Vec<store::Row> = read.by_ref().take(spans.len()).flatten().collect();
    // One method's rows in a row: its counters stay in the cache while they
    // are added up.
    methods.sort_unstable_by(|a, b| a.method.cmp(&b.method));
    Ok(Rows { methods, series: Some(read.flatten().collect()) })
}

impl Handler for Report {
    async fn handle(ctx: OrgOrAdminCtx, p: ReportParams) -> Result<PerformanceReport, HandlerError<NoReason>> {
        let state = &ctx.call().state;
        let to = p.to.unwrap_or_else(Utc::now);
        let from = p.from.unwrap_or(to - TimeDelta::hours(1));
        if from >= to {
            return Err(invalid("from", "must be before to"));
        }
        if to - from > TimeDelta::days(MAX_WINDOW_DAYS) {
            return Err(invalid("from", "the window is at most 31 days"));
        }
        let top = p.top.unwrap_or(10);
        if !(1..=100).contains(&top) {
            return Err(invalid("top", "must be 1 to 100"));
        }
        if let Some(m) = &p.method
            && !super::sample::known_methods().contains(m.as_str())
        {
            return Err(invalid("method", "is not a method of the API"));
        }
        let bucket = bucket_of(to - from);
        let rows = rows_of(state, bucket, from.naive_utc(), to.naive_utc(), &p).await?;
        let Merged { totals, methods, series } = merge(rows, bucket).await?;
        let all: Vec<MethodStats> =
            methods.iter().map(|(m, a)| MethodStats { method: m.clone(), stats: a.stats() }).collect();
        let top = top as usize;
        let with_errors: Vec<MethodStats> = all.iter().filter(|m| m.stats.errors > 0).cloned().collect();
        Ok(PerformanceReport {
            window: Window { from, to, bucket },
            totals: totals.stats(),
            by_method: top_by(&all, top, |m| m.stats.calls as f64),
            slowest: top_by(&all, top, |m| m.stats.p95_ms),
            error_rates: top_by(&with_errors, top, |m| m.stats.error_rate),
            series: series
                .into_iter()
                .map(|(start, a)| SeriesPoint {
                    start: start.and_utc(),
                    calls: a.calls,
                    errors: a.errors,
                    p95_ms: a.p95_us.map_or_else(|| a.ms(0.95), |us| us as f64 / 1000.0),
                })
                .collect(),
            system: super::system::stats(state),
            alerts: super::alerts::firing(&state.db, ctx.org_id()).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("a time")
    }

    /// The spans of a window, as `rollup day hh:mm-day hh:mm`.
    fn spans(from: &str, to: &str, now: &str) -> Vec<String> {
        let f = |x: NaiveDateTime| x.format("%d %H:%M").to_string();
        Tiles::of(t(from), t(to), t(now))
            .spans()
            .into_iter()
            .map(|(r, a, b)| format!("{r:?} {}-{}", f(a), f(b)))
            .collect()
    }

    #[test]
    fn a_window_is_tiled_by_the_fewest_rows() {
        // A week up to now: hours up to a quarter, quarters up to a day,
        // days through today (the window reaches the present hour).
        assert_eq!(
            spans("2026-12-01 10:40", "2026-12-08 10:40", "2026-12-08 10:40"),
            ["Hours 01 11:00-01 12:00", "Quarters 01 12:00-02 00:00", "Days 02 00:00-09 00:00"]
        );
        // The same week in the past: its end by quarter and hour.
        assert_eq!(
            spans("2026-12-01 10:40", "2026-12-08 10:40", "2026-12-20 00:00"),
            [
                "Hours 01 11:00-01 12:00",
                "Quarters 01 12:00-02 00:00",
                "Days 02 00:00-08 00:00",
                "Quarters 08 00:00-08 06:00",
                "Hours 08 06:00-08 11:00",
            ]
        );
        // No whole day: quarters; no whole quarter: hours.
        assert_eq!(
            spans("2026-12-01 04:10", "2026-12-01 20:00", "2026-12-20 00:00"),
            ["Hours 01 05:00-01 06:00", "Quarters 01 06:00-01 18:00", "Hours 01 18:00-01 20:00"]
        );
        assert_eq!(spans("2026-12-01 07:10", "2026-12-01 14:00", "2026-12-20 00:00"), ["Hours 01 08:00-01 14:00"]);
        // Reaching the present hour, its quarter counts as whole.
        assert_eq!(
            spans("2026-12-01 04:10", "2026-12-01 20:00", "2026-12-01 19:30"),
            ["Hours 01 05:00-01 06:00", "Quarters 01 06:00-02 00:00"]
        );
        // A window ending after the present: the future hours read no more
        // than once.
        assert_eq!(spans("2026-11-28 00:00", "2026-12-01 13:30", "2026-12-01 10:30"), ["Days 28 00:00-02 00:00"]);
    }
}
