//! The error model: a category [`ErrorCode`], a precise [`Reason`], and the
//! wire shape `{ code, message, data: { reason, requestId, ... } }`.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Error categories. The numbers follow tRPC's convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    Internal,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    PreconditionFailed,
    Locked,
    TooManyRequests,
    Unavailable,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        Self::ParseError,
        Self::InvalidRequest,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::Internal,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::PreconditionFailed,
        Self::Locked,
        Self::TooManyRequests,
        Self::Unavailable,
    ];

    /// The JSON-RPC `code` number.
    pub const fn number(self) -> i32 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::Internal => -32603,
            Self::Unauthenticated => -32001,
            Self::Forbidden => -32003,
            Self::NotFound => -32004,
            Self::Conflict => -32009,
            Self::PreconditionFailed => -32012,
            Self::Locked => -32023,
            Self::TooManyRequests => -32029,
            Self::Unavailable => -32050,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| i64::from(c.number()) == n)
    }

    /// The category name, as it appears in generated code (`UNAUTHENTICATED`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::ParseError => "PARSE_ERROR",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::MethodNotFound => "METHOD_NOT_FOUND",
            Self::InvalidParams => "INVALID_PARAMS",
            Self::Internal => "INTERNAL",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::Locked => "LOCKED",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

macro_rules! define_reasons {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal => $code:ident, $message:literal; )*) => {
        /// Every precise cause of an error, as the stable string in `data.reason`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
        pub enum Reason {
            $( $(#[$doc])* #[serde(rename = $wire)] $variant, )*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// The category this reason belongs to.
            pub const fn code(self) -> ErrorCode {
                match self { $( Reason::$variant => ErrorCode::$code, )* }
            }

            /// The wire string, e.g. `"TOKEN_REUSED"`.
            pub const fn as_str(self) -> &'static str {
                match self { $( Reason::$variant => $wire, )* }
            }

            /// A message for people, used when the handler gives none.
            pub const fn default_message(self) -> &'static str {
                match self { $( Reason::$variant => $message, )* }
            }

            pub fn from_wire(s: &str) -> Option<Reason> {
                match s { $( $wire => Some(Reason::$variant), )* _ => None }
            }
        }
    };
}

define_reasons! {
    ParseError = "PARSE_ERROR" => ParseError, "Parse error";
    InvalidRequest = "INVALID_REQUEST" => InvalidRequest, "Invalid Request";
    BatchTooLarge = "BATCH_TOO_LARGE" => InvalidRequest, "the batch has more calls than the server accepts";
    BodyTooLarge = "BODY_TOO_LARGE" => InvalidRequest, "the request body is larger than the server accepts";
    NestingTooDeep = "NESTING_TOO_DEEP" => InvalidRequest, "the request nests arrays or objects deeper than the server accepts";
    MethodNotFound = "METHOD_NOT_FOUND" => MethodNotFound, "Method not found";
    Validation = "VALIDATION" => InvalidParams, "invalid params";
    Internal = "INTERNAL" => Internal, "internal error";
    CredentialsMissing = "CREDENTIALS_MISSING" => Unauthenticated, "this method needs credentials";
    InvalidCredentials = "INVALID_CREDENTIALS" => Unauthenticated, "invalid e-mail or password";
    TokenExpired = "TOKEN_EXPIRED" => Unauthenticated, "the token has expired";
    TokenInvalid = "TOKEN_INVALID" => Unauthenticated, "the token is not valid";
    TokenReused = "TOKEN_REUSED" => Unauthenticated, "the refresh token was already used; its session has been ended";
    ApiKeyInvalid = "API_KEY_INVALID" => Unauthenticated, "the API key is not valid";
    ApiKeyExpired = "API_KEY_EXPIRED" => Unauthenticated, "the API key has expired";
    ApiKeyRevoked = "API_KEY_REVOKED" => Unauthenticated, "the API key has been revoked";
    MfaRequired = "MFA_REQUIRED" => Unauthenticated, "a one-time code is required";
    EmailNotVerified = "EMAIL_NOT_VERIFIED" => Unauthenticated, "the e-mail address is not verified";
    PasswordExpired = "PASSWORD_EXPIRED" => Unauthenticated, "the password has expired and must be changed";
    MissingPermission = "MISSING_PERMISSION" => Forbidden, "a permission is missing";
    MissingScope = "MISSING_SCOPE" => Forbidden, "the API key lacks a scope";
    NotAMember = "NOT_A_MEMBER" => Forbidden, "not a member of the organization";
    AccountDisabled = "ACCOUNT_DISABLED" => Forbidden, "the account is disabled";
    AdminRequired = "ADMIN_REQUIRED" => Forbidden, "this method is for system administrators";
    InvitationMismatch = "INVITATION_MISMATCH" => Forbidden, "the invitation is for another e-mail address";
    /// The invitation was revoked, or the member who sent it may no longer
    /// grant its role (left, disabled, or now below it): ask for a new one.
    InvitationRevoked = "INVITATION_REVOKED" => PreconditionFailed, "the invitation is no longer valid: it was revoked, or its sender may no longer grant its role";
    ReauthenticationRequired = "REAUTHENTICATION_REQUIRED" => Forbidden, "this change needs the current password (currentPassword) or a recent sign-in";
    NotFound = "NOT_FOUND" => NotFound, "not found";
    VersionConflict = "VERSION_CONFLICT" => Conflict, "the record was changed by someone else";
    AlreadyExists = "ALREADY_EXISTS" => Conflict, "it already exists";
    InvalidTransition = "INVALID_TRANSITION" => Conflict, "that change is not allowed in the current state";
    /// A trade desk move by the party whose turn it is not (the other party
    /// moved last, or must answer first).
    NotYourTurn = "NOT_YOUR_TURN" => Conflict, "it is the other party's turn";
    /// A deal's approver must not be the member who accepted it (four eyes).
    SelfApproval = "SELF_APPROVAL" => Forbidden, "the member who accepted the deal may not approve it";
    /// A cap on how many of something may exist is reached (`data.limit`),
    /// such as the webhooks of an organization.
    LimitReached = "LIMIT_REACHED" => Conflict, "the limit on how many may exist is reached";
    PasswordPolicy = "PASSWORD_POLICY" => PreconditionFailed, "the password does not meet the policy";
    PasswordReused = "PASSWORD_REUSED" => PreconditionFailed, "the password was used recently";
    OtpInvalid = "OTP_INVALID" => PreconditionFailed, "the code is not valid";
    OtpExhausted = "OTP_EXHAUSTED" => PreconditionFailed, "the code has no attempts left";
    TokenUsed = "TOKEN_USED" => PreconditionFailed, "the token was already used";
    AccountLocked = "ACCOUNT_LOCKED" => Locked, "the account is locked";
    RateLimited = "RATE_LIMITED" => TooManyRequests, "too many requests";
    /// Subscriptions per connection or per user are capped (the server's
    /// `TRELLIS_MAX_SUBSCRIPTIONS_PER_CONNECTION` / `_PER_USER`).
    TooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS" => TooManyRequests, "too many subscriptions are open";
    /// The last item of a subscription whose subscriber did not read its
    /// items as fast as they came: subscribe again, resuming after the last
    /// item received.
    SubscriptionLagged = "SUBSCRIPTION_LAGGED" => Unavailable, "the subscriber fell behind; subscribe again after the last item received";
    /// The last item of a subscription whose session was ended (signed out,
    /// revoked, password changed).
    SessionEnded = "SESSION_ENDED" => Unauthenticated, "the session has ended";
    DatabaseUnavailable = "DATABASE_UNAVAILABLE" => Unavailable, "the database is unavailable";
    CacheUnavailable = "CACHE_UNAVAILABLE" => Unavailable, "the cache is unavailable";
    ShuttingDown = "SHUTTING_DOWN" => Unavailable, "the server is shutting down";
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A procedure's own error reasons: a subset of [`Reason`].
pub trait ErrorReason: Copy + Send + Sync + 'static {
    const ALL: &'static [Self];
    fn reason(self) -> Reason;
}

