//! `performance.*`: call latency and error rates per method, merged from the
//! HDR histograms every replica records, and the state of this replica.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::access::{OrgOrServer, Permission};
use crate::error::NoReason;
use crate::ids::{AlertRuleId, OrgId};
use crate::procedure;

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

/// What an alert rule watches, over its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
pub enum AlertMetric {
    /// The 95th percentile of call latency, in milliseconds (from the merged
    /// histograms of the minutes the window overlaps).
    #[serde(rename = "p95Ms")]
    P95Ms,
    /// Failed calls ÷ calls, 0 to 1.
    #[serde(rename = "errorRate")]
    ErrorRate,
    /// Calls per minute over the window.
    #[serde(rename = "callsPerMinute")]
    CallsPerMinute,
}

impl AlertMetric {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::P95Ms => "p95Ms",
            Self::ErrorRate => "errorRate",
            Self::CallsPerMinute => "callsPerMinute",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        [Self::P95Ms, Self::ErrorRate, Self::CallsPerMinute].into_iter().find(|m| m.as_str() == s)
    }
}

/// A rule as set: it fires when `metric` (of `method`'s calls, or of every
/// call) over the last `windowSecs` is above `threshold`, and resolves when
/// it is back at or below it. Calls of the rule's organization only, for an
/// organization's rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertRuleSpec {
    pub metric: AlertMetric,
    /// Only this method's calls (a method of the API).
    #[serde(default)]
    #[ts(optional)]
    pub method: Option<String>,
    /// At least 0; at most 1 for `errorRate`.
    pub threshold: f64,
    /// 60 to 86,400 seconds.
    pub window_secs: u32,
}

/// A rule as stored, and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRule {
    pub id: AlertRuleId,
    pub metric: AlertMetric,
    pub method: Option<String>,
    pub threshold: f64,
    pub window_secs: u32,
    /// Since when it fires; absent while it does not.
    pub firing_since: Option<DateTime<Utc>>,
    /// The metric's value at the last evaluation; absent before the first.
    pub last_value: Option<f64>,
    pub evaluated_at: Option<DateTime<Utc>>,
}

/// An alert rule that fires now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FiringAlert {
    pub rule_id: AlertRuleId,
    pub metric: AlertMetric,
    pub method: Option<String>,
    pub threshold: f64,
    /// The metric's value at the last evaluation.
    pub value: f64,
    pub since: DateTime<Utc>,
}

/// The alert rules of an organization (`orgId`) or of the server (none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetAlertRulesParams {
    /// The organization whose rules to read; without it (system admins
    /// only), the server's.
    #[serde(default)]
    #[ts(optional)]
    pub org_id: Option<OrgId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetAlertRulesParams {
    /// The organization whose rules to set; without it (system admins
    /// only), the server's.
    #[serde(default)]
    #[ts(optional)]
    pub org_id: Option<OrgId>,
    /// The whole set (at most 20), replacing the previous one. A rule sent
    /// again unchanged keeps its id and state (a firing one does not fire
    /// again); a rule left out is deleted without notice.
    pub rules: Vec<AlertRuleSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRules {
    pub rules: Vec<AlertRule>,
}

/// At most this many alert rules per organization, and for the server.
pub const MAX_ALERT_RULES: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportParams {
    /// The organization whose calls (made in it, or with its API keys) to
    /// report; without it (system admins only), the whole server.
    #[serde(default)]
    #[ts(optional)]
    pub org_id: Option<OrgId>,
    /// Default: an hour before `to`. The window is at most 31 days. A call
    /// counts when the minute it ended in starts in the window; in a window
    /// over 6 hours, when its hour starts in it (such windows are read from
    /// hourly and daily rollups, refreshed every `TRELLIS_PERF_ROLLUP_MS`).
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
    /// The alert rules of the report's scope (the organization's, or the
    /// server's) that fire now.
    pub alerts: Vec<FiringAlert>,
}

procedure! {
    /// Latency (p50/p95/p99/max from merged histograms), calls and errors per method over a window, with a series, this replica's state and the firing alerts; `orgId` needs `performance:read` in it (a member or API key), none needs a system admin. Lags by at most the flush interval (`TRELLIS_PERF_FLUSH_MS`), and over 6 hours by the rollup interval (`TRELLIS_PERF_ROLLUP_MS`) more.
    Report {
        method: "performance.report",
        kind: Query,
        access: OrgOrAdmin(Permission::PerformanceRead),
        params: ReportParams,
        output: PerformanceReport,
        org: OrgOrServer = |p| OrgOrServer(p.org_id),
        reasons: NoReason,
        example: ReportParams { org_id: Some(OrgId::EXAMPLE), from: None, to: None, method: Some("auth.me".to_owned()), top: Some(10) },
    }
}

procedure! {
    /// The alert rules of an organization (`performance:read` in it) or, without `orgId`, of the server (system admins), with each one's state.
    GetAlertRules {
        method: "performance.getAlertRules",
        kind: Query,
        access: OrgOrAdmin(Permission::PerformanceRead),
        params: GetAlertRulesParams,
        output: AlertRules,
        org: OrgOrServer = |p| OrgOrServer(p.org_id),
        reasons: NoReason,
        example: GetAlertRulesParams { org_id: Some(OrgId::EXAMPLE) },
    }
}

procedure! {
    /// Replaces the alert rules of an organization (`org:manage` in it) or, without `orgId`, of the server (system admins). A rule is evaluated on one replica at a time; when it starts firing, and again when it resolves, the organization's owners and admins (system admins, for the server's rules) are notified, in-app, by e-mail and to the organization's webhooks as their preferences and subscriptions say.
    SetAlertRules {
        method: "performance.setAlertRules",
        kind: Mutation,
        access: OrgOrAdmin(Permission::OrgManage),
        params: SetAlertRulesParams,
        output: AlertRules,
        org: OrgOrServer = |p| OrgOrServer(p.org_id),
        reasons: NoReason,
        example: SetAlertRulesParams {
            org_id: Some(OrgId::EXAMPLE),
            rules: vec![AlertRuleSpec {
                metric: AlertMetric::P95Ms,
                method: Some("orgs.get".to_owned()),
                threshold: 250.0,
                window_secs: 300,
            }],
        },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_performance {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::performance::Report,
            $crate::performance::GetAlertRules,
            $crate::performance::SetAlertRules,
        ]; $($rest)* }
    };
}
