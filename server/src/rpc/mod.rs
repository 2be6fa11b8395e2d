//! The transport: everything JSON-RPC, so that handlers know nothing of it.

pub(crate) mod connection;
pub(crate) mod credentials;
pub(crate) mod discover;
pub(crate) mod error;
pub(crate) mod framing;
pub(crate) mod http;
pub(crate) mod paging;
pub(crate) mod registry;
pub(crate) mod respond;
pub(crate) mod server;
pub(crate) mod ws;
pub(crate) mod ws_frames;
pub(crate) mod ws_subscriptions;
