//! `health.*`: is the server and what it depends on working.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::NoReason;
use crate::{Empty, procedure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyCheck {
    pub ok: bool,
    /// Round-trip time of the probe, in milliseconds.
    pub latency_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheCheck {
    /// With Redis: whether it answers and this replica listens to the
    /// change notices of the others (`false` makes the status `degraded`).
    pub ok: bool,
    pub latency_ms: f64,
    /// `memory` (in-process) or `redis`.
    pub backend: String,
    /// With Redis: rate limit passes and change notices that fell back to
    /// this replica (per-replica limits, the database sync) because Redis
    /// was away, since the server started. Always 0 in memory. (Absent from
    /// servers before it was added: read as 0.)
    #[serde(default)]
    pub fallbacks: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    pub database: DependencyCheck,
    pub cache: CacheCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub status: HealthStatus,
    pub version: String,
    pub uptime_secs: u64,
    pub checks: Checks,
}

procedure! {
    /// The server's status and that of its database and cache.
    Check {
        method: "health.check",
        kind: Query,
        access: Public,
        params: Empty,
        output: CheckResult,
        reasons: NoReason,
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_health {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::health::Check,
        ]; $($rest)* }
    };
}
