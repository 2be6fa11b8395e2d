use trellis_schema::lots::{Get, GetLotParams, GetLotReason, Lot};

use super::store;
use crate::access::OrgCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Get {
    async fn handle(ctx: OrgCtx, p: GetLotParams) -> Result<Lot, HandlerError<GetLotReason>> {
        match store::get(&ctx.state.db, ctx.org.org_id, p.lot_id).await? {
            Some(row) => Ok(row.to_api()?),
            None => Err(HandlerError::reason(GetLotReason::NotFound)),
        }
    }
}
