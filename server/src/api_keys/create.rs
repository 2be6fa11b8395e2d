use trellis_schema::ApiError;
use trellis_schema::access::Permission;
use trellis_schema::api_keys::{Create, CreateApiKeyParams, CreateApiKeyReason, CreatedApiKey};
use trellis_schema::error::FieldError;
use uuid::Uuid;

use super::{secret, store};
use crate::audit::Event;
use crate::db::models::{ApiKeyRow, now};
use crate::rpc::context::{Ctx, OrgAccess};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

/// Scopes the caller may hand out: only permissions they hold themselves.
pub(super) fn check_scopes<R: trellis_schema::ErrorReason>(
    access: &OrgAccess,
    scopes: &[Permission],
    missing: R,
) -> Result<(), HandlerError<R>> {
    if let Some(p) = scopes.iter().find(|p| !access.may(**p)) {
        let mut data = serde_json::Map::new();
        data.insert("required".into(), p.as_str().into());
        return Err(HandlerError::Reason {
            reason: missing,
            message: Some(format!("a key cannot have the scope {}, which its maker does not hold", p.as_str()).into()),
            data,
        });
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
    /// The key is shown this once; only its keyed hash is stored.
    async fn handle(ctx: Ctx, p: CreateApiKeyParams) -> Result<CreatedApiKey, HandlerError<CreateApiKeyReason>> {
        let access = ctx.org()?;
        // A member proves they are at the keyboard now; a key acting on keys does not.
        if let crate::rpc::context::OrgActor::Member(_) = access.actor {
            let me = ctx.caller()?;
            let user = crate::auth::store::signed_in_user(&ctx).await?;
            let pw = p.current_password.as_ref();
            crate::auth::step_up::require(&ctx, &user, me, pw, "apiKeys.create").await?;
        }
        if p.scopes.is_empty() {
            return Err(HandlerError::Common(invalid("scopes", "must name at least one scope")));
        }
        check_scopes(access, &p.scopes, CreateApiKeyReason::MissingPermission)?;
        let t = now();
        let expires_at = p.expires_at.map(|e| e.naive_utc());
        if expires_at.is_some_and(|e| e <= t) {
            return Err(HandlerError::Common(invalid("expiresAt", "must be in the future")));
        }
        let (key, prefix) = secret::generate();
        let row = ApiKeyRow {
            id: Uuid::now_v7().to_string(),
            org_id: access.org_id.to_string(),
            name: p.name.as_str().to_owned(),
            prefix,
            scopes: store::scopes_text(&p.scopes),
            created_by: access.user_id().to_string(),
            created_at: t,
            last_used_at: None,
            expires_at,
            revoked_at: None,
            rate_limit_per_minute: rate_limit(p.rate_limit_per_minute).map_err(HandlerError::Common)?,
        };
        let event = Event::new(&ctx.meta, "apiKeys.create")
            .in_org(access)
            .target(format!("apiKey:{}", row.id))
            .detail(row.scopes.clone())
            .row();
        store::insert(&ctx.state.db, &row, &ctx.state.codes.hash("api key", "", &key), &event).await?;
        Ok(CreatedApiKey { key, api_key: row.to_api() })
    }
}
