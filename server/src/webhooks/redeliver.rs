use trellis_schema::Empty;
use trellis_schema::webhooks::{Redeliver, RedeliverParams, RedeliverReason};

use super::store::{self, Redelivered};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Redeliver {
    async fn handle(ctx: OrgCtx, p: RedeliverParams) -> Result<Empty, HandlerError<RedeliverReason>> {
        let access = &ctx.org;
        let event = Event::new(&ctx.meta, "webhooks.redeliver")
            .in_org(access)
            .target(format!("webhookDelivery:{}", p.delivery_id))
            .row();
        match store::redeliver(&ctx.state.db, access.org_id, p.delivery_id, &event).await? {
            Redelivered::Queued => {
                ctx.state.webhooks.sender.wake();
                Ok(Empty {})
            }
            Redelivered::NotFound => Err(HandlerError::reason(RedeliverReason::NotFound)),
            Redelivered::Pending => Err(HandlerError::Reason {
                reason: RedeliverReason::InvalidTransition,
                message: Some("the delivery is still pending: it is being tried".into()),
                data: [("from".to_owned(), "pending".into()), ("to".to_owned(), "pending".into())]
                    .into_iter()
                    .collect(),
            }),
        }
    }
}
