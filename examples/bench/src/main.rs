//! Run with `just bench` (or `cargo run --release -p trellis-bench`): measures Trellis calls against a bare hyper
//! handler, side by side, and prints a table then one `BENCH_JSON {…}` line per scenario.
//!
//! Settings (environment): `BENCH_CONNECTIONS` (default 32), `BENCH_SECS` measured per scenario and round (default 3),
//! `BENCH_WARMUP_SECS` (default 1), `BENCH_ROUNDS` (default 3: every scenario runs that many times, interleaved,
//! and its median-throughput round is reported), `BENCH_ONLY` (comma-separated scenario ids, e.g. `auth_me`; the floor
//! always runs).
//!
//! It measures and prints; it asserts nothing about speed. Scenarios run one after another:
//! 1. `floor`: a bare hyper server that parses the body as JSON and answers a fixed result;
//! 2. `health.check`, no credentials;
//! 3. `health.check` with a valid JWT (from `auth.register` then `auth.login`);
//! 4. `auth.me` with that JWT (one database read);
//! 5. `health.check` in batches of 50 calls;
//! 6. `health.check` and `orgs.get` with an API key (a cache hit after the first call), and `orgs.get` with the
//!    JWT (its membership check reads the database), for the API key ÷ JWT ratios;
//! 7. `health.check` over WebSocket (one socket per connection), without credentials and with the JWT given at
//!    the upgrade: every message re-checks the token (verified-token cache) and its session (in memory), so the
//!    JWT ÷ anonymous ratio is the cost of those per-call checks.
//! 8. `orgs.get` with a rate-limited API key, on this server (limits in process) and on a second server whose
//!    limits are in Redis (`BENCH_REDIS_URL`, default `redis://127.0.0.1:6379`, under a prefix of its own):
//!    the Redis ÷ in-process ratio is the cost of the shared limiter. Before the load, batches of 50 such calls
//!    are sent to the Redis server one by one and Redis's own count of script calls (`INFO commandstats`) is
//!    read before and after: the round trips a batch costs.
//!
//! 9. Notifications (`BENCH_ONLY` containing `notifications`, or no `BENCH_ONLY`), on a third server: the latency
//!    from sending the `apiKeys.create` that causes a notification to its subscriber receiving it (p50/p99 over
//!    300 calls made one at a time), then items a second fanned out to 1,000 subscribers (1,000 sockets) while
//!    batches of `apiKeys.create` run for `BENCH_SECS` × 2, counted until every subscriber has every item.
//!
//! 10. `perf_report` (only when `BENCH_ONLY` names it; see `perf_report.rs`): `performance.report` over a week of
//!     100 methods on PostgreSQL, p50/p99.
//! 11. `overhead` (only when `BENCH_ONLY` names it; see `overhead.rs`): plain and 50-call batch `health.check`
//!     throughput with metrics and performance recording on ÷ off, two child `trellis` processes of one build.
//! 12. `trades` (only when `BENCH_ONLY` names it; see `trades.rs`): `trades.negotiate` calls per second on
//!     PostgreSQL, 32 negotiators on offers of their own, and 32 on one offer (the conflict path).
//!
//! Both servers run for the whole program on one runtime, the load generator on another of the same size, so
//! the floor and Trellis get identical treatment. Trellis runs with its defaults, an SQLite file in a fresh
//! temporary directory and no log subscriber, so logging is not measured.

mod floor;
mod load;
mod overhead;
mod perf_report;
mod report;
mod stream;
mod trades;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hyper::header::HeaderValue;
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use trellis_server::{Application, Config};

use crate::load::{Load, Target};
use crate::report::Row;

