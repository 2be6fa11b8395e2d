//! What a handler knows of its call, typed by the procedure's access rule:
//! each context holds exactly what the access check proved, so no handler
//! unwraps an `Option` the rule already settled.

use std::sync::Arc;

use trellis_schema::access::{OrgRole, Permission};
use trellis_schema::ids::{ApiKeyId, OrgId, UserId};

use super::caller::{Principal, RequestMeta};
use crate::state::AppState;

/// What every context holds: the state and the request. Each context
/// dereferences to it, so helpers shared by procedures of different rules
/// take a `&Call`.
pub(crate) struct Call {
    pub state: AppState,
    pub meta: Arc<RequestMeta>,
}

impl Call {
    /// The client's address as text (see [`RequestMeta::client_ip`]).
    pub(crate) fn ip(&self) -> Option<String> {
        self.meta.client_ip().map(|ip| ip.to_string())
    }

    /// The client's address (see [`RequestMeta::client_ip`]).
    pub(crate) fn ip_addr(&self) -> Option<std::net::IpAddr> {
        self.meta.client_ip()
    }
}

macro_rules! contexts {
    ($($ctx:ident),*) => {$(
        impl std::ops::Deref for $ctx {
            type Target = Call;
            fn deref(&self) -> &Call {
                &self.call
            }
        }
    )*};
}
contexts!(PublicCtx, UserCtx, OrgCtx, AdminCtx);

/// A `Public` procedure's call: anyone, signed in or not.
pub(crate) struct PublicCtx {
    pub call: Call,
    /// The signed-in user, when a valid access token came with the call
    /// (no public procedure answers differently for one yet).
    #[allow(dead_code)]
    pub caller: Option<Principal>,
}

/// A `User` procedure's call: a signed-in user.
pub(crate) struct UserCtx {
    pub call: Call,
    pub caller: Principal,
}

/// An `Org` procedure's call: the organization its params name, and who acts
/// in it with which permissions.
pub(crate) struct OrgCtx {
    pub call: Call,
    pub org: OrgAccess,
}

/// An `Admin` procedure's call: a system administrator whose account is not
/// disabled.
pub(crate) struct AdminCtx {
    pub call: Call,
    pub admin: Principal,
}

/// Handed to an `OrgOrAdmin` procedure: the organization its params named
/// and who acts in it, or, when they named none, a system administrator.
pub(crate) enum OrgOrAdminCtx {
    Org(OrgCtx),
    Admin(AdminCtx),
}

impl OrgOrAdminCtx {
    pub(crate) fn call(&self) -> &Call {
        match self {
            Self::Org(c) => &c.call,
            Self::Admin(c) => &c.call,
        }
    }

    /// The organization the call is about; `None` for the whole server.
    pub(crate) fn org_id(&self) -> Option<OrgId> {
        match self {
            Self::Org(c) => Some(c.org.org_id),
            Self::Admin(_) => None,
        }
    }
}

/// Who acts in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrgActor {
    /// A member, signed in.
    Member(Principal),
    /// A key acts for its holder (the member who made it, or who last
    /// rotated it), within its scopes; its own expiry and limit bound the
    /// keys it may make or change.
    ApiKey {
        key_id: ApiKeyId,
        created_by: UserId,
        expires_at: Option<chrono::NaiveDateTime>,
        rate_limit_per_minute: Option<u32>,
    },
}

/// An organization-scoped call, as the access check let it through.
#[derive(Debug, Clone)]
pub(crate) struct OrgAccess {
    pub org_id: OrgId,
    /// The role whose permissions apply: the member's own, or for a key its
    /// holder's role now.
    pub role: OrgRole,
    /// A key's scopes; `None` for a member.
    pub scopes: Option<Vec<Permission>>,
    pub actor: OrgActor,
}

impl OrgAccess {
    /// Whether the caller holds `p` (a key: in its scopes and its holder's role).
    pub(crate) fn may(&self, p: Permission) -> bool {
        self.role.allows(p) && self.scopes.as_ref().is_none_or(|s| s.contains(&p))
    }

    /// The member acting, or the member a key acts for.
    pub(crate) fn user_id(&self) -> UserId {
        match self.actor {
            OrgActor::Member(p) => p.user_id,
            OrgActor::ApiKey { created_by, .. } => created_by,
        }
    }
}
