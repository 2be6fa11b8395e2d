//! `webhooks.*`: an organization's endpoints that receive its events,
//! signed as the Standard Webhooks specification says, and the two
//! background workers behind them: `hook` turns the `events` outbox into
//! deliveries, `send` posts them with retries and disables a webhook after a
//! run of failures.

mod create;
mod delete;
mod deliveries;
pub(crate) mod guard;
pub(crate) mod hook;
mod list;
mod redeliver;
mod rotate_secret;
pub(crate) mod send;
pub(crate) mod signing;
pub(crate) mod store;
mod update;

use trellis_schema::ApiError;
use trellis_schema::error::FieldError;
use trellis_schema::ids::WebhookId;
use trellis_schema::notifications::EventType;
use trellis_schema::webhooks::MAX_EVENTS;

use crate::access::Call;

/// What a webhook's sealed secrets are bound to: a sealed value copied to
/// another webhook (or column of another purpose) does not open.
pub(crate) fn secret_aad(id: WebhookId) -> String {
    format!("webhook secret:{id}")
}

fn invalid(path: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError { path: path.into(), message: message.into() }])
}

/// The event types of a webhook: 1 to 32, each once.
fn checked_events(events: &[EventType]) -> Result<String, ApiError> {
    if events.is_empty() {
        return Err(invalid("events", "must name at least one event type"));
    }
    if events.len() > MAX_EVENTS {
        return Err(invalid("events", format!("must name at most {MAX_EVENTS} event types")));
    }
    Ok(store::events_text(events))
}

/// The URL as it will be stored, if a webhook may post to it.
async fn checked_url(call: &Call, raw: &str) -> Result<String, ApiError> {
    guard::check_url(raw, call.state.config.webhooks_allow_private, true)
        .await
        .map(String::from)
        .map_err(|e| invalid("url", e.to_string()))
}
