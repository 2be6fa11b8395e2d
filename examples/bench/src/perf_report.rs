//! `perf_report` (run when `BENCH_ONLY` names it): how long `performance.report` takes over a week of calls.
//!
//! A Trellis server on a fresh PostgreSQL database (`BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, where a database of its own is created and dropped at the end;
//! `sqlite` for an SQLite file instead). Its `perf_minutes` get 7 days and an hour of minute rows
//! (`BENCH_PERF_DAYS`) for 100 method names (the schema's procedures, then the same names suffixed `#2`, ... to
//! make 100), from 2 replicas: every minute, every method, each row a histogram of a few hundred durations around
//! the method's own typical latency with a tail. An organization's procedures are recorded in one organization,
//! the others in none, as the recorder does. Every hour is then rolled up, and every day, as the periodic task
//! would have, and `performance.report` is called `BENCH_PERF_REPORTS` times (default 30, after one unmeasured call) by
//! a system administrator over the last 7 days, top 10: for the whole server, with `orgId` and with `method`; p50
//! and p99 of the round trip.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use hyper::header::HeaderValue;
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use trellis_schema::procedure::{Access, procedures};
use trellis_server::Application;
use trellis_server::db::Db;
use trellis_server::perf_bench::{self, MinuteRow};

use crate::load::{self, Target};
use crate::{PASSWORD, TempDir, env_or, rpc};

const METHODS: usize = 100;
const REPLICAS: [&str; 2] = ["bench-replica-a", "bench-replica-b"];
/// Histograms made per method; minute rows take them in turn.
const VARIANTS: usize = 8;
const ADMIN_EMAIL: &str = "perf-admin@example.com";

/// The measured round trips of one kind of report.
pub struct Figures {
    pub label: &'static str,
    pub samples: usize,
    pub p50: Duration,
    pub p99: Duration,
}

/// Where the server keeps its data: a PostgreSQL database made for the run, or an SQLite file.
pub(crate) enum Store {
    Postgres { admin_url: String, name: String, url: String },
    Sqlite,
}

impl Store {
    pub(crate) fn from_env() -> Self {
        let admin_url = std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        if admin_url == "sqlite" {
            return Self::Sqlite;
        }
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("trellis_bench_{}_{nanos}", std::process::id());
        let url = replace_db_name(&admin_url, &name);
        Self::Postgres { admin_url, name, url }
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "PostgreSQL",
            Self::Sqlite => "SQLite",
        }
    }
}

/// Runs the scenario and prints its figures.
pub fn run(servers: &Runtime, client: &Runtime) -> anyhow::Result<()> {
    let store = Store::from_env();
    if let Store::Postgres { admin_url, name, .. } = &store {
        client.block_on(pg_admin(admin_url, &format!("CREATE DATABASE {name}")))?;
    }
    let data_dir = TempDir::create()?;
    let figures = measure(servers, client, &store, &data_dir);
    if let Store::Postgres { admin_url, name, .. } = &store {
        client.block_on(pg_admin(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))?;
    }
    let figures = figures?;
    println!();
    println!("performance.report over 7 days, {METHODS} methods, {} replicas, on {}", REPLICAS.len(), store.label());
    println!("{:<40} {:>8} {:>9} {:>9}", "report", "samples", "p50 ms", "p99 ms");
    for f in &figures {
        println!("{:<40} {:>8} {:>9.2} {:>9.2}", f.label, f.samples, ms(f.p50), ms(f.p99));
    }
    for f in &figures {
        println!(
            "BENCH_JSON {}",
            json!({ "scenario": "perf_report", "label": f.label, "backend": store.label(), "samples": f.samples,
                "p50_ms": round2(ms(f.p50)), "p99_ms": round2(ms(f.p99)) })
        );
    }
    Ok(())
}

