//! The Trellis server: JSON-RPC 2.0 over HTTP and WebSocket, with its
//! procedures bound from the `trellis-schema` list.
//!
//! # Layout
//! - [`app`]: builds the application from [`config::Config`] and runs it.
//! - [`config`]: every setting, as flag, environment variable and default.
//! - `rpc`: the transport: framing, HTTP front, WebSocket, the registry that
//!   binds each procedure to its handler, errors, limits, the accept loop.
//! - `auth`: accounts, sign-in, sessions, tokens, password hashing and
//!   policy, recovery, lockout, one-time codes, MFA secrets.
//! - `sessions`, `mfa`, `users`, [`admin`]: the other account namespaces
//!   (and `trellis create-admin`).
//! - `orgs`, `api_keys`: organizations, members, invitations; API keys
//!   (format, cache, per-key limits, usage).
//! - `audit`: the audit trail of security events.
//! - `retention`: old outbox rows and audit events deleted in batches.
//! - `mail`: the outbox and its senders (SMTP, log).
//! - `webhooks`: organizations' webhooks, their signed deliveries with
//!   retries, and the workers that make and send them.
//! - `health`: `health.check` and the dependency monitor behind it.
//! - [`net`]: where a request comes from (trusted proxies, per-IP buckets).
//! - [`db`]: the pool over PostgreSQL or SQLite, tables, rows, migrations.
//! - [`telemetry`]: logging setup.
//! - `observe`: Prometheus metrics and their listener (`GET /metrics`).

mod access;
pub mod admin;
mod api_keys;
pub mod app;
mod audit;
mod auth;
mod cache;
pub mod config;
pub mod db;
mod health;
mod lots;
mod mail;
mod mfa;
pub mod net;
mod notifications;
mod observe;
mod orgs;
mod performance;
mod retention;
mod rpc;
mod sessions;
mod state;
pub mod telemetry;
mod trades;
mod users;
mod webhooks;

pub use app::Application;
pub use config::Config;
/// For the load generator's `perf_report` scenario only.
#[doc(hidden)]
pub use performance::bench as perf_bench;
