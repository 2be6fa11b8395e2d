//! `performance.report`: exact counts from a known workload, percentiles
//! checked against the client's own timings, two replicas on one database,
//! and who may see what, on both backends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, try_spawn};
use crate::orgs::{create_org, token};
use crate::{db_test_with, postgres_variant};

/// The client's timing of each call, per method.
#[derive(Default)]
struct Timings(HashMap<&'static str, Vec<Duration>>);

impl Timings {
    async fn call(
        &mut self,
        app: &TestApp,
        method: &'static str,
        params: Value,
        t: Option<&str>,
    ) -> Result<Value, Value> {
        let started = Instant::now();
        let r = app.call(method, params, t).await;
        self.0.entry(method).or_default().push(started.elapsed());
        r
    }

    async fn with_key(
        &mut self,
        app: &TestApp,
        method: &'static str,
        params: Value,
        key: &str,
    ) -> Result<Value, Value> {
        let started = Instant::now();
        let r = app.call_with_key(method, params, key).await;
        self.0.entry(method).or_default().push(started.elapsed());
        r
    }

    /// The client's durations of `method` in a histogram like the server's
    /// (microseconds, three significant digits).
    fn histogram(&self, method: &str) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        for d in &self.0[method] {
            h.record((d.as_micros() as u64).max(1)).expect("in bounds");
        }
        h
    }
}

/// Registers `email`, makes it a system admin in the database, and signs
/// in; returns the access token. (`trellis create-admin` opens the database
/// beside the server, which on SQLite can meet a flush's write transaction.)
async fn admin_token(app: &TestApp, email: &str) -> String {
    app.register(email, PASSWORD).await;
    app.sql(&format!("UPDATE users SET is_admin = TRUE WHERE email_key = '{email}'")).await;
    token(&app.login(email, PASSWORD).await)
}

fn stats<'a>(report: &'a Value, method: &str) -> Option<&'a Value> {
    report["byMethod"].as_array().expect("byMethod").iter().find(|m| m["method"] == method)
}

fn calls(report: &Value, method: &str) -> u64 {
    stats(report, method).map_or(0, |m| m["calls"].as_u64().expect("calls"))
}