fn measure(servers: &Runtime, client: &Runtime, store: &Store, data_dir: &TempDir) -> anyhow::Result<Vec<Figures>> {
    let mut config = crate::config(&data_dir.0);
    // The seeded week stays whole, and only this scenario rolls it up (hour by hour, below).
    config.perf_minute_retention_days = 30;
    config.perf_rollup_ms = 24 * 3600 * 1000;
    if let Store::Postgres { url, .. } = store {
        config.database_url = Some(url.clone());
        config.jwt_secret = Some("perf-report-bench-secret-of-enough-bytes-0123456789".into());
    }
    let app = servers.block_on(Application::build(config.clone()))?;
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = servers.spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let figures = client.block_on(async {
        let db = Arc::new(trellis_server::app::connect_and_migrate(&config).await?);
        trellis_server::admin::create::create_admin(&config, ADMIN_EMAIL, Some(PASSWORD.into())).await?;
        let admin = sign_in(addr).await?;
        let org = create_org(addr, &admin).await?;
        let now = Utc::now();
        let days: i64 = env_or("BENCH_PERF_DAYS", 7)?;
        let started = Instant::now();
        let rows = seed(&db, &org, now, days).await?;
        eprintln!("perf_report: {rows} minute rows written in {:.1} s", started.elapsed().as_secs_f64());
        let started = Instant::now();
        let hours = roll_up(&db).await?;
        eprintln!("perf_report: {hours} hour and day rows rolled up in {:.1} s", started.elapsed().as_secs_f64());
        let reports: usize = env_or("BENCH_PERF_REPORTS", 30)?;
        let from = (now - TimeDelta::days(7)).to_rfc3339();
        let to = now.to_rfc3339();
        let all = json!({ "from": from, "to": to, "top": 10 });
        let one = json!({ "from": from, "to": to, "top": 10, "orgId": org });
        let method = json!({ "from": from, "to": to, "top": 10, "method": "orgs.get" });
        Ok::<_, anyhow::Error>(vec![
            time_reports(addr, &admin, "whole server (system admin)", all, reports).await?,
            time_reports(addr, &admin, "one organization (orgId)", one, reports).await?,
            time_reports(addr, &admin, "one method (method)", method, reports).await?,
        ])
    });
    let _ = stop.send(());
    servers.block_on(server).context("the Trellis server task failed")??;
    figures
}

/// Signs the administrator in; returns the `Authorization` value.
async fn sign_in(addr: SocketAddr) -> anyhow::Result<HeaderValue> {
    let login = rpc("auth.login", Some(json!({ "email": ADMIN_EMAIL, "password": PASSWORD })), 1).to_string();
    let answer = load::call(&Target::new(addr, login, None, 1)?).await.context("auth.login failed")?;
    let token = answer.pointer("/result/accessToken").and_then(|t| t.as_str()).context("no access token")?;
    Ok(HeaderValue::from_str(&format!("Bearer {token}"))?)
}

async fn create_org(addr: SocketAddr, admin: &HeaderValue) -> anyhow::Result<String> {
    let create = rpc("orgs.create", Some(json!({ "name": "Perf", "slug": "perf-bench" })), 1).to_string();
    let org = load::call(&Target::new(addr, create, Some(admin.clone()), 1)?).await.context("orgs.create failed")?;
    Ok(org.pointer("/result/id").and_then(|i| i.as_str()).context("orgs.create: no id")?.to_owned())
}

/// A method's name in the rows and whether its calls act in an organization.
struct Method {
    name: String,
    in_org: bool,
    variants: Vec<Variant>,
}

/// One minute's histogram of a method, encoded, and its counts.
struct Variant {
    blob: Vec<u8>,
    calls: i64,
    errors: i64,
    max_us: i64,
}

