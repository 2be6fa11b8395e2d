use chrono::Duration;
use trellis_schema::webhooks::{MAX_GRACE_PERIOD_SECS, RotateSecret, RotateSecretParams, RotatedSecret, WebhookReason};

use super::{invalid, secret_aad, signing, store};
use crate::access::OrgCtx;
use crate::audit::Event;
use crate::db::models::now;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for RotateSecret {
    /// During the grace period deliveries carry two signatures, one by each
    /// secret; a rotation during another's grace period ends the older one.
    async fn handle(ctx: OrgCtx, p: RotateSecretParams) -> Result<RotatedSecret, HandlerError<WebhookReason>> {
        let access = &ctx.org;
        let grace = p.grace_period_secs.unwrap_or(0);
        if grace > MAX_GRACE_PERIOD_SECS {
            return Err(HandlerError::Common(invalid(
                "gracePeriodSecs",
                format!("must be at most {MAX_GRACE_PERIOD_SECS} (7 days)"),
            )));
        }
        let secret = signing::generate();
        let sealed = ctx.state.auth.secrets.seal_bound(secret.as_bytes(), secret_aad(p.webhook_id).as_bytes())?;
        let old_until = (grace > 0).then(|| now() + Duration::seconds(i64::from(grace)));
        let event = Event::new(&ctx.meta, "webhooks.rotateSecret")
            .in_org(access)
            .target(format!("webhook:{}", p.webhook_id))
            .detail(format!("gracePeriodSecs={grace}"))
            .row();
        if !store::rotate(&ctx.state.db, access.org_id, p.webhook_id, &sealed, old_until, &event).await? {
            return Err(HandlerError::reason(WebhookReason::NotFound));
        }
        Ok(RotatedSecret { secret })
    }
}
