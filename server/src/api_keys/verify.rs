use trellis_schema::api_keys::{Verify, VerifyParams, VerifyResult};
use trellis_schema::error::NoReason;
use trellis_schema::{ErrorCode, Reason};

use super::secret;
use crate::access::OrgCtx;
use crate::access::keys::verify_key;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Verify {
    /// Valid only for a live key of the organization checked: a key of
    /// another organization is API_KEY_INVALID, like a made-up one.
    async fn handle(ctx: OrgCtx, p: VerifyParams) -> Result<VerifyResult, HandlerError<NoReason>> {
        let org = ctx.org.org_id;
        let not = |reason: Reason| VerifyResult {
            valid: false,
            reason: Some(reason),
            api_key: None,
            remaining_this_minute: None,
        };
        let key = p.key.expose();
        if !secret::well_formed(key) {
            return Ok(not(Reason::ApiKeyInvalid));
        }
        let found = match verify_key(
            &ctx.state.keys,
            &ctx.state.db,
            ctx.state.config.api_key_failures_per_ip,
            &ctx.state.auth.codes.hash("api key", "", key),
            None,
        )
        .await
        {
            Ok(k) if k.org_id == org => k,
            Ok(_) => return Ok(not(Reason::ApiKeyInvalid)),
            // A dependency down or a fault is an error, not an answer about the key.
            Err(e) if matches!(e.code(), ErrorCode::Unavailable | ErrorCode::Internal) => {
                return Err(HandlerError::Common(e));
            }
            Err(e) => return Ok(not(e.reason)),
        };
        let remaining = match found.rate_limit_per_minute {
            Some(n) => Some(ctx.state.keys.remaining(found.id, n).await),
            None => None,
        };
        Ok(VerifyResult {
            valid: true,
            reason: None,
            api_key: Some(found.row.to_api()),
            remaining_this_minute: remaining,
        })
    }
}
