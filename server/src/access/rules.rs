//! The access check, in one place for every procedure: who is calling
//! (user or API key), the key's own rate limit, and whether the caller may
//! call this procedure (signed in, system admin, or holding the permission
//! in the organization the params name). Each rule of the schema
//! ([`trellis_schema::procedure::rule`]) hands its handler the context it
//! proves. No handler checks roles itself.

use std::future::Future;
use std::sync::Arc;

use trellis_schema::access::{CallerKeyOr, NoOrg, OrgOrServer, Permission};
use trellis_schema::error::FieldError;
use trellis_schema::ids::{ApiKeyId, OrgId};
use trellis_schema::procedure::rule;
use trellis_schema::{Access, ApiError, Reason};

use super::caller::{Credential, Principal, RequestMeta};
use super::context::{AdminCtx, Call, OrgAccess, OrgActor, OrgCtx, OrgOrAdminCtx, PublicCtx, UserCtx};
use super::keys::{VerifiedKey, verify_key};
use super::usage::Counted;
use super::{db_error, membership};
use crate::state::{AppState, State};

/// What the params of an `Org` procedure name to say which organization the
/// call is about, and how it resolves to that organization. An object that
/// does not exist is NOT_FOUND, like one of an organization the caller is
/// not in. A namespace whose objects are named this way implements it for
/// their id type, next to its queries (`ApiKeyId` in `api_keys`).
pub(crate) trait InOrg: Send + Sync + 'static {
    fn resolve(self, state: &State, key: Option<&VerifiedKey>) -> impl Future<Output = Result<OrgId, ApiError>> + Send;

    /// Whether the params name an organization at all (only an `OrgOrAdmin`
    /// procedure's may name none).
    fn names_org(&self) -> bool {
        true
    }
}

impl InOrg for OrgOrServer {
    async fn resolve(self, _: &State, _: Option<&VerifiedKey>) -> Result<OrgId, ApiError> {
        self.0.ok_or_else(|| ApiError::new(Reason::Internal))
    }

    fn names_org(&self) -> bool {
        self.0.is_some()
    }
}

impl InOrg for OrgId {
    async fn resolve(self, _: &State, _: Option<&VerifiedKey>) -> Result<OrgId, ApiError> {
        Ok(self)
    }
}

impl InOrg for CallerKeyOr {
    async fn resolve(self, _: &State, key: Option<&VerifiedKey>) -> Result<OrgId, ApiError> {
        match (self.0, key) {
            (Some(id), _) => Ok(id),
            (None, Some(k)) => Ok(k.org_id),
            (None, None) => Err(ApiError::validation(vec![FieldError {
                path: "orgId".into(),
                message: "is required when signed in as a user".into(),
            }])),
        }
    }
}

impl InOrg for NoOrg {
    async fn resolve(self, _: &State, _: Option<&VerifiedKey>) -> Result<OrgId, ApiError> {
        match self {}
    }
}

/// A call let through, with the context its rule proved and the API key it
/// was made with (its usage is counted).
pub(crate) struct Granted<C> {
    pub ctx: C,
    pub key: Option<ApiKeyId>,
    /// The organization the call acts in (an `Org` procedure's), for its
    /// latency.
    pub org: Option<OrgId>,
}

/// An access rule of the schema, checked here.
pub(crate) trait Grant: rule::Rule {
    /// What a handler of a procedure under this rule is given.
    type Ctx: Send + 'static;

    /// The access check of a call whose params decoded (and name `org`, for
    /// an `Org` procedure).
    fn grant<O: InOrg>(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        org: Option<O>,
        method: &'static str,
    ) -> impl Future<Output = Result<Granted<Self::Ctx>, ApiError>> + Send;

    /// The access check of a call whose params did not decode: the params
    /// error is answered only to a caller who passes it. Returns the key
    /// used, if any.
    fn check_before_params_error(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        method: &'static str,
    ) -> impl Future<Output = Result<Option<ApiKeyId>, ApiError>> + Send {
        async move { Self::grant::<NoOrg>(state, meta, access, None, method).await.map(|g| g.key) }
    }
}

