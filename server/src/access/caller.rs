//! Who is calling: the credentials of a request, read once and shared by
//! every call it carries.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use trellis_schema::ApiError;
use trellis_schema::ids::{SessionId, UserId};

use crate::cache::limits::Outcome;

/// Facts of one HTTP request (or WebSocket connection), shared by every call
/// it carries.
#[derive(Debug, Clone)]
pub(crate) struct RequestMeta {
    pub request_id: Arc<str>,
    /// The client's address: the connection's peer, or what a trusted proxy
    /// in front of it says (see [`crate::net`]).
    pub client: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    /// The credentials sent, checked once per request: `Ok(None)` when none
    /// were sent, `Err` when they were refused. An API key is only checked
    /// for shape here; each call looks it up (in the cache, else the
    /// database).
    pub principal: Result<Option<Credential>, ApiError>,
    /// For a batch made with an API key: the calls that take from the key's
    /// limit, taken together in one pass (`None`: each call takes its own).
    pub budget: Option<Arc<KeyBudget>>,
}

/// The calls of one batch that take from an API key's limit: the first of
/// them to reach the limit takes the whole batch's share in one pass (one
/// Redis round trip for the batch), and each call then takes its place in
/// it; the calls past what the limit let through are refused.
#[derive(Debug)]
pub(crate) struct KeyBudget {
    calls: u32,
    taken: tokio::sync::OnceCell<Outcome>,
    used: AtomicU32,
}

impl KeyBudget {
    pub(crate) fn new(calls: u32) -> Arc<Self> {
        Arc::new(Self { calls, taken: tokio::sync::OnceCell::new(), used: AtomicU32::new(0) })
    }

    /// One call's place: `Ok` when within what was let through, else the
    /// pass's answer. `take(n)` runs the pass (once per batch). A call past
    /// the batch's count (none is expected) runs a pass of its own.
    pub(crate) async fn take<F, Fut>(&self, take: F) -> Result<(), Outcome>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let place = self.used.fetch_add(1, Ordering::Relaxed);
        let outcome = if place < self.calls {
            let taken = self.taken.get_or_init(|| take(self.calls)).await;
            if place < taken.allowed {
                return Ok(());
            }
            *taken
        } else {
            let own = take(1).await;
            if own.allowed >= 1 {
                return Ok(());
            }
            own
        };
        Err(outcome)
    }
}

impl RequestMeta {
    /// The client's address: the connection's peer, or, behind a trusted
    /// proxy, the address it forwarded for (never a header from anyone else).
    pub(crate) fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.client
    }
}

/// Credentials that passed the first check.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// A valid access token of a live session.
    User(Principal),
    /// A well-formed API key, by the keyed hash of its secret.
    ApiKey(Arc<str>),
}

/// A caller proven by its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
}
