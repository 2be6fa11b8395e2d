use trellis_schema::Empty;
use trellis_schema::error::NoReason;
use trellis_schema::sessions::{List, SessionInfo, SessionList};

use crate::access::UserCtx;
use crate::auth::store;
use crate::db::models::utc;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for List {
    async fn handle(ctx: UserCtx, _: Empty) -> Result<SessionList, HandlerError<NoReason>> {
        let me = ctx.caller;
        let rows = store::live_sessions(&ctx.state.db, me.user_id).await?;
        let items = rows
            .into_iter()
            .map(|s| {
                let id = s.id;
                SessionInfo {
                    id,
                    created_at: utc(s.created_at),
                    last_used_at: utc(s.last_used_at),
                    user_agent: s.user_agent,
                    ip: s.ip,
                    current: id == me.session_id,
                }
            })
            .collect();
        Ok(SessionList { items })
    }
}
