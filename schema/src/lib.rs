//! The Trellis API contract, written once as Rust types.
//!
//! Everything a client can call is a [`Procedure`]: its method name, params,
//! result, kind, who may call it and the error reasons it can answer with.
//! The server binds a handler to each, the client crate calls them by type,
//! and the generator turns the same list into TypeScript and OpenRPC.
//!
//! # Layout
//! - [`procedure`]: the `Procedure` trait, kinds, access rules and the list
//!   of every procedure ([`all_procedures!`], [`for_each_procedure`]).
//! - [`error`]: error categories (codes), reasons and the wire error shape.
//! - [`access`]: organization roles, permissions and API key scopes.
//! - [`ids`]: typed ids (`UserId`, `OrgId`, ...), branded strings in TypeScript.
//! - [`values`]: validated value types (e-mail, password, display name);
//!   [`commodities`]: those of the trade desk (decimal strings, units, currencies).
//! - [`list`]: pages of a list.
//! - [`health`], [`rpc`], [`auth`], [`sessions`], [`mfa`], [`users`],
//!   [`admin`], [`audit`], [`orgs`], [`api_keys`], [`notifications`], [`webhooks`], [`performance`], [`lots`], [`trades`] (with [`trade_machine`] and
//!   [`trade_parse`]): one
//!   module per namespace.
//! - [`openrpc`]: the OpenRPC document; [`codegen`]: the generated files
//!   (TypeScript bindings, `openrpc.json`) that `just gen` writes.
//!
//! This crate depends on no runtime, database or HTTP crate: clients of every
//! kind can depend on it. (The `diesel` feature, for the server only, maps
//! the typed ids to database columns.)

pub mod access;
pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod codegen;
pub mod codegen_rust;
pub mod commodities;
pub mod error;
pub mod health;
pub mod ids;
pub mod list;
pub mod lots;
pub mod mfa;
pub mod notifications;
pub mod openrpc;
pub mod orgs;
pub mod performance;
pub mod procedure;
pub mod rpc;
pub mod sessions;
pub mod trade_machine;
pub mod trade_parse;
pub mod trades;
pub mod users;
pub mod values;
pub mod webhooks;

pub use error::{ApiError, ErrorCode, ErrorReason, Reason};
pub use procedure::{Access, Empty, Kind, Procedure, ProcedureInfo, ProcedureVisitor, for_each_procedure};
