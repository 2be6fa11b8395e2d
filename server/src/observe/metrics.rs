//! What the server records. Label values come from closed sets only: method
//! names from the registry (`unknown` for any other), error codes and
//! reasons from the schema's enums, fixed outcome words; never an id.
//!
//! The recorder is global to the process (the `metrics` facade has one), so
//! it is installed once ([`handle`]) and every server of the process (tests
//! start many) renders the same handle. Sampled values (pool, outbox,
//! uptime) are set by the server whose listener renders.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use trellis_schema::{ApiError, Reason};

/// Seconds: from 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Calls in a batch.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];

/// Whether the recorder is installed: a gauge raised before it was is not
/// lowered after (its rise was never recorded).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The process's recorder, installed on first use. `None` when another
/// recorder was installed first (then nothing is served).
pub(super) fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("trellis_rpc_batch_size".into()), BATCH_BUCKETS))
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    INSTALLED.store(true, Ordering::Release);
                    describe();
                    gauge!("trellis_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
                    Some(handle)
                }
                Err(e) => {
                    tracing::error!(error = %e, "the metrics recorder could not be installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The help text of every metric (Prometheus' linters want one each).
fn describe() {
    describe_counter!("trellis_rpc_calls_total", "Calls by method and outcome (ok or error).");
    describe_counter!("trellis_rpc_errors_total", "Failed calls by method, error code and reason.");
    describe_histogram!("trellis_rpc_duration_seconds", "Time to answer a call, by method.");
    describe_gauge!("trellis_rpc_in_flight", "Calls being answered.");
    describe_histogram!("trellis_rpc_batch_size", "Calls in a batch (HTTP and WebSocket).");
    describe_counter!(
        "trellis_rpc_refused_total",
        "Requests or batch entries refused before any call (parse errors, invalid requests, limits), by reason."
    );
    describe_gauge!("trellis_ws_connections", "Open WebSocket connections.");
    describe_gauge!("trellis_ws_subscriptions", "Open subscriptions.");
    describe_counter!("trellis_signins_total", "Sign-ins (password or one-time code), by outcome.");
    describe_counter!("trellis_lockouts_total", "Accounts locked after repeated failed sign-ins.");
    describe_counter!("trellis_refreshes_total", "Token refreshes, by outcome.");
    describe_counter!("trellis_token_reuse_total", "Refresh tokens presented again (their session is ended).");
    describe_counter!("trellis_api_key_verifications_total", "API keys checked, by outcome.");
    describe_counter!("trellis_rate_limited_total", "Requests refused by a rate limit, by limiter.");
    describe_gauge!("trellis_db_pool_connections", "Database pool connections by state (size, idle, in_use).");
    describe_histogram!("trellis_db_pool_wait_seconds", "Wait for a database connection from the pool.");
    describe_histogram!("trellis_db_query_duration_seconds", "Time a connection is held for a query or transaction.");
    describe_counter!("trellis_redis_round_trips_total", "Commands sent to Redis.");
    describe_counter!("trellis_cache_fallbacks_total", "Limits or notices handled without Redis while it was away.");
    describe_gauge!("trellis_outbox_depth", "Mails waiting in the outbox.");
    describe_counter!("trellis_mail_sent_total", "Mails handed to the sender, by outcome.");
    describe_counter!("trellis_webhook_deliveries_total", "Webhook delivery attempts, by outcome.");
    describe_gauge!("trellis_build_info", "The running version (always 1).");
    describe_gauge!("trellis_uptime_seconds", "Seconds since the server started.");
}

/// One call of the registry (a subscribe call too, until it is answered),
/// timed and counted; `None` (no such method) counts as `method="unknown"`.
pub(crate) fn call<T: Send + 'static>(
    found: Option<(&'static str, BoxFuture<'static, Result<T, ApiError>>)>,
) -> Option<BoxFuture<'static, Result<T, ApiError>>> {
    // Without a recorder (no metrics listener), the call is not wrapped.
    if !INSTALLED.load(Ordering::Acquire) {
        return found.map(|(_, fut)| fut);
    }
    let Some((method, fut)) = found else {
        counter!("trellis_rpc_calls_total", "method" => "unknown", "outcome" => "error").increment(1);
        counter!("trellis_rpc_errors_total", "method" => "unknown", "code" => "METHOD_NOT_FOUND", "reason" => "METHOD_NOT_FOUND")
            .increment(1);
        return None;
    };
    let handles = CallHandles::of(method);
    Some(Box::pin(async move {
        let _in_flight = InFlight::enter();
        let started = Instant::now();
        let result = fut.await;
        let elapsed = started.elapsed().as_secs_f64();
        let duration = || histogram!("trellis_rpc_duration_seconds", "method" => method);
        match handles {
            Some(h) => h.duration.get_or_init(duration).record(elapsed),
            None => duration().record(elapsed),
        }
        match &result {
            Ok(_) => {
                let ok = || counter!("trellis_rpc_calls_total", "method" => method, "outcome" => "ok");
                match handles {
                    Some(h) => h.ok.get_or_init(ok).increment(1),
                    None => ok().increment(1),
                }
            }
            Err(e) => {
                counter!("trellis_rpc_calls_total", "method" => method, "outcome" => "error").increment(1);
                counter!("trellis_rpc_errors_total", "method" => method, "code" => e.code().name(), "reason" => e.reason.as_str())
                    .increment(1);
            }
        }
        account_outcome(method, &result);
        result
    }))
}

