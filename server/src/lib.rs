//! The Trellis server: JSON-RPC 2.0 over HTTP and WebSocket, with its
//! procedures bound from the `trellis-schema` list.
//!
//! # Layout
//! - [`app`]: builds the application from [`config::Config`] and runs it.
//! - [`config`]: every setting, as flag, environment variable and default.
//! - `rpc`: the transport: framing, HTTP front, WebSocket, the registry that
//!   binds each procedure to its handler, errors, limits, the accept loop.
//! - `auth`: accounts, sign-in, sessions, tokens, password hashing.
//! - `health`: `health.check` and the dependency monitor behind it.
//! - [`db`]: the pool over PostgreSQL or SQLite, tables, rows, migrations.
//! - [`telemetry`]: logging setup.

pub mod app;
mod auth;
pub mod config;
pub mod db;
mod health;
mod rpc;
mod state;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
