//! `overhead` (run when `BENCH_ONLY` names it): what Prometheus metrics and performance recording cost, one build
//! measured both ways in one run.
//!
//! The metrics recorder is global to a process, so the two configurations cannot share one: this starts two child
//! processes of the release `trellis` binary (next to this executable in `target/release`; `just bench` builds
//! it), each on its own SQLite directory and loopback port. One serves metrics (`TRELLIS_METRICS_LISTEN`, scraped
//! before and after to prove calls are counted) and records every call's duration (`TRELLIS_PERF_RECORDING=true`),
//! the other does neither. `health.check` plain and in batches of 50 then run against both, in `BENCH_ROUNDS`
//! interleaved rounds (on, off, off, on, ...), each run `BENCH_SECS` long after `BENCH_WARMUP_SECS`; the figures
//! are each round's calls/s on ÷ off, and the p99s.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use crate::load::{self, Load, Outcome, Target};
use crate::{BATCH, TempDir, rpc};

/// A `trellis` child process, killed and reaped when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
    // Dropped after the child is gone (fields drop in order).
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port, as the system picks one (released at once, so another process could take it first:
/// good enough for a benchmark).
fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn server_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("the bench executable has no directory")?.join("trellis");
    anyhow::ensure!(
        path.exists(),
        "{} not found: build the server first (cargo build --release -p trellis-server --bin trellis)",
        path.display()
    );
    Ok(path)
}

fn start(binary: &Path, observed: bool) -> anyhow::Result<Server> {
    let dir = TempDir::create()?;
    let addr = free_addr()?;
    let metrics = if observed { Some(free_addr()?) } else { None };
    let mut cmd = Command::new(binary);
    cmd.env("TRELLIS_LISTEN", addr.to_string())
        .env("TRELLIS_DATA_DIR", &dir.0)
        .env("TRELLIS_PERF_RECORDING", if observed { "true" } else { "false" })
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("TRELLIS_METRICS_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(m) = metrics {
        cmd.env("TRELLIS_METRICS_LISTEN", m.to_string());
    }
    let child = cmd.spawn().with_context(|| format!("failed to start {}", binary.display()))?;
    Ok(Server { child, addr, metrics, _dir: dir })
}

/// Waits until the server answers `health.check`.
async fn ready(server: &mut Server) -> anyhow::Result<()> {
    let target = Target::new(server.addr, rpc("health.check", None, 1).to_string(), None, 1)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait()? {
            anyhow::bail!("the server exited early ({status})");
        }
        if load::call(&target).await.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the server at {} never answered", server.addr);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /metrics`; returns the body.
async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await.context("the metrics listener is not reachable")?;
    stream.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let (head, body) = answer.split_once("\r\n\r\n").context("no HTTP answer")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "GET /metrics answered {head}");
    Ok(body.to_owned())
}

/// `trellis_rpc_calls_total` of `health.check`, summed over its outcomes (0 before the first call).
fn health_calls(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("trellis_rpc_calls_total{") && l.contains("method=\"health.check\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One measured run.
struct Run {
    calls_per_sec: f64,
    p99: Duration,
}

impl Run {
    fn of(outcome: &Outcome, calls: usize) -> Self {
        Self { calls_per_sec: outcome.requests_per_sec() * calls as f64, p99: outcome.percentile(0.99) }
    }
}

/// Runs the scenario and prints its figures.
pub fn run(client: &Runtime, load: Load, rounds: usize) -> anyhow::Result<()> {
    let binary = server_binary()?;
    let mut on = start(&binary, true)?;
    let mut off = start(&binary, false)?;
    client.block_on(async {
        ready(&mut on).await?;
        ready(&mut off).await?;
        let metrics = on.metrics.context("metrics are on")?;
        let before = health_calls(&scrape(metrics).await?);

        let single = rpc("health.check", None, 1).to_string();
        let batch = serde_json::Value::Array((1..=BATCH).map(|id| rpc("health.check", None, id)).collect()).to_string();
        let kinds = [("plain", single, 1), ("batch50", batch, BATCH)];
        // runs[kind][round] = (on, off)
        let mut runs: Vec<Vec<(Run, Run)>> = kinds.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for ((name, body, calls), results) in kinds.iter().zip(&mut runs) {
                let on_target = Arc::new(Target::new(on.addr, body.clone(), None, *calls)?);
                let off_target = Arc::new(Target::new(off.addr, body.clone(), None, *calls)?);
                eprintln!("overhead round {}/{rounds}: {name} ...", round + 1);
                // Alternate which goes first, so neither always runs on a warmer machine.
                let (first, second) =
                    if round % 2 == 0 { (&on_target, &off_target) } else { (&off_target, &on_target) };
                let a = load::run(first.clone(), load).await.with_context(|| format!("{name} failed"))?;
                let b = load::run(second.clone(), load).await.with_context(|| format!("{name} failed"))?;
                let (a, b) = (Run::of(&a, *calls), Run::of(&b, *calls));
                results.push(if round % 2 == 0 { (a, b) } else { (b, a) });
            }
        }
        let after = health_calls(&scrape(metrics).await?);
        anyhow::ensure!(after > before, "the metrics listener counted no health.check call ({before} then {after})");

        println!();
        println!(
            "metrics + performance recording on vs off: two `trellis` processes of one build, {} connections, \
             {:.1} s measured per run; metrics scraped from {metrics}: {} health.check calls counted",
            load.connections,
            load.measure.as_secs_f64(),
            after - before
        );
        println!(
            "{:<10} {:>6} {:>12} {:>12} {:>8} {:>10} {:>10}",
            "calls", "round", "on calls/s", "off calls/s", "on÷off", "on p99 ms", "off p99 ms"
        );
        let mut lines = Vec::new();
        for ((name, _, calls), results) in kinds.iter().zip(&runs) {
            let mut ratios = Vec::new();
            for (round, (on, off)) in results.iter().enumerate() {
                let ratio = on.calls_per_sec / off.calls_per_sec;
                ratios.push(ratio);
                println!(
                    "{:<10} {:>6} {:>12.0} {:>12.0} {:>8.3} {:>10.2} {:>10.2}",
                    name,
                    round + 1,
                    on.calls_per_sec,
                    off.calls_per_sec,
                    ratio,
                    ms(on.p99),
                    ms(off.p99)
                );
                lines.push(
                    json!({ "scenario": format!("overhead_{name}"), "round": round + 1, "calls_per_request": calls,
                        "on_calls_per_sec": on.calls_per_sec.round(), "off_calls_per_sec": off.calls_per_sec.round(),
                        "ratio": (ratio * 1000.0).round() / 1000.0,
                        "on_p99_ms": (ms(on.p99) * 100.0).round() / 100.0,
                        "off_p99_ms": (ms(off.p99) * 100.0).round() / 100.0 }),
                );
            }
            ratios.sort_by(f64::total_cmp);
            println!("{name}: median on÷off {:.3} over {} rounds", ratios[ratios.len() / 2], ratios.len());
        }
        for line in lines {
            println!("BENCH_JSON {line}");
        }
        Ok::<_, anyhow::Error>(())
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
