//! `lots.*`: an organization's tested lots of a commodity. A lot is
//! written once (no update), read only by its organization.

mod create;
mod get;
mod list;
pub(crate) mod store;
