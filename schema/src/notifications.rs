//! `notifications.*`: what happened that concerns the signed-in user, kept,
//! listed, marked read, and streamed live over WebSocket.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Empty;
use crate::error::NoReason;
use crate::ids::NotificationId;
use crate::list::{Page, example_limit, list_params};
use crate::rpc::{SubscriptionId, UnsubscribeParams};
use crate::{procedure, reasons};

/// What a notification is about. Security notices (`password.changed`,
/// `mfa.enabled`, `mfa.disabled`, `account.locked`, `signin.newDevice`)
/// always go out by e-mail, whatever the preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS, JsonSchema)]
pub enum EventType {
    /// You were invited to an organization.
    #[serde(rename = "invitation.received")]
    InvitationReceived,
    /// Your role in an organization changed.
    #[serde(rename = "member.roleChanged")]
    RoleChanged,
    /// You were removed from an organization.
    #[serde(rename = "member.removed")]
    RemovedFromOrg,
    /// An API key of an organization you administer was created.
    #[serde(rename = "apiKey.created")]
    ApiKeyCreated,
    /// An API key of an organization you administer was rotated.
    #[serde(rename = "apiKey.rotated")]
    ApiKeyRotated,
    /// An API key of an organization you administer was revoked.
    #[serde(rename = "apiKey.revoked")]
    ApiKeyRevoked,
    /// Your password was changed or reset.
    #[serde(rename = "password.changed")]
    PasswordChanged,
    /// A second factor was turned on for your account.
    #[serde(rename = "mfa.enabled")]
    MfaEnabled,
    /// The second factor of your account was turned off.
    #[serde(rename = "mfa.disabled")]
    MfaDisabled,
    /// Your account was locked after failed sign-ins.
    #[serde(rename = "account.locked")]
    AccountLocked,
    /// Someone signed in to your account from a device not seen before.
    #[serde(rename = "signin.newDevice")]
    NewDeviceSignIn,
    /// A webhook of an organization you administer was disabled after a run
    /// of failed deliveries.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
    /// A performance alert rule (of an organization you administer, or of
    /// the server, for system administrators) started firing.
    #[serde(rename = "alert.fired")]
    AlertFired,
    /// A firing performance alert rule cleared.
    #[serde(rename = "alert.resolved")]
    AlertResolved,
    /// An offer was made on a trade of your organization.
    #[serde(rename = "trade.offerMade")]
    TradeOfferMade,
    /// The other party countered an offer.
    #[serde(rename = "trade.offerCountered")]
    TradeOfferCountered,
    /// The other party accepted an offer.
    #[serde(rename = "trade.offerAccepted")]
    TradeOfferAccepted,
    /// The other party rejected an offer (or accepted another one).
    #[serde(rename = "trade.offerRejected")]
    TradeOfferRejected,
    /// An offer on a trade of your organization was withdrawn.
    #[serde(rename = "trade.offerWithdrawn")]
    TradeOfferWithdrawn,
    /// An offer passed its time, or its trade closed.
    #[serde(rename = "trade.offerExpired")]
    TradeOfferExpired,
    /// A deal of your organization is over its threshold and waits for approval.
    #[serde(rename = "trade.approvalNeeded")]
    TradeApprovalNeeded,
    /// A deal your organization is a party to was confirmed.
    #[serde(rename = "trade.confirmed")]
    TradeConfirmed,
    /// A trade your organization is a party to was cancelled.
    #[serde(rename = "trade.cancelled")]
    TradeCancelled,
    /// A trade your organization is a party to expired.
    #[serde(rename = "trade.expired")]
    TradeExpired,
}

