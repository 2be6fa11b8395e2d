//! The access check, in one place for every procedure: who is calling
//! (user or API key), the key's own rate limit, and whether the caller may
//! call this procedure (signed in, system admin, or holding the permission
//! in the organization the params name). No handler checks roles itself.

use std::net::IpAddr;
use std::sync::Arc;

use trellis_schema::access::{OrgRef, Permission};
use trellis_schema::{Access, ApiError, Reason};
use uuid::Uuid;

use super::context::{Credential, OrgAccess, OrgActor, Principal, RequestMeta};
use super::error::HandlerError;
use crate::api_keys::cache::VerifiedKey;
use crate::api_keys::limiter::Limited;
use crate::api_keys::usage::Outcome;
use crate::db::DbError;
use crate::db::models::now;
use crate::state::State;

/// What the access check established about a call.
#[derive(Default)]
pub(crate) struct Authorized {
    pub principal: Option<Principal>,
    pub org: Option<OrgAccess>,
    /// The API key the call was made with.
    pub key: Option<Arc<VerifiedKey>>,
}

fn db_error(e: DbError) -> ApiError {
    HandlerError::<trellis_schema::error::NoReason>::from(e).into_api()
}

/// Finds the key of a presented secret (in the cache, else the database:
/// one lookup, shared by every call that presents the secret meanwhile) and
/// checks that it is live. With `ip`, lookups that find nothing are limited
/// per client IP (`TRELLIS_API_KEY_FAILURES_PER_IP` a minute): over it, keys
/// not in the cache answer RATE_LIMITED without a lookup.
pub(crate) async fn verify_key(
    state: &State,
    secret_hash: &str,
    ip: Option<IpAddr>,
) -> Result<Arc<VerifiedKey>, ApiError> {
    let per_minute = state.config.api_key_failures_per_ip;
    let ip = ip.filter(|_| per_minute > 0).map(crate::net::limit_bucket);
    let lookup = state
        .keys
        .get_or_load(secret_hash, || async {
            if let Some(ip) = ip {
                state
                    .unknown_keys
                    .peek_per(&ip, per_minute, MINUTE)
                    .map_err(|l| unknown_keys_limited(&l, per_minute))?;
            }
            let found = crate::api_keys::store::lookup_secret(&state.db, secret_hash).await.map_err(db_error)?;
            if let (None, Some(ip)) = (&found, ip) {
                // Counted; the refusal comes with the next lookup.
                let _ = state.unknown_keys.check_per(&ip, per_minute, MINUTE);
            }
            Ok::<_, ApiError>(found)
        })
        .await?;
    let key = lookup.ok_or_else(|| ApiError::new(Reason::ApiKeyInvalid))?;
    let t = now();
    if key.revoked_at.is_some() {
        return Err(ApiError::new(Reason::ApiKeyRevoked));
    }
    if key.expires_at.is_some_and(|e| e <= t) {
        return Err(ApiError::new(Reason::ApiKeyExpired));
    }
    if key.secret_expires_at.is_some_and(|e| e <= t) {
        return Err(
            ApiError::new(Reason::ApiKeyRevoked).message("this secret was rotated and its grace period is over")
        );
    }
    Ok(key)
}

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

fn unknown_keys_limited(l: &Limited, per_minute: u32) -> ApiError {
    ApiError::new(Reason::RateLimited)
        .message(format!("too many unknown API keys: at most {per_minute} a minute from one address"))
        .with("retryAfterMs", l.retry_after_ms())
        .with("limit", per_minute)
}

/// Takes one call from the key's own limit.
fn limit(state: &State, key: &VerifiedKey, method: &'static str) -> Result<(), ApiError> {
    let Some(per_minute) = key.rate_limit_per_minute else { return Ok(()) };
    state.key_limiter.check(key.id, per_minute).map(drop).map_err(|l| {
        state.usage.record(key.id, method, Outcome::RateLimited);
        ApiError::new(Reason::RateLimited)
            .message(format!("this API key is limited to {per_minute} calls a minute"))
            .with("retryAfterMs", l.retry_after_ms())
            .with("limit", per_minute)
    })
}

