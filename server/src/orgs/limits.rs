//! Limits on invitations, which send mail to any address with a name the
//! inviter chooses: per inviter (an hour), per organization (a day) and per
//! recipient address (a day, whichever organizations invite it). Shared by
//! every replica through the cache, like the other limits.

use std::sync::Arc;
use std::time::Duration;

use trellis_schema::ids::{OrgId, UserId};
use trellis_schema::{ApiError, Reason};

use crate::cache::Cache;
use crate::cache::limits::Step;
use crate::config::Config;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

pub(crate) struct InviteLimits {
    cache: Arc<Cache>,
}

impl InviteLimits {
    pub(crate) fn new(cache: Arc<Cache>) -> Self {
        Self { cache }
    }

    /// Takes one invitation from each allowance, or none when one of them is
    /// spent (a refused invitation costs nothing): one atomic pass.
    pub(crate) async fn take(
        &self,
        config: &Config,
        inviter: UserId,
        org: OrgId,
        recipient: &str,
    ) -> Result<(), ApiError> {
        let limits = [
            (config.invite_rate_per_inviter, Step::new("inviter", inviter, config.invite_rate_per_inviter, HOUR)),
            (config.invite_rate_per_org, Step::new("org-invites", org, config.invite_rate_per_org, DAY)),
            (config.invite_rate_per_recipient, Step::new("invitee", recipient, config.invite_rate_per_recipient, DAY)),
        ];
        let pers = ["hour from one member", "day from one organization", "day to one address"];
        let (pers, steps): (Vec<&str>, Vec<Step>) =
            limits.into_iter().zip(pers).filter(|((n, _), _)| *n > 0).map(|((_, s), per)| (per, s)).unzip();
        if steps.is_empty() {
            return Ok(());
        }
        let outcomes = self.cache.limits(&steps, true).await;
        for ((step, per), outcome) in steps.iter().zip(pers).zip(outcomes) {
            if let Some(o) = outcome.filter(|o| !o.passed(step)) {
                crate::observe::rate_limited("invitations");
                return Err(ApiError::new(Reason::RateLimited)
                    .message(format!("too many invitations: at most {} per {per}", step.n))
                    .with("retryAfterMs", o.retry_after_ms())
                    .with("limit", step.n));
            }
        }
        Ok(())
    }
}
