//! What a call can fail with: [`Error`], typed by the procedure's own reasons.
//!
//! An answer from the server is [`Error::Api`]: a category ([`ErrorCode`]), a
//! reason ([`Failure`]: one of the procedure's own reasons, or one any call can
//! meet), the message, the whole `data` object and the request id that names
//! the call in the server's logs. Everything else (no connection, a time-out,
//! an HTTP status without a JSON-RPC answer, an answer that cannot be read) has
//! a variant of its own.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use trellis_schema::{ErrorCode, ErrorReason, Reason};

/// Why a call failed. `R` is the procedure's own reason enum
/// (`Procedure::Reason`), e.g. [`trellis_schema::auth::LoginReason`].
#[derive(Debug)]
pub enum Error<R> {
    /// The server answered with a JSON-RPC error.
    Api(ApiFailure<R>),
    /// No answer: the connection could not be made or broke.
    Connection(reqwest::Error),
    /// No answer within the call's time limit.
    Timeout,
    /// An HTTP status other than success, without a JSON-RPC error to explain it.
    Http {
        status: u16,
        /// From the `x-request-id` response header.
        request_id: Option<String>,
    },
    /// The answer could not be read as the procedure's result, or was missing.
    Decode { message: String, request_id: Option<String> },
    /// The params could not be serialized.
    Encode(serde_json::Error),
}

/// The reason of an API error, seen from the procedure that was called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<R> {
    /// One of the procedure's own reasons (`Procedure::Reason`).
    Own(R),
    /// A reason any call can meet (access, validation, limits, faults).
    Common(Reason),
    /// A reason this client does not know (a newer server, or none sent): the
    /// wire string.
    Unknown(String),
}

/// A JSON-RPC error answered by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure<R> {
    /// The category, from the JSON-RPC `code`.
    pub code: ErrorCode,
    /// The precise cause, from `data.reason`.
    pub reason: Failure<R>,
    pub message: String,
    /// The whole `data` object (`reason`, `requestId`, `fields`, `retryAfterMs`, ...).
    pub data: Value,
    /// `data.requestId`, or the `x-request-id` response header.
    pub request_id: Option<String>,
}

impl<R: ErrorReason> Failure<R> {
    /// The reason as the shared [`Reason`] enum (`None` when unknown).
    pub fn reason(&self) -> Option<Reason> {
        match *self {
            Self::Own(r) => Some(r.reason()),
            Self::Common(r) => Some(r),
            Self::Unknown(_) => None,
        }
    }

    /// The wire string, e.g. `"INVALID_CREDENTIALS"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Own(r) => r.reason().as_str(),
            Self::Common(r) => r.as_str(),
            Self::Unknown(s) => s,
        }
    }

    /// Reads a wire reason: the procedure's own reason when it is one of them.
    pub(crate) fn from_wire(wire: &str) -> Self {
        match Reason::from_wire(wire) {
            Some(reason) => Self::from_reason(reason),
            None => Self::Unknown(wire.to_owned()),
        }
    }

    pub(crate) fn from_reason(reason: Reason) -> Self {
        match R::ALL.iter().find(|own| own.reason() == reason) {
            Some(own) => Self::Own(*own),
            None => Self::Common(reason),
        }
    }

    /// The same reason, seen from another procedure.
    pub fn widen<R2: ErrorReason>(self) -> Failure<R2> {
        match self {
            Self::Own(r) => Failure::from_reason(r.reason()),
            Self::Common(r) => Failure::from_reason(r),
            Self::Unknown(s) => Failure::Unknown(s),
        }
    }
}

impl<R: ErrorReason> fmt::Display for Failure<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<R: ErrorReason> Error<R> {
    /// The API failure, when the server answered with an error.
    pub fn api(&self) -> Option<&ApiFailure<R>> {
        match self {
            Self::Api(failure) => Some(failure),
            _ => None,
        }
    }

