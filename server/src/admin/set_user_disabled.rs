use trellis_schema::admin::{SetUserDisabled, SetUserDisabledParams, SetUserDisabledReason};
use trellis_schema::auth::User;

use super::store;
use crate::access::AdminCtx;
use crate::audit::{Event, actions};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for SetUserDisabled {
    /// Disabling ends every session of the account at once.
    async fn handle(ctx: AdminCtx, p: SetUserDisabledParams) -> Result<User, HandlerError<SetUserDisabledReason>> {
        let me = ctx.admin;
        if p.disabled && p.user_id == me.user_id {
            return Err(HandlerError::Reason {
                reason: SetUserDisabledReason::InvalidTransition,
                message: Some("administrators cannot disable their own account".into()),
                data: serde_json::Map::new(),
            });
        }
        let target = p.user_id;
        let event = Event::new(&ctx.meta, actions::SET_USER_DISABLED)
            .by_admin(me.user_id, target)
            .detail(if p.disabled { "disabled" } else { "enabled" })
            .row();
        let Some((user, ended)) = store::set_disabled(&ctx.state.db, target, p.disabled, &event).await? else {
            return Err(HandlerError::reason(SetUserDisabledReason::NotFound));
        };
        for sid in &ended {
            ctx.state.auth.revoked.revoke(*sid);
        }
        // Keys held by this account stop (or work again) at once, everywhere.
        ctx.state.keys.cache.clear();
        tracing::info!(user_id = %target, disabled = p.disabled, sessions = ended.len(), "account disabled flag set");
        Ok(user.to_api())
    }
}
