//! `admin.*`: what system administrators do to accounts, and the
//! command-line tool that makes the first administrator.

pub mod create;
mod get_user;
mod list_users;
mod set_user_disabled;
mod store;
mod unlock_user;
