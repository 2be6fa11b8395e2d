//! The accept loop: bounded connections (in all and per client address),
//! a deadline at every stage of a connection's life, and graceful shutdown
//! (stop accepting, let in-flight calls finish, then close).
//!
//! Deadlines: the first bytes (enough to tell HTTP/1 from HTTP/2), the
//! request headers (HTTP/1; hyper's timer also runs while a keep-alive
//! connection waits for its next request), an idle timeout for a connection
//! with no request in flight (HTTP/1 keep-alive and HTTP/2), HTTP/2 pings
//! that must be answered, and for a WebSocket its own pings (see
//! [`super::ws`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::connection::{Connection, stopped};
use super::http::{Front, handle};

pub(crate) struct ServeOptions {
    pub max_connections: usize,
    /// Per client address (an IPv6 /64 counting as one); 0: no limit.
    pub max_connections_per_ip: usize,
    /// Peers exempt from the per-address cap (`TRELLIS_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<crate::net::Cidr>,
    pub first_byte_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub h2_keep_alive_interval: Duration,
    pub h2_keep_alive_timeout: Duration,
    pub shutdown_grace: Duration,
    /// The kernel's send buffer of each connection (`None`: the system's
    /// own sizing): with the WebSocket subscription buffer, what a client
    /// that stops reading can hold of the server's memory.
    pub send_buffer: Option<usize>,
}

const BUSY_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

pub(crate) async fn serve(
    listener: TcpListener,
    front: Arc<Front>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
    on_shutdown: impl FnOnce() + Send,
) {
    let opts = Arc::new(opts);
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let per_ip = Arc::new(PerIp {
        limit: opts.max_connections_per_ip,
        trusted: opts.trusted_proxies.clone(),
        counts: Mutex::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (mut socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Some(ip_slot) = per_ip.acquire(peer.ip()) else {
                    tracing::debug!(%peer, limit = opts.max_connections_per_ip, "connection limit per address reached");
                    tokio::spawn(async move { drop(socket.write_all(BUSY_503).await) });
                    continue;
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, limit = opts.max_connections, "connection limit reached");
                    tokio::spawn(async move { drop(socket.write_all(BUSY_503).await) });
                    continue;
                };
                let _ = socket.set_nodelay(true);
                if let Some(bytes) = opts.send_buffer {
                    let _ = socket2::SockRef::from(&socket).set_send_buffer_size(bytes);
                }
                let front = front.clone();
                let stop = stop_rx.clone();
                let opts = opts.clone();
                connections.spawn(async move {
                    let _slots = (permit, ip_slot);
                    serve_connection(socket, peer, front, &opts, stop).await;
                });
            }
        }
    }

    tracing::info!(open = connections.len(), "shutting down: no new connections, finishing in-flight calls");
    on_shutdown();
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(opts.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), "shutdown grace period over; closing remaining connections");
        connections.shutdown().await;
    }
}

async fn serve_connection(
    socket: TcpStream,
    peer: std::net::SocketAddr,
    front: Arc<Front>,
    opts: &ServeOptions,
    mut stop: watch::Receiver<bool>,
) {
    // A connection that sends nothing is closed: hyper's own timers start
    // only once it knows the protocol.
    match tokio::time::timeout(opts.first_byte_timeout, first_bytes(&socket)).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(_) => {
            tracing::debug!(%peer, "no request within the first-byte timeout; closing");
            return;
        }
    }
    let connection = Arc::new(Connection { stop: stop.clone(), upgraded: Mutex::new(None) });
    let activity = Arc::new(Activity::new());
    let svc = {
        let (connection, activity) = (connection.clone(), activity.clone());
        service_fn(move |mut req| {
            // Only an HTTP/1.1 upgrade can take the connection over; plain
            // calls skip the extension (and its allocation).
            if req.version() == http::Version::HTTP_11 && req.headers().contains_key(http::header::UPGRADE) {
                req.extensions_mut().insert(connection.clone());
            }
            let busy = activity.begin();
            let front = front.clone();
            async move {
                let resp = handle(front, peer, req).await;
                drop(busy);
                resp
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(opts.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(opts.h2_keep_alive_interval)
        .keep_alive_timeout(opts.h2_keep_alive_timeout);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(socket), svc);
    tokio::pin!(conn);
    let result = loop {
        let idle_at = activity.idle_deadline(opts.idle_timeout);
        tokio::select! {
            r = conn.as_mut() => break r,
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            () = tokio::time::sleep_until(idle_at.into()) => {
                if activity.idle_for(opts.idle_timeout) {
                    tracing::debug!(%peer, "connection idle; closing");
                    conn.as_mut().graceful_shutdown();
                    break conn.await;
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
    let upgraded = connection.upgraded.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(session) = upgraded {
        session.await;
    }
}

/// Waits until the connection has sent enough to tell HTTP/1 from HTTP/2
/// (its first bytes, or the whole HTTP/2 preface). `false` if it closed first.
async fn first_bytes(socket: &TcpStream) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; 24];
    let mut seen = 0;
    loop {
        let n = match socket.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        if n == PREFACE.len() || buf[..n] != PREFACE[..n] {
            return true;
        }
        if n == seen {
            // Part of the preface, and no more yet: peek would answer at once.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen = n;
    }
}

/// Requests in flight on a connection, and when the last one began or ended.
struct Activity {
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
    epoch: Instant,
}

struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self { in_flight: AtomicUsize::new(0), last_ms: AtomicU64::new(0), epoch: Instant::now() }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(self.clone())
    }

    /// When the connection will have been idle for `idle` (a look again
    /// then, if a request is in flight).
    fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Instant::now() + idle;
        }
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }

    fn idle_for(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.epoch.elapsed() >= Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Open connections per client address.
struct PerIp {
    limit: usize,
    trusted: Vec<crate::net::Cidr>,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

struct IpSlot(Option<(Arc<PerIp>, IpAddr)>);

impl PerIp {
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        if self.limit == 0 {
            return Some(IpSlot(None));
        }
        // A trusted proxy carries many clients' connections; the limit is
        // for clients.
        if self.trusted.iter().any(|c| c.contains(ip)) {
            return Some(IpSlot(None));
        }
        let key = crate::net::limit_bucket(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(key).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(IpSlot(Some((self.clone(), key))))
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some((per_ip, key)) = self.0.take() {
            let mut counts = per_ip.counts.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
        }
    }
}