/// Worker threads of each runtime: the machine this was written for has two cores.
const THREADS: usize = 2;
const BATCH: usize = 50;
const EMAIL: &str = "bench@example.com";
const MEMBER_EMAIL: &str = "bench-member@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn main() -> anyhow::Result<()> {
    let load = load_from_env()?;
    if run_apart(load)? {
        return Ok(());
    }
    // Declared first so it is removed last, after the server has let go of its files.
    let data_dir = TempDir::create()?;
    let servers = runtime("bench-server")?;
    let client = runtime("bench-client")?;

    let redis_dir = TempDir::create()?;
    let floor_addr = servers.block_on(floor::start()).context("failed to start the floor server")?;
    let app = servers.block_on(Application::build(config(&data_dir.0)))?;
    let trellis_addr = app.local_addr();
    let mut with_redis = config(&redis_dir.0);
    with_redis.redis_url = Some(redis_url());
    with_redis.redis_prefix = format!("trellis-bench-{}", std::process::id());
    let redis_app = servers.block_on(Application::build(with_redis))?;
    let redis_addr = redis_app.local_addr();
    let stream_dir = TempDir::create()?;
    let mut streaming = config(&stream_dir.0);
    streaming.max_subscriptions_per_user = u32::try_from(stream::SUBSCRIBERS + 1)?;
    streaming.max_connections_per_ip = 0;
    let stream_app = servers.block_on(Application::build(streaming))?;
    let stream_addr = stream_app.local_addr();
    let (stop_stream, stream_stopped) = oneshot::channel::<()>();
    let (stop, stopped) = oneshot::channel::<()>();
    let (stop_redis, redis_stopped) = oneshot::channel::<()>();
    let trellis = servers.spawn(app.run_until_stopped(async {
        // A dropped sender stops the server too.
        let _ = stopped.await;
    }));
    let trellis_redis = servers.spawn(redis_app.run_until_stopped(async {
        let _ = redis_stopped.await;
    }));

    let trellis_stream = servers.spawn(stream_app.run_until_stopped(async {
        let _ = stream_stopped.await;
    }));

    let rows = client.block_on(run_scenarios(load, rounds()?, floor_addr, trellis_addr, redis_addr));
    let figures = match &rows {
        Ok(_) if wanted("notifications") => {
            eprintln!("running notifications: latency, then fan-out to {} subscribers ...", stream::SUBSCRIBERS);
            Some(client.block_on(async {
                let bearer = sign_in(stream_addr, EMAIL).await?;
                let (org, _) = org_and_key(stream_addr, &bearer, None).await?;
                stream::run(stream_addr, &bearer, &org, load.measure.as_secs_f64() * 2.0).await
            }))
        }
        _ => None,
    };

    // Stop the servers cleanly whether or not the scenarios succeeded.
    let _ = stop.send(());
    let _ = stop_redis.send(());
    let _ = stop_stream.send(());
    let served = servers.block_on(trellis);
    let served_stream = servers.block_on(trellis_stream);
    let served_redis = servers.block_on(trellis_redis);
    client.shutdown_timeout(Duration::from_secs(5));
    servers.shutdown_timeout(Duration::from_secs(5));
    let (rows, round_trips) = rows?;
    served.context("the Trellis server task failed")??;
    served_redis.context("the Trellis server with Redis failed")??;
    served_stream.context("the Trellis server for notifications failed")??;
    let figures = figures.transpose()?;

    report::print(load, THREADS, &rows);
    println!(
        "Redis round trips for a batch of {BATCH} orgs.get calls with a rate-limited API key: {round_trips:.2} \
         (script calls counted by Redis over {ROUND_TRIP_BATCHES} batches)"
    );
    println!("BENCH_JSON {}", json!({ "scenario": "redis_round_trips_per_batch50", "round_trips": round_trips }));
    if let Some(f) = figures {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "Notification latency, causing call sent -> subscriber has the item ({} samples): p50 {:.2} ms, p99 {:.2} ms",
            f.samples,
            ms(f.p50),
            ms(f.p99)
        );
        println!(
            "Fan-out to {} subscribers on one server: {:.0} items/s ({} notifications, {:.1} s until every subscriber \
             had every item)",
            stream::SUBSCRIBERS,
            f.fanout_items_per_sec,
            f.fanout_notifications,
            f.fanout_secs
        );
        println!(
            "BENCH_JSON {}",
            json!({ "scenario": "notifications", "p50_ms": ms(f.p50), "p99_ms": ms(f.p99), "samples": f.samples,
                "fanout_subscribers": stream::SUBSCRIBERS, "fanout_items_per_sec": f.fanout_items_per_sec })
        );
    }
    Ok(())
}

