use std::collections::BTreeMap;

use trellis_schema::commodities::{Currency, Price};
use trellis_schema::error::NoReason;
use trellis_schema::ids::OrgId;
use trellis_schema::orgs::Org;
use trellis_schema::orgs::{Update, UpdateOrgParams};

use super::store;
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::{Db, DbError};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

/// Most currencies an organization sets an approval threshold for.
const MAX_THRESHOLDS: usize = 20;

/// The organization's approval thresholds, as `orgs.get` and `orgs.update` show them.
pub(super) async fn thresholds(db: &Db, org: OrgId) -> Result<BTreeMap<Currency, Price>, DbError> {
    let rows = crate::trades::store::thresholds(db, org).await?;
    Ok(rows.into_iter().filter_map(|(c, v)| Some((Currency::from_code(&c)?, Price::parse(&v).ok()?))).collect())
}

impl Handler for Update {
    async fn handle(ctx: OrgCtx, p: UpdateOrgParams) -> Result<Org, HandlerError<NoReason>> {
        let access = &ctx.org;
        let org = access.org_id;
        let db = &ctx.state.db;
        if let Some(t) = &p.approval_thresholds {
            if t.len() > MAX_THRESHOLDS {
                return Err(crate::trades::invalid(
                    "approvalThresholds",
                    format!("at most {MAX_THRESHOLDS} currencies"),
                ));
            }
            let values: Vec<(String, String)> = t.iter().map(|(c, v)| (c.as_str().to_owned(), v.to_wire())).collect();
            let detail = values.iter().map(|(c, v)| format!("{c} {v}")).collect::<Vec<_>>().join(", ");
            let event = Event::new(&ctx.meta, "orgs.update")
                .in_org(access)
                .target(format!("org:{org}"))
                .detail(format!("approval thresholds: {detail}"))
                .row();
            crate::trades::store::set_thresholds(db, org, &values, &event).await?;
        }
        let row = match p.name {
            Some(name) => {
                let event = Event::new(&ctx.meta, "orgs.update")
                    .in_org(access)
                    .target(format!("org:{org}"))
                    .detail("renamed")
                    .row();
                store::rename(db, org, name.as_str(), &event).await?
            }
            None => store::find(db, org).await?,
        };
        let mut org_api = row.ok_or_else(|| anyhow::anyhow!("a checked organization has no row"))?.to_api();
        org_api.approval_thresholds = Some(thresholds(db, org).await?);
        Ok(org_api)
    }
}
