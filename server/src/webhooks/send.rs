//! The delivery sender: claims due deliveries (a lease taken by a
//! conditional update, so replicas share the work without posting one twice
//! at once), posts each signed, and records the attempt: delivered on a 2xx,
//! else retried with backoff until the attempts are spent.
//!
//! Posting: HTTP/1.1, no proxy, redirects not followed (a 3xx is a
//! failure), one timeout over connecting and the whole exchange, at most
//! [`MAX_RESPONSE_BYTES`] of the answer read (and dropped), names resolved by
//! [`GuardedResolver`] (no private addresses unless allowed).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use rand::Rng;

use super::guard::{self, Blocked, GuardedResolver, UrlRefused};
use super::signing;
use super::store::{self, Attempt, Claimed};
use crate::auth::sealed::SecretBox;
use crate::db::Db;
use crate::db::models::now;
use crate::mail::Wakeup;
use crate::notifications::events::Events;

/// Most of an answer read before the connection is dropped.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Deliveries claimed at a time, and posted at once.
const BATCH: i64 = 32;
const CONCURRENCY: usize = 8;

/// Retry delays after the 1st, 2nd, ... failed attempt, in multiples of the
/// base (5 s by default: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h,
/// 8 h, 8 h; about 24 h over 11 attempts).
const DELAYS: [u64; 10] = [1, 6, 24, 120, 360, 720, 1440, 2880, 5760, 5760];

/// When deliveries are retried and when a webhook is given up on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub base: Duration,
    pub max_attempts: u32,
    pub disable_after: u32,
}

impl RetryPolicy {
    /// The delay before the attempt after `attempts` failed ones, with up to
    /// 20% of jitter either way (so failed deliveries do not retry in step).
    pub(crate) fn delay(&self, attempts: u32) -> Duration {
        let i = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX).min(DELAYS.len() - 1);
        let nominal = self.base.saturating_mul(u32::try_from(DELAYS[i]).unwrap_or(u32::MAX));
        nominal.mul_f64(rand::rng().random_range(0.8..=1.2))
    }
}

