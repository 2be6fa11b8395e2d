//! `mfa.*`: a second factor (TOTP, RFC 6238) and its recovery codes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Empty;
use crate::values::{OneTimeCode, Password};
use crate::{procedure, reasons};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollTotpResult {
    /// The shared secret, base32, for typing into an authenticator app.
    pub secret: String,
    /// The same secret as an `otpauth://` URL, for a QR code.
    pub otpauth_url: String,
}

/// Proof that the caller is the account's owner right now, for changes to
/// how the account is protected: the current password, or else a sign-in
/// (with the password, a code or a second factor; refreshing does not
/// count) within the last 5 minutes (the server's `TRELLIS_STEP_UP_SECS`).
/// Without either the call answers REAUTHENTICATION_REQUIRED; a wrong
/// password is INVALID_CREDENTIALS and counts as a failed sign-in (the
/// account locks after too many, ACCOUNT_LOCKED).
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollTotpParams {
    /// The account's current password; not needed within 5 minutes of signing in.
    #[serde(default)]
    #[ts(optional)]
    pub current_password: Option<Password>,
}

reasons! {
    /// Why `mfa.enrollTotp` can refuse.
    pub enum EnrollTotpReason { AlreadyExists, ReauthenticationRequired, InvalidCredentials, AccountLocked }
}

procedure! {
    /// Starts TOTP enrolment: a new secret, not in force until `mfa.confirmTotp`. Needs the current password, or a sign-in within the last 5 minutes.
    EnrollTotp {
        method: "mfa.enrollTotp",
        kind: Mutation,
        access: User,
        params: EnrollTotpParams,
        output: EnrollTotpResult,
        reasons: EnrollTotpReason,
        example: EnrollTotpParams {
            current_password: Some(Password::try_from("plum-orbit-velvet-42".to_owned()).expect("a password")),
        },
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
    /// Why `mfa.confirmTotp` can refuse.
    pub enum MfaCodeReason { OtpInvalid, InvalidTransition }
}

/// A code, and the step-up proof of [`EnrollTotpParams`].
#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisableMfaParams {
    /// A current code from the authenticator app, or a recovery code.
    pub code: OneTimeCode,
    /// The account's current password; not needed within 5 minutes of signing in.
    #[serde(default)]
    #[ts(optional)]
    pub current_password: Option<Password>,
}

reasons! {
    /// Why `mfa.disable` can refuse.
    pub enum DisableMfaReason { OtpInvalid, InvalidTransition, ReauthenticationRequired, InvalidCredentials, AccountLocked }
}

procedure! {
    /// Turns MFA on with a first code from the app; returns the recovery codes.
    ConfirmTotp {
        method: "mfa.confirmTotp",
        kind: Mutation,
        access: User,
        params: CodeParams,
        output: ConfirmTotpResult,
        reasons: MfaCodeReason,
        example: CodeParams { code: OneTimeCode::parse("492817").expect("a code") },
    }
}

procedure! {
    /// Turns MFA off, with a current code or a recovery code, and the current password or a sign-in within the last 5 minutes.
    Disable {
        method: "mfa.disable",
        kind: Mutation,
        access: User,
        params: DisableMfaParams,
        output: Empty,
        reasons: DisableMfaReason,
        example: DisableMfaParams {
            code: OneTimeCode::parse("492817").expect("a code"),
            current_password: Some(Password::try_from("plum-orbit-velvet-42".to_owned()).expect("a password")),
        },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_mfa {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::mfa::EnrollTotp,
            $crate::mfa::ConfirmTotp,
            $crate::mfa::Disable,
        ]; $($rest)* }
    };
}
