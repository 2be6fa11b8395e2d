//! What a handler knows of the call: who made it and from where.

use std::net::SocketAddr;
use std::sync::Arc;

use trellis_schema::ApiError;
use uuid::Uuid;

use crate::state::AppState;

/// Facts of one HTTP request (or WebSocket connection), shared by every call
/// it carries.
#[derive(Debug, Clone)]
pub(crate) struct RequestMeta {
    pub request_id: Arc<str>,
    pub peer: Option<SocketAddr>,
    pub user_agent: Option<String>,
    /// The credentials sent, checked once per request: `Ok(None)` when none
    /// were sent, `Err` when they were refused.
    pub principal: Result<Option<Principal>, ApiError>,
}

/// A caller proven by its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

/// Handed to every handler.
pub(crate) struct Ctx {
    pub state: AppState,
    pub meta: Arc<RequestMeta>,
    /// Present for every procedure whose access rule needs a signed-in caller.
    pub principal: Option<Principal>,
}

impl Ctx {
    pub(crate) fn ip(&self) -> Option<String> {
        self.meta.peer.map(|p| p.ip().to_string())
    }

    /// The connection's address (never a client-chosen header).
    pub(crate) fn ip_addr(&self) -> Option<std::net::IpAddr> {
        self.meta.peer.map(|p| p.ip())
    }

    /// The principal of a procedure whose access rule requires one.
    pub(crate) fn caller(&self) -> anyhow::Result<Principal> {
        self.principal.ok_or_else(|| anyhow::anyhow!("access check let an anonymous call through"))
    }
}