impl EventType {
    pub const ALL: &'static [EventType] = &[
        Self::InvitationReceived,
        Self::RoleChanged,
        Self::RemovedFromOrg,
        Self::ApiKeyCreated,
        Self::ApiKeyRotated,
        Self::ApiKeyRevoked,
        Self::PasswordChanged,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::AccountLocked,
        Self::NewDeviceSignIn,
        Self::WebhookDisabled,
        Self::AlertFired,
        Self::AlertResolved,
        Self::TradeOfferMade,
        Self::TradeOfferCountered,
        Self::TradeOfferAccepted,
        Self::TradeOfferRejected,
        Self::TradeOfferWithdrawn,
        Self::TradeOfferExpired,
        Self::TradeApprovalNeeded,
        Self::TradeConfirmed,
        Self::TradeCancelled,
        Self::TradeExpired,
    ];

    /// The wire name, e.g. `apiKey.created`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvitationReceived => "invitation.received",
            Self::RoleChanged => "member.roleChanged",
            Self::RemovedFromOrg => "member.removed",
            Self::ApiKeyCreated => "apiKey.created",
            Self::ApiKeyRotated => "apiKey.rotated",
            Self::ApiKeyRevoked => "apiKey.revoked",
            Self::PasswordChanged => "password.changed",
            Self::MfaEnabled => "mfa.enabled",
            Self::MfaDisabled => "mfa.disabled",
            Self::AccountLocked => "account.locked",
            Self::NewDeviceSignIn => "signin.newDevice",
            Self::WebhookDisabled => "webhook.disabled",
            Self::AlertFired => "alert.fired",
            Self::AlertResolved => "alert.resolved",
            Self::TradeOfferMade => "trade.offerMade",
            Self::TradeOfferCountered => "trade.offerCountered",
            Self::TradeOfferAccepted => "trade.offerAccepted",
            Self::TradeOfferRejected => "trade.offerRejected",
            Self::TradeOfferWithdrawn => "trade.offerWithdrawn",
            Self::TradeOfferExpired => "trade.offerExpired",
            Self::TradeApprovalNeeded => "trade.approvalNeeded",
            Self::TradeConfirmed => "trade.confirmed",
            Self::TradeCancelled => "trade.cancelled",
            Self::TradeExpired => "trade.expired",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == s)
    }

    /// A security notice: it cannot be muted on e-mail.
    pub const fn is_security(self) -> bool {
        matches!(
            self,
            Self::PasswordChanged | Self::MfaEnabled | Self::MfaDisabled | Self::AccountLocked | Self::NewDeviceSignIn
        )
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification of the signed-in user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: NotificationId,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub title: String,
    pub body: String,
    /// Facts of the event for programs (ids, names), by event type.
    #[ts(type = "Record<string, unknown>")]
    pub data: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    /// When it was marked read; absent while unread.
    pub read_at: Option<DateTime<Utc>>,
}

list_params! {
    pub struct ListNotificationsParams {
        /// Only the unread ones.
        #[serde(default)]
        #[ts(optional)]
        pub unread_only: Option<bool>,
    }
}

procedure! {
    /// The caller's notifications, newest first.
    List {
        method: "notifications.list",
        kind: Query,
        access: User,
        params: ListNotificationsParams,
        output: Page<Notification>,
        reasons: NoReason,
        example: ListNotificationsParams { unread_only: Some(true), cursor: None, limit: example_limit() },
    }
}

/// At most this many ids in one `notifications.markRead`.
pub const MAX_MARK_READ_IDS: usize = 100;

/// Exactly one of `ids` (at most 100; ids that are not the caller's, or
/// already read, are skipped) and `all: true`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkReadParams {
    #[serde(default)]
    #[ts(optional)]
    #[schemars(length(max = 100))]
    pub ids: Option<Vec<NotificationId>>,
    #[serde(default)]
    #[ts(optional)]
    pub all: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkReadResult {
    /// How many notifications were unread and are now read.
    pub updated: u64,
}

procedure! {
    /// Marks notifications read: those named, or all of them.
    MarkRead {
        method: "notifications.markRead",
        kind: Mutation,
        access: User,
        params: MarkReadParams,
        output: MarkReadResult,
        reasons: NoReason,
        example: MarkReadParams { ids: Some(vec![NotificationId::EXAMPLE]), all: None },
    }
}