/// The credentials of a call: the signed-in user, or the API key (found,
/// live, and within its own limit). Public procedures ignore credentials
/// they cannot use, so a stale token sent along with `auth.login` or
/// `auth.refresh` is harmless, and never look up a key.
async fn credentials(
    state: &State,
    meta: &RequestMeta,
    access: Access,
    method: &'static str,
) -> Result<(Option<Principal>, Option<Arc<VerifiedKey>>), ApiError> {
    let credential = match (&meta.principal, access) {
        (Ok(c), _) => c.clone(),
        (Err(_), Access::Public) => None,
        (Err(e), _) => return Err(e.clone()),
    };
    match credential {
        None => Ok((None, None)),
        Some(Credential::User(p)) => Ok((Some(p), None)),
        Some(Credential::ApiKey(_)) if access == Access::Public => Ok((None, None)),
        Some(Credential::ApiKey(hash)) => {
            let per_ip = state.config.api_key_failures_per_ip;
            let k = verify_key(&state.keys, &state.db, per_ip, &hash, meta.client_ip()).await;
            crate::observe::api_key_verified(k.is_ok());
            let k = k?;
            limit(state, meta, &k, method).await?;
            Ok((None, Some(k)))
        }
    }
}

/// Takes one call from the key's own limit (within its batch's share, for
/// a batch).
async fn limit(state: &State, meta: &RequestMeta, key: &VerifiedKey, method: &'static str) -> Result<(), ApiError> {
    let Some(per_minute) = key.rate_limit_per_minute else { return Ok(()) };
    let take = |calls| state.keys.take(key.id, per_minute, calls);
    let passed = match &meta.budget {
        Some(budget) => budget.take(take).await,
        None => {
            let own = take(1).await;
            if own.allowed >= 1 { Ok(()) } else { Err(own) }
        }
    };
    passed.map_err(|l| {
        state.keys.usage.record(key.id, method, Counted::RateLimited);
        crate::observe::rate_limited("api_key");
        ApiError::new(Reason::RateLimited)
            .message(format!("this API key is limited to {per_minute} calls a minute"))
            .with("retryAfterMs", l.retry_after_ms())
            .with("limit", per_minute)
    })
}

/// A refused call of a valid key counts in its usage as an error.
fn counted<T>(
    state: &State,
    key: Option<&VerifiedKey>,
    method: &'static str,
    r: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let (Err(_), Some(k)) = (&r, key) {
        state.keys.usage.record(k.id, method, Counted::Error);
    }
    r
}

impl Grant for rule::Public {
    type Ctx = PublicCtx;

    async fn grant<O: InOrg>(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        _: Option<O>,
        method: &'static str,
    ) -> Result<Granted<PublicCtx>, ApiError> {
        let (caller, _) = credentials(&state, &meta, access, method).await?;
        Ok(Granted { ctx: PublicCtx { call: Call { state, meta }, caller }, key: None, org: None })
    }
}

impl Grant for rule::User {
    type Ctx = UserCtx;

    async fn grant<O: InOrg>(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        _: Option<O>,
        method: &'static str,
    ) -> Result<Granted<UserCtx>, ApiError> {
        let (caller, key) = credentials(&state, &meta, access, method).await?;
        let caller = match (caller, &key) {
            (Some(p), _) => Ok(p),
            (None, Some(_)) => Err(ApiError::new(Reason::MissingScope)
                .message("an API key acts for its organization; this method needs a signed-in user")),
            (None, None) => Err(ApiError::new(Reason::CredentialsMissing)),
        };
        let caller = counted(&state, key.as_deref(), method, caller)?;
        Ok(Granted { ctx: UserCtx { call: Call { state, meta }, caller }, key: key.map(|k| k.id), org: None })
    }
}

impl Grant for rule::Admin {
    type Ctx = AdminCtx;

    async fn grant<O: InOrg>(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        _: Option<O>,
        method: &'static str,
    ) -> Result<Granted<AdminCtx>, ApiError> {
        let (caller, key) = credentials(&state, &meta, access, method).await?;
        let admin = async {
            let Some(p) = caller else {
                return Err(match key {
                    Some(_) => ApiError::new(Reason::AdminRequired),
                    None => ApiError::new(Reason::CredentialsMissing),
                });
            };
            match membership::standing(&state.db, p.user_id).await.map_err(db_error)? {
                Some(s) if s.disabled => Err(ApiError::new(Reason::AccountDisabled)),
                Some(s) if s.is_admin => Ok(p),
                _ => Err(ApiError::new(Reason::AdminRequired)),
            }
        }
        .await;
        let admin = counted(&state, key.as_deref(), method, admin)?;
        Ok(Granted { ctx: AdminCtx { call: Call { state, meta }, admin }, key: None, org: None })
    }
}

impl Grant for rule::Org {
    type Ctx = OrgCtx;

