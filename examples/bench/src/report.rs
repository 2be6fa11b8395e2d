//! The figures: a table for people, then one `BENCH_JSON` line per scenario
//! for scripts.

use std::time::Duration;

use serde_json::json;

use crate::load::{Load, Outcome};

/// The scenario every other one is compared with.
pub const FLOOR: &str = "floor";
/// The single call batches are compared with.
pub const SINGLE: &str = "health_check";

/// One measured scenario.
pub struct Row {
    /// Stable name for scripts.
    pub id: &'static str,
    /// Name for people.
    pub label: &'static str,
    /// JSON-RPC calls in each request.
    pub calls: usize,
    pub outcome: Outcome,
}

impl Row {
    pub fn calls_per_sec(&self) -> f64 {
        self.outcome.requests_per_sec() * self.calls as f64
    }
}

pub fn print(load: Load, threads: usize, rows: &[Row]) {
    let floor = calls_per_sec_of(rows, FLOOR);
    let single = calls_per_sec_of(rows, SINGLE);

    println!();
    println!(
        "{} connections, {:.1} s warm-up, {:.1} s measured per scenario; servers and load generator on separate \
         {threads}-thread runtimes",
        load.connections,
        load.warmup.as_secs_f64(),
        load.measure.as_secs_f64()
    );
    println!();
    println!(
        "{:<24} {:>11} {:>11} {:>8} {:>8} {:>7} {:>9}",
        "scenario", "calls/s", "requests/s", "p50 ms", "p99 ms", "errors", "vs floor"
    );
    for row in rows {
        println!(
            "{:<24} {:>11.0} {:>11.0} {:>8.2} {:>8.2} {:>7} {:>8.3}x",
            row.label,
            row.calls_per_sec(),
            row.outcome.requests_per_sec(),
            ms(row.outcome.percentile(0.50)),
            ms(row.outcome.percentile(0.99)),
            row.outcome.errors,
            ratio(row.calls_per_sec(), floor),
        );
    }
    println!();
    for row in rows.iter().filter(|r| r.calls > 1) {
        println!(
            "batch vs single: {} gives {:.2}x the calls/s of single health.check calls",
            row.label,
            ratio(row.calls_per_sec(), single)
        );
    }
    for (key, jwt) in [("health_check_key", "health_check_jwt"), ("orgs_get_key", "orgs_get_jwt")] {
        let (k, j) = (calls_per_sec_of(rows, key), calls_per_sec_of(rows, jwt));
        if k.is_finite() && j.is_finite() {
            println!("API key vs JWT: {key} gives {:.2}x the calls/s of {jwt}", ratio(k, j));
        }
    }
    let (shared, local) =
        (calls_per_sec_of(rows, "orgs_get_key_limited_redis"), calls_per_sec_of(rows, "orgs_get_key_limited"));
    if shared.is_finite() && local.is_finite() {
        println!(
            "Redis limiter vs in-process: orgs_get_key_limited_redis gives {:.2}x the calls/s of orgs_get_key_limited",
            ratio(shared, local)
        );
    }
    println!();
    for row in rows {
        println!("BENCH_JSON {}", json_line(load, row, floor, single));
    }
}

fn json_line(load: Load, row: &Row, floor: f64, single: f64) -> serde_json::Value {
    let mut line = json!({
        "scenario": row.id,
        "label": row.label,
        "connections": load.connections,
        "warmup_secs": load.warmup.as_secs_f64(),
        "secs": load.measure.as_secs_f64(),
        "calls_per_request": row.calls,
        "requests": row.outcome.requests(),
        "errors": row.outcome.errors,
        "requests_per_sec": round(row.outcome.requests_per_sec(), 1),
        "calls_per_sec": round(row.calls_per_sec(), 1),
        "p50_ms": round(ms(row.outcome.percentile(0.50)), 2),
        "p99_ms": round(ms(row.outcome.percentile(0.99)), 2),
        "vs_floor": round(ratio(row.calls_per_sec(), floor), 3),
    });
    if row.calls > 1 {
        line["vs_single"] = json!(round(ratio(row.calls_per_sec(), single), 3));
    }
    line
}

fn calls_per_sec_of(rows: &[Row], id: &str) -> f64 {
    rows.iter().find(|r| r.id == id).map_or(f64::NAN, Row::calls_per_sec)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// NaN (printed as NaN, `null` in JSON) when there is nothing to compare with.
fn ratio(value: f64, base: f64) -> f64 {
    if base > 0.0 { value / base } else { f64::NAN }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
