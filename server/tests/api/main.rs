//! Black-box tests: the real server on a random port, a fresh database per
//! test, called over raw HTTP and WebSocket.
//!
//! Database suites run on SQLite always and on PostgreSQL as well when
//! `TEST_DATABASE_URL` is set (`postgres://user@host:port/db`; each test
//! creates and drops a database of its own). `TEST_LOG=1` shows server logs.

mod helpers;
mod mail_sink;

mod account_hardening;
mod accounts;
mod admin;
mod alerts;
mod api_keys;
mod auth;
mod cluster;
mod conformance;
mod enumeration;
mod faults;
mod limits;
mod lots;
mod mail;
mod metrics;
mod notifications;
mod operations;
mod orgs;
mod performance;
mod process;
mod replicas;
mod sdk_ts;
mod shared_cache;
mod tenancy;
mod throttle;
mod tokens;
mod trades;
mod transport;
mod webhooks;
mod ws;
mod ws_sessions;
