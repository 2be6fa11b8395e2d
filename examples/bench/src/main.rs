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
//!
//! Both servers run for the whole program on one runtime, the load generator on another of the same size, so
//! the floor and Trellis get identical treatment. Trellis runs with its defaults, an SQLite file in a fresh
//! temporary directory and no log subscriber, so logging is not measured.

mod floor;
mod load;
mod report;
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
    // Declared first so it is removed last, after the server has let go of its files.
    let data_dir = TempDir::create()?;
    let servers = runtime("bench-server")?;
    let client = runtime("bench-client")?;

    let floor_addr = servers.block_on(floor::start()).context("failed to start the floor server")?;
    let app = servers.block_on(Application::build(config(&data_dir.0)))?;
    let trellis_addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let trellis = servers.spawn(app.run_until_stopped(async {
        // A dropped sender stops the server too.
        let _ = stopped.await;
    }));

    let rows = client.block_on(run_scenarios(load, rounds()?, floor_addr, trellis_addr));

    // Stop the server cleanly whether or not the scenarios succeeded.
    let _ = stop.send(());
    let served = servers.block_on(trellis);
    client.shutdown_timeout(Duration::from_secs(5));
    servers.shutdown_timeout(Duration::from_secs(5));
    let rows = rows?;
    served.context("the Trellis server task failed")??;

    report::print(load, THREADS, &rows);
    Ok(())
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

async fn run_scenarios(load: Load, rounds: usize, floor: SocketAddr, trellis: SocketAddr) -> anyhow::Result<Vec<Row>> {
    let bearer = sign_in(trellis, EMAIL).await?;
    // The organization belongs to a second account, so `auth.me` above measures the same call as it always has
    // (a user with no memberships).
    let member = sign_in(trellis, MEMBER_EMAIL).await?;
    let (org_id, key) = org_and_key(trellis, &member).await?;
    let org_get = rpc("orgs.get", Some(json!({ "orgId": org_id })), 1).to_string();
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
        ("health_check_batch50", "health.check x50 batch", Target::new(trellis, batch, None, BATCH)?),
        ("health_check_ws", "health.check, WS", Target::new(trellis, single.clone(), None, 1)?.over_websocket()),
        (
            "health_check_jwt_ws",
            "health.check + JWT, WS",
            Target::new(trellis, single.clone(), Some(bearer.clone()), 1)?.over_websocket(),
        ),
    ];
    // `BENCH_ONLY=auth_me,health_check` narrows the run (for profiling); the floor always runs.
    let only = std::env::var("BENCH_ONLY").ok();
    let wanted = |id: &str| id == report::FLOOR || only.as_deref().is_none_or(|o| o.split(',').any(|w| w.trim() == id));
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
    Ok(rows)
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

/// Creates an organization and an `org:read` API key in it; returns the org id and the key's `Authorization` value.
async fn org_and_key(trellis: SocketAddr, bearer: &HeaderValue) -> anyhow::Result<(String, HeaderValue)> {
    let slug = format!("bench-{}", SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()));
    let create = rpc("orgs.create", Some(json!({ "name": "Bench", "slug": slug })), 1).to_string();
    let org =
        load::call(&Target::new(trellis, create, Some(bearer.clone()), 1)?).await.context("orgs.create failed")?;
    let org_id =
        org.pointer("/result/id").and_then(serde_json::Value::as_str).context("orgs.create: no id")?.to_owned();
    let params = json!({ "orgId": org_id, "name": "bench", "scopes": ["org:read"] });
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
