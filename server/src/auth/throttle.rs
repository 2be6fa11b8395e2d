//! Rate limits on the account procedures, per client IP and per account
//! (e-mail address), in process. Keyed by the address whether or not it has
//! an account, so the limits tell nobody which addresses are registered;
//! keyed by the client's address as [`crate::net`] derives it (the peer, or
//! what a trusted proxy forwarded; IPv6 per /64), never by a header from
//! anyone else.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use trellis_schema::{ApiError, Reason};

use crate::config::Config;

pub(crate) struct AuthThrottle {
    per_ip: Limit<IpAddr>,
    per_account: Limit<String>,
    mail_per_account: Limit<String>,
    /// Failed `auth.refresh` calls per IP: each costs a write transaction.
    refresh_failures: FailureLimit,
}

struct Limit<K: std::hash::Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    /// The limit as people read it: `n` per `per`.
    n: u32,
    per: &'static str,
}

impl<K: std::hash::Hash + Eq + Clone> Limit<K> {
    fn new(n: u32, quota: fn(NonZeroU32) -> Quota, per: &'static str) -> Self {
        Self { limiter: NonZeroU32::new(n).map(|n| RateLimiter::keyed(quota(n))), n, per }
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::new(Reason::RateLimited)
                .message(format!("too many attempts: at most {} per {}", self.n, self.per))
                .with("retryAfterMs", u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1))
                .with("limit", self.n)
        })
    }

    fn housekeep(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

impl AuthThrottle {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            per_ip: Limit::new(config.auth_rate_per_ip, Quota::per_minute, "minute from one IP"),
            per_account: Limit::new(config.auth_rate_per_account, Quota::per_minute, "minute for one account"),
            mail_per_account: Limit::new(config.mail_rate_per_account, Quota::per_hour, "hour for one address"),
            refresh_failures: FailureLimit {
                limit: Limit::new(config.refresh_failures_per_ip, Quota::per_minute, "minute from one IP"),
                refused_until: Default::default(),
            },
        }
    }

    /// An attempt to prove something (password, code, token) for an account.
    pub(crate) fn attempt(&self, ip: Option<IpAddr>, account: &str) -> Result<(), ApiError> {
        self.ip(ip)?;
        self.per_account.check(&account.to_owned())
    }

    /// An attempt not tied to a known account (a token from a link).
    pub(crate) fn ip(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        match ip {
            Some(ip) => self.per_ip.check(&crate::net::limit_bucket(ip)),
            None => Ok(()),
        }
    }

    /// A request that sends mail to `account`.
    pub(crate) fn mail(&self, ip: Option<IpAddr>, account: &str) -> Result<(), ApiError> {
        self.ip(ip)?;
        self.mail_per_account.check(&account.to_owned())
    }

    /// Before an `auth.refresh`: refused while the IP is over its limit of
    /// failed refreshes (so a flood of made-up tokens costs no query).
    pub(crate) fn refresh(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        ip.map_or(Ok(()), |ip| self.refresh_failures.check(crate::net::limit_bucket(ip)))
    }

    /// After an `auth.refresh` that failed: counts it; `Err` once over the limit.
    pub(crate) fn refresh_failed(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        ip.map_or(Ok(()), |ip| self.refresh_failures.fail(crate::net::limit_bucket(ip)))
    }

    /// Drops the state of keys not seen lately, every minute.
    pub(crate) fn spawn_housekeeping(self: std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                self.per_ip.housekeep();
                self.per_account.housekeep();
                self.mail_per_account.housekeep();
                self.refresh_failures.housekeep();
            }
        })
    }
}

/// A limit on failures only: a failure takes from the limit, and while it is
/// spent every attempt is refused before it does any work.
struct FailureLimit {
    limit: Limit<IpAddr>,
    /// Keys over the limit, until when (with the limit's answer).
    refused_until: std::sync::Mutex<std::collections::HashMap<IpAddr, std::time::Instant>>,
}

impl FailureLimit {
    fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        let map = self.refused_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&ip).map(|until| until.saturating_duration_since(std::time::Instant::now())) {
            Some(wait) if !wait.is_zero() => Err(ApiError::new(Reason::RateLimited)
                .message(format!("too many failed attempts: at most {} per {}", self.limit.n, self.limit.per))
                .with("retryAfterMs", u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1))
                .with("limit", self.limit.n)),
            _ => Ok(()),
        }
    }

    fn fail(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limit.check(&ip).inspect_err(|e| {
            let ms = e.data.get("retryAfterMs").and_then(serde_json::Value::as_u64).unwrap_or(1000);
            let until = std::time::Instant::now() + Duration::from_millis(ms);
            self.refused_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(ip, until);
        })
    }

    fn housekeep(&self) {
        self.limit.housekeep();
        let now = std::time::Instant::now();
        self.refused_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|_, until| *until > now);
    }
}
