//! Access: who is calling and what they may do, beside the transport (which
//! runs it for every call) and below the namespaces (whose handlers receive
//! the context it proves).
//!
//! - [`caller`]: the credentials of a request (`RequestMeta`, `Principal`).
//! - [`rules`]: the check of each access rule, and [`InOrg`]: how what a
//!   call's params name resolves to its organization (each namespace
//!   implements it for the ids of its own objects).
//! - [`context`]: the context of each rule (`PublicCtx`, `UserCtx`,
//!   `OrgCtx`, `AdminCtx`).
//! - [`keys`]: API keys as credentials (lookup, single-flight cache), with
//!   their limits (per key, and unknown keys per address, kept in
//!   [`crate::cache`] so replicas share them) and [`usage`] (calls counted
//!   in memory, written in batches).
//! - [`membership`]: the two questions the rules ask the database: a
//!   member's role, a user's standing.
//!
//! It depends on no namespace.

pub(crate) mod caller;
pub(crate) mod context;
pub(crate) mod keys;
pub(crate) mod membership;
pub(crate) mod rules;
pub(crate) mod usage;

pub(crate) use caller::{Credential, Principal, RequestMeta};
pub(crate) use context::{AdminCtx, Call, OrgAccess, OrgActor, OrgCtx, OrgOrAdminCtx, PublicCtx, UserCtx};
pub(crate) use rules::{Grant, InOrg};
use trellis_schema::ApiError;

use crate::db::DbError;
use crate::rpc::error::HandlerError;

/// A database fault as the API answers it (UNAVAILABLE or INTERNAL).
pub(crate) fn db_error(e: DbError) -> ApiError {
    HandlerError::<trellis_schema::error::NoReason>::from(e).into_api()
}