/// The client deliveries are posted with.
pub(crate) fn client(timeout: Duration, allow_private: bool) -> anyhow::Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(GuardedResolver { allow_private })
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("Trellis-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

pub(crate) struct DeliverySender {
    pub db: Arc<Db>,
    pub secrets: SecretBox,
    pub client: reqwest::Client,
    pub wakeup: Wakeup,
    pub poll: Duration,
    pub policy: RetryPolicy,
    pub allow_private: bool,
    pub timeout: Duration,
    /// Woken when a webhook is disabled, to tell its admins at once.
    pub events: Events,
}

impl DeliverySender {
    /// Runs until the task is aborted.
    pub(crate) fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                self.drain().await;
                tokio::select! {
                    () = self.wakeup.notified() => {}
                    () = tokio::time::sleep(self.poll) => {}
                }
            }
        })
    }

    async fn drain(&self) {
        // The lease outlasts an attempt's timeout, so it never lapses while
        // this sender is still posting.
        let lease = chrono::Duration::from_std(self.timeout + Duration::from_secs(30))
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        loop {
            let batch = match store::claim_due(&self.db, BATCH, lease).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "deliveries not readable; webhooks wait");
                    return;
                }
            };
            let full = batch.len() as i64 == BATCH;
            futures::stream::iter(batch).for_each_concurrent(CONCURRENCY, |c| self.deliver(c)).await;
            if !full {
                return;
            }
        }
    }

    async fn deliver(&self, claimed: Claimed) {
        let d = &claimed.delivery;
        let mut attempt = self.attempt(&claimed).await;
        crate::observe::webhook_delivered(attempt.delivered);
        let attempts = u32::try_from(d.attempts).unwrap_or(0) + 1;
        if !attempt.delivered && attempts < self.policy.max_attempts {
            let delay = chrono::Duration::from_std(self.policy.delay(attempts)).unwrap_or(chrono::Duration::hours(1));
            attempt.retry_at = Some(now() + delay);
        }
        match store::record_attempt(&self.db, &claimed, &attempt, self.policy.disable_after).await {
            Ok(disabled) => {
                if attempt.delivered {
                    tracing::info!(delivery_id = %d.id, webhook_id = %d.webhook_id, attempts, "webhook delivered");
                } else {
                    tracing::warn!(
                        delivery_id = %d.id,
                        webhook_id = %d.webhook_id,
                        attempts,
                        code = ?attempt.response_code,
                        error = ?attempt.error,
                        retry = attempt.retry_at.is_some(),
                        "webhook delivery failed"
                    );
                }
                if let Some(off) = disabled {
                    self.events.published();
                    tracing::warn!(webhook_id = %off.webhook_id, org_id = %off.org_id, "webhook disabled after a run of failed deliveries");
                }
            }
            Err(e) => tracing::warn!(delivery_id = %d.id, error = %e, "webhook attempt not recorded"),
        }
    }

    /// Posts the delivery once. The error recorded is short and tells the
    /// endpoint's owner what went wrong, never the server's internals.
    async fn attempt(&self, c: &Claimed) -> Attempt {
        let failed = |code: Option<u16>, error: &str| Attempt {
            delivered: false,
            response_code: code,
            error: Some(error.to_owned()),
            retry_at: None,
        };
        let url = match guard::check_url(&c.url, self.allow_private, false).await {
            Ok(u) => u,
            Err(UrlRefused::Private) => return failed(None, "the address is private or reserved: not allowed"),
            Err(e) => return failed(None, &format!("the URL {e}")),
        };
        let Some(keys) = self.keys(c) else {
            return failed(None, "the signing secret could not be read");
        };
        let d = &c.delivery;
        let timestamp = Utc::now().timestamp();
        let signature = signing::signature_header(&keys, &d.message_id, timestamp, &d.payload);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return failed(None, &describe(&e)),
        };
        let status = resp.status();
        // Read (and drop) at most the cap, so the connection can be reused
        // when the answer is short, and a huge one costs nothing more.
        let mut read = 0usize;
        while read <= MAX_RESPONSE_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        let code = Some(status.as_u16());
        if status.is_success() {
            Attempt { delivered: true, response_code: code, error: None, retry_at: None }
        } else if status.is_redirection() {
            failed(code, &format!("HTTP {}: redirects are not followed", status.as_u16()))
        } else {
            failed(code, &format!("HTTP {}", status.as_u16()))
        }
    }

    /// The HMAC keys that sign now: the current secret's, and the previous
    /// one's during a rotation's grace period.
    fn keys(&self, c: &Claimed) -> Option<Vec<Vec<u8>>> {
        let aad = super::secret_aad(c.delivery.webhook_id);
        let open = |sealed: &str| {
            self.secrets
                .open_bound(sealed, aad.as_bytes())
                .ok()
                .and_then(|plain| String::from_utf8(plain).ok())
                .and_then(|secret| signing::key_of(&secret).ok())
        };
        let mut keys = vec![open(&c.secret)?];
        if let (Some(prev), Some(until)) = (&c.previous_secret, c.previous_secret_until)
            && until > now()
            && let Some(k) = open(prev)
        {
            keys.push(k);
        }
        Some(keys)
    }
}

/// A short account of why a request failed.
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<Blocked>().is_some() {
            return "the host resolves only to private or reserved addresses: not allowed".into();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_about_a_day() {
        let p = RetryPolicy { base: Duration::from_secs(5), max_attempts: 11, disable_after: 5 };
        let d1 = p.delay(1);
        assert!(d1 >= Duration::from_secs(4) && d1 <= Duration::from_secs(6), "{d1:?}");
        let total: f64 = (1..11).map(|n| p.delay(n).as_secs_f64()).sum();
        assert!((18.0 * 3600.0..30.0 * 3600.0).contains(&total), "{total}");
        assert!(p.delay(40) <= Duration::from_secs(5 * 5760 * 12 / 10));
    }
}

/// The part of the state for webhooks. (The worker that turns events into
/// deliveries is woken by `Events::published`, through `events.webhooks`.)
#[derive(Clone, Default)]
pub(crate) struct Webhooks {
    /// Wakes the sender: a delivery was queued (a redelivery, a webhook
    /// enabled again).
    pub sender: Wakeup,
}
