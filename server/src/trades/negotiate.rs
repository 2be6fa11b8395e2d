use trellis_schema::trade_machine::OfferMove;
use trellis_schema::trades::{Negotiate, NegotiateAction, NegotiateParams, NegotiateReason, Offer};

use super::store::{self, Move};
use super::{Reasons, blocked, invalid};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Negotiate {
    async fn handle(ctx: OrgCtx, p: NegotiateParams) -> Result<Offer, HandlerError<NegotiateReason>> {
        let access = &ctx.org;
        ctx.state.trade_writes.take(&ctx.state.config, ctx.org.org_id).await.map_err(HandlerError::Common)?;
        let mv = match p.action {
            NegotiateAction::Counter => OfferMove::Counter,
            NegotiateAction::Accept => OfferMove::Accept,
            NegotiateAction::Reject => OfferMove::Reject,
            NegotiateAction::Withdraw => OfferMove::Withdraw,
        };
        if mv != OfferMove::Counter && (p.price.is_some() || p.quantity.is_some()) {
            return Err(invalid("price", "only a counter names a price or a quantity"));
        }
        let expected_version = i64::try_from(p.expected_version)
            .map_err(|_| invalid::<NegotiateReason>("expectedVersion", "is too large"))?;
        let action = match p.action {
            NegotiateAction::Counter => "counter",
            NegotiateAction::Accept => "accept",
            NegotiateAction::Reject => "reject",
            NegotiateAction::Withdraw => "withdraw",
        };
        let event = Event::new(&ctx.meta, "trades.negotiate")
            .in_org(access)
            .target(format!("offer:{}", p.offer_id))
            .detail(action)
            .row();
        let m = Move {
            offer: p.offer_id,
            org: access.org_id,
            user: access.user_id(),
            expected_version,
            mv,
            price: p.price,
            quantity: p.quantity,
            note: p.note.as_ref().map(|n| n.as_str().to_owned()),
        };
        let db = &ctx.state.db;
        match store::negotiate(db, m, event).await? {
            Ok(_) => {
                ctx.state.events.published();
                Ok(store::offer_view(db, p.offer_id).await?)
            }
            Err(b) => Err(blocked(
                b,
                Reasons {
                    not_found: Some(NegotiateReason::NotFound),
                    version: Some(NegotiateReason::VersionConflict),
                    invalid_transition: Some(NegotiateReason::InvalidTransition),
                    not_your_turn: Some(NegotiateReason::NotYourTurn),
                    ..Reasons::default()
                },
            )),
        }
    }
}