/// The access check of one call of `method`, whose params name `org` (for
/// an organization-scoped procedure; `None` if the params did not decode,
/// in which case only the credentials are checked and the params error
/// follows).
pub(crate) async fn authorize(
    state: &State,
    meta: &RequestMeta,
    access: Access,
    org: Option<OrgRef>,
    method: &'static str,
) -> Result<Authorized, ApiError> {
    let credential = match (&meta.principal, access) {
        (Ok(c), _) => c.clone(),
        // Public procedures ignore credentials they cannot use, so a stale
        // token sent along with `auth.login` or `auth.refresh` is harmless.
        (Err(_), Access::Public) => None,
        (Err(e), _) => return Err(e.clone()),
    };
    let (principal, key) = match credential {
        None => (None, None),
        Some(Credential::User(p)) => (Some(p), None),
        // Public procedures ignore keys entirely: no lookup, no limit.
        Some(Credential::ApiKey(_)) if access == Access::Public => (None, None),
        Some(Credential::ApiKey(hash)) => {
            let k = verify_key(state, &hash, meta.client_ip()).await?;
            limit(state, &k, method)?;
            (None, Some(k))
        }
    };
    let counted = key.as_ref().map(|k| k.id);
    let result = check(state, access, org, principal, key).await;
    // A refused call of a valid key counts in its usage as an error.
    if let (Err(_), Some(id)) = (&result, counted) {
        state.usage.record(id, method, Outcome::Error);
    }
    result
}

async fn check(
    state: &State,
    access: Access,
    org: Option<OrgRef>,
    principal: Option<Principal>,
    key: Option<Arc<VerifiedKey>>,
) -> Result<Authorized, ApiError> {
    match access {
        Access::Public => Ok(Authorized { principal, org: None, key }),
        Access::User => match (principal, &key) {
            (Some(p), _) => Ok(Authorized { principal: Some(p), org: None, key }),
            (None, Some(_)) => Err(ApiError::new(Reason::MissingScope)
                .message("an API key acts for its organization; this method needs a signed-in user")),
            (None, None) => Err(ApiError::new(Reason::CredentialsMissing)),
        },
        Access::Admin => {
            let Some(p) = principal else {
                return Err(match key {
                    Some(_) => ApiError::new(Reason::AdminRequired),
                    None => ApiError::new(Reason::CredentialsMissing),
                });
            };
            let user = crate::auth::store::find_user(&state.db, p.user_id).await.map_err(db_error)?;
            match user {
                Some(u) if u.disabled => Err(ApiError::new(Reason::AccountDisabled)),
                Some(u) if u.is_admin => Ok(Authorized { principal: Some(p), org: None, key: None }),
                _ => Err(ApiError::new(Reason::AdminRequired)),
            }
        }
        Access::Org(permission) => {
            if principal.is_none() && key.is_none() {
                return Err(ApiError::new(Reason::CredentialsMissing));
            }
            let Some(org) = org else { return Ok(Authorized { principal, org: None, key }) };
            let org_id = resolve(state, org, key.as_deref()).await?;
            let org = org_access(state, org_id, principal.as_ref(), key.as_deref(), permission).await?;
            Ok(Authorized { principal, org: Some(org), key })
        }
    }
}

/// The organization an [`OrgRef`] points at. An object that does not exist
/// is NOT_FOUND, like one of an organization the caller is not in.
async fn resolve(state: &State, org: OrgRef, key: Option<&VerifiedKey>) -> Result<Uuid, ApiError> {
    match org {
        OrgRef::Org(id) | OrgRef::CallerKeyOr(Some(id)) => Ok(id),
        OrgRef::CallerKeyOr(None) => key.map(|k| k.org_id).ok_or_else(|| {
            ApiError::validation(vec![trellis_schema::error::FieldError {
                path: "orgId".into(),
                message: "is required when signed in as a user".into(),
            }])
        }),
        OrgRef::ApiKey(id) => {
            let org = crate::api_keys::store::org_of(&state.db, &id.to_string()).await.map_err(db_error)?;
            org.and_then(|o| Uuid::parse_str(&o).ok()).ok_or_else(|| ApiError::new(Reason::NotFound))
        }
    }
}

fn missing(reason: Reason, p: Permission) -> ApiError {
    ApiError::new(reason).with("required", p.as_str())
}

async fn org_access(
    state: &State,
    org_id: Uuid,
    principal: Option<&Principal>,
    key: Option<&VerifiedKey>,
    permission: Permission,
) -> Result<OrgAccess, ApiError> {
    if let Some(p) = principal {
        let role = crate::orgs::store::role_of(&state.db, &org_id.to_string(), &p.user_id.to_string())
            .await
            .map_err(db_error)?
            // Not a member: the organization's existence is not revealed.
            .ok_or_else(|| ApiError::new(Reason::NotFound))?;
        if !role.allows(permission) {
            return Err(missing(Reason::MissingPermission, permission));
        }
        return Ok(OrgAccess { org_id, role, scopes: None, actor: OrgActor::Member(p.user_id) });
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
