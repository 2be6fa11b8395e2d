//! `mfa.*`: TOTP enrolment, confirmation with recovery codes, and turning it off.

mod confirm;
mod disable;
mod enroll;
pub(crate) mod store;
