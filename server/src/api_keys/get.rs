use trellis_schema::api_keys::{ApiKey, Get, KeyParams};
use trellis_schema::error::NoReason;

use super::store;
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Get {
    async fn handle(ctx: Ctx, p: KeyParams) -> Result<ApiKey, HandlerError<NoReason>> {
        ctx.org()?;
        let row = store::find(&ctx.state.db, &p.id.to_string()).await?;
        Ok(row.ok_or_else(|| anyhow::anyhow!("a checked key has no row"))?.to_api())
    }
}
