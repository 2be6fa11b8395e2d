//! `auth.*`: accounts, sign-in and the tokens that prove it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::NoReason;
use crate::ids::UserId;
use crate::orgs::Membership;
pub use crate::users::User;
use crate::values::{DisplayName, Email, NewPassword, OneTimeCode, Password, Token};
use crate::{Empty, procedure, reasons};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub enum TokenType {
    Bearer,
}

/// What a successful sign-in or refresh returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// A JWT for the `Authorization: Bearer` header.
    pub access_token: String,
    /// Single use: `auth.refresh` returns a new one each time.
    pub refresh_token: String,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: User,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterParams {
    pub email: Email,
    pub password: NewPassword,
    #[serde(default)]
    #[ts(optional)]
    pub display_name: Option<DisplayName>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResult {
    pub user_id: UserId,
    pub verification_required: bool,
}

reasons! {
    /// Why `auth.register` can refuse.
    pub enum RegisterReason { PasswordPolicy }
}

procedure! {
    /// Creates an account and e-mails a verification link. Answers the same whether or not the address is already registered.
    Register {
        method: "auth.register",
        kind: Mutation,
        access: Public,
        params: RegisterParams,
        output: RegisterResult,
        reasons: RegisterReason,
        example: RegisterParams {
            email: Email::parse("ann@example.com").expect("an address"),
            password: NewPassword::parse("plum-orbit-velvet-42".into()).expect("a new password"),
            display_name: Some(DisplayName::parse("Ann Lee").expect("a name")),
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyEmailParams {
    /// The token from the verification e-mail.
    pub token: Token,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyEmailResult {
    pub verified: bool,
}

reasons! {
    /// Why `auth.verifyEmail` can refuse.
    pub enum TokenReason { TokenInvalid, TokenExpired, TokenUsed }
}

procedure! {
    /// Marks the address verified, with the token from the verification e-mail.
    VerifyEmail {
        method: "auth.verifyEmail",
        kind: Mutation,
        access: Public,
        params: VerifyEmailParams,
        output: VerifyEmailResult,
        reasons: TokenReason,
        example: VerifyEmailParams {
            token: Token::try_from("FRnlKhKzoPbkZs1ZJ9Ve6cnTtV9wsPBLjLIn8qI_eSQ".to_owned()).expect("a token"),
        },
    }
}

/// Params that name only an address.
#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailParams {
    pub email: Email,
}

procedure! {
    /// Sends a new verification e-mail (superseding the last). Answers the same whether or not the account exists.
    ResendVerification {
        method: "auth.resendVerification",
        kind: Mutation,
        access: Public,
        params: EmailParams,
        output: Empty,
        reasons: NoReason,
        example: EmailParams { email: Email::parse("ann@example.com").expect("an address") },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginParams {
    pub email: Email,
    pub password: Password,
    /// With MFA on: a code from the authenticator app, or a recovery code.
    #[serde(default)]
    #[ts(optional)]
    pub otp: Option<OneTimeCode>,
}

reasons! {
    /// Why `auth.login` can refuse.
    pub enum LoginReason {
        InvalidCredentials,
        AccountDisabled,
        AccountLocked,
        MfaRequired,
        OtpInvalid,
        EmailNotVerified,
        PasswordExpired,
    }
}

procedure! {
    /// Signs in with e-mail and password (and a one-time code when MFA is on); starts a session.
    Login {
        method: "auth.login",
        kind: Mutation,
        access: Public,
        params: LoginParams,
        output: Tokens,
        reasons: LoginReason,
        example: LoginParams {
            email: Email::parse("ann@example.com").expect("an address"),
            password: Password::try_from("plum-orbit-velvet-42".to_owned()).expect("a password"),
            otp: None,
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshParams {
    pub refresh_token: Token,
}

reasons! {
    /// Why `auth.refresh` can refuse.
    pub enum RefreshReason { TokenInvalid, TokenExpired, TokenReused, AccountDisabled }
}

procedure! {
    /// Trades a refresh token for new tokens. A reused refresh token ends its whole session.
    Refresh {
        method: "auth.refresh",
        kind: Mutation,
        access: Public,
        params: RefreshParams,
        output: Tokens,
        reasons: RefreshReason,
        example: RefreshParams {
            refresh_token: Token::try_from("rt_BNYYBWV8aaPP6OU2XPjfq0N8JFroOFv5z18pBjvoJYQ".to_owned())
                .expect("a token"),
        },
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogoutParams {
    /// End every session of the user, not only this one.
    #[serde(default)]
    #[ts(optional)]
    pub all_sessions: Option<bool>,
}

procedure! {
    /// Ends the caller's session (or all of them).
    Logout {
        method: "auth.logout",
        kind: Mutation,
        access: User,
        params: LogoutParams,
        output: Empty,
        reasons: NoReason,
        example: LogoutParams { all_sessions: Some(true) },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResult {
    pub user: User,
    pub memberships: Vec<Membership>,
}

procedure! {
    /// The signed-in user and the organizations they belong to.
    Me {
        method: "auth.me",
        kind: Query,
        access: User,
        params: Empty,
        output: MeResult,
        reasons: NoReason,
    }
}

procedure! {
    /// E-mails a 6-digit sign-in code (10 minutes, 3 attempts). Answers the same whether or not the account exists.
    RequestLoginCode {
        method: "auth.requestLoginCode",
        kind: Mutation,
        access: Public,
        params: EmailParams,
        output: Empty,
        reasons: NoReason,
        example: EmailParams { email: Email::parse("ann@example.com").expect("an address") },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginWithCodeParams {
    pub email: Email,
    /// The 6-digit code from the e-mail.
    pub code: OneTimeCode,
    /// With MFA on: a code from the authenticator app, or a recovery code.
    #[serde(default)]
    #[ts(optional)]
    pub otp: Option<OneTimeCode>,
}

reasons! {
    /// Why `auth.loginWithCode` can refuse.
    pub enum LoginWithCodeReason { OtpInvalid, OtpExhausted, AccountDisabled, AccountLocked, MfaRequired }
}

procedure! {
    /// Signs in with the code from `auth.requestLoginCode`; starts a session and marks the address verified.
    LoginWithCode {
        method: "auth.loginWithCode",
        kind: Mutation,
        access: Public,
        params: LoginWithCodeParams,
        output: Tokens,
        reasons: LoginWithCodeReason,
        example: LoginWithCodeParams {
            email: Email::parse("ann@example.com").expect("an address"),
            code: OneTimeCode::parse("492817").expect("a code"),
            otp: None,
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordParams {
    pub current_password: Password,
    pub new_password: NewPassword,
}

reasons! {
    /// Why `auth.changePassword` can refuse.
    pub enum ChangePasswordReason { InvalidCredentials, AccountLocked, PasswordPolicy, PasswordReused }
}

procedure! {
    /// Changes the password; the user's other sessions end. A wrong current password counts as a failed sign-in (the account locks after too many).
    ChangePassword {
        method: "auth.changePassword",
        kind: Mutation,
        access: User,
        params: ChangePasswordParams,
        output: Empty,
        reasons: ChangePasswordReason,
        example: ChangePasswordParams {
            current_password: Password::try_from("plum-orbit-velvet-42".to_owned()).expect("a password"),
            new_password: NewPassword::parse("ferry-lantern-quiet-7".into()).expect("a new password"),
        },
    }
}

procedure! {
    /// E-mails a password reset link (30 minutes, single use). Answers the same whether or not the account exists.
    RequestPasswordReset {
        method: "auth.requestPasswordReset",
        kind: Mutation,
        access: Public,
        params: EmailParams,
        output: Empty,
        reasons: NoReason,
        example: EmailParams { email: Email::parse("ann@example.com").expect("an address") },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetPasswordParams {
    /// The token from the reset e-mail.
    pub token: Token,
    pub new_password: NewPassword,
}

reasons! {
    /// Why `auth.resetPassword` can refuse.
    pub enum ResetPasswordReason { TokenInvalid, TokenExpired, TokenUsed, PasswordPolicy, PasswordReused }
}

procedure! {
    /// Sets a new password with the token from the reset e-mail; every session of the account ends.
    ResetPassword {
        method: "auth.resetPassword",
        kind: Mutation,
        access: Public,
        params: ResetPasswordParams,
        output: Empty,
        reasons: ResetPasswordReason,
        example: ResetPasswordParams {
            token: Token::try_from("FRnlKhKzoPbkZs1ZJ9Ve6cnTtV9wsPBLjLIn8qI_eSQ".to_owned()).expect("a token"),
            new_password: NewPassword::parse("ferry-lantern-quiet-7".into()).expect("a new password"),
        },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_auth {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::auth::Register,
            $crate::auth::Login,
            $crate::auth::Refresh,
            $crate::auth::Logout,
            $crate::auth::Me,
            $crate::auth::VerifyEmail,
            $crate::auth::ResendVerification,
            $crate::auth::RequestLoginCode,
            $crate::auth::LoginWithCode,
            $crate::auth::ChangePassword,
            $crate::auth::RequestPasswordReset,
            $crate::auth::ResetPassword,
        ]; $($rest)* }
    };
}
