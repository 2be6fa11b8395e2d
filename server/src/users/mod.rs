//! `users.*`: the signed-in user's profile and security activity.

mod activity;
pub(crate) mod store;
mod update_profile;
