//! `webhooks.*`: an organization's HTTP endpoints that receive its events,
//! signed as the Standard Webhooks specification says (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`), retried with backoff for about a day.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ts_rs::TS;

use crate::Empty;
use crate::access::Permission;
use crate::error::NoReason;
use crate::ids::{OrgId, WebhookDeliveryId, WebhookId};
use crate::list::{Page, example_limit, list_params};
use crate::notifications::EventType;
use crate::{procedure, reasons};

/// Most webhooks one organization may have.
pub const MAX_WEBHOOKS_PER_ORG: usize = 20;
/// Most event types one webhook may name.
pub const MAX_EVENTS: usize = 32;
/// Longest grace period of a secret rotation: 7 days.
pub const MAX_GRACE_PERIOD_SECS: u32 = 7 * 24 * 3600;

/// Where deliveries are posted: an `http` or `https` URL of at most 2048
/// characters, with a host. (The server also refuses hosts that are or
/// resolve to private, loopback or link-local addresses, and, unless it
/// allows private addresses, plain `http`.)
#[derive(Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_CHARS: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("must not contain spaces or control characters".into());
        }
        let lower = s.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or_else(|| "must be an http:// or https:// URL".to_owned())?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host.is_empty() || host.starts_with(':') {
            return Err("must name a host".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WebhookUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<WebhookUrl> for String {
    fn from(u: WebhookUrl) -> String {
        u.0
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for WebhookUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for WebhookUrl {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("WebhookUrl")
    }
    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed(concat!(module_path!(), "::WebhookUrl"))
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "uri", "minLength": 8, "maxLength": 2048, "pattern": "^[hH][tT][tT][pP][sS]?://" })
    }
}

/// An endpoint of the organization that receives its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: WebhookId,
    pub org_id: OrgId,
    pub url: String,
    /// The event types delivered to it.
    pub events: Vec<EventType>,
    /// A disabled webhook receives nothing (its pending deliveries wait);
    /// the server disables one after a run of failed deliveries.
    pub enabled: bool,
    /// Why the server disabled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookParams {
    pub org_id: OrgId,
    pub url: WebhookUrl,
    /// 1 to 32 event types.
    #[schemars(length(min = 1, max = 32))]
    pub events: Vec<EventType>,
}

/// A webhook as made: its signing secret, shown this once, and its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// `whsec_` and the base64 of 32 random bytes; the HMAC key is the
    /// decoded bytes. Shown this once.
    pub secret: String,
}

reasons! {
    /// Why `webhooks.create` can refuse.
    pub enum CreateWebhookReason { LimitReached }
}

procedure! {
    /// Adds a webhook receiving the events named; answers its signing secret this once. The URL must not be or resolve to a private, loopback or link-local address, and must be https (VALIDATION on `url`); an organization has at most 20 webhooks (LIMIT_REACHED).
    Create {
        method: "webhooks.create",
        kind: Mutation,
        access: Org(Permission::NotificationsManage),
        params: CreateWebhookParams,
        output: CreatedWebhook,
        org: OrgId = |p| p.org_id,
        reasons: CreateWebhookReason,
        example: CreateWebhookParams {
            org_id: OrgId::EXAMPLE,
            url: WebhookUrl::parse("https://hooks.example.com/trellis").expect("a URL"),
            events: vec![EventType::ApiKeyCreated, EventType::ApiKeyRevoked],
        },
    }
}

list_params! {
    pub struct ListWebhooksParams {
        pub org_id: OrgId,
    }
}

