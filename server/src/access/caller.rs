//! Who is calling: the credentials of a request, read once and shared by
//! every call it carries.

use std::sync::Arc;

use trellis_schema::ApiError;
use trellis_schema::ids::{SessionId, UserId};

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
