//! `performance.report`: the window's rows merged, histogram by histogram
//! (never averaged percentiles). Reads what the replicas have flushed, so it
//! lags by at most `TRELLIS_PERF_FLUSH_MS`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use trellis_schema::ApiError;
use trellis_schema::error::FieldError;
use trellis_schema::error::NoReason;
use trellis_schema::performance::{
    Bucket, MethodStats, PerformanceReport, Report, ReportParams, SeriesPoint, Stats, Window,
};

use super::sample::Counts;
use super::store::{self, Rollup, read_counts};
use crate::access::OrgOrAdminCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

const MAX_WINDOW_DAYS: i64 = 31;

/// The methods of the API (what a report or an alert rule may name).
pub(super) fn known_methods() -> &'static HashSet<&'static str> {
    static METHODS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    METHODS.get_or_init(|| trellis_schema::procedure::procedures().iter().map(|p| p.method).collect())
}

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
}

impl Agg {
    /// Adds a row whose histogram's counters are `pairs`.
    fn add(&mut self, pairs: &[(u32, u64)], row: &store::Row) {
        self.counts.add_all(pairs);
        self.calls += row.calls.max(0) as u64;
        self.errors += row.errors.max(0) as u64;
        self.max_us = self.max_us.max(row.max_us.max(0) as u64);
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
/// row's histogram is read once, into its method's and its bucket's
/// counters; the totals are the methods' merged.
struct Merged {
    totals: Agg,
    methods: HashMap<String, Agg>,
    series: BTreeMap<NaiveDateTime, Agg>,
}

fn merge_rows(rows: &[store::Row], bucket: Bucket) -> anyhow::Result<Merged> {
    let mut methods: HashMap<String, Agg> = HashMap::new();
    let mut series: BTreeMap<NaiveDateTime, Agg> = BTreeMap::new();
    let mut pairs = Vec::new();
    for row in rows {
        read_counts(&row.histogram, &mut pairs)?;
        match methods.get_mut(&row.method) {
            Some(a) => a.add(&pairs, row),
            None => methods.entry(row.method.clone()).or_default().add(&pairs, row),
        }
        series.entry(bucket_start(row.bucket_start, bucket)).or_default().add(&pairs, row);
    }
    let mut totals = Agg::default();
    for a in methods.values() {
        totals.merge(a);
    }
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

fn ceil_hour(t: NaiveDateTime) -> NaiveDateTime {
    let start = bucket_start(t, Bucket::Hour);
    if start == t { t } else { start + TimeDelta::hours(1) }
}

/// The rows of the window: a row counts when its bucket starts in it. A
/// window of up to 6 hours reads minute rows; a longer one reads hour rows
/// for the whole hours rolled up, and minute rows for its ends.
async fn rows_of(
    state: &crate::state::State,
    bucket: Bucket,
    from: NaiveDateTime,
    to: NaiveDateTime,
    p: &ReportParams,
) -> Result<Vec<store::Row>, crate::db::DbError> {
    let org = p.org_id.map(|o| o.to_string());
    let db = &state.db;
    let minutes = |a, b| store::window(db, Rollup::Minutes, a, b, org.clone(), p.method.clone());
    if bucket == Bucket::Minute {
        return minutes(from, to).await;
    }
    let h0 = ceil_hour(from);
    let h1 = match store::rolled_until(db).await? {
        Some(r) => r.min(bucket_start(to, Bucket::Hour)),
        None => h0,
    };
    if h1 <= h0 {
        return minutes(from, to).await;
    }
    let mut rows = minutes(from, h0).await?;
    rows.extend(store::window(db, Rollup::Hours, h0, h1, org.clone(), p.method.clone()).await?);
    rows.extend(minutes(h1, to).await?);
    Ok(rows)
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
            && !known_methods().contains(m.as_str())
        {
            return Err(invalid("method", "is not a method of the API"));
        }
        let bucket = bucket_of(to - from);
        let rows = rows_of(state, bucket, from.naive_utc(), to.naive_utc(), &p).await?;
        let Merged { totals, methods, series } = merge_rows(&rows, bucket)?;
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
                    p95_ms: a.ms(0.95),
                })
                .collect(),
            system: super::system::stats(state),
            alerts: super::alerts::firing(&state.db, ctx.org_id()).await?,
        })
    }
}
