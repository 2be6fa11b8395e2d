use trellis_schema::trades::{Get, GetTradeReason, Trade, TradeParams};

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Get {
    async fn handle(ctx: OrgCtx, p: TradeParams) -> Result<Trade, HandlerError<GetTradeReason>> {
        let org = ctx.org.org_id;
        let Some(row) = store::find_visible(&ctx.state.db, org, p.trade_id).await? else {
            return Err(HandlerError::reason(GetTradeReason::NotFound));
        };
        Ok(store::view(&ctx.state.db, org, &row).await?)
    }
}
