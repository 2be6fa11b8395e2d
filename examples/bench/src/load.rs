//! The load generator: a fixed set of keep-alive HTTP/1.1 connections (or
//! WebSockets), each sending one request and awaiting its answer in a loop.
//! Concurrency is thus exactly the number of connections, and each latency is
//! one round trip.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::ws::WsConn;

/// One load connection.
enum Conn {
    Http(SendRequest<Full<Bytes>>),
    /// Each request a text frame on one socket, each answer the next frame.
    Ws(WsConn),
}

/// What every request of a scenario sends, and where.
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    body: Bytes,
    bearer: Option<HeaderValue>,
    /// JSON-RPC calls in each request: 1, or the batch size.
    pub calls: usize,
    /// Over one WebSocket per connection (credentials sent at the upgrade).
    websocket: bool,
}

impl Target {
    pub fn new(addr: SocketAddr, body: String, bearer: Option<HeaderValue>, calls: usize) -> anyhow::Result<Self> {
        let host = HeaderValue::from_str(&addr.to_string()).context("a socket address is a valid Host header")?;
        Ok(Self { addr, host, body: Bytes::from(body), bearer, calls, websocket: false })
    }

    /// The same calls over WebSocket.
    pub fn over_websocket(mut self) -> Self {
        self.websocket = true;
        self
    }

    fn request(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::post("/rpc")
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(bearer) = &self.bearer {
            builder = builder.header(AUTHORIZATION, bearer.clone());
        }
        // `Bytes` clones share the buffer: no copy per request.
        Ok(builder.body(Full::new(self.body.clone()))?)
    }
}

/// How hard and how long to drive a target.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one scenario measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of each successful request in the measured window, sorted.
    latencies: Vec<Duration>,
    /// Failed requests and connections, warm-up included.
    pub errors: u64,
    /// From the window's start to the last measured answer.
    elapsed: Duration,
}

impl Outcome {
    pub fn requests(&self) -> usize {
        self.latencies.len()
    }

    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.latencies.len() as f64 / secs } else { 0.0 }
    }

    /// Nearest-rank percentile, `q` in (0, 1].
    pub fn percentile(&self, q: f64) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies[rank - 1]
    }
}

/// Drives `target` with `load.connections` connections: warm-up, then the
/// measured window.
pub async fn run(target: Arc<Target>, load: Load) -> anyhow::Result<Outcome> {
    // Open every connection before the clock starts, so handshakes are not measured.
    let mut senders = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        senders.push(connect(&target).await?);
    }
    let start = Instant::now() + load.warmup;
    let window = Window { start, end: start + load.measure };

    let mut tasks = JoinSet::new();
    for sender in senders {
        tasks.spawn(drive(sender, target.clone(), window));
    }
    let mut outcome = Outcome::default();
    let mut last_done = window.start;
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.context("a load connection panicked")?;
        outcome.latencies.extend(stats.latencies);
        outcome.errors += stats.errors;
        last_done = last_done.max(stats.last_done);
    }
    outcome.latencies.sort_unstable();
    outcome.elapsed = last_done.saturating_duration_since(window.start);
    Ok(outcome)
}

/// Sends one request on a fresh connection and returns its parsed answer;
/// fails on anything but a clean JSON-RPC result.
pub async fn call(target: &Target) -> anyhow::Result<serde_json::Value> {
    let mut sender = connect(target).await?;
    let (status, body) = exchange(&mut sender, target).await?;
    anyhow::ensure!(
        succeeded(status, &body, target.calls),
        "unexpected answer ({status}): {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

struct ConnStats {
    latencies: Vec<Duration>,
    errors: u64,
    last_done: Instant,
}

/// One connection's loop: request, await the answer, check it, repeat until
/// the window ends. Only requests sent inside the window are timed.
async fn drive(sender: Conn, target: Arc<Target>, window: Window) -> ConnStats {
    let mut sender = Some(sender);
    let mut stats = ConnStats { latencies: Vec::with_capacity(4096), errors: 0, last_done: window.start };
    loop {
        let sent = Instant::now();
        if sent >= window.end {
            return stats;
        }
        let Some(conn) = sender.as_mut() else {
            // A transport error leaves the connection unusable: open another,
            // pausing if even that fails so a dead server is not spun on.
            match connect(&target).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    stats.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            continue;
        };
        match exchange(conn, &target).await {
            Ok((status, body)) if succeeded(status, &body, target.calls) => {
                let done = Instant::now();
                if sent >= window.start {
                    stats.latencies.push(done - sent);
                    stats.last_done = done;
                }
            }
            Ok(_) => stats.errors += 1,
            Err(_) => {
                stats.errors += 1;
                sender = None;
            }
        }
    }
}

async fn connect(target: &Target) -> anyhow::Result<Conn> {
    if target.websocket {
        return Ok(Conn::Ws(crate::ws::connect(target.addr, &target.host, target.bearer.as_ref()).await?));
    }
    let addr = target.addr;
    let stream = TcpStream::connect(addr).await.with_context(|| format!("failed to connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    // The connection task drives the socket; it ends when `sender` is dropped.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn::Http(sender))
}

/// One request and its whole answer (a WebSocket answer counts as a 200).
async fn exchange(conn: &mut Conn, target: &Target) -> anyhow::Result<(StatusCode, Bytes)> {
    let sender = match conn {
        Conn::Http(sender) => sender,
        Conn::Ws(ws) => return Ok((StatusCode::OK, Bytes::from(ws.exchange(&target.body).await?))),
    };
    sender.ready().await?;
    let resp = sender.send_request(target.request()?).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// 200, a `"result"` for every call, and no `"error"` anywhere. A substring
/// scan, not a parse, so checking every answer costs the load generator little.
fn succeeded(status: StatusCode, body: &[u8], calls: usize) -> bool {
    status == StatusCode::OK && occurrences(body, b"\"result\"") >= calls && occurrences(body, b"\"error\"") == 0
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_answer_needs_a_result_per_call_and_no_error() {
        let one = br#"{"jsonrpc":"2.0","result":{},"id":1}"#;
        let two = br#"[{"jsonrpc":"2.0","result":{},"id":1},{"jsonrpc":"2.0","result":{},"id":2}]"#;
        let failed = br#"[{"jsonrpc":"2.0","result":{},"id":1},{"jsonrpc":"2.0","error":{},"id":2}]"#;
        assert!(succeeded(StatusCode::OK, one, 1));
        assert!(succeeded(StatusCode::OK, two, 2));
        assert!(!succeeded(StatusCode::OK, one, 2));
        assert!(!succeeded(StatusCode::OK, failed, 1));
        assert!(!succeeded(StatusCode::SERVICE_UNAVAILABLE, one, 1));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let outcome = Outcome {
            latencies: (1..=100).map(Duration::from_millis).collect(),
            errors: 0,
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(outcome.percentile(0.50), Duration::from_millis(50));
        assert_eq!(outcome.percentile(0.99), Duration::from_millis(99));
        assert_eq!(outcome.requests_per_sec(), 100.0);
    }
}
