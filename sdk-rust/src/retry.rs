//! When and how often a failed call is tried again: [`RetryPolicy`].
//!
//! Exponential back-off with jitter (through `backon`): the first wait is
//! about `min_delay`, each next one doubles, none exceeds `max_delay`. A
//! `data.retryAfterMs` from the server replaces the computed wait (capped at
//! `max_delay`). Only transient failures are retried (no connection, a
//! time-out, TOO_MANY_REQUESTS, UNAVAILABLE, HTTP 429/502/503/504), never an
//! application error; and only queries, unless a call opts in with
//! [`crate::CallOptions::retry_mutation`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use trellis_schema::ErrorReason;

use crate::error::Error;

/// One retry about to happen, as told to [`RetryPolicy::on_retry`].
#[derive(Debug, Clone)]
pub struct RetryEvent {
    /// The method called (`"batch"` for a batch).
    pub method: &'static str,
    /// 1 for the first retry, 2 for the second, ...
    pub retry: u32,
    /// How long the client waits before trying again.
    pub delay: Duration,
    /// What the failed attempt ended with.
    pub cause: String,
}

type Hook = Arc<dyn Fn(&RetryEvent) + Send + Sync>;

/// How failed calls are retried. The default: 2 retries, waits of about 0.5 s
/// doubling up to 8 s, with jitter.
#[derive(Clone)]
pub struct RetryPolicy {
    max_retries: u32,
    min_delay: Duration,
    max_delay: Duration,
    jitter: bool,
    on_retry: Option<Hook>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            jitter: true,
            on_retry: None,
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.max_retries)
            .field("min_delay", &self.min_delay)
            .field("max_delay", &self.max_delay)
            .field("jitter", &self.jitter)
            .field("on_retry", &self.on_retry.is_some())
            .finish()
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// How many times a call is tried again after its first attempt.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The first wait (before jitter).
    pub fn min_delay(mut self, d: Duration) -> Self {
        self.min_delay = d;
        self
    }

    /// The longest wait, also the cap on a server's `retryAfterMs`.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Whether waits get a random extra of up to their own length (on by default).
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// Calls `hook` before each retry (for logs and metrics).
    pub fn on_retry(mut self, hook: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(hook));
        self
    }

    pub fn get_max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The first and the longest wait (a subscription's reconnects use them too).
    pub(crate) fn delays(&self) -> (Duration, Duration) {
        (self.min_delay, self.max_delay)
    }

    fn backoff(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_retries as usize);
        if self.jitter { b.with_jitter() } else { b }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries run
    /// out. `allowed == false` runs it once.
    pub(crate) async fn run<T, R, Fut>(
        &self,
        method: &'static str,
        allowed: bool,
        attempt: impl FnMut() -> Fut,
    ) -> Result<T, Error<R>>
    where
        R: ErrorReason,
        Fut: Future<Output = Result<T, Error<R>>>,
    {
        let mut attempt = attempt;
        if !allowed || self.max_retries == 0 {
            return attempt().await;
        }
        let mut retry = 0;
        attempt
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(Error::is_transient)
            .adjust(|e, next| next.map(|d| e.retry_after().map_or(d, |asked| asked.min(self.max_delay))))
            .notify(|e, delay| {
                retry += 1;
                if let Some(hook) = &self.on_retry {
                    hook(&RetryEvent { method, retry, delay, cause: e.to_string() });
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    use serde_json::json;
    use trellis_schema::error::NoReason;

    use super::*;
    use crate::error::WireError;

    fn api_error(code: i64, reason: &str, retry_after_ms: u64) -> Error<NoReason> {
        let data = json!({"reason": reason, "requestId": "r", "retryAfterMs": retry_after_ms});
        Error::from_wire(WireError { code, message: String::new(), data }, None)
    }

    #[tokio::test]
    async fn retry_after_replaces_the_wait_and_is_capped() {
        let policy = RetryPolicy::default().min_delay(Duration::from_secs(5)).max_delay(Duration::from_millis(80));
        let attempts = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), _> = policy
            .run("test.call", true, || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(api_error(-32029, "RATE_LIMITED", 60_000))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(attempts.load(Ordering::SeqCst), 3, "first attempt and two retries");
        // Two waits of 80 ms (the cap), not 5 s nor 60 s.
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn application_errors_and_disallowed_calls_run_once() {
        let policy = RetryPolicy::default().min_delay(Duration::from_millis(1));
        let attempts = AtomicU32::new(0);
        let _: Result<(), _> = policy
            .run("test.call", true, || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(api_error(-32001, "INVALID_CREDENTIALS", 0))
            })
            .await;
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        let _: Result<(), _> = policy
            .run("test.call", false, || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(api_error(-32050, "DATABASE_UNAVAILABLE", 0))
            })
            .await;
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn hook_sees_each_retry() {
        let seen = Arc::new(AtomicU32::new(0));
        let counter = seen.clone();
        let policy = RetryPolicy::default().max_retries(3).min_delay(Duration::from_millis(1)).on_retry(move |e| {
            assert_eq!(e.method, "test.call");
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let attempts = AtomicU32::new(0);
        let result = policy
            .run("test.call", true, || async {
                match attempts.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(api_error(-32050, "DATABASE_UNAVAILABLE", 1)),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }
}
