use trellis_schema::trade_machine::TradeEvent;
use trellis_schema::trades::{Cancel, CancelReason, Trade, TradeParams};

use super::store::{self, TradeChange};
use super::{Reasons, blocked};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Cancel {
    async fn handle(ctx: OrgCtx, p: TradeParams) -> Result<Trade, HandlerError<CancelReason>> {
        let access = &ctx.org;
        ctx.state.trade_writes.take(&ctx.state.config, ctx.org.org_id).await.map_err(HandlerError::Common)?;
        let audit = Event::new(&ctx.meta, "trades.cancel").in_org(access).target(format!("trade:{}", p.trade_id)).row();
        let change =
            TradeChange { trade: p.trade_id, org: Some(access.org_id), event: TradeEvent::Cancel, approver: None };
        let db = &ctx.state.db;
        match store::change_trade(db, change, Some(audit)).await? {
            Ok(row) => {
                ctx.state.events.published();
                Ok(store::view(db, access.org_id, &row).await?)
            }
            Err(b) => Err(blocked(
                b,
                Reasons {
                    not_found: Some(CancelReason::NotFound),
                    invalid_transition: Some(CancelReason::InvalidTransition),
                    ..Reasons::default()
                },
            )),
        }
    }
}
