//! Metrics: the process-wide Prometheus recorder, what the server records
//! (calls, errors, durations, connections, sign-ins, the pool, the outbox),
//! and the separate listener that serves them at `GET /metrics`
//! (`TRELLIS_METRICS_LISTEN`; off when unset).

mod listener;
mod metrics;

pub(crate) use listener::MetricsListener;
pub(crate) use metrics::{
    api_key_verified, batch, cache_fallback, call_metrics, db_checkout, in_flight, lockout, mail_sent, rate_limited,
    redis_round_trip, refused, unknown_method, webhook_delivered, ws_connection, ws_subscription,
};
