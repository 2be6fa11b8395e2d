//! The application state every handler reaches through its context.

use std::sync::Arc;
use std::time::Instant;

use crate::api_keys::cache::KeyCache;
use crate::api_keys::limiter::KeyLimiter;
use crate::api_keys::usage::UsageRecorder;
use crate::auth::codes::CodeHasher;
use crate::auth::password::PasswordHasherPool;
use crate::auth::policy::PasswordPolicy;
use crate::auth::revocation::RevokedSessions;
use crate::auth::throttle::AuthThrottle;
use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::db::Db;
use crate::health::HealthMonitor;
use crate::mail::Wakeup;

pub(crate) struct State {
    pub config: Config,
    pub db: Arc<Db>,
    pub hasher: PasswordHasherPool,
    pub tokens: TokenKeys,
    pub revoked: RevokedSessions,
    /// Recently verified API keys.
    pub keys: KeyCache,
    /// Each API key's own calls-per-minute limit.
    pub key_limiter: KeyLimiter,
    /// Lookups of unknown API keys, per client IP.
    pub unknown_keys: KeyLimiter<std::net::IpAddr>,
    /// Invitations per inviter, organization and recipient.
    pub invites: crate::orgs::limits::InviteLimits,
    /// API key usage, counted here and written in batches.
    pub usage: Arc<UsageRecorder>,
    pub throttle: AuthThrottle,
    pub policy: PasswordPolicy,
    pub codes: CodeHasher,
    /// Seals secrets the server must read back (TOTP secrets).
    pub secrets: crate::auth::sealed::SecretBox,
    /// Wakes the mail sender after a change that queued mail.
    pub mail: Wakeup,
    pub health: Arc<HealthMonitor>,
    pub started_at: Instant,
    pub openrpc: serde_json::Value,
}

pub(crate) type AppState = Arc<State>;
