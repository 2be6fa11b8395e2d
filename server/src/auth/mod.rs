//! `auth.*`: accounts, sign-in, sessions and their tokens, recovery,
//! password policy, lockout, one-time codes and MFA.

pub(crate) mod accounts;
mod change_password;
pub(crate) mod codes;
mod login;
mod login_with_code;
mod logout;
mod me;
pub(crate) mod password;
pub(crate) mod policy;
mod refresh;
mod register;
mod request_login_code;
mod request_password_reset;
mod resend_verification;
mod reset_password;
pub(crate) mod revocation;
pub(crate) mod sealed;
mod session;
pub(crate) mod session_ends;
pub(crate) mod signin;
pub(crate) mod step_up;
pub(crate) mod store;
pub(crate) mod throttle;
pub(crate) mod tokens;
pub(crate) mod totp;
mod verify_email;

/// Accounts and sign-in, as the application state holds them.
pub(crate) struct Auth {
    pub hasher: password::PasswordHasherPool,
    pub tokens: tokens::TokenKeys,
    /// Sessions ended (here or on another replica) whose tokens still live.
    pub revoked: std::sync::Arc<revocation::RevokedSessions>,
    pub throttle: std::sync::Arc<throttle::AuthThrottle>,
    pub policy: policy::PasswordPolicy,
    pub codes: codes::CodeHasher,
    /// Seals secrets the server must read back (TOTP secrets).
    pub secrets: sealed::SecretBox,
}
