use chrono::{TimeDelta, Utc};
use trellis_schema::ApiError;
use trellis_schema::error::FieldError;
use trellis_schema::ids::LotId;
use trellis_schema::lots::{Create, CreateLotParams, CreateLotReason, Lot, MAX_LOTS_PER_ORG};

use super::store::{self, LotRow};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::now;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

/// Clocks differ a little: a test time this far ahead of ours is taken as now.
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

impl Handler for Create {
    async fn handle(ctx: OrgCtx, p: CreateLotParams) -> Result<Lot, HandlerError<CreateLotReason>> {
        if p.quality.tested_at > Utc::now() + CLOCK_SKEW {
            return Err(HandlerError::Common(ApiError::validation(vec![FieldError {
                path: "quality.testedAt".into(),
                message: "must not be in the future".into(),
            }])));
        }
        let access = &ctx.org;
        ctx.state.trade_writes.take(&ctx.state.config, ctx.org.org_id).await.map_err(HandlerError::Common)?;
        let id = LotId::new();
        let row = LotRow {
            id,
            org_id: access.org_id,
            commodity: p.commodity.as_str().to_owned(),
            quantity: p.quantity.to_wire(),
            unit: p.unit.as_str().to_owned(),
            location: p.location.as_str().to_owned(),
            grade: p.quality.grade.as_str().to_owned(),
            moisture_pct: p.quality.moisture_pct.map(|m| m.to_wire()),
            tested_at: p.quality.tested_at.naive_utc(),
            lab: p.quality.lab.as_ref().map(|l| l.as_str().to_owned()),
            notes: p.quality.notes.as_ref().map(|n| n.as_str().to_owned()),
            created_by: access.user_id(),
            created_at: now(),
        };
        let event = Event::new(&ctx.meta, "lots.create").in_org(access).target(format!("lot:{id}")).row();
        if !store::insert(&ctx.state.db, &row, &event, MAX_LOTS_PER_ORG).await? {
            let mut data = serde_json::Map::new();
            data.insert("limit".into(), MAX_LOTS_PER_ORG.into());
            return Err(HandlerError::Reason {
                reason: CreateLotReason::LimitReached,
                message: Some(format!("an organization holds at most {MAX_LOTS_PER_ORG} lots").into()),
                data,
            });
        }
        Ok(row.to_api()?)
    }
}