/// One method's call metrics, looked up once each: by name and labels on
/// every call (a key built, hashed and found in the registry) they cost
/// more than the recording itself. Each is made at its first use, so what
/// is exposed is what was recorded, as before.
#[derive(Default)]
struct CallHandles {
    duration: OnceLock<metrics::Histogram>,
    ok: OnceLock<metrics::Counter>,
}

impl CallHandles {
    /// The handles of a registry method (every procedure of the schema).
    fn of(method: &str) -> Option<&'static CallHandles> {
        static ALL: OnceLock<HashMap<&'static str, CallHandles>> = OnceLock::new();
        ALL.get_or_init(|| {
            trellis_schema::procedure::procedures().iter().map(|p| (p.method, CallHandles::default())).collect()
        })
        .get(method)
    }
}

/// `trellis_rpc_in_flight`, raised while the guard lives (its handle made once).
struct InFlight(Option<&'static metrics::Gauge>);

impl InFlight {
    fn enter() -> Self {
        static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
        if !INSTALLED.load(Ordering::Acquire) {
            return InFlight(None);
        }
        let gauge = GAUGE.get_or_init(|| gauge!("trellis_rpc_in_flight"));
        gauge.increment(1.0);
        InFlight(Some(gauge))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(gauge) = self.0 {
            gauge.decrement(1.0);
        }
    }
}

/// Sign-ins, refreshes and reused refresh tokens, told by the calls that
/// make them (one place, rather than a line in each handler).
fn account_outcome<T>(method: &'static str, result: &Result<T, ApiError>) {
    match method {
        "auth.login" | "auth.loginWithCode" => signed_in(result.is_ok()),
        "auth.refresh" => refreshed(result.is_ok()),
        _ => {}
    }
    if matches!(result, Err(e) if e.reason == Reason::TokenReused) {
        token_reused();
    }
}

/// A request (or an entry of a batch) refused before any call: not JSON,
/// not JSON-RPC, too large, too deep, a batch too long.
pub(crate) fn refused(e: &ApiError) {
    counter!("trellis_rpc_refused_total", "reason" => e.reason.as_str()).increment(1);
}

/// A batch of `calls` calls (HTTP or WebSocket).
pub(crate) fn batch(calls: usize) {
    histogram!("trellis_rpc_batch_size").record(calls as f64);
}

/// A WebSocket connection, counted while the guard lives.
pub(crate) fn ws_connection() -> Live {
    Live::enter("trellis_ws_connections")
}

/// A subscription, counted while the guard lives.
pub(crate) fn ws_subscription() -> Live {
    Live::enter("trellis_ws_subscriptions")
}

/// Adds one to a gauge while it lives (when the recorder was installed
/// as it began: what it did not count, it does not subtract).
pub(crate) struct Live(Option<&'static str>);

impl Live {
    fn enter(name: &'static str) -> Self {
        if !INSTALLED.load(Ordering::Acquire) {
            return Live(None);
        }
        gauge!(name).increment(1.0);
        Live(Some(name))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(name) = self.0 {
            gauge!(name).decrement(1.0);
        }
    }
}

fn outcome(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}

/// A sign-in with a password, and whether it succeeded.
fn signed_in(ok: bool) {
    counter!("trellis_signins_total", "outcome" => outcome(ok)).increment(1);
}

/// An account locked after too many failed sign-ins.
pub(crate) fn lockout() {
    counter!("trellis_lockouts_total").increment(1);
}

/// A refresh of a session's tokens, and whether it succeeded.
fn refreshed(ok: bool) {
    counter!("trellis_refreshes_total", "outcome" => outcome(ok)).increment(1);
}

/// A refresh token presented a second time.
fn token_reused() {
    counter!("trellis_token_reuse_total").increment(1);
}

/// An API key checked, and whether it was accepted.
pub(crate) fn api_key_verified(ok: bool) {
    counter!("trellis_api_key_verifications_total", "outcome" => outcome(ok)).increment(1);
}

/// A request refused by `limiter` (a fixed name).
pub(crate) fn rate_limited(limiter: &'static str) {
    counter!("trellis_rate_limited_total", "limiter" => limiter).increment(1);
}

/// A command sent to Redis.
pub(crate) fn redis_round_trip() {
    counter!("trellis_redis_round_trips_total").increment(1);
}

/// Limits or change notices handled without Redis, because it was away.
pub(crate) fn cache_fallback() {
    counter!("trellis_cache_fallbacks_total").increment(1);
}

/// A mail handed to the sender, and whether it was accepted.
pub(crate) fn mail_sent(ok: bool) {
    counter!("trellis_mail_sent_total", "outcome" => outcome(ok)).increment(1);
}

/// A webhook delivery attempt, and whether the receiver accepted it.
pub(crate) fn webhook_delivered(ok: bool) {
    counter!("trellis_webhook_deliveries_total", "outcome" => outcome(ok)).increment(1);
}

/// A connection taken from the pool (`operation`: `read` or `write`), after
/// waiting `since` its request; the guard times the work done with it.
pub(crate) fn db_checkout(operation: &'static str, since: Instant) -> QueryTimer {
    histogram!("trellis_db_pool_wait_seconds").record(since.elapsed().as_secs_f64());
    QueryTimer { operation, started: Instant::now() }
}

/// Records the time a connection was held, when dropped.
pub(crate) struct QueryTimer {
    operation: &'static str,
    started: Instant,
}

impl Drop for QueryTimer {
    fn drop(&mut self) {
        histogram!("trellis_db_query_duration_seconds", "operation" => self.operation)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Values read when the metrics are rendered.
pub(crate) struct Sampled {
    pub uptime: Duration,
    /// Connections of the pool(s): open, and idle among them.
    pub pool_size: u32,
    pub pool_idle: u32,
    /// Mails waiting in the outbox (`None`: could not be read).
    pub outbox: Option<i64>,
}

impl Sampled {
    pub(super) fn set(&self) {
        gauge!("trellis_uptime_seconds").set(self.uptime.as_secs_f64());
        gauge!("trellis_db_pool_connections", "state" => "size").set(f64::from(self.pool_size));
        gauge!("trellis_db_pool_connections", "state" => "idle").set(f64::from(self.pool_idle));
        gauge!("trellis_db_pool_connections", "state" => "in_use")
            .set(f64::from(self.pool_size.saturating_sub(self.pool_idle)));
        if let Some(depth) = self.outbox {
            gauge!("trellis_outbox_depth").set(depth as f64);
        }
    }
}
