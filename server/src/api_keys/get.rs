use trellis_schema::api_keys::{ApiKey, Get, KeyParams};
use trellis_schema::error::NoReason;

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Get {
    async fn handle(ctx: OrgCtx, p: KeyParams) -> Result<ApiKey, HandlerError<NoReason>> {
        let row = store::find(&ctx.state.db, p.id).await?;
        Ok(row.ok_or_else(|| anyhow::anyhow!("a checked key has no row"))?.to_api())
    }
}