/// Runs the scenarios that set up servers of their own (`perf_report`, `overhead`, `trades`), when `BENCH_ONLY` names them;
/// returns whether it names nothing else.
fn run_apart(load: Load) -> anyhow::Result<bool> {
    const APART: [&str; 3] = ["perf_report", "overhead", "trades"];
    let Ok(only) = std::env::var("BENCH_ONLY") else { return Ok(false) };
    let named: Vec<&str> = only.split(',').map(str::trim).collect();
    if named.contains(&"perf_report") {
        perf_report::run(&runtime("bench-server")?, &runtime("bench-client")?)?;
    }
    if named.contains(&"overhead") {
        overhead::run(&runtime("bench-client")?, load, rounds()?)?;
    }
    if named.contains(&"trades") {
        trades::run(&runtime("bench-server")?, &runtime("bench-client")?)?;
    }
    Ok(named.iter().all(|n| APART.contains(n)))
}

/// Batches sent one by one to count Redis round trips.
const ROUND_TRIP_BATCHES: usize = 20;
/// The benchmark keys' limit (the most a key may have): a minute's allowance is more than a run makes, so no call
/// is refused and every call pays for the limiter.
const KEY_LIMIT_PER_MINUTE: u32 = 1_000_000;

fn redis_url() -> String {
    std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Script calls Redis has run (`cmdstat_evalsha` and `cmdstat_eval` of `INFO commandstats`).
async fn redis_script_calls() -> anyhow::Result<u64> {
    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await.context("Redis is not reachable")?;
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await?;
    Ok(info
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum())
}

/// Sends batches one at a time and returns Redis's script calls per batch.
async fn round_trips_per_batch(target: &Target) -> anyhow::Result<f64> {
    load::call(target).await.context("warm-up batch failed")?;
    let before = redis_script_calls().await?;
    for _ in 0..ROUND_TRIP_BATCHES {
        load::call(target).await.context("batch failed")?;
    }
    let after = redis_script_calls().await?;
    Ok((after - before) as f64 / ROUND_TRIP_BATCHES as f64)
}

fn load_from_env() -> anyhow::Result<Load> {
    let connections: usize = env_or("BENCH_CONNECTIONS", 32)?;
    let measure: f64 = env_or("BENCH_SECS", 3.0)?;
    let warmup: f64 = env_or("BENCH_WARMUP_SECS", 1.0)?;
    anyhow::ensure!(connections >= 1, "BENCH_CONNECTIONS must be at least 1");
    anyhow::ensure!(measure.is_finite() && measure > 0.0, "BENCH_SECS must be a positive number of seconds");
    anyhow::ensure!(warmup.is_finite() && warmup >= 0.0, "BENCH_WARMUP_SECS must be zero or more seconds");
    Ok(Load { connections, warmup: Duration::from_secs_f64(warmup), measure: Duration::from_secs_f64(measure) })
}

/// The variable's value, or `default` when it is unset; an unparsable value is an error, not silently ignored.
fn env_or<T: FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid value")),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(e) => Err(anyhow::anyhow!("{name}: {e}")),
    }
}

fn runtime(name: &str) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("failed to build the {name} runtime"))
}

fn config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.data_dir = data_dir.to_path_buf();
    config.database_url = None;
    config
}