    async fn grant<O: InOrg>(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        org: Option<O>,
        method: &'static str,
    ) -> Result<Granted<OrgCtx>, ApiError> {
        let Some(permission) = access.org_permission() else {
            return Err(internal(method, "an Org procedure without an org permission"));
        };
        let (caller, key) = credentials(&state, &meta, access, method).await?;
        let org = async {
            if caller.is_none() && key.is_none() {
                return Err(ApiError::new(Reason::CredentialsMissing));
            }
            let Some(org) = org else { return Err(internal(method, "an Org procedure names no organization")) };
            let org_id = org.resolve(&state, key.as_deref()).await?;
            org_access(&state, org_id, caller, key.as_deref(), permission).await
        }
        .await;
        let org = counted(&state, key.as_deref(), method, org)?;
        let org_id = Some(org.org_id);
        Ok(Granted { ctx: OrgCtx { call: Call { state, meta }, org }, key: key.map(|k| k.id), org: org_id })
    }

    /// Only the credentials: which organization the params name is not
    /// known, and nothing of it is revealed.
    async fn check_before_params_error(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        method: &'static str,
    ) -> Result<Option<ApiKeyId>, ApiError> {
        let (caller, key) = credentials(&state, &meta, access, method).await?;
        if caller.is_none() && key.is_none() {
            return Err(ApiError::new(Reason::CredentialsMissing));
        }
        Ok(key.map(|k| k.id))
    }
}

impl Grant for rule::OrgOrAdmin {
    type Ctx = OrgOrAdminCtx;

    /// With an organization named, the `Org` rule; with none, the `Admin`
    /// rule (an API key, which acts for its organization, is refused).
    async fn grant<O: InOrg>(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        org: Option<O>,
        method: &'static str,
    ) -> Result<Granted<OrgOrAdminCtx>, ApiError> {
        match org.filter(InOrg::names_org) {
            Some(org) => {
                let g = <rule::Org as Grant>::grant(state, meta, access, Some(org), method).await?;
                Ok(Granted { ctx: OrgOrAdminCtx::Org(g.ctx), key: g.key, org: g.org })
            }
            None => {
                let g = <rule::Admin as Grant>::grant::<O>(state, meta, access, None, method).await?;
                Ok(Granted { ctx: OrgOrAdminCtx::Admin(g.ctx), key: g.key, org: None })
            }
        }
    }

    async fn check_before_params_error(
        state: AppState,
        meta: Arc<RequestMeta>,
        access: Access,
        method: &'static str,
    ) -> Result<Option<ApiKeyId>, ApiError> {
        <rule::Org as Grant>::check_before_params_error(state, meta, access, method).await
    }
}

fn internal(method: &'static str, what: &str) -> ApiError {
    tracing::error!(method, "{what}");
    ApiError::new(Reason::Internal)
}

fn missing(reason: Reason, p: Permission) -> ApiError {
    ApiError::new(reason).with("required", p.as_str())
}

async fn org_access(
    state: &State,
    org_id: OrgId,
    caller: Option<Principal>,
    key: Option<&VerifiedKey>,
    permission: Permission,
) -> Result<OrgAccess, ApiError> {
    if let Some(p) = caller {
        let role = membership::role_of(&state.db, org_id, p.user_id)
            .await
            .map_err(db_error)?
            // Not a member: the organization's existence is not revealed.
            .ok_or_else(|| ApiError::new(Reason::NotFound))?;
        if !role.allows(permission) {
            return Err(missing(Reason::MissingPermission, permission));
        }
        return Ok(OrgAccess { org_id, role, scopes: None, actor: OrgActor::Member(p) });
    }
    let Some(k) = key else { return Err(ApiError::new(Reason::CredentialsMissing)) };
    if k.org_id != org_id {
        return Err(ApiError::new(Reason::NotFound));
    }
    if !k.scopes.contains(&permission) {
        return Err(missing(Reason::MissingScope, permission));
    }
    if k.creator_disabled {
        return Err(ApiError::new(Reason::AccountDisabled).message("the member who made this API key is disabled"));
    }
    // Never more than the member who made the key may do now.
    let role = k.creator_role.filter(|r| r.allows(permission)).ok_or_else(|| {
        missing(Reason::MissingPermission, permission).message("the member who made this API key may not do this")
    })?;
    Ok(OrgAccess {
        org_id,
        role,
        scopes: Some(k.scopes.clone()),
        actor: OrgActor::ApiKey {
            key_id: k.id,
            created_by: k.created_by,
            expires_at: k.expires_at,
            rate_limit_per_minute: k.rate_limit_per_minute,
        },
    })
}
