//! The application state every handler reaches through its context.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::password::PasswordHasherPool;
use crate::auth::revocation::RevokedSessions;
use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::db::Db;
use crate::health::HealthMonitor;
use crate::rpc::limits::CallLimiter;

pub(crate) struct State {
    pub config: Config,
    pub db: Arc<Db>,
    pub hasher: PasswordHasherPool,
    pub tokens: TokenKeys,
    pub revoked: RevokedSessions,
    pub limiter: Box<dyn CallLimiter>,
    pub health: Arc<HealthMonitor>,
    pub started_at: Instant,
    pub openrpc: serde_json::Value,
}

pub(crate) type AppState = Arc<State>;
