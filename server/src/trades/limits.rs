//! The trade desk's writes (lots, trades, offers, moves, approvals,
//! cancellations) are limited per organization and minute, shared by every
//! replica through the cache like the other limits: a runaway integration
//! cannot flood the desk, or its counterparties' notifications.

use std::sync::Arc;
use std::time::Duration;

use trellis_schema::ids::OrgId;
use trellis_schema::{ApiError, Reason};

use crate::cache::Cache;
use crate::cache::limits::Step;
use crate::config::Config;

const MINUTE: Duration = Duration::from_secs(60);

pub(crate) struct TradeLimits {
    cache: Arc<Cache>,
}

impl TradeLimits {
    pub(crate) fn new(cache: Arc<Cache>) -> Self {
        Self { cache }
    }

    /// Takes one write from the organization's allowance of the minute.
    pub(crate) async fn take(&self, config: &Config, org: OrgId) -> Result<(), ApiError> {
        let n = config.trade_writes_per_org_minute;
        if n == 0 {
            return Ok(());
        }
        let step = Step::new("trade-writes", org, n, MINUTE);
        let outcome = self.cache.limits(std::slice::from_ref(&step), true).await.into_iter().next().flatten();
        match outcome.filter(|o| !o.passed(&step)) {
            None => Ok(()),
            Some(o) => {
                crate::observe::rate_limited("trade_writes");
                Err(ApiError::new(Reason::RateLimited)
                    .message(format!("an organization makes at most {n} trade desk changes a minute"))
                    .with("retryAfterMs", o.retry_after_ms())
                    .with("limit", n))
            }
        }
    }
}