/// Declares a procedure's reason enum: each variant names a [`Reason`].
#[macro_export]
macro_rules! reasons {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ::serde::Serialize, ::serde::Deserialize, ::ts_rs::TS, ::schemars::JsonSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),* }

        impl $crate::error::ErrorReason for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),*];
            fn reason(self) -> $crate::error::Reason {
                match self { $(Self::$variant => $crate::error::Reason::$variant),* }
            }
        }
    };
}

/// For procedures whose only errors are the ones every call can meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub enum NoReason {}

impl ErrorReason for NoReason {
    const ALL: &'static [Self] = &[];
    fn reason(self) -> Reason {
        match self {}
    }
}

/// One invalid field of the params: `data.fields[i]` of a VALIDATION error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
pub struct FieldError {
    /// Where the field is, e.g. `email` or `quality.grade`.
    pub path: String,
    pub message: String,
}

/// An error as handlers raise it and clients read it, without the JSON-RPC
/// envelope. `data` holds the reason-specific fields (`retryAfterMs`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub reason: Reason,
    pub message: Cow<'static, str>,
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(reason: Reason) -> Self {
        Self { reason, message: Cow::Borrowed(reason.default_message()), data: serde_json::Map::new() }
    }

    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.reason.code()
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = match fields.first() {
            Some(f) if fields.len() == 1 => format!("invalid params: {}: {}", f.path, f.message),
            _ => "invalid params".to_owned(),
        };
        let fields = serde_json::to_value(fields).unwrap_or_default();
        Self::new(Reason::Validation).message(message).with("fields", fields)
    }

    /// The JSON-RPC error object, with `data.reason` and `data.requestId`.
    pub fn to_error_object(&self, request_id: &str) -> serde_json::Value {
        let mut data = serde_json::Map::with_capacity(self.data.len() + 2);
        data.insert("reason".into(), self.reason.as_str().into());
        data.insert("requestId".into(), request_id.into());
        for (k, v) in &self.data {
            data.insert(k.clone(), v.clone());
        }
        serde_json::json!({
            "code": self.code().number(),
            "message": self.message,
            "data": data,
        })
    }
}

impl From<Reason> for ApiError {
    fn from(reason: Reason) -> Self {
        Self::new(reason)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code().name(), self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}