/// The channels notifications go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Channels {
    /// Kept in the list and streamed to subscribers.
    pub in_app: bool,
    /// Sent by e-mail (security notices always are).
    pub email: bool,
    /// Events about you in an organization (your role changed, you were
    /// removed) are included in the deliveries of its webhooks.
    pub webhook: bool,
}

impl Default for Channels {
    fn default() -> Self {
        Self { in_app: true, email: false, webhook: true }
    }
}

/// A user's notification preferences.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub channels: Channels,
    /// Event types that go out on no channel (security notices still go by
    /// e-mail).
    pub muted: Vec<EventType>,
}

procedure! {
    /// The caller's notification preferences.
    GetPreferences {
        method: "notifications.getPreferences",
        kind: Query,
        access: User,
        params: Empty,
        output: Preferences,
        reasons: NoReason,
    }
}

/// Channels to change; those absent keep their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelsUpdate {
    #[serde(default)]
    #[ts(optional)]
    pub in_app: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub email: Option<bool>,
    #[serde(default)]
    #[ts(optional)]
    pub webhook: Option<bool>,
}

/// What to change; what is absent keeps its value. `muted` replaces the
/// whole list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePreferencesParams {
    #[serde(default)]
    #[ts(optional)]
    pub channels: Option<ChannelsUpdate>,
    #[serde(default)]
    #[ts(optional)]
    #[schemars(length(max = 64))]
    pub muted: Option<Vec<EventType>>,
}

procedure! {
    /// Changes the caller's notification preferences; answers them as they now are.
    UpdatePreferences {
        method: "notifications.updatePreferences",
        kind: Mutation,
        access: User,
        params: UpdatePreferencesParams,
        output: Preferences,
        reasons: NoReason,
        example: UpdatePreferencesParams {
            channels: Some(ChannelsUpdate { email: Some(true), ..ChannelsUpdate::default() }),
            muted: Some(vec![EventType::ApiKeyCreated]),
        },
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeParams {
    /// Resume after this notification (the last one received): those that
    /// came after it are sent first, then live ones. Absent: live ones only.
    #[serde(default)]
    #[ts(optional)]
    pub after: Option<NotificationId>,
}

reasons! {
    /// Why `notifications.subscribe` can refuse or end.
    pub enum SubscribeReason { NotFound, TooManySubscriptions, SubscriptionLagged, SessionEnded }
}

procedure! {
    /// Streams the caller's notifications (WebSocket only): first those after `after`, then live ones, in order, with no gap and no duplicate.
    Subscribe {
        method: "notifications.subscribe",
        kind: Subscription,
        access: User,
        params: SubscribeParams,
        output: Notification,
        reasons: SubscribeReason,
        unsubscribe: "notifications.unsubscribe",
        resume: after = id,
        example: SubscribeParams { after: Some(NotificationId::EXAMPLE) },
    }
}

procedure! {
    /// Ends a subscription of this connection made by `notifications.subscribe`; answers whether one was open.
    Unsubscribe {
        method: "notifications.unsubscribe",
        kind: Mutation,
        access: User,
        params: UnsubscribeParams,
        output: bool,
        reasons: NoReason,
        example: UnsubscribeParams { subscription: SubscriptionId("4f1c2a9b7e3d5a60".to_owned()) },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_notifications {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::notifications::List,
            $crate::notifications::MarkRead,
            $crate::notifications::GetPreferences,
            $crate::notifications::UpdatePreferences,
            $crate::notifications::Subscribe,
            $crate::notifications::Unsubscribe,
        ]; $($rest)* }
    };
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn event_types_have_one_wire_name_each() {
        for e in EventType::ALL {
            let json = serde_json::to_value(e).expect("serializes");
            assert_eq!(json, e.as_str());
            assert_eq!(EventType::from_wire(e.as_str()), Some(*e));
        }
    }
}
