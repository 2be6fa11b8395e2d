//! Limits on invitations, which send mail to any address with a name the
//! inviter chooses: per inviter (an hour), per organization (a day) and per
//! recipient address (a day, whichever organizations invite it). In
//! process, like the other limits.

use std::time::Duration;

use trellis_schema::ids::{OrgId, UserId};
use trellis_schema::{ApiError, Reason};

use crate::access::limiter::{KeyLimiter, Limited};
use crate::config::Config;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Default)]
pub(crate) struct InviteLimits {
    per_inviter: KeyLimiter<UserId>,
    per_org: KeyLimiter<OrgId>,
    per_recipient: KeyLimiter<String>,
}

fn limited(l: &Limited, n: u32, per: &str) -> ApiError {
    ApiError::new(Reason::RateLimited)
        .message(format!("too many invitations: at most {n} per {per}"))
        .with("retryAfterMs", l.retry_after_ms())
        .with("limit", n)
}

impl InviteLimits {
    /// Takes one invitation from each allowance, or none when one of them is
    /// spent (a refused invitation costs nothing).
    pub(crate) fn take(&self, config: &Config, inviter: UserId, org: OrgId, recipient: &str) -> Result<(), ApiError> {
        let recipient = recipient.to_owned();
        let (i, o, r) = (config.invite_rate_per_inviter, config.invite_rate_per_org, config.invite_rate_per_recipient);
        let peek = || -> Result<(), ApiError> {
            if i > 0 {
                self.per_inviter.peek_per(&inviter, i, HOUR).map_err(|l| limited(&l, i, "hour from one member"))?;
            }
            if o > 0 {
                self.per_org.peek_per(&org, o, DAY).map_err(|l| limited(&l, o, "day from one organization"))?;
            }
            if r > 0 {
                self.per_recipient.peek_per(&recipient, r, DAY).map_err(|l| limited(&l, r, "day to one address"))?;
            }
            Ok(())
        };
        peek()?;
        if i > 0 {
            self.per_inviter.check_per(&inviter, i, HOUR).map_err(|l| limited(&l, i, "hour from one member"))?;
        }
        if o > 0 {
            self.per_org.check_per(&org, o, DAY).map_err(|l| limited(&l, o, "day from one organization"))?;
        }
        if r > 0 {
            self.per_recipient.check_per(&recipient, r, DAY).map_err(|l| limited(&l, r, "day to one address"))?;
        }
        Ok(())
    }
}
