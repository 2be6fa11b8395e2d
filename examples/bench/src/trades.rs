//! `trades` (only when `BENCH_ONLY` names it): `trades.negotiate` calls per second on a fresh PostgreSQL database
//! (`BENCH_DATABASE_URL`, as `perf_report`), over HTTP with one kept-alive connection per negotiator:
//! 1. 32 negotiators, each on an offer of its own: each counters as the party whose turn it is (buyer, then
//!    seller, then buyer...), with the version the previous answer gave; every call should succeed.
//! 2. 32 negotiators on one offer (16 for each party): each counters with the last version it saw; most calls lose
//!    (VERSION_CONFLICT, whose `currentVersion` the loser takes, or NOT_YOUR_TURN): the conflict path's cost.
//!
//! Prints calls per second, moves that succeeded per second, p50/p99, and any answer that is neither a success
//! nor one of those two refusals (there should be none).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use trellis_server::Application;

use crate::perf_report::{Store, pg_admin};
use crate::{TempDir, env_or, rpc};

const NEGOTIATORS: usize = 32;

/// One kept-alive HTTP/1.1 connection.
struct Conn {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self { addr, sender })
    }

    /// One call; the whole JSON-RPC answer (result or error).
    async fn call(&mut self, bearer: &HeaderValue, method: &str, params: Value) -> anyhow::Result<Value> {
        self.sender.ready().await?;
        let req = Request::post(format!("http://{}/rpc", self.addr))
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, bearer.clone())
            .body(Full::new(Bytes::from(rpc(method, Some(params), 1).to_string())))?;
        let answer = self.sender.send_request(req).await?.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&answer)?)
    }

    async fn ok(&mut self, bearer: &HeaderValue, method: &str, params: Value) -> anyhow::Result<Value> {
        let answer = self.call(bearer, method, params).await?;
        answer.get("result").cloned().with_context(|| format!("{method} failed: {answer}"))
    }
}

struct Side {
    bearer: HeaderValue,
    org: String,
}

async fn side(addr: SocketAddr, email: &str, slug: &str) -> anyhow::Result<Side> {
    let bearer = crate::sign_in(addr, email).await?;
    let mut c = Conn::open(addr).await?;
    let org = c.ok(&bearer, "orgs.create", json!({ "name": slug, "slug": slug })).await?;
    Ok(Side { bearer, org: org["id"].as_str().context("orgs.create: no id")?.to_owned() })
}

/// A trade of the buyer and an offer on it from the seller; returns the offer's id.
async fn deal(c: &mut Conn, buyer: &Side, seller: &Side) -> anyhow::Result<String> {
    let at = |secs: i64| (Utc::now() + TimeDelta::seconds(secs)).to_rfc3339();
    let trade = c
        .ok(
            &buyer.bearer,
            "trades.create",
            json!({ "orgId": buyer.org, "side": "buy", "commodity": "wheat", "quantity": "1000", "unit": "t",
                    "currency": "EUR", "visibility": "public", "expiresAt": at(86_400) }),
        )
        .await?;
    let offer = c
        .ok(
            &seller.bearer,
            "trades.offer",
            json!({ "tradeId": trade["id"], "orgId": seller.org, "price": "240", "quantity": "1000",
                    "validUntil": at(80_000) }),
        )
        .await?;
    Ok(offer["id"].as_str().context("trades.offer: no id")?.to_owned())
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    moved: u64,
    conflicts: u64,
    not_your_turn: u64,
    other: u64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.latencies.extend(o.latencies);
        self.moved += o.moved;
        self.conflicts += o.conflicts;
        self.not_your_turn += o.not_your_turn;
        self.other += o.other;
    }
}

/// One negotiator: counters on `offer` for `secs`, as `parties[turn]`. With `alternate`, it plays both parties in
/// turn; without, it always plays `parties[0]`.
async fn negotiator(
    addr: SocketAddr,
    offer: String,
    parties: [(HeaderValue, String); 2],
    alternate: bool,
    until: Instant,
) -> anyhow::Result<Tally> {
    let mut c = Conn::open(addr).await?;
    let mut t = Tally::default();
    let mut version: u64 = 1;
    let mut turn = 0; // the owner moves first on a pending offer
    let mut n = 0u64;
    while Instant::now() < until {
        let who = if alternate { turn } else { 0 };
        let (bearer, org) = &parties[who];
        n += 1;
        let price = format!("{}.{}", 240 + n % 10, n % 100);
        let params =
            json!({ "offerId": offer, "orgId": org, "expectedVersion": version, "action": "counter", "price": price });
        let started = Instant::now();
        let answer = c.call(bearer, "trades.negotiate", params).await?;
        t.latencies.push(started.elapsed());
        if let Some(r) = answer.get("result") {
            version = r["version"].as_u64().context("no version")?;
            turn = 1 - turn;
            t.moved += 1;
        } else {
            match answer.pointer("/error/data/reason").and_then(Value::as_str) {
                Some("VERSION_CONFLICT") => {
                    version = answer.pointer("/error/data/currentVersion").and_then(Value::as_u64).unwrap_or(version);
                    t.conflicts += 1;
                }
                Some("NOT_YOUR_TURN") => t.not_your_turn += 1,
                _ => {
                    t.other += 1;
                    eprintln!("trades: unexpected answer {answer}");
                }
            }
        }
    }
    Ok(t)
}

