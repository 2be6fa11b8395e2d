//! What a handler knows of the call: who made it and from where.

use std::sync::Arc;

use trellis_schema::ApiError;
use trellis_schema::access::{OrgRole, Permission};
use uuid::Uuid;

use crate::state::AppState;

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
    pub user_id: Uuid,
    pub session_id: Uuid,
}

/// Handed to every handler.
pub(crate) struct Ctx {
    pub state: AppState,
    pub meta: Arc<RequestMeta>,
    /// The signed-in user, for every procedure whose access rule needs one.
    pub principal: Option<Principal>,
    /// For an organization-scoped procedure: the organization and who acts
    /// in it, checked before the handler runs.
    pub org: Option<OrgAccess>,
}

/// Who acts in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrgActor {
    Member(Uuid),
    /// A key acts for its holder (the member who made it, or who last
    /// rotated it), within its scopes; its own expiry and limit bound the
    /// keys it may make or change.
    ApiKey {
        key_id: Uuid,
        created_by: Uuid,
        expires_at: Option<chrono::NaiveDateTime>,
        rate_limit_per_minute: Option<u32>,
    },
}

/// An organization-scoped call, as the access check let it through.
#[derive(Debug, Clone)]
pub(crate) struct OrgAccess {
    pub org_id: Uuid,
    /// The role whose permissions apply: the member's own, or for a key its
    /// holder's role now.
    pub role: OrgRole,
    /// A key's scopes; `None` for a member.
    pub scopes: Option<Vec<Permission>>,
    pub actor: OrgActor,
}

impl OrgAccess {
    /// Whether the caller holds `p` (a key: in its scopes and its creator's role).
    pub(crate) fn may(&self, p: Permission) -> bool {
        self.role.allows(p) && self.scopes.as_ref().is_none_or(|s| s.contains(&p))
    }

    /// The member acting, or the member a key acts for.
    pub(crate) fn user_id(&self) -> Uuid {
        match self.actor {
            OrgActor::Member(id) | OrgActor::ApiKey { created_by: id, .. } => id,
        }
    }
}

impl Ctx {
    pub(crate) fn ip(&self) -> Option<String> {
        self.meta.client_ip().map(|ip| ip.to_string())
    }

    /// The client's address (see [`RequestMeta::client_ip`]).
    pub(crate) fn ip_addr(&self) -> Option<std::net::IpAddr> {
        self.meta.client_ip()
    }

    /// The principal of a procedure whose access rule requires one.
    pub(crate) fn caller(&self) -> anyhow::Result<Principal> {
        self.principal.ok_or_else(|| anyhow::anyhow!("access check let an anonymous call through"))
    }

    /// The organization of an organization-scoped procedure.
    pub(crate) fn org(&self) -> anyhow::Result<&OrgAccess> {
        self.org.as_ref().ok_or_else(|| anyhow::anyhow!("access check let a call through without its organization"))
    }
}