procedure! {
    /// The organization's webhooks, oldest first (never their secrets).
    List {
        method: "webhooks.list",
        kind: Query,
        access: Org(Permission::NotificationsManage),
        params: ListWebhooksParams,
        output: Page<Webhook>,
        org: OrgId = |p| p.org_id,
        reasons: NoReason,
        example: ListWebhooksParams { org_id: OrgId::EXAMPLE, cursor: None, limit: example_limit() },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhookParams {
    pub org_id: OrgId,
    pub webhook_id: WebhookId,
    #[serde(default)]
    #[ts(optional)]
    pub url: Option<WebhookUrl>,
    #[serde(default)]
    #[ts(optional)]
    #[schemars(length(min = 1, max = 32))]
    pub events: Option<Vec<EventType>>,
    /// `true` turns a webhook the server disabled back on (its run of
    /// failures starts again from zero).
    #[serde(default)]
    #[ts(optional)]
    pub enabled: Option<bool>,
}

reasons! {
    /// Why a procedure naming a webhook or delivery can refuse.
    pub enum WebhookReason { NotFound }
}

procedure! {
    /// Changes a webhook's URL, events or whether it is enabled (only the fields given); answers it as it now is.
    Update {
        method: "webhooks.update",
        kind: Mutation,
        access: Org(Permission::NotificationsManage),
        params: UpdateWebhookParams,
        output: Webhook,
        org: OrgId = |p| p.org_id,
        reasons: WebhookReason,
        example: UpdateWebhookParams {
            org_id: OrgId::EXAMPLE,
            webhook_id: WebhookId::EXAMPLE,
            url: None,
            events: None,
            enabled: Some(true),
        },
    }
}

/// Params that name a webhook of the organization.
#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookParams {
    pub org_id: OrgId,
    pub webhook_id: WebhookId,
}

procedure! {
    /// Deletes a webhook and its deliveries; nothing more is sent to it.
    Delete {
        method: "webhooks.delete",
        kind: Mutation,
        access: Org(Permission::NotificationsManage),
        params: WebhookParams,
        output: Empty,
        org: OrgId = |p| p.org_id,
        reasons: WebhookReason,
        example: WebhookParams { org_id: OrgId::EXAMPLE, webhook_id: WebhookId::EXAMPLE },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateSecretParams {
    pub org_id: OrgId,
    pub webhook_id: WebhookId,
    /// How long the old secret still signs, beside the new one (default 0,
    /// at most 7 days). Meanwhile `webhook-signature` carries both
    /// signatures, separated by a space.
    #[serde(default)]
    #[ts(optional)]
    pub grace_period_secs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    /// The new secret, shown this once.
    pub secret: String,
}

procedure! {
    /// A new signing secret for a webhook; the old one also signs until the grace period ends.
    RotateSecret {
        method: "webhooks.rotateSecret",
        kind: Mutation,
        access: Org(Permission::NotificationsManage),
        params: RotateSecretParams,
        output: RotatedSecret,
        org: OrgId = |p| p.org_id,
        reasons: WebhookReason,
        example: RotateSecretParams { org_id: OrgId::EXAMPLE, webhook_id: WebhookId::EXAMPLE, grace_period_secs: Some(86400) },
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryStatus {
    /// Not delivered yet: an attempt is due or will be retried.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; no more will be made (`webhooks.redeliver` sends it again).
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|v| v.as_str() == s)
    }
}

/// One event sent to one webhook, over all its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    /// The event type delivered.
    pub event: EventType,
    /// Attempts made so far (0 before the first).
    pub attempt: u32,
    pub status: DeliveryStatus,
    /// The HTTP status of the last attempt, when the endpoint answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub response_code: Option<u16>,
    /// Why the last attempt failed, in short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<String>,
    /// When it was last attempted (or queued, before the first attempt).
    pub at: DateTime<Utc>,
    /// When the next attempt is due, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

list_params! {
    pub struct ListDeliveriesParams {
        pub org_id: OrgId,
        pub webhook_id: WebhookId,
    }
}

procedure! {
    /// A webhook's deliveries, newest first (a webhook not of the organization has none).
    Deliveries {
        method: "webhooks.deliveries",
        kind: Query,
        access: Org(Permission::NotificationsRead),
        params: ListDeliveriesParams,
        output: Page<WebhookDelivery>,
        org: OrgId = |p| p.org_id,
        reasons: NoReason,
        example: ListDeliveriesParams {
            org_id: OrgId::EXAMPLE,
            webhook_id: WebhookId::EXAMPLE,
            cursor: None,
            limit: example_limit(),
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedeliverParams {
    pub org_id: OrgId,
    pub delivery_id: WebhookDeliveryId,
}

reasons! {
    /// Why `webhooks.redeliver` can refuse.
    pub enum RedeliverReason { NotFound, InvalidTransition }
}

procedure! {
    /// Sends a delivered or failed delivery's event again, as a new delivery with the same `webhook-id` (receivers deduplicate by it); a pending one is still being tried: INVALID_TRANSITION.
    Redeliver {
        method: "webhooks.redeliver",
        kind: Mutation,
        access: Org(Permission::NotificationsManage),
        params: RedeliverParams,
        output: Empty,
        org: OrgId = |p| p.org_id,
        reasons: RedeliverReason,
        example: RedeliverParams { org_id: OrgId::EXAMPLE, delivery_id: WebhookDeliveryId::EXAMPLE },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_webhooks {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::webhooks::Create,
            $crate::webhooks::List,
            $crate::webhooks::Update,
            $crate::webhooks::Delete,
            $crate::webhooks::RotateSecret,
            $crate::webhooks::Deliveries,
            $crate::webhooks::Redeliver,
        ]; $($rest)* }
    };
}

#[cfg(test)]
mod tests {
    use super::WebhookUrl;

    #[test]
    fn webhook_urls_are_http_or_https_with_a_host_and_bounded() {
        assert!(WebhookUrl::parse("https://hooks.example.com/x?y=1").is_ok());
        assert!(WebhookUrl::parse("HTTP://127.0.0.1:8080/").is_ok());
        assert!(WebhookUrl::parse("ftp://example.com/").is_err());
        assert!(WebhookUrl::parse("https:///path").is_err());
        assert!(WebhookUrl::parse("https://user@/x").is_err());
        assert!(WebhookUrl::parse("https://a b.example/").is_err());
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(WebhookUrl::parse(&long).is_err());
    }
}
