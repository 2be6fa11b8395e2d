use chrono::Utc;
use trellis_schema::ids::OfferId;
use trellis_schema::trade_machine::OfferStatus;
use trellis_schema::trades::{MakeOffer, Offer, OfferParams, OfferReason};

use super::store::{self, OfferRow};
use super::{Reasons, blocked, invalid};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::now;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for MakeOffer {
    async fn handle(ctx: OrgCtx, p: OfferParams) -> Result<Offer, HandlerError<OfferReason>> {
        let access = &ctx.org;
        ctx.state.trade_writes.take(&ctx.state.config, ctx.org.org_id).await.map_err(HandlerError::Common)?;
        if p.valid_until <= Utc::now() {
            return Err(invalid("validUntil", "must be in the future"));
        }
        if let Some(lot) = p.lot_id
            && !store::lot_of(&ctx.state.db, access.org_id, lot).await?
        {
            return Err(invalid("lotId", "is not a lot of this organization"));
        }
        let id = OfferId::new();
        let t = now();
        let row = OfferRow {
            id,
            trade_id: p.trade_id,
            org_id: access.org_id,
            price: p.price.to_wire(),
            quantity: p.quantity.to_wire(),
            lot_id: p.lot_id,
            valid_until: p.valid_until.naive_utc(),
            note: p.note.as_ref().map(|n| n.as_str().to_owned()),
            status: OfferStatus::Pending.as_str().to_owned(),
            version: 1,
            created_by: access.user_id(),
            created_at: t,
            updated_at: t,
        };
        let event = Event::new(&ctx.meta, "trades.offer")
            .in_org(access)
            .target(format!("offer:{id}"))
            .detail(format!("trade:{}", p.trade_id))
            .row();
        let db = &ctx.state.db;
        match store::make_offer(db, access.org_id, row, event).await? {
            Ok(_) => {
                ctx.state.events.published();
                Ok(store::offer_view(db, id).await?)
            }
            Err(b) => Err(blocked(
                b,
                Reasons {
                    not_found: Some(OfferReason::NotFound),
                    invalid_transition: Some(OfferReason::InvalidTransition),
                    already_exists: Some(OfferReason::AlreadyExists),
                    ..Reasons::default()
                },
            )),
        }
    }
}
