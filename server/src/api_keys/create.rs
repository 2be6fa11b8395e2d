use chrono::{NaiveDateTime, Timelike};
use trellis_schema::access::{OrgRole, Permission};
use trellis_schema::api_keys::{Create, CreateApiKeyParams, CreateApiKeyReason, CreatedApiKey};
use trellis_schema::error::FieldError;
use trellis_schema::notifications::EventType;

use crate::notifications::events::api_key_event;
use trellis_schema::{ApiError, ErrorReason};

use super::{secret, store};
use crate::access::{OrgAccess, OrgActor, OrgCtx};
use crate::audit::Event;
use crate::db::models::{ApiKeyRow, now, utc};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;
use trellis_schema::ids::ApiKeyId;

fn refuse<R: ErrorReason>(
    reason: R,
    message: String,
    data: serde_json::Map<String, serde_json::Value>,
) -> HandlerError<R> {
    HandlerError::Reason { reason, message: Some(message.into()), data }
}

fn required(p: Permission) -> serde_json::Map<String, serde_json::Value> {
    let mut data = serde_json::Map::new();
    data.insert("required".into(), p.as_str().into());
    data
}

/// Scopes the caller may hand out: only permissions they hold themselves
/// (a key: in its scopes and its holder's role). `doing` says what the
/// caller tried, for the message.
pub(super) fn check_scopes<R: ErrorReason>(
    access: &OrgAccess,
    scopes: &[Permission],
    missing: R,
    doing: &str,
) -> Result<(), HandlerError<R>> {
    if let Some(p) = scopes.iter().find(|p| !access.may(**p)) {
        return Err(refuse(
            missing,
            format!("{doing}: the scope {} is not held by the caller", p.as_str()),
            required(*p),
        ));
    }
    Ok(())
}

/// Scopes the key's holder holds now (their role; `None`: no longer a member).
pub(super) fn check_holder_scopes<R: ErrorReason>(
    holder_role: Option<OrgRole>,
    scopes: &[Permission],
    missing: R,
) -> Result<(), HandlerError<R>> {
    if let Some(p) = scopes.iter().find(|p| !holder_role.is_some_and(|r| r.allows(**p))) {
        return Err(refuse(
            missing,
            format!("the scope {} is not held by the member who holds this key", p.as_str()),
            required(*p),
        ));
    }
    Ok(())
}

/// A key acting on keys gives no key (itself included) a later expiry than
/// its own, nor a higher or absent limit when it has one. `expires_at` and
/// `limit` are what the call would give (`None`: left as it is).
pub(super) fn check_within_acting_key<R: ErrorReason>(
    access: &OrgAccess,
    expires_at: Option<Option<NaiveDateTime>>,
    limit: Option<Option<i32>>,
    missing: R,
) -> Result<(), HandlerError<R>> {
    let OrgActor::ApiKey { expires_at: own_expiry, rate_limit_per_minute: own_limit, .. } = access.actor else {
        return Ok(());
    };
    let field = |name: &str| {
        let mut data = serde_json::Map::new();
        data.insert("field".into(), name.into());
        data
    };
    if let (Some(own), Some(given)) = (own_expiry, expires_at)
        && given.is_none_or(|e| e > own)
    {
        return Err(refuse(
            missing,
            format!("an API key cannot give a key an expiry later than its own ({})", utc(own).to_rfc3339()),
            field("expiresAt"),
        ));
    }
    if let (Some(own), Some(given)) = (own_limit, limit) {
        let given = given.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
        if given.is_none_or(|n| n > own) {
            return Err(refuse(
                missing,
                format!("an API key cannot give a key a rate limit above its own ({own} a minute), nor none"),
                field("rateLimitPerMinute"),
            ));
        }
    }
    Ok(())
}

pub(super) fn invalid(path: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError { path: path.into(), message: message.into() }])
}

/// A limit from the params: 1 to 1,000,000 a minute, or 0 for none.
pub(super) fn rate_limit(n: Option<u32>) -> Result<Option<i32>, ApiError> {
    match n {
        None | Some(0) => Ok(None),
        Some(n) if n <= 1_000_000 => Ok(Some(i32::try_from(n).unwrap_or(i32::MAX))),
        Some(_) => Err(invalid("rateLimitPerMinute", "must be at most 1000000")),
    }
}

impl Handler for Create {
    /// The key is shown this once; only its keyed hash is stored. The caller
    /// (for a key: its holder) holds the new key.
    async fn handle(ctx: OrgCtx, p: CreateApiKeyParams) -> Result<CreatedApiKey, HandlerError<CreateApiKeyReason>> {
        let access = &ctx.org;
        // A member proves they are at the keyboard now; a key acting on keys does not.
        if let crate::access::OrgActor::Member(me) = access.actor {
            let user = crate::auth::store::signed_in_user(&ctx, me).await?;
            let pw = p.current_password.as_ref();
            crate::auth::step_up::require(&ctx, &user, me, pw, "apiKeys.create").await?;
        }
        if p.scopes.is_empty() {
            return Err(HandlerError::Common(invalid("scopes", "must name at least one scope")));
        }
        check_scopes(access, &p.scopes, CreateApiKeyReason::MissingPermission, "a key cannot be made with this scope")?;
        let t = now();
        // At the microsecond precision both backends keep, so the answer is
        // what `apiKeys.get` will show.
        let expires_at = p.expires_at.map(|e| {
            let e = e.naive_utc();
            e.with_nanosecond(e.nanosecond() / 1000 * 1000).unwrap_or(e)
        });
        if expires_at.is_some_and(|e| e <= t) {
            return Err(HandlerError::Common(invalid("expiresAt", "must be in the future")));
        }
        let limit = rate_limit(p.rate_limit_per_minute).map_err(HandlerError::Common)?;
        check_within_acting_key(access, Some(expires_at), Some(limit), CreateApiKeyReason::MissingPermission)?;
        let (key, prefix) = secret::generate();
        let row = ApiKeyRow {
            id: ApiKeyId::new(),
            org_id: access.org_id,
            name: p.name.as_str().to_owned(),
            prefix,
            scopes: store::scopes_text(&p.scopes),
            created_by: access.user_id(),
            created_at: t,
            last_used_at: None,
            expires_at,
            revoked_at: None,
            rate_limit_per_minute: limit,
        };
        let event = Event::new(&ctx.meta, "apiKeys.create")
            .in_org(access)
            .target(format!("apiKey:{}", row.id))
            .detail(row.scopes.clone())
            .row();
        let notice =
            api_key_event(&ctx.state.db, EventType::ApiKeyCreated, row.org_id, row.id, Some(&row.name)).await?;
        store::insert(&ctx.state.db, &row, &ctx.state.auth.codes.hash("api key", "", &key), &event, &notice).await?;
        ctx.state.events.published();
        Ok(CreatedApiKey { key, api_key: row.to_api() })
    }
}
