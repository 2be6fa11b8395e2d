//! `mfa.*`: a second factor (TOTP, RFC 6238) and its recovery codes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::health::Empty;
use crate::values::OneTimeCode;
use crate::{procedure, reasons};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollTotpResult {
    /// The shared secret, base32, for typing into an authenticator app.
    pub secret: String,
    /// The same secret as an `otpauth://` URL, for a QR code.
    pub otpauth_url: String,
}

reasons! {
    /// Why `mfa.enrollTotp` can refuse.
    pub enum EnrollTotpReason { AlreadyExists }
}

procedure! {
    /// Starts TOTP enrolment: a new secret, not in force until `mfa.confirmTotp`.
    EnrollTotp {
        method: "mfa.enrollTotp",
        kind: Mutation,
        access: crate::Access::User,
        params: Empty,
        output: EnrollTotpResult,
        reasons: EnrollTotpReason,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeParams {
    /// A code from the authenticator app (or, for `mfa.disable`, a recovery code).
    pub code: OneTimeCode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmTotpResult {
    /// Ten single-use codes for when the authenticator is lost. Shown once.
    pub recovery_codes: Vec<String>,
}

reasons! {
    /// Why `mfa.confirmTotp` and `mfa.disable` can refuse.
    pub enum MfaCodeReason { OtpInvalid, InvalidTransition }
}

procedure! {
    /// Turns MFA on with a first code from the app; returns the recovery codes.
    ConfirmTotp {
        method: "mfa.confirmTotp",
        kind: Mutation,
        access: crate::Access::User,
        params: CodeParams,
        output: ConfirmTotpResult,
        reasons: MfaCodeReason,
    }
}

procedure! {
    /// Turns MFA off, with a current code or a recovery code.
    Disable {
        method: "mfa.disable",
        kind: Mutation,
        access: crate::Access::User,
        params: CodeParams,
        output: Empty,
        reasons: MfaCodeReason,
    }
}
