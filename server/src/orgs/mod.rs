//! `orgs.*`: organizations, members with roles, and invitations.

mod accept_invite;
mod create;
mod get;
mod invite;
mod invites;
pub(crate) mod limits;
mod list;
mod list_members;
mod members;
pub(crate) mod store;
mod update;
