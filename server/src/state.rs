//! The application state every handler reaches through its context, in
//! cohesive parts: accounts and sign-in (`auth`), API keys as credentials
//! (`keys`), limits on invitations, mail, health, webhooks.

use std::sync::Arc;
use std::time::Instant;

use crate::access::keys::Keys;
use crate::auth::Auth;
use crate::config::Config;
use crate::db::Db;
use crate::health::HealthMonitor;
use crate::mail::Wakeup;
use crate::notifications::events::Events;
use crate::orgs::limits::InviteLimits;
use crate::webhooks::send::Webhooks;

pub(crate) struct State {
    pub config: Config,
    pub db: Arc<Db>,
    pub auth: Auth,
    pub keys: Keys,
    /// Invitations per inviter, organization and recipient.
    pub invites: InviteLimits,
    /// Trade desk changes per organization.
    pub trade_writes: crate::trades::limits::TradeLimits,
    /// Wakes the mail sender after a change that queued mail.
    pub mail: Wakeup,
    /// Events (what notifies whom): wakes their dispatcher, and holds the
    /// subscribers' wake-ups.
    pub events: Events,
    pub health: Arc<HealthMonitor>,
    /// Wakes the webhook sender.
    pub webhooks: Webhooks,
    /// Call latency recorded in memory, written every few seconds.
    pub perf: Arc<crate::performance::Recorder>,
    pub started_at: Instant,
    pub openrpc: serde_json::Value,
}

pub(crate) type AppState = Arc<State>;
