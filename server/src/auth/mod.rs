//! `auth.*`: accounts, sign-in, sessions and their tokens.

mod login;
mod logout;
mod me;
pub(crate) mod password;
mod refresh;
mod register;
pub(crate) mod revocation;
mod session;
pub(crate) mod store;
pub(crate) mod tokens;
