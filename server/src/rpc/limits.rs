//! Per-call rate limiting. Every call (each entry of a batch too) passes
//! through [`CallLimiter::check`] after its credentials are known and before
//! its permission check.

use trellis_schema::ApiError;

use super::context::{Principal, RequestMeta};

pub(crate) trait CallLimiter: Send + Sync {
    /// `Err` with TOO_MANY_REQUESTS (and `retryAfterMs`) to refuse the call.
    fn check(&self, meta: &RequestMeta, principal: Option<&Principal>, method: &str) -> Result<(), ApiError>;
}

/// The limiter until per-key and per-account limits are configured: lets
/// every call through.
pub(crate) struct NoLimit;

impl CallLimiter for NoLimit {
    fn check(&self, _: &RequestMeta, _: Option<&Principal>, _: &str) -> Result<(), ApiError> {
        Ok(())
    }
}