async fn run_scenarios(
    load: Load,
    rounds: usize,
    floor: SocketAddr,
    trellis: SocketAddr,
    redis: SocketAddr,
) -> anyhow::Result<(Vec<Row>, f64)> {
    let bearer = sign_in(trellis, EMAIL).await?;
    // The organization belongs to a second account, so `auth.me` above measures the same call as it always has
    // (a user with no memberships).
    let member = sign_in(trellis, MEMBER_EMAIL).await?;
    let (org_id, key) = org_and_key(trellis, &member, None).await?;
    let (limited_org, limited_key) = org_and_key(trellis, &member, Some(KEY_LIMIT_PER_MINUTE)).await?;
    let org_get = rpc("orgs.get", Some(json!({ "orgId": org_id })), 1).to_string();
    let redis_member = sign_in(redis, MEMBER_EMAIL).await?;
    let (redis_org, redis_key) = org_and_key(redis, &redis_member, Some(KEY_LIMIT_PER_MINUTE)).await?;
    let redis_org_get = rpc("orgs.get", Some(json!({ "orgId": redis_org })), 1).to_string();
    let redis_batch = serde_json::Value::Array(
        (1..=BATCH).map(|id| rpc("orgs.get", Some(json!({ "orgId": redis_org })), id)).collect(),
    )
    .to_string();
    let round_trips = round_trips_per_batch(&Target::new(redis, redis_batch, Some(redis_key.clone()), BATCH)?).await?;
    let limited_org_get = rpc("orgs.get", Some(json!({ "orgId": limited_org })), 1).to_string();
    let single = rpc("health.check", None, 1).to_string();
    let batch = serde_json::Value::Array((1..=BATCH).map(|id| rpc("health.check", None, id)).collect()).to_string();
    let me = rpc("auth.me", None, 1).to_string();

    let scenarios = [
        (report::FLOOR, "floor (bare hyper)", Target::new(floor, single.clone(), None, 1)?),
        (report::SINGLE, "health.check", Target::new(trellis, single.clone(), None, 1)?),
        ("health_check_jwt", "health.check + JWT", Target::new(trellis, single.clone(), Some(bearer.clone()), 1)?),
        ("health_check_key", "health.check + API key", Target::new(trellis, single.clone(), Some(key.clone()), 1)?),
        ("auth_me", "auth.me + JWT", Target::new(trellis, me, Some(bearer.clone()), 1)?),
        ("orgs_get_jwt", "orgs.get + JWT", Target::new(trellis, org_get.clone(), Some(member), 1)?),
        ("orgs_get_key", "orgs.get + API key", Target::new(trellis, org_get, Some(key), 1)?),
        (
            "orgs_get_key_limited",
            "orgs.get + limited key",
            Target::new(trellis, limited_org_get, Some(limited_key), 1)?,
        ),
        ("orgs_get_key_limited_redis", "orgs.get + key, Redis", Target::new(redis, redis_org_get, Some(redis_key), 1)?),
        ("health_check_batch50", "health.check x50 batch", Target::new(trellis, batch, None, BATCH)?),
        ("health_check_ws", "health.check, WS", Target::new(trellis, single.clone(), None, 1)?.over_websocket()),
        (
            "health_check_jwt_ws",
            "health.check + JWT, WS",
            Target::new(trellis, single.clone(), Some(bearer.clone()), 1)?.over_websocket(),
        ),
    ];
    // `BENCH_ONLY=auth_me,health_check` narrows the run (for profiling); the floor always runs.
    let scenarios: Vec<_> =
        scenarios.into_iter().filter(|(id, _, _)| wanted(id)).map(|(id, label, t)| (id, label, Arc::new(t))).collect();
    // Machines here are shared and noisy: run every scenario in several interleaved rounds and keep, for each,
    // the round with the median throughput, so one disturbed second does not decide a ratio.
    let mut by_scenario: Vec<Vec<Row>> = scenarios.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for ((id, label, target), runs) in scenarios.iter().zip(&mut by_scenario) {
            eprintln!("round {round}/{rounds}: running {label} ...");
            let outcome = load::run(target.clone(), load).await.with_context(|| format!("scenario {label} failed"))?;
            runs.push(Row { id, label, calls: target.calls, outcome });
        }
    }
    let rows = by_scenario
        .into_iter()
        .filter_map(|mut runs| {
            runs.sort_by(|a, b| a.calls_per_sec().total_cmp(&b.calls_per_sec()));
            let median = runs.len() / 2;
            runs.into_iter().nth(median)
        })
        .collect();
    Ok((rows, round_trips))
}