    /// The error category, when the server answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        self.api().map(|a| a.code)
    }

    /// The precise reason, when the server answered with an error.
    pub fn reason(&self) -> Option<&Failure<R>> {
        self.api().map(|a| &a.reason)
    }

    /// The id naming the call in the server's logs, when there was an answer.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(a) => a.request_id.as_deref(),
            Self::Http { request_id, .. } | Self::Decode { request_id, .. } => request_id.as_deref(),
            Self::Connection(_) | Self::Timeout | Self::Encode(_) => None,
        }
    }

    /// Whether trying again later may succeed: no connection, a time-out,
    /// TOO_MANY_REQUESTS or UNAVAILABLE, HTTP 429/502/503/504.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connection(_) | Self::Timeout => true,
            Self::Api(a) => matches!(a.code, ErrorCode::TooManyRequests | ErrorCode::Unavailable),
            Self::Http { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Self::Decode { .. } | Self::Encode(_) => false,
        }
    }

    /// How long the server asked to wait (`data.retryAfterMs`).
    pub fn retry_after(&self) -> Option<Duration> {
        let ms = self.api()?.data.get("retryAfterMs")?.as_u64()?;
        Some(Duration::from_millis(ms))
    }

    /// The same error, seen from another procedure (its own reasons are
    /// re-read against `R2`'s).
    pub fn widen<R2: ErrorReason>(self) -> Error<R2> {
        match self {
            Self::Api(a) => Error::Api(ApiFailure {
                code: a.code,
                reason: a.reason.widen(),
                message: a.message,
                data: a.data,
                request_id: a.request_id,
            }),
            Self::Connection(e) => Error::Connection(e),
            Self::Timeout => Error::Timeout,
            Self::Http { status, request_id } => Error::Http { status, request_id },
            Self::Decode { message, request_id } => Error::Decode { message, request_id },
            Self::Encode(e) => Error::Encode(e),
        }
    }

    /// Builds the error from a JSON-RPC error object.
    pub(crate) fn from_wire(wire: WireError, header_request_id: Option<String>) -> Self {
        let data = wire.data;
        let reason =
            data.get("reason").and_then(Value::as_str).map_or(Failure::Unknown(String::new()), Failure::from_wire);
        // An unknown number: the category of the reason, else INTERNAL.
        let code = ErrorCode::from_number(wire.code)
            .unwrap_or_else(|| reason.reason().map_or(ErrorCode::Internal, Reason::code));
        let request_id = data.get("requestId").and_then(Value::as_str).map(str::to_owned).or(header_request_id);
        Self::Api(ApiFailure { code, reason, message: wire.message, data, request_id })
    }

    /// An API error made on the client's side (no request id).
    pub(crate) fn from_reason(reason: Reason, message: &str) -> Self {
        Self::Api(ApiFailure {
            code: reason.code(),
            reason: Failure::from_reason(reason),
            message: message.to_owned(),
            data: serde_json::json!({ "reason": reason.as_str() }),
            request_id: None,
        })
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() { Self::Timeout } else { Self::Connection(e) }
    }
}

/// A JSON-RPC error object as it comes over the wire.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct WireError {
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Value,
}

impl<R: ErrorReason> fmt::Display for ApiFailure<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code.name(), self.reason, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " [request {id}]")?;
        }
        Ok(())
    }
}

impl<R: ErrorReason> fmt::Display for Error<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(a) => a.fmt(f),
            Self::Connection(e) => write!(f, "connection failed: {e}"),
            Self::Timeout => f.write_str("no answer in time"),
            Self::Http { status, request_id: Some(id) } => write!(f, "HTTP status {status} [request {id}]"),
            Self::Http { status, request_id: None } => write!(f, "HTTP status {status}"),
            Self::Decode { message, .. } => write!(f, "unreadable answer: {message}"),
            Self::Encode(e) => write!(f, "params could not be serialized: {e}"),
        }
    }
}

impl<R: ErrorReason + fmt::Debug> std::error::Error for Error<R> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connection(e) => Some(e),
            Self::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl<R: ErrorReason + fmt::Debug> std::error::Error for ApiFailure<R> {}

/// Why [`crate::ClientBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid URL {0:?}: {1}")]
    Url(String, String),
    #[error("invalid header {0:?}: {1}")]
    Header(String, String),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use trellis_schema::auth::LoginReason;
    use trellis_schema::error::NoReason;

    use super::*;

    fn wire(code: i64, reason: &str) -> WireError {
        WireError { code, message: "m".into(), data: json!({"reason": reason, "requestId": "r1"}) }
    }

    #[test]
    fn own_and_common_reasons_are_told_apart() {
        let e = Error::<LoginReason>::from_wire(wire(-32001, "INVALID_CREDENTIALS"), None);
        assert_eq!(e.reason(), Some(&Failure::Own(LoginReason::InvalidCredentials)));
        assert_eq!(e.code(), Some(ErrorCode::Unauthenticated));
        assert_eq!(e.request_id(), Some("r1"));
        let e = Error::<LoginReason>::from_wire(wire(-32029, "RATE_LIMITED"), Some("h".into()));
        assert_eq!(e.reason(), Some(&Failure::Common(Reason::RateLimited)));
        assert!(e.is_transient());
        let widened: Error<NoReason> =
            Error::<LoginReason>::from_wire(wire(-32001, "INVALID_CREDENTIALS"), None).widen();
        assert_eq!(widened.reason(), Some(&Failure::Common(Reason::InvalidCredentials)));
    }

    #[test]
    fn unknown_reasons_and_codes_are_kept() {
        let e = Error::<NoReason>::from_wire(wire(-1, "SOMETHING_NEW"), Some("h".into()));
        assert_eq!(e.reason(), Some(&Failure::Unknown("SOMETHING_NEW".into())));
        assert_eq!(e.code(), Some(ErrorCode::Internal));
        assert_eq!(e.to_string(), "INTERNAL (SOMETHING_NEW): m [request r1]");
    }
}
