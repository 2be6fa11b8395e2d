use trellis_schema::Empty;
use trellis_schema::error::NoReason;
use trellis_schema::health::{Check, CheckResult, HealthStatus};

use crate::access::PublicCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Check {
    async fn handle(ctx: PublicCtx, _: Empty) -> Result<CheckResult, HandlerError<NoReason>> {
        let checks = ctx.state.health.latest();
        let status = if checks.database.ok && checks.cache.ok { HealthStatus::Ok } else { HealthStatus::Degraded };
        Ok(CheckResult {
            status,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: ctx.state.started_at.elapsed().as_secs(),
            checks,
        })
    }
}