/// xorshift64*: reproducible figures without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn methods() -> anyhow::Result<Vec<Method>> {
    let schema: Vec<(String, bool)> =
        procedures().iter().map(|p| (p.method.to_owned(), matches!(p.access, Access::Org(_)))).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(METHODS);
    for i in 0..METHODS {
        let (base, in_org) = &schema[i % schema.len()];
        let round = i / schema.len();
        let name = if round == 0 { base.clone() } else { format!("{base}#{}", round + 1) };
        // Typical latencies from 0.1 ms to about 80 ms, spread over the methods.
        let typical_us = 100.0 * 1.07f64.powi(i32::try_from(i)?);
        let mut variants = Vec::with_capacity(VARIANTS);
        for _ in 0..VARIANTS {
            let n = 200 + (rng.next() % 300) as usize;
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                // Log-uniform within ×0.5..×2 of the typical value; 2% a slow tail up to ×20.
                let spread = 2f64.powf(rng.unit() * 2.0 - 1.0);
                let tail = if rng.unit() < 0.02 { 1.0 + rng.unit() * 19.0 } else { 1.0 };
                samples.push(((typical_us * spread * tail) as u64).max(1));
            }
            let max_us = samples.iter().copied().max().unwrap_or(1);
            let errors = (rng.next() % 4) as i64;
            variants.push(Variant {
                blob: perf_bench::encode_latencies(&samples)?,
                calls: i64::try_from(n)?,
                errors,
                max_us: i64::try_from(max_us)?,
            });
        }
        out.push(Method { name, in_org: *in_org, variants });
    }
    Ok(out)
}

/// Writes the minute rows of `days` days and an hour before `now`, an hour of rows at a time (two statements in
/// flight); returns the rows written.
async fn seed(db: &Arc<Db>, org: &str, now: DateTime<Utc>, days: i64) -> anyhow::Result<usize> {
    let methods = methods()?;
    let end = now.timestamp() - now.timestamp().rem_euclid(60);
    let start = end - days * 86_400 - 3600;
    let mut written = 0;
    let mut pending: Option<tokio::task::JoinHandle<anyhow::Result<()>>> = None;
    let mut hour = start;
    while hour < end {
        let mut rows = Vec::with_capacity(60 * METHODS * REPLICAS.len());
        for minute in (hour..(hour + 3600).min(end)).step_by(60) {
            for (m, method) in methods.iter().enumerate() {
                for (r, replica) in REPLICAS.iter().enumerate() {
                    let v = &method.variants[((minute / 60) as usize + m + r) % VARIANTS];
                    rows.push(MinuteRow {
                        minute,
                        method: method.name.clone(),
                        org_id: if method.in_org { org.to_owned() } else { String::new() },
                        replica: (*replica).to_owned(),
                        calls: v.calls,
                        errors: v.errors,
                        max_us: v.max_us,
                        histogram: v.blob.clone(),
                    });
                }
            }
        }
        written += rows.len();
        let db = db.clone();
        let next = tokio::spawn(async move { perf_bench::insert_minutes(&db, &rows).await });
        if let Some(previous) = pending.replace(next) {
            previous.await??;
        }
        hour += 3600;
    }
    if let Some(last) = pending {
        last.await??;
    }
    Ok(written)
}

/// Rolls every seeded hour up, and then the days, as the periodic task would have; returns the rows written.
async fn roll_up(db: &Db) -> anyhow::Result<usize> {
    perf_bench::roll_up(db).await
}

async fn time_reports(
    addr: SocketAddr,
    admin: &HeaderValue,
    label: &'static str,
    params: serde_json::Value,
    reports: usize,
) -> anyhow::Result<Figures> {
    let body = rpc("performance.report", Some(params), 1).to_string();
    let target = Target::new(addr, body, Some(admin.clone()), 1)?;
    let first = load::call(&target).await.context("performance.report failed")?;
    let calls = first.pointer("/result/totals/calls").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let methods = first.pointer("/result/byMethod").and_then(serde_json::Value::as_array).map_or(0, Vec::len);
    eprintln!("perf_report: {label}: {calls} calls in the totals, {methods} methods in byMethod");
    let mut times = Vec::with_capacity(reports);
    for _ in 0..reports {
        let started = Instant::now();
        load::call(&target).await.context("performance.report failed")?;
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(Figures { label, samples: times.len(), p50: at(0.5), p99: at(0.99) })
}

pub(crate) async fn pg_admin(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .with_context(|| format!("cannot connect to BENCH_DATABASE_URL={admin_url}"))?;
    conn.batch_execute(sql).await.with_context(|| format!("{sql} failed"))
}

/// `url` with its database name replaced by `name`.
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
