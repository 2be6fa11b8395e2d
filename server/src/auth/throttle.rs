//! Rate limits on the account procedures, per client IP and per account
//! (e-mail address), shared by every replica through the cache (Redis when
//! configured). Keyed by the address whether or not it has an account, so
//! the limits tell nobody which addresses are registered; keyed by the
//! client's address as [`crate::net`] derives it (the peer, or what a trusted
//! proxy forwarded; IPv6 per /64), never by a header from anyone else.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use trellis_schema::{ApiError, Reason};

use crate::cache::Cache;
use crate::cache::limits::{Mode, Outcome, Step};
use crate::config::Config;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

pub(crate) struct AuthThrottle {
    cache: Arc<Cache>,
    per_ip: Limit,
    per_account: Limit,
    mail_per_account: Limit,
    /// Failed `auth.refresh` calls per IP: each costs a write transaction.
    refresh_failures: Limit,
}

/// One limit: `n` per `period` (0: none), and how people read it.
struct Limit {
    kind: &'static str,
    n: u32,
    period: Duration,
    /// "too many {what}: at most {n} per {per}".
    what: &'static str,
    per: &'static str,
}

impl Limit {
    fn step(&self, id: impl ToString) -> Option<Step> {
        (self.n > 0).then(|| Step::new(self.kind, id, self.n, self.period))
    }

    fn refused(&self, o: &Outcome) -> ApiError {
        crate::observe::rate_limited("auth");
        ApiError::new(Reason::RateLimited)
            .message(format!("too many {}: at most {} per {}", self.what, self.n, self.per))
            .with("retryAfterMs", o.retry_after_ms())
            .with("limit", self.n)
    }
}

impl AuthThrottle {
    pub(crate) fn new(config: &Config, cache: Arc<Cache>) -> Self {
        let limit = |kind, n, period, what, per| Limit { kind, n, period, what, per };
        Self {
            cache,
            per_ip: limit("ip", config.auth_rate_per_ip, MINUTE, "attempts", "minute from one IP"),
            per_account: limit("account", config.auth_rate_per_account, MINUTE, "attempts", "minute for one account"),
            mail_per_account: limit("mail", config.mail_rate_per_account, HOUR, "attempts", "hour for one address"),
            refresh_failures: limit(
                "refresh",
                config.refresh_failures_per_ip,
                MINUTE,
                "failed attempts",
                "minute from one IP",
            ),
        }
    }

    /// Runs the limits in order, in one pass: the first that refuses answers
    /// (and the ones after it take nothing).
    async fn pass(&self, limits: [Option<(&Limit, Step)>; 2]) -> Result<(), ApiError> {
        let (limits, steps): (Vec<&Limit>, Vec<Step>) = limits.into_iter().flatten().unzip();
        if steps.is_empty() {
            return Ok(());
        }
        let outcomes = self.cache.limits(&steps, false).await;
        for ((limit, step), outcome) in limits.iter().zip(&steps).zip(outcomes) {
            match outcome {
                Some(o) if !o.passed(step) => return Err(limit.refused(&o)),
                _ => {}
            }
        }
        Ok(())
    }

    fn ip_step(&self, ip: Option<IpAddr>) -> Option<(&Limit, Step)> {
        let ip = crate::net::limit_bucket(ip?);
        Some((&self.per_ip, self.per_ip.step(ip)?))
    }

    /// An attempt to prove something (password, code, token) for an account.
    pub(crate) async fn attempt(&self, ip: Option<IpAddr>, account: &str) -> Result<(), ApiError> {
        let account = self.per_account.step(account).map(|s| (&self.per_account, s));
        self.pass([self.ip_step(ip), account]).await
    }

    /// An attempt not tied to a known account (a token from a link).
    pub(crate) async fn ip(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.pass([self.ip_step(ip), None]).await
    }

    /// A request that sends mail to `account`.
    pub(crate) async fn mail(&self, ip: Option<IpAddr>, account: &str) -> Result<(), ApiError> {
        let mail = self.mail_per_account.step(account).map(|s| (&self.mail_per_account, s));
        self.pass([self.ip_step(ip), mail]).await
    }

    /// Before an `auth.refresh`: refused while the IP's failed refreshes have
    /// spent its limit (so a flood of made-up tokens costs no query).
    pub(crate) async fn refresh(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = ip else { return Ok(()) };
        let step = self.refresh_failures.step(crate::net::limit_bucket(ip)).map(|s| s.cost(1, Mode::Peek));
        self.pass([step.map(|s| (&self.refresh_failures, s)), None]).await
    }

    /// After an `auth.refresh` that failed: counts it; `Err` once over the limit.
    pub(crate) async fn refresh_failed(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = ip else { return Ok(()) };
        let step = self.refresh_failures.step(crate::net::limit_bucket(ip));
        self.pass([step.map(|s| (&self.refresh_failures, s)), None]).await
    }
}
