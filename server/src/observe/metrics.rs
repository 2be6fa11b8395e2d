//! What the server records. Label values come from closed sets only: method
//! names from the registry (`unknown` for any other), error codes and
//! reasons from the schema's enums, fixed outcome words; never an id.
//!
//! The recorder is global to the process (the `metrics` facade has one), so
//! it is installed once ([`handle`]) and every server of the process (tests
//! start many) renders the same handle. Sampled values (pool, outbox,
//! uptime) are set by the server whose listener renders.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
                    // The recorder's histograms keep their values until
                    // drained: drained every 5 s, scraped or not.
                    let drained = handle.clone();
                    let upkeep = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                        loop {
                            std::thread::sleep(Duration::from_secs(5));
                            drained.run_upkeep();
                        }
                    });
                    if let Err(e) = upkeep {
                        tracing::error!(error = %e, "the metrics upkeep thread did not start");
                    }
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
    describe_counter!("trellis_rpc_errors_total", "Failed calls by method, error code and reason.");
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

/// `trellis_rpc_duration_seconds`'s bounds, in microseconds (those of
/// [`SECONDS_BUCKETS`]).
const DURATION_BOUNDS_US: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// One method's call metrics, found once when the registry is built (a
/// lookup by name and labels on every call cost more than the recording).
/// Its calls and duration histogram are kept here, in atomic counters, and
/// rendered after the recorder's metrics (`trellis_rpc_calls_total`,
/// `trellis_rpc_duration_seconds`): a call adds to three counters of its
/// thread's stripe, where the recorder's histograms keep every value (with
/// its time, in blocks allocated as they fill) until they are drained, and
/// its counters are shared by every thread.
pub(crate) struct CallMetrics {
    method: &'static str,
    stripes: [Stripe; STRIPES],
}

const STRIPES: usize = 4;

/// A thread's share of a method's counters, on cache lines of its own.
#[repr(align(128))]
#[derive(Default)]
struct Stripe {
    calls: AtomicU64,
    errors: AtomicU64,
    /// Per bucket of [`DURATION_BOUNDS_US`], then over the last bound.
    buckets: [AtomicU64; DURATION_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

/// The stripe of this thread (threads are numbered in turn).
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// Where calls to methods that do not exist are counted.
const UNKNOWN: &str = "unknown";

/// The call metrics of every method of the schema, then of `unknown`.
fn all_calls() -> &'static [CallMetrics] {
    static ALL: OnceLock<Vec<CallMetrics>> = OnceLock::new();
    ALL.get_or_init(|| {
        trellis_schema::procedure::procedures()
            .iter()
            .map(|p| p.method)
            .chain([UNKNOWN])
            .map(|method| CallMetrics { method, stripes: Default::default() })
            .collect()
    })
}

/// The call metrics of `method` (a procedure of the schema).
pub(crate) fn call_metrics(method: &str) -> Option<&'static CallMetrics> {
    all_calls().iter().find(|c| c.method == method && method != UNKNOWN)
}

impl CallMetrics {
    /// One call (a subscribe call until it is answered), `elapsed` long.
    pub(crate) fn record(&self, result: Result<(), &ApiError>, elapsed: Duration) {
        if !INSTALLED.load(Ordering::Acquire) {
            return;
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = DURATION_BOUNDS_US.iter().position(|&bound| us <= bound).unwrap_or(DURATION_BOUNDS_US.len());
        let stripe = &self.stripes[stripe()];
        stripe.calls.fetch_add(1, Ordering::Relaxed);
        stripe.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        stripe.sum_us.fetch_add(us, Ordering::Relaxed);
        if let Err(e) = result {
            stripe.errors.fetch_add(1, Ordering::Relaxed);
            errors_total(self.method, e);
        }
        account_outcome(self.method, result);
    }

    fn sum(&self, f: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
    }
}

fn errors_total(method: &'static str, e: &ApiError) {
    counter!("trellis_rpc_errors_total", "method" => method, "code" => e.code().name(), "reason" => e.reason.as_str())
        .increment(1);
}

/// A call to a method that does not exist (`method="unknown"`).
pub(crate) fn unknown_method() {
    if !INSTALLED.load(Ordering::Acquire) {
        return;
    }
    let Some(unknown) = all_calls().last() else { return };
    let stripe = &unknown.stripes[stripe()];
    stripe.calls.fetch_add(1, Ordering::Relaxed);
    stripe.errors.fetch_add(1, Ordering::Relaxed);
    errors_total(UNKNOWN, &ApiError::new(Reason::MethodNotFound));
}

/// The recorder's metrics, then `trellis_rpc_calls_total` and
/// `trellis_rpc_duration_seconds` of every method called so far.
pub(super) fn render(handle: &PrometheusHandle) -> String {
    use std::fmt::Write as _;
    gauge!("trellis_rpc_in_flight").set(IN_FLIGHT.load(Ordering::Relaxed) as f64);
    let mut out = handle.render();
    let called: Vec<&CallMetrics> = all_calls().iter().filter(|c| c.sum(|s| &s.calls) > 0).collect();
    if called.is_empty() {
        return out;
    }
    out.push_str("# HELP trellis_rpc_calls_total Calls by method and outcome (ok or error).\n");
    out.push_str("# TYPE trellis_rpc_calls_total counter\n");
    for c in &called {
        let (calls, errors) = (c.sum(|s| &s.calls), c.sum(|s| &s.errors));
        let method = c.method;
        if calls > errors {
            let _ = writeln!(out, "trellis_rpc_calls_total{{method=\"{method}\",outcome=\"ok\"}} {}", calls - errors);
        }
        if errors > 0 {
            let _ = writeln!(out, "trellis_rpc_calls_total{{method=\"{method}\",outcome=\"error\"}} {errors}");
        }
    }
    out.push('\n');
    out.push_str("# HELP trellis_rpc_duration_seconds Time to answer a call, by method.\n");
    out.push_str("# TYPE trellis_rpc_duration_seconds histogram\n");
    for c in called.iter().filter(|c| c.method != UNKNOWN) {
        let counts: Vec<u64> = (0..=DURATION_BOUNDS_US.len()).map(|b| c.sum(|s| &s.buckets[b])).collect();
        let method = c.method;
        let mut seen = 0;
        for (bound, count) in DURATION_BOUNDS_US.iter().zip(&counts) {
            seen += count;
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "trellis_rpc_duration_seconds_bucket{{method=\"{method}\",le=\"{le}\"}} {seen}");
        }
        let total: u64 = counts.iter().sum();
        let sum = c.sum(|s| &s.sum_us) as f64 / 1e6;
        let _ = writeln!(out, "trellis_rpc_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "trellis_rpc_duration_seconds_sum{{method=\"{method}\"}} {sum}");
        let _ = writeln!(out, "trellis_rpc_duration_seconds_count{{method=\"{method}\"}} {total}");
    }
    out
}

/// Calls being answered (`trellis_rpc_in_flight`, set when rendered).
static IN_FLIGHT: AtomicI64 = AtomicI64::new(0);

/// Counts a call in flight while it lives.
pub(crate) struct InFlight(bool);

/// A call starting (while the recorder is installed).
pub(crate) fn in_flight() -> InFlight {
    let counted = INSTALLED.load(Ordering::Acquire);
    if counted {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    }
    InFlight(counted)
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0 {
            IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Sign-ins, refreshes and reused refresh tokens, told by the calls that
/// make them (one place, rather than a line in each handler).
fn account_outcome(method: &'static str, result: Result<(), &ApiError>) {
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