struct Figures {
    label: &'static str,
    calls_per_sec: f64,
    moves_per_sec: f64,
    p50: Duration,
    p99: Duration,
    tally: Tally,
}

fn figures(label: &'static str, mut t: Tally, secs: f64) -> Figures {
    t.latencies.sort_unstable();
    let at =
        |q: f64| t.latencies.get(((t.latencies.len().max(1) - 1) as f64 * q) as usize).copied().unwrap_or_default();
    Figures {
        label,
        calls_per_sec: t.latencies.len() as f64 / secs,
        moves_per_sec: t.moved as f64 / secs,
        p50: at(0.5),
        p99: at(0.99),
        tally: t,
    }
}

pub fn run(servers: &Runtime, client: &Runtime) -> anyhow::Result<()> {
    let store = Store::from_env();
    let Store::Postgres { admin_url, name, url } = &store else {
        anyhow::bail!("the trades scenario runs on PostgreSQL (BENCH_DATABASE_URL)");
    };
    client.block_on(pg_admin(admin_url, &format!("CREATE DATABASE {name}")))?;
    let data_dir = TempDir::create()?;
    let mut config = crate::config(&data_dir.0);
    config.database_url = Some(url.clone());
    config.jwt_secret = Some("trades-bench-secret-of-enough-bytes-0123456789abcdef".into());
    // Every move is measured, none refused by the organization's allowance.
    config.trade_writes_per_org_minute = 0;
    let result = (|| {
        let app = servers.block_on(Application::build(config))?;
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = servers.spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let secs: f64 = env_or("BENCH_SECS", 3.0)? * 2.0;
        let figures = client.block_on(async {
            let buyer = side(addr, "buyer@bench.example", "bench-buyer").await?;
            let seller = side(addr, "seller@bench.example", "bench-seller").await?;
            let parties = [(buyer.bearer.clone(), buyer.org.clone()), (seller.bearer.clone(), seller.org.clone())];
            let mut c = Conn::open(addr).await?;
            let mut offers = Vec::new();
            for _ in 0..NEGOTIATORS {
                offers.push(deal(&mut c, &buyer, &seller).await?);
            }
            let shared = deal(&mut c, &buyer, &seller).await?;

            let until = Instant::now() + Duration::from_secs_f64(secs);
            let tasks: Vec<_> = offers
                .iter()
                .map(|o| tokio::spawn(negotiator(addr, o.clone(), parties.clone(), true, until)))
                .collect();
            let mut distinct = Tally::default();
            for task in tasks {
                distinct.add(task.await??);
            }

            let until = Instant::now() + Duration::from_secs_f64(secs);
            let tasks: Vec<_> = (0..NEGOTIATORS)
                .map(|i| {
                    let mine = if i % 2 == 0 { parties.clone() } else { [parties[1].clone(), parties[0].clone()] };
                    tokio::spawn(negotiator(addr, shared.clone(), mine, false, until))
                })
                .collect();
            let mut one = Tally::default();
            for task in tasks {
                one.add(task.await??);
            }
            Ok::<_, anyhow::Error>(vec![
                figures("32 negotiators, distinct offers", distinct, secs),
                figures("32 negotiators, one offer", one, secs),
            ])
        });
        let _ = stop.send(());
        servers.block_on(server).context("the Trellis server task failed")??;
        figures
    })();
    client.block_on(pg_admin(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))?;
    let figures = result?;
    println!();
    println!("trades.negotiate (counter) on PostgreSQL, {NEGOTIATORS} negotiators, kept-alive HTTP connections");
    println!(
        "{:<34} {:>10} {:>10} {:>8} {:>8} {:>10} {:>8} {:>6}",
        "case", "calls/s", "moves/s", "p50 ms", "p99 ms", "conflicts", "turn", "other"
    );
    for f in &figures {
        println!(
            "{:<34} {:>10.0} {:>10.0} {:>8.2} {:>8.2} {:>10} {:>8} {:>6}",
            f.label,
            f.calls_per_sec,
            f.moves_per_sec,
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0,
            f.tally.conflicts,
            f.tally.not_your_turn,
            f.tally.other
        );
    }
    for f in &figures {
        println!(
            "BENCH_JSON {}",
            json!({ "scenario": "trades", "label": f.label, "calls_per_sec": f.calls_per_sec.round(),
                    "moves_per_sec": f.moves_per_sec.round(), "p50_ms": f.p50.as_secs_f64() * 1000.0,
                    "p99_ms": f.p99.as_secs_f64() * 1000.0, "conflicts": f.tally.conflicts,
                    "not_your_turn": f.tally.not_your_turn, "other": f.tally.other })
        );
    }
    Ok(())
}