/// Whether `BENCH_ONLY` (comma-separated scenario ids) names `id`; the floor is always wanted.
fn wanted(id: &str) -> bool {
    let only = std::env::var("BENCH_ONLY").ok();
    id == report::FLOOR || only.as_deref().is_none_or(|o| o.split(',').any(|w| w.trim() == id))
}

/// Registers the bench account (answered the same if it exists) and signs in; returns the `Authorization` value.
async fn sign_in(trellis: SocketAddr, email: &str) -> anyhow::Result<HeaderValue> {
    let credentials = json!({ "email": email, "password": PASSWORD });
    let register = rpc("auth.register", Some(credentials.clone()), 1).to_string();
    load::call(&Target::new(trellis, register, None, 1)?).await.context("auth.register failed")?;
    let login = rpc("auth.login", Some(credentials), 1).to_string();
    let answer = load::call(&Target::new(trellis, login, None, 1)?).await.context("auth.login failed")?;
    let token = answer
        .pointer("/result/accessToken")
        .and_then(serde_json::Value::as_str)
        .context("auth.login answered without result.accessToken")?;
    HeaderValue::from_str(&format!("Bearer {token}")).context("the access token is not a valid header value")
}

/// Creates an organization and an `org:read` API key in it (with `limit` calls a minute); returns the org id and
/// the key's `Authorization` value.
async fn org_and_key(
    trellis: SocketAddr,
    bearer: &HeaderValue,
    limit: Option<u32>,
) -> anyhow::Result<(String, HeaderValue)> {
    let slug = format!("bench-{}", SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()));
    let create = rpc("orgs.create", Some(json!({ "name": "Bench", "slug": slug })), 1).to_string();
    let org =
        load::call(&Target::new(trellis, create, Some(bearer.clone()), 1)?).await.context("orgs.create failed")?;
    let org_id =
        org.pointer("/result/id").and_then(serde_json::Value::as_str).context("orgs.create: no id")?.to_owned();
    let params = json!({ "orgId": org_id, "name": "bench", "scopes": ["org:read"], "rateLimitPerMinute": limit });
    let made = rpc("apiKeys.create", Some(params), 1).to_string();
    let made =
        load::call(&Target::new(trellis, made, Some(bearer.clone()), 1)?).await.context("apiKeys.create failed")?;
    let key = made.pointer("/result/key").and_then(serde_json::Value::as_str).context("apiKeys.create: no key")?;
    let key = HeaderValue::from_str(&format!("Bearer {key}")).context("the key is not a valid header value")?;
    Ok((org_id, key))
}

fn rpc(method: &str, params: Option<serde_json::Value>, id: usize) -> serde_json::Value {
    let mut call = json!({ "jsonrpc": "2.0", "method": method, "id": id });
    if let Some(params) = params {
        call["params"] = params;
    }
    call
}

/// A fresh directory for the server's SQLite file and signing secret, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> anyhow::Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("trellis-bench-{}-{nanos}", std::process::id()));
        // `create_dir`, not `create_dir_all`: it fails rather than reuse an existing directory.
        std::fs::create_dir(&path).with_context(|| format!("failed to create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("warning: could not remove {}: {e}", self.0.display());
        }
    }
}

/// `BENCH_ROUNDS`, default 3.
fn rounds() -> anyhow::Result<usize> {
    match std::env::var("BENCH_ROUNDS") {
        Ok(v) => v.parse::<usize>().ok().filter(|n| *n > 0).context("BENCH_ROUNDS must be a positive whole number"),
        Err(_) => Ok(3),
    }
}
