//! `sessions.*`: the signed-in user's sessions.

mod list;
mod revoke;
