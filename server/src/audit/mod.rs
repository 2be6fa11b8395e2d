//! The audit trail: every security-relevant action, with who, from where and
//! how it ended, written in the transaction of the change it records.

mod event;
mod list;
pub(crate) mod store;

pub(crate) use event::{Event, actions};
