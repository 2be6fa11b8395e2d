use trellis_schema::auth::User;
use trellis_schema::error::NoReason;
use trellis_schema::users::{UpdateProfile, UpdateProfileParams};

use crate::access::UserCtx;
use crate::audit::{Event, actions};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for UpdateProfile {
    async fn handle(ctx: UserCtx, p: UpdateProfileParams) -> Result<User, HandlerError<NoReason>> {
        let me = ctx.caller.user_id;
        let event = Event::new(&ctx.meta, actions::UPDATE_PROFILE).by_user(me).row();
        let user = crate::users::store::update_display_name(&ctx.state.db, me, p.display_name.as_str(), &event).await?;
        Ok(user.ok_or_else(|| anyhow::anyhow!("a signed-in user has no account row"))?.to_api())
    }
}
