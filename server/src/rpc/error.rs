//! How a handler fails: with one of its procedure's own reasons, with a reason
//! any call can meet, or with an internal fault whose detail stays in the log.

use std::borrow::Cow;

use trellis_schema::{ApiError, ErrorReason, Reason};

use crate::db::DbError;

pub(crate) enum HandlerError<R> {
    /// One of the procedure's declared reasons.
    Reason { reason: R, message: Option<Cow<'static, str>>, data: serde_json::Map<String, serde_json::Value> },
    /// A reason every procedure may answer with (validation, unavailable).
    Common(ApiError),
    /// A fault: logged under the request id, answered as INTERNAL.
    Internal(anyhow::Error),
}

impl<R: ErrorReason> HandlerError<R> {
    pub(crate) fn reason(reason: R) -> Self {
        Self::Reason { reason, message: None, data: serde_json::Map::new() }
    }

    pub(crate) fn into_api(self) -> ApiError {
        match self {
            Self::Reason { reason, message, data } => {
                let mut e = ApiError::new(reason.reason());
                if let Some(m) = message {
                    e.message = m;
                }
                e.data = data;
                e
            }
            Self::Common(e) => e,
            Self::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                ApiError::new(Reason::Internal)
            }
        }
    }
}

pub(crate) fn unavailable(reason: Reason, detail: &str) -> ApiError {
    tracing::warn!(%detail, "dependency unavailable");
    ApiError::new(reason).with("retryAfterMs", 1000)
}

impl<R> From<anyhow::Error> for HandlerError<R> {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl<R> From<DbError> for HandlerError<R> {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(detail) => Self::Common(unavailable(Reason::DatabaseUnavailable, &detail)),
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

impl<R> From<diesel::result::Error> for HandlerError<R> {
    fn from(e: diesel::result::Error) -> Self {
        DbError::from(e).into()
    }
}
