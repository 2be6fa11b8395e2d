use trellis_schema::trade_machine::TradeEvent;
use trellis_schema::trades::{Approve, ApproveParams, ApproveReason, Decision, Trade};

use super::store::{self, TradeChange};
use super::{Reasons, blocked};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Approve {
    async fn handle(ctx: OrgCtx, p: ApproveParams) -> Result<Trade, HandlerError<ApproveReason>> {
        let access = &ctx.org;
        ctx.state.trade_writes.take(&ctx.state.config, ctx.org.org_id).await.map_err(HandlerError::Common)?;
        let event = match p.decision {
            Decision::Approve => TradeEvent::Approve,
            Decision::Reject => TradeEvent::Refuse,
        };
        let audit = Event::new(&ctx.meta, "trades.approve")
            .in_org(access)
            .target(format!("trade:{}", p.trade_id))
            .detail(if event == TradeEvent::Approve { "approve" } else { "reject" })
            .row();
        let change =
            TradeChange { trade: p.trade_id, org: Some(access.org_id), event, approver: Some(access.user_id()) };
        let db = &ctx.state.db;
        match store::change_trade(db, change, Some(audit)).await? {
            Ok(row) => {
                ctx.state.events.published();
                Ok(store::view(db, access.org_id, &row).await?)
            }
            Err(b) => Err(blocked(
                b,
                Reasons {
                    not_found: Some(ApproveReason::NotFound),
                    invalid_transition: Some(ApproveReason::InvalidTransition),
                    self_approval: Some(ApproveReason::SelfApproval),
                    ..Reasons::default()
                },
            )),
        }
    }
}
