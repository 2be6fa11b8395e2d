//! `performance.*`: call latency and error rates per method, merged from the
//! HDR histograms every replica records, and the state of this replica.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::OrgId;
use crate::{procedure, reasons};

/// Latency and outcome of a set of calls. Percentiles come from merged
/// histograms (three significant digits), never from averaged percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub calls: u64,
    pub errors: u64,
    /// `errors / calls`, 0 without calls.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// [`Stats`] of one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MethodStats {
    pub method: String,
    #[serde(flatten)]
    #[ts(flatten)]
    pub stats: Stats,
}

/// The width of a series bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The series' bucket: a minute up to 6 hours, an hour up to 7 days, else a day.
    pub bucket: Bucket,
}

/// One bucket of the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    pub start: DateTime<Utc>,
    pub calls: u64,
    pub errors: u64,
    pub p95_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DbPool {
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
}

/// The API key cache of the replica that answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 before any lookup.
    pub hit_rate: f64,
}

/// The replica that answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemStats {
    pub uptime_secs: u64,
    pub rss_bytes: u64,
    /// The process's CPU time over wall time since the previous report (or
    /// the start), in percent of one core.
    pub cpu_percent: f64,
    pub db_pool: DbPool,
    pub cache: CacheStats,
}

/// An alert rule that fires now (alert rules are not served yet: always empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FiringAlert {
    pub metric: String,
    #[serde(default)]
    #[ts(optional)]
    pub method: Option<String>,
    pub threshold: f64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportParams {
    /// The organization whose calls (made in it, or with its API keys) to
    /// report; without it (system admins only), the whole server.
    #[serde(default)]
    #[ts(optional)]
    pub org_id: Option<OrgId>,
    /// Default: an hour before `to`. The window is at most 31 days.
    #[serde(default)]
    #[ts(optional)]
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    #[serde(default)]
    #[ts(optional)]
    pub to: Option<DateTime<Utc>>,
    /// Only this method (a method of the API).
    #[serde(default)]
    #[ts(optional)]
    pub method: Option<String>,
    /// How many methods `byMethod`, `slowest` and `errorRates` list, 1 to 100
    /// (default 10).
    #[serde(default)]
    #[ts(optional)]
    pub top: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PerformanceReport {
    pub window: Window,
    pub totals: Stats,
    /// The `top` methods with the most calls.
    pub by_method: Vec<MethodStats>,
    /// The `top` methods by p95, slowest first.
    pub slowest: Vec<MethodStats>,
    /// The `top` methods by error rate, highest first (only those with errors).
    pub error_rates: Vec<MethodStats>,
    pub series: Vec<SeriesPoint>,
    pub system: SystemStats,
    /// Firing alert rules (none yet: alert rules are not served).
    pub alerts: Vec<FiringAlert>,
}

reasons! {
    /// Why `performance.report` can refuse: without `orgId` only a system
    /// admin may ask; with it, a member needs `performance:read` (NOT_FOUND
    /// when not a member).
    pub enum ReportReason { AdminRequired, MissingPermission, NotFound }
}

procedure! {
    /// Latency (p50/p95/p99/max from merged histograms), calls and errors per method over a window, with a series and this replica's state; `orgId` needs `performance:read` in it, none needs a system admin. Lags by at most the flush interval (`TRELLIS_PERF_FLUSH_MS`).
    Report {
        method: "performance.report",
        kind: Query,
        access: User,
        params: ReportParams,
        output: PerformanceReport,
        reasons: ReportReason,
        example: ReportParams { org_id: Some(OrgId::EXAMPLE), from: None, to: None, method: Some("auth.me".to_owned()), top: Some(10) },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_performance {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::performance::Report,
        ]; $($rest)* }
    };
}
