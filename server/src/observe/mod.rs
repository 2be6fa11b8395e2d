//! Metrics: the process-wide Prometheus recorder, what the server records
//! (calls, errors, durations, connections, sign-ins, the pool, the outbox),
//! and the separate listener that serves them at `GET /metrics`
//! (`TRELLIS_METRICS_LISTEN`; off when unset).

mod listener;
mod metrics;

pub(crate) use listener::MetricsListener;
pub(crate) use metrics::{
    api_key_verified, batch, cache_fallback, call, db_checkout, lockout, mail_sent, rate_limited, redis_round_trip,
    refused, webhook_delivered, ws_connection, ws_subscription,
};
