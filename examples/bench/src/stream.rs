//! Streaming figures: how long a notification takes from the call that
//! causes it to its subscriber (p50/p99), and how many items a second one
//! server fans out to 1,000 subscribers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::header::HeaderValue;
use serde_json::{Value, json};

use crate::load::{self, Target};
use crate::ws::{self, WsConn};

/// Subscribers of the fan-out figure.
pub const SUBSCRIBERS: usize = 1_000;
/// Notifications caused one after another for the latency figure.
const LATENCY_SAMPLES: usize = 300;

pub struct Figures {
    pub p50: Duration,
    pub p99: Duration,
    pub samples: usize,
    pub fanout_items_per_sec: f64,
    pub fanout_notifications: u64,
    pub fanout_secs: f64,
}

async fn subscribe(addr: SocketAddr, bearer: &HeaderValue) -> anyhow::Result<WsConn> {
    let host = HeaderValue::from_str(&addr.to_string())?;
    let mut conn = ws::connect(addr, &host, Some(bearer)).await?;
    let answer = conn
        .exchange(br#"{"jsonrpc":"2.0","id":1,"method":"notifications.subscribe","params":{}}"#)
        .await
        .context("subscribe")?;
    let answer: Value = serde_json::from_slice(&answer)?;
    anyhow::ensure!(answer["result"].is_string(), "subscribe refused: {answer}");
    Ok(conn)
}

fn create_key(org: &str, i: usize) -> Value {
    json!({"jsonrpc": "2.0", "id": i, "method": "apiKeys.create",
        "params": {"orgId": org, "name": format!("n{i}"), "scopes": ["org:read"]}})
}

/// Latency from sending `apiKeys.create` (which notifies the org's owner) to the owner's subscriber receiving the
/// notification, one at a time.
async fn latency(addr: SocketAddr, bearer: &HeaderValue, org: &str) -> anyhow::Result<Vec<Duration>> {
    let mut sub = subscribe(addr, bearer).await?;
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let target = Target::new(addr, create_key(org, i).to_string(), Some(bearer.clone()), 1)?;
        let start = Instant::now();
        let (answer, item) = tokio::join!(load::call(&target), sub.next());
        let (_, item) = (answer.context("apiKeys.create")?, item.context("the item")?);
        samples.push(start.elapsed());
        let item: Value = serde_json::from_slice(&item)?;
        anyhow::ensure!(item["params"]["result"]["data"]["name"] == format!("n{i}"), "unexpected item: {item}");
    }
    samples.sort();
    Ok(samples)
}

/// `SUBSCRIBERS` sockets subscribed for the owner; batches of 50 `apiKeys.create` for `secs`; items received by all
/// subscribers per second, counted until every subscriber has every item.
async fn fanout(addr: SocketAddr, bearer: &HeaderValue, org: &str, secs: f64) -> anyhow::Result<(f64, u64, f64)> {
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..SUBSCRIBERS {
        let mut sub = subscribe(addr, bearer).await?;
        let received = received.clone();
        readers.spawn(async move {
            while sub.next().await.is_ok() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let start = Instant::now();
    let mut sent = 0u64;
    let mut i = 0;
    while start.elapsed().as_secs_f64() < secs {
        let batch = Value::Array((0..50).map(|k| create_key(org, i + k)).collect()).to_string();
        i += 50;
        load::call(&Target::new(addr, batch, Some(bearer.clone()), 50)?).await.context("apiKeys.create batch")?;
        sent += 50;
    }
    let expected = sent * SUBSCRIBERS as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let got = received.load(Ordering::Relaxed);
    readers.abort_all();
    anyhow::ensure!(got == expected, "fan-out: {got} of {expected} items arrived");
    Ok((got as f64 / elapsed, sent, elapsed))
}

pub async fn run(addr: SocketAddr, bearer: &HeaderValue, org: &str, secs: f64) -> anyhow::Result<Figures> {
    let samples = latency(addr, bearer, org).await?;
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let (p50, p99) = (at(0.50), at(0.99));
    let (rate, notifications, elapsed) = fanout(addr, bearer, org, secs).await?;
    Ok(Figures {
        p50,
        p99,
        samples: samples.len(),
        fanout_items_per_sec: rate,
        fanout_notifications: notifications,
        fanout_secs: elapsed,
    })
}
