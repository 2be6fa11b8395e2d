use chrono::{TimeDelta, Utc};
use trellis_schema::ids::TradeId;
use trellis_schema::trade_machine::TradeStatus;
use trellis_schema::trades::{Create, CreateTradeParams, MAX_INVITED_ORGS, Trade, Visibility};

use super::invalid;
use super::store::{self, TradeRow};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::now;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;
use trellis_schema::error::NoReason;

impl Handler for Create {
    async fn handle(ctx: OrgCtx, p: CreateTradeParams) -> Result<Trade, HandlerError<NoReason>> {
        let access = &ctx.org;
        ctx.state.trade_writes.take(&ctx.state.config, ctx.org.org_id).await.map_err(HandlerError::Common)?;
        let t = now();
        if p.expires_at <= Utc::now() {
            return Err(invalid("expiresAt", "must be in the future"));
        }
        if p.expires_at > Utc::now() + TimeDelta::days(366) {
            return Err(invalid("expiresAt", "must be at most a year ahead"));
        }
        let mut invited = p.invited_org_ids.clone().unwrap_or_default();
        invited.sort_by_key(ToString::to_string);
        invited.dedup();
        match p.visibility {
            Visibility::Invited if invited.is_empty() => {
                return Err(invalid("invitedOrgIds", "an invited trade invites at least one organization"));
            }
            Visibility::Public if !invited.is_empty() => {
                return Err(invalid("invitedOrgIds", "only an invited trade invites organizations"));
            }
            _ => {}
        }
        if invited.len() > MAX_INVITED_ORGS {
            return Err(invalid("invitedOrgIds", format!("at most {MAX_INVITED_ORGS} organizations")));
        }
        if invited.contains(&access.org_id) {
            return Err(invalid("invitedOrgIds", "an organization does not invite itself"));
        }
        if let Some(lot) = p.lot_id
            && !store::lot_of(&ctx.state.db, access.org_id, lot).await?
        {
            return Err(invalid("lotId", "is not a lot of this organization"));
        }
        let id = TradeId::new();
        let row = TradeRow {
            id,
            org_id: access.org_id,
            side: p.side.as_str().to_owned(),
            commodity: p.commodity.as_str().to_owned(),
            quantity: p.quantity.to_wire(),
            unit: p.unit.as_str().to_owned(),
            price_limit: p.price_limit.map(|x| x.to_wire()),
            currency: p.currency.as_str().to_owned(),
            lot_id: p.lot_id,
            visibility: p.visibility.as_str().to_owned(),
            expires_at: p.expires_at.naive_utc(),
            status: TradeStatus::Open.as_str().to_owned(),
            version: 1,
            created_by: access.user_id(),
            created_at: t,
            updated_at: t,
            agreed_offer_id: None,
            accepted_by: None,
            approved_by: None,
        };
        let event = Event::new(&ctx.meta, "trades.create").in_org(access).target(format!("trade:{id}")).row();
        store::insert_trade(&ctx.state.db, &row, &invited, &event).await?;
        Ok(row.to_api(invited, Vec::new())?)
    }
}