/// Asks until each method shows at least its calls (the report lags by a
/// flush, and a flush may split one moment's calls).
async fn report_when(app: &TestApp, t: &str, params: Value, expected: &[(&str, u64)]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.call("performance.report", params.clone(), Some(t)).await.expect("report");
        if expected.iter().all(|(m, n)| calls(&r, m) >= *n) || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every call's server-side time is shorter than the client's time of the
/// same call, so each order statistic of the server's durations is at most
/// the client's: a percentile of the same quantile, from histograms of the
/// same precision, can only be lower on the server. And the difference is
/// bounded by the network and framing overhead.
fn assert_percentiles_below_client(report: &Value, timings: &Timings, method: &str) {
    let client = timings.histogram(method);
    let server = stats(report, method).expect("method reported");
    for (field, q) in [("p50Ms", 0.5), ("p95Ms", 0.95), ("p99Ms", 0.99)] {
        let s = server[field].as_f64().expect("percentile");
        let c = client.value_at_quantile(q) as f64 / 1000.0;
        assert!(s <= c, "{method} {field}: server {s} ms > client {c} ms");
        assert!(s > 0.0 && c - s < 250.0, "{method} {field}: server {s} ms, client {c} ms");
    }
    let max = server["maxMs"].as_f64().expect("max");
    assert!(max <= client.max() as f64 / 1000.0 + 0.001, "{method} max {max} ms");
}

const FAST: u64 = 100;

db_test_with! {
    /// A known workload is counted exactly, per method and in the totals;
    /// its percentiles agree with the client's timings; an organization's
    /// view holds its calls only.
    async fn report_counts_a_known_workload(app) where |c| { c.perf_flush_ms = FAST; } {
        let mut t = Timings::default();
        let admin = admin_token(app, "root@example.com").await;
        t.call(app, "auth.register", json!({"email": "owner@example.com", "password": PASSWORD}), None).await.expect("registered");
        let owner = token(&t.call(app, "auth.login", json!({"email": "owner@example.com", "password": PASSWORD}), None).await.expect("in"));
        let org = create_org(app, &owner, "perf-org").await;
        let other = create_org(app, &owner, "other-org").await;
        let key = app.call("apiKeys.create", json!({"orgId": org, "name": "k", "scopes": ["org:read"]}), Some(&owner)).await.expect("key");
        let key = key["key"].as_str().expect("key").to_owned();

        for _ in 0..40 {
            t.call(app, "health.check", json!({}), None).await.expect("healthy");
        }
        for _ in 0..20 {
            t.call(app, "auth.me", json!({}), Some(&owner)).await.expect("me");
        }
        // Org calls made with the organization's key: its view has them.
        for _ in 0..10 {
            t.with_key(app, "orgs.get", json!({"orgId": org}), &key).await.expect("org");
        }
        // In the other organization, as its owner.
        for _ in 0..3 {
            t.call(app, "orgs.get", json!({"orgId": other}), Some(&owner)).await.expect("other org");
        }
        // Failing calls: an unknown organization is NOT_FOUND.
        for _ in 0..10 {
            let e = t.call(app, "orgs.get", json!({"orgId": "00000000-0000-7000-8000-000000000000"}), Some(&owner)).await.expect_err("unknown");
            assert_error(&e, -32004, "NOT_FOUND");
        }
        // A real slow path: a failed sign-in still hashes (argon2).
        for i in 0..4 {
            let e = t.call(app, "auth.login", json!({"email": format!("nobody{i}@example.com"), "password": "not it at all"}), None).await.expect_err("wrong");
            assert_error(&e, -32001, "INVALID_CREDENTIALS");
        }

        let r = report_when(app, &admin, json!({"top": 100}), &[("health.check", 40), ("auth.me", 20), ("orgs.get", 23), ("auth.login", 6)]).await;
        assert_eq!(calls(&r, "health.check"), 40, "{r}");
        assert_eq!(calls(&r, "auth.me"), 20, "{r}");
        assert_eq!(calls(&r, "orgs.get"), 23, "{r}");
        let orgs_get = stats(&r, "orgs.get").expect("orgs.get");
        assert_eq!(orgs_get["errors"], 10);
        assert!((orgs_get["errorRate"].as_f64().expect("rate") - 10.0 / 23.0).abs() < 1e-9);
        assert_eq!(stats(&r, "health.check").expect("health")["errors"], 0);
        // admin_token's sign-in, the owner's, and the four refused.
        let login = stats(&r, "auth.login").expect("login");
        assert_eq!((login["calls"].as_u64(), login["errors"].as_u64()), (Some(6), Some(4)), "{login}");
        let sum: u64 = r["byMethod"].as_array().expect("all").iter().map(|m| m["calls"].as_u64().expect("n")).sum();
        assert_eq!(r["totals"]["calls"].as_u64(), Some(sum));
        assert_eq!(r["errorRates"][0]["method"], "auth.login", "{r}");
        assert!(r["slowest"][0]["method"].as_str().is_some_and(|m| m.starts_with("auth.")), "{r}");
        assert_eq!(r["window"]["bucket"], "minute");
        let series_calls: u64 = r["series"].as_array().expect("series").iter().map(|p| p["calls"].as_u64().expect("n")).sum();
        assert_eq!(series_calls, sum);
        assert_eq!(r["alerts"], json!([]));
        assert!(r["system"]["rssBytes"].as_u64().is_some_and(|b| b > 0), "{r}");
        assert!(r["system"]["dbPool"]["size"].as_u64().is_some_and(|n| n > 0), "{r}");
        assert!(r["system"]["cache"]["misses"].as_u64().is_some_and(|n| n >= 1), "{r}");

        // The client timed every call of these: the server's percentiles are
        // at most the client's.
        for m in ["health.check", "auth.me", "auth.login"] {
            if m == "auth.login" {
                // admin_token's sign-in was not timed here: compare the ones that were.
                continue;
            }
            assert_percentiles_below_client(&r, &t, m);
        }
        let slow = r["slowest"].as_array().expect("slowest");
        let login_p50 = stats(&r, "auth.login").expect("login")["p50Ms"].as_f64().expect("p50");
        let health_p50 = stats(&r, "health.check").expect("health")["p50Ms"].as_f64().expect("p50");
        assert!(login_p50 > health_p50, "argon2 makes sign-in slower: {login_p50} vs {health_p50} ({slow:?})");

        // The organization's view: the calls made in it (its key's, and the
        // owner's apiKeys.create), none of the other organization's.
        let o = app.call("performance.report", json!({"orgId": org}), Some(&owner)).await.expect("org report");
        assert_eq!(o["totals"]["calls"], 11, "{o}");
        assert_eq!(calls(&o, "orgs.get"), 10);
        assert_eq!(calls(&o, "apiKeys.create"), 1);
        assert_eq!(o["byMethod"].as_array().map(Vec::len), Some(2), "{o}");
        let o = app.call("performance.report", json!({"orgId": other, "method": "orgs.get"}), Some(&owner)).await.expect("other");
        assert_eq!(o["totals"]["calls"], 3, "{o}");
    }
}

db_test_with! {
    /// Without `orgId` only a system admin may ask; with it, a member or an
    /// API key of the organization with `performance:read` (a non-member
    /// sees NOT_FOUND). Bad windows, tops and methods are VALIDATION.
    async fn report_access_and_params(app) where |c| { c.perf_flush_ms = FAST; } {
        let owner = token(&app.signed_in("owner@example.com").await);
        let stranger = token(&app.signed_in("stranger@example.com").await);
        let org = create_org(app, &owner, "mine").await;
        let e = app.call("performance.report", json!({}), Some(&owner)).await.expect_err("not admin");
        assert_error(&e, -32003, "ADMIN_REQUIRED");
        let e = app.call("performance.report", json!({"orgId": org}), Some(&stranger)).await.expect_err("not member");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("performance.report", json!({"orgId": org}), None).await.expect_err("anonymous");
        assert_error(&e, -32001, "CREDENTIALS_MISSING");
        // An API key with the scope reads its organization's report, never
        // the server's, nor another organization's.
        let key = app.call("apiKeys.create", json!({"orgId": org, "name": "k", "scopes": ["performance:read"]}), Some(&owner)).await.expect("key");
        let key = key["key"].as_str().expect("key");
        app.call_with_key("performance.report", json!({"orgId": org}), key).await.expect("a key with performance:read");
        let e = app.call_with_key("performance.report", json!({}), key).await.expect_err("the server's report");
        assert_error(&e, -32003, "ADMIN_REQUIRED");
        let other = create_org(app, &stranger, "theirs").await;
        let e = app.call_with_key("performance.report", json!({"orgId": other}), key).await.expect_err("another org");
        assert_error(&e, -32004, "NOT_FOUND");
        let narrow = app.call("apiKeys.create", json!({"orgId": org, "name": "n", "scopes": ["org:read"]}), Some(&owner)).await.expect("key");
        let e = app.call_with_key("performance.report", json!({"orgId": org}), narrow["key"].as_str().expect("key")).await.expect_err("narrow");
        assert_error(&e, -32003, "MISSING_SCOPE");
        assert_eq!(e["data"]["required"], "performance:read");
        app.call("performance.report", json!({"orgId": org}), Some(&owner)).await.expect("the owner reads");
        for bad in [
            json!({"orgId": org, "top": 0}),
            json!({"orgId": org, "top": 101}),
            json!({"orgId": org, "method": "no.such"}),
            json!({"orgId": org, "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}),
            json!({"orgId": org, "from": "2026-03-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
        ] {
            let e = app.call("performance.report", bad.clone(), Some(&owner)).await.expect_err("invalid");
            assert_error(&e, -32602, "VALIDATION");
        }
        let r = app.call("performance.report", json!({"orgId": org, "from": "2026-01-01T00:00:00Z", "to": "2026-01-20T00:00:00Z"}), Some(&owner)).await.expect("long");
        assert_eq!(r["window"]["bucket"], "day");
        assert_eq!(r["totals"]["calls"], 0);
    }
}

#[derive(diesel::QueryableByName)]
struct Blob {
    #[diesel(sql_type = diesel::sql_types::Binary)]
    histogram: Vec<u8>,
}

/// The histograms every replica stored for `method`, merged here.
async fn stored_histogram(app: &TestApp, method: &str) -> (Histogram<u64>, usize) {
    let sql = format!("SELECT histogram FROM perf_minutes WHERE method = '{method}'");
    let url = app.config.database_url();
    let blobs: Vec<Blob> = if url.starts_with("postgres") {
        use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
        let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
        diesel::sql_query(sql).load(&mut conn).await.expect("blobs")
    } else {
        tokio::task::spawn_blocking(move || {
            use diesel::{Connection, RunQueryDsl, SqliteConnection};
            let mut conn = SqliteConnection::establish(&url).expect("open");
            diesel::sql_query(sql).load(&mut conn).expect("blobs")
        })
        .await
        .expect("ran")
    };
    let mut merged = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
    for b in &blobs {
        let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(&b.histogram))
            .expect("a V2 histogram");
        merged.add(&h).expect("same bounds");
    }
    (merged, blobs.len())
}

/// Two replicas on one database: each writes its own rows; the report of
/// either merges both. The histograms are merged, not averaged: the merged
/// percentiles equal those of one histogram of every call's server time,
/// which the test rebuilds from the rows both replicas wrote.
async fn two_replicas(backend: Backend) {
    let a = try_spawn(backend, |c| c.perf_flush_ms = FAST).await.expect(crate::helpers::POSTGRES_NOT_BUILT);
    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| {
        c.database_url = Some(shared);
        c.perf_flush_ms = FAST;
    })
    .await
    .expect("second replica");
    let admin = admin_token(&a, "root@example.com").await;
    let mut t = Timings::default();
    for _ in 0..30 {
        t.call(&a, "health.check", json!({}), None).await.expect("a");
    }
    // The slow path on one replica only: merging keeps its tail.
    for i in 0..3 {
        t.call(&b, "auth.login", json!({"email": format!("x{i}@example.com"), "password": "not it at all"}), None)
            .await
            .expect_err("no");
    }
    for _ in 0..20 {
        t.call(&b, "health.check", json!({}), None).await.expect("b");
    }
    let from_a = report_when(&a, &admin, json!({}), &[("health.check", 50), ("auth.login", 4)]).await;
    let from_b = report_when(&b, &admin, json!({}), &[("health.check", 50), ("auth.login", 4)]).await;
    assert_eq!(calls(&from_a, "health.check"), 50, "{from_a}");
    assert_eq!(stats(&from_a, "health.check"), stats(&from_b, "health.check"));
    let replicas =
        a.sql_count("SELECT COUNT(DISTINCT replica) AS n FROM perf_minutes WHERE method = 'health.check'").await;
    assert_eq!(replicas, 2);
    assert_percentiles_below_client(&from_a, &t, "health.check");
    // Merged, not averaged: the report's percentiles are those of one
    // histogram of both replicas' stored samples.
    let (merged, rows) = stored_histogram(&a, "health.check").await;
    assert!(rows >= 2, "one row per replica at least");
    assert_eq!(merged.len(), 50);
    let s = stats(&from_a, "health.check").expect("health");
    for (field, q) in [("p50Ms", 0.5), ("p95Ms", 0.95), ("p99Ms", 0.99)] {
        assert_eq!(s[field].as_f64(), Some(merged.value_at_quantile(q) as f64 / 1000.0), "{field}");
    }
    assert_eq!(stats(&from_a, "auth.login").expect("login")["errors"], 3);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_add_up_sqlite() {
    two_replicas(Backend::Sqlite).await;
}

mod two_replicas_add_up {
    use super::*;
    postgres_variant! {{
        two_replicas(Backend::Postgres).await;
    }}
}

/// Waits until the rollup has caught up with every flush (no mark left).
async fn rolled_up(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.sql_count("SELECT COUNT(*) AS n FROM perf_dirty").await > 0 {
        assert!(Instant::now() < deadline, "never rolled up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

db_test_with! {
    /// A flush marks its hours; the rollup rolls each marked hour up again
    /// from its minute rows (all replicas merged, and all methods merged as
    /// `'*'`, per organization and for the whole server), then its quarter
    /// from the hour rows and its day from the quarter rows. Windows over 6
    /// hours read those: the same counts and percentiles as the minute rows,
    /// by hour and by day. Calls flushed into an hour rolled up before are rolled
    /// up again, and counted once.
    async fn long_windows_read_hourly_and_daily_rollups(app) where |c| { c.perf_flush_ms = FAST; c.perf_rollup_ms = FAST; } {
        let admin = admin_token(app, "root@example.com").await;
        for _ in 0..12 {
            app.call("health.check", json!({}), None).await.expect("healthy");
        }
        report_when(app, &admin, json!({}), &[("health.check", 12)]).await;
        rolled_up(app).await;
        let sum = |table: &str, method: &str| {
            format!("SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS n FROM {table} WHERE method = '{method}'")
        };
        assert_eq!(app.sql_count(&sum("perf_hours", "health.check")).await, 12);
        let all_hours = app.sql_count(&sum("perf_hours", "*")).await;
        assert!(all_hours >= 2 * 13, "the all-methods rows hold every call, twice: {all_hours}");
        assert_eq!(app.sql_count(&sum("perf_quarters", "health.check")).await, 12);
        assert_eq!(app.sql_count(&sum("perf_days", "health.check")).await, 12);
        let server_wide = "SELECT CAST(COALESCE(SUM(CASE WHEN org_id = '*' THEN 2 * calls ELSE 0 END) - SUM(calls), 0) AS BIGINT) AS n FROM perf_hours WHERE method = '*'";
        assert_eq!(app.sql_count(server_wide).await, 0, "the whole server's row holds what the organizations' rows do");

        let short = app.call("performance.report", json!({"from": chrono_ago(4), "method": "health.check"}), Some(&admin)).await.expect("short");
        assert_eq!(short["window"]["bucket"], "minute");
        assert_eq!(short["totals"]["calls"], 12, "{short}");
        let long = app.call("performance.report", json!({"from": chrono_ago(12), "method": "health.check"}), Some(&admin)).await.expect("long");
        assert_eq!(long["window"]["bucket"], "hour");
        assert_eq!(long["totals"]["calls"], 12, "{long}");
        assert_eq!(long["totals"]["p95Ms"], short["totals"]["p95Ms"], "merging by hour changes no percentile");
        // Every method, from day rows (today is whole: the window reaches the present hour).
        for (hours, bucket) in [(30, "hour"), (24 * 10, "day")] {
            let r = app.call("performance.report", json!({"from": chrono_ago(hours), "top": 100}), Some(&admin)).await.expect("report");
            assert_eq!(r["window"]["bucket"], bucket);
            let health = r["byMethod"].as_array().expect("methods").iter().find(|m| m["method"] == "health.check").expect("health.check");
            assert_eq!(health["calls"], 12, "{r}");
            assert_eq!(health["p95Ms"], short["totals"]["p95Ms"], "merging by day changes no percentile");
            let series: u64 = r["series"].as_array().expect("series").iter().map(|p| p["calls"].as_u64().expect("calls")).sum();
            assert_eq!(json!(series), r["totals"]["calls"], "the series holds the calls of every method: {r}");
        }

        // As if those calls had been flushed three hours ago: the hour they
        // leave and the hour they go to are marked (as a flush marks its
        // hours), and each is rolled up again from its rows.
        let pg = app.config.database_url().starts_with("postgres");
        app.sql("INSERT INTO perf_dirty (span, bucket_start, version) SELECT DISTINCT 'hour', bucket_start, 1 FROM perf_hours WHERE method = 'health.check' ON CONFLICT DO NOTHING").await;
        let (moved, mark) = if pg {
            (
                app.sql("UPDATE perf_minutes SET bucket_start = bucket_start - interval '3 hours' WHERE method = 'health.check'").await,
                "INSERT INTO perf_dirty (span, bucket_start, version) SELECT DISTINCT 'hour', date_trunc('hour', bucket_start), 1 FROM perf_minutes WHERE method = 'health.check' ON CONFLICT DO NOTHING",
            )
        } else {
            (
                app.sql("UPDATE perf_minutes SET bucket_start = datetime(bucket_start, '-3 hours') WHERE method = 'health.check'").await,
                "INSERT INTO perf_dirty (span, bucket_start, version) SELECT DISTINCT 'hour', strftime('%Y-%m-%d %H:00:00', bucket_start), 1 FROM perf_minutes WHERE method = 'health.check' ON CONFLICT DO NOTHING",
            )
        };
        assert!(moved >= 1);
        app.sql(mark).await;
        rolled_up(app).await;
        assert_eq!(app.sql_count(&sum("perf_hours", "health.check")).await, 12, "counted once");
        let hours = app.sql_count("SELECT COUNT(*) AS n FROM perf_hours WHERE method = 'health.check'").await;
        assert_eq!(hours, 1, "in the hour it was moved to");
        let long = app.call("performance.report", json!({"from": chrono_ago(12), "method": "health.check"}), Some(&admin)).await.expect("long");
        assert_eq!(long["totals"]["calls"], 12, "{long}");
    }
}

/// `hours` ago, as RFC 3339.
fn chrono_ago(hours: i64) -> String {
    (chrono::Utc::now() - chrono::TimeDelta::hours(hours)).to_rfc3339()
}

db_test_with! {
    /// A subscribe call is timed and counted like a call (until it is
    /// answered), in the organization-less rows of the signed-in user.
    async fn subscribe_calls_are_counted(app) where |c| { c.perf_flush_ms = FAST; } {
        let admin = admin_token(app, "root@example.com").await;
        let (mut tx, mut rx) = crate::ws::connect(app.addr, Some(&admin)).await;
        crate::notifications::subscribe(&mut tx, &mut rx, json!({})).await;
        let r = report_when(app, &admin, json!({}), &[("notifications.subscribe", 1)]).await;
        assert_eq!(calls(&r, "notifications.subscribe"), 1, "{r}");
    }
}

db_test_with! {
    /// With `TRELLIS_PERF_RECORDING=false` no call is recorded, so nothing
    /// is written and a report shows no call.
    async fn recording_off_records_nothing(app) where |c| { c.perf_flush_ms = FAST; c.perf_recording = false; } {
        let admin = admin_token(app, "root@example.com").await;
        for _ in 0..10 {
            app.call("health.check", json!({}), None).await.expect("healthy");
        }
        tokio::time::sleep(Duration::from_millis(FAST * 5)).await;
        assert_eq!(app.sql_count("SELECT COUNT(*) AS n FROM perf_minutes").await, 0);
        let r = app.call("performance.report", json!({}), Some(&admin)).await.expect("report");
        assert_eq!(r["totals"]["calls"], 0, "{r}");
    }
}

/// A replica that stops writes what it recorded since its last flush: the
/// calls of its last seconds are not lost.
async fn stopping_flushes(backend: Backend) {
    const NEVER: u64 = 3_600_000;
    let a = try_spawn(backend, |c| c.perf_flush_ms = NEVER).await.expect(crate::helpers::POSTGRES_NOT_BUILT);
    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| {
        c.database_url = Some(shared);
        c.perf_flush_ms = NEVER;
    })
    .await
    .expect("second replica");
    for _ in 0..5 {
        b.call("health.check", json!({}), None).await.expect("health");
    }
    let sql = "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS n FROM perf_minutes WHERE method = 'health.check'";
    assert_eq!(a.sql_count(sql).await, 0, "nothing flushed while it runs");
    b.stop().await;
    assert_eq!(a.sql_count(sql).await, 5, "flushed when it stopped");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_replica_flushes_its_latency_sqlite() {
    stopping_flushes(Backend::Sqlite).await;
}

mod a_stopping_replica_flushes_its_latency {
    use super::*;
    postgres_variant! {{
        stopping_flushes(Backend::Postgres).await;
    }}
}
