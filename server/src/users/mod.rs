//! `users.*`: the signed-in user's profile and security activity.

mod activity;
mod update_profile;
