use trellis_schema::Empty;
use trellis_schema::access::OrgRole;
use trellis_schema::auth::{Me, MeResult};
use trellis_schema::error::NoReason;
use trellis_schema::orgs::Membership;
use trellis_schema::{ApiError, Reason};

use super::store;
use crate::access::UserCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Me {
    async fn handle(ctx: UserCtx, _: Empty) -> Result<MeResult, HandlerError<NoReason>> {
        let me = ctx.caller;
        let Some((user, memberships)) = store::user_with_memberships(&ctx.state.db, me.user_id).await? else {
            return Err(HandlerError::Common(ApiError::new(Reason::TokenInvalid)));
        };
        if user.disabled {
            return Err(HandlerError::Common(ApiError::new(Reason::AccountDisabled)));
        }
        let memberships = memberships
            .into_iter()
            .filter_map(|(org, role)| Some(Membership { org: org.to_api(), role: OrgRole::parse(&role)? }))
            .collect();
        Ok(MeResult { user: user.to_api(), memberships })
    }
}
