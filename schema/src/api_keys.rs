//! `apiKeys.*`: keys that act for an organization with chosen scopes.
//! A key looks like `trl_<random base62>_<checksum>`, is shown once, and is
//! stored only as a hash.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::access::{CallerKeyOr, Permission};
use crate::error::{NoReason, Reason};
use crate::ids::{ApiKeyId, OrgId, UserId};
use crate::list::{Page, example_limit, list_params};
use crate::values::{DisplayName, Password, Token};
use crate::{procedure, reasons};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: String,
    /// The start of the key, for recognising it (`trl_AbCd…`).
    pub prefix: String,
    pub scopes: Vec<Permission>,
    /// The key's holder: the member who made it, or who last rotated it
    /// (whoever received its current secret). The key acts for them and never
    /// does more than they may do now, in scopes and in rank.
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Calls a minute (each call of a batch counts); none: no limit of its own.
    pub rate_limit_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKeyParams {
    pub org_id: OrgId,
    pub name: DisplayName,
    /// Only permissions the caller holds (an API key: in its own scopes and
    /// its holder's role).
    pub scopes: Vec<Permission>,
    /// None: the key does not expire. Made by an API key that expires, it is
    /// required and no later than that key's own expiry.
    #[serde(default)]
    #[ts(optional)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Calls a minute, 1 to 1,000,000; 0 or none: no limit of its own. Made by
    /// an API key that has a limit, it is required and no higher than that
    /// key's own.
    #[serde(default)]
    #[ts(optional)]
    pub rate_limit_per_minute: Option<u32>,
    /// A member (not a key) gives their current password, unless they signed
    /// in within the last 5 minutes (else REAUTHENTICATION_REQUIRED; a wrong
    /// one is INVALID_CREDENTIALS and counts as a failed sign-in).
    #[serde(default)]
    #[ts(optional)]
    pub current_password: Option<Password>,
}

/// A key as made: the secret, shown this once, and its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKey,
}

reasons! {
    /// Why `apiKeys.create` can refuse.
    pub enum CreateApiKeyReason { MissingPermission, ReauthenticationRequired, InvalidCredentials, AccountLocked }
}

procedure! {
    /// Makes a key held by the caller (by an API key: by that key's holder), with scopes the caller holds; an API key gives no key a later expiry, a higher or absent rate limit, or a scope it lacks (MISSING_PERMISSION, with `data.required` for a scope or `data.field` for a bound).
    Create {
        method: "apiKeys.create",
        kind: Mutation,
        access: Org(Permission::ApiKeysManage),
        params: CreateApiKeyParams,
        output: CreatedApiKey,
        org: OrgId = |p| p.org_id,
        reasons: CreateApiKeyReason,
        example: CreateApiKeyParams {
            org_id: OrgId::EXAMPLE,
            name: DisplayName::parse("ci").expect("a name"),
            scopes: vec![Permission::OrgRead],
            expires_at: None,
            rate_limit_per_minute: None,
            current_password: None,
        },
    }
}

list_params! {
    pub struct ListApiKeysParams {
        pub org_id: OrgId,
        #[serde(default)]
        #[ts(optional)]
        pub include_revoked: Option<bool>,
    }
}

procedure! {
    /// The organization's keys, oldest first.
    List {
        method: "apiKeys.list",
        kind: Query,
        access: Org(Permission::ApiKeysRead),
        params: ListApiKeysParams,
        output: Page<ApiKey>,
        org: OrgId = |p| p.org_id,
        reasons: NoReason,
        example: ListApiKeysParams {
            org_id: OrgId::EXAMPLE,
            include_revoked: None,
            cursor: None,
            limit: example_limit(),
        },
    }
}

/// Params that name only a key.
#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyParams {
    pub id: ApiKeyId,
}

procedure! {
    /// One key (never its secret).
    Get {
        method: "apiKeys.get",
        kind: Query,
        access: Org(Permission::ApiKeysRead),
        params: KeyParams,
        output: ApiKey,
        org: ApiKeyId = |p| p.id,
        reasons: NoReason,
        example: KeyParams { id: ApiKeyId::EXAMPLE },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateApiKeyParams {
    pub id: ApiKeyId,
    #[serde(default)]
    #[ts(optional)]
    pub name: Option<DisplayName>,
    /// The new scopes: each must be held by the caller and by the key's
    /// holder (their role now).
    #[serde(default)]
    #[ts(optional)]
    pub scopes: Option<Vec<Permission>>,
    /// A new expiry (a key's expiry can be moved, not removed). By an API key
    /// that expires: no later than its own.
    #[serde(default)]
    #[ts(optional)]
    pub expires_at: Option<DateTime<Utc>>,
    /// A new limit; 0 removes the key's own limit. By an API key that has a
    /// limit: 1 to its own limit.
    #[serde(default)]
    #[ts(optional)]
    pub rate_limit_per_minute: Option<u32>,
}

reasons! {
    /// Why `apiKeys.update` and `apiKeys.rotate` can refuse.
    pub enum ChangeApiKeyReason { MissingPermission, InvalidTransition }
}

procedure! {
    /// Changes a key's name, scopes, expiry or limit (only the fields given); takes effect within a second everywhere. New scopes must be held by the caller and by the key's holder; an API key gives no key a later expiry or a higher or absent limit than its own (MISSING_PERMISSION). A revoked key stays revoked: INVALID_TRANSITION, nothing changed.
    Update {
        method: "apiKeys.update",
        kind: Mutation,
        access: Org(Permission::ApiKeysManage),
        params: UpdateApiKeyParams,
        output: ApiKey,
        org: ApiKeyId = |p| p.id,
        reasons: ChangeApiKeyReason,
        example: UpdateApiKeyParams {
            id: ApiKeyId::EXAMPLE,
            name: Some(DisplayName::parse("ci-deploy").expect("a name")),
            scopes: None,
            expires_at: None,
            rate_limit_per_minute: None,
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateApiKeyParams {
    pub id: ApiKeyId,
    /// How long the old secret keeps working (default 0, at most 7 days). Must
    /// be 0 when the caller does not hold the key: the old holder's secret
    /// stops at once.
    #[serde(default)]
    #[ts(optional)]
    pub grace_period_secs: Option<u32>,
}

procedure! {
    /// A new secret for a key; the old one works until the grace period ends. Whoever receives the new secret holds the key from then on (`createdBy` becomes the caller, for an API key its holder; audited): the caller must hold every scope of the key (else MISSING_PERMISSION with `data.required`), and an API key may rotate only keys that expire no later and are limited no higher than itself. A revoked key: INVALID_TRANSITION.
    Rotate {
        method: "apiKeys.rotate",
        kind: Mutation,
        access: Org(Permission::ApiKeysManage),
        params: RotateApiKeyParams,
        output: CreatedApiKey,
        org: ApiKeyId = |p| p.id,
        reasons: ChangeApiKeyReason,
        example: RotateApiKeyParams { id: ApiKeyId::EXAMPLE, grace_period_secs: Some(3600) },
    }
}

procedure! {
    /// Revokes a key; refused on every replica within a second. A revoked key stays revoked: no later update or rotation brings it back.
    Revoke {
        method: "apiKeys.revoke",
        kind: Mutation,
        access: Org(Permission::ApiKeysManage),
        params: KeyParams,
        output: ApiKey,
        org: ApiKeyId = |p| p.id,
        reasons: NoReason,
        example: KeyParams { id: ApiKeyId::EXAMPLE },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageParams {
    pub id: ApiKeyId,
    /// Default: 24 hours before `to`.
    #[serde(default)]
    #[ts(optional)]
    pub from: Option<DateTime<Utc>>,
    /// Default: now.
    #[serde(default)]
    #[ts(optional)]
    pub to: Option<DateTime<Utc>>,
    /// Default: hour.
    #[serde(default)]
    #[ts(optional)]
    pub bucket: Option<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsagePoint {
    pub start: DateTime<Utc>,
    pub calls: u64,
    pub errors: u64,
    pub rate_limited: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MethodUsage {
    pub method: String,
    pub calls: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Buckets with at least one call, oldest first.
    pub series: Vec<UsagePoint>,
    pub by_method: Vec<MethodUsage>,
}

procedure! {
    /// Calls, errors and rate-limited calls of a key, by time bucket and by method (written every few seconds, kept 90 days).
    UsageReport {
        method: "apiKeys.usage",
        kind: Query,
        access: Org(Permission::ApiKeysRead),
        params: UsageParams,
        output: Usage,
        org: ApiKeyId = |p| p.id,
        reasons: NoReason,
        example: UsageParams {
            id: ApiKeyId::EXAMPLE,
            from: Some("2026-01-01T00:00:00Z".parse().expect("a time")),
            to: Some("2026-01-02T00:00:00Z".parse().expect("a time")),
            bucket: Some(Bucket::Hour),
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyParams {
    pub key: Token,
    /// The organization the key must belong to. Default: that of the API key
    /// making the call (a signed-in user must name it).
    #[serde(default)]
    #[ts(optional)]
    pub org_id: Option<OrgId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResult {
    pub valid: bool,
    /// Why not: `API_KEY_INVALID`, `API_KEY_EXPIRED` or `API_KEY_REVOKED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub api_key: Option<ApiKey>,
    /// Calls left this minute under the key's own limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub remaining_this_minute: Option<u32>,
}

procedure! {
    /// Checks a key of the organization, for integrators' gateways. A key of another organization is simply not valid.
    Verify {
        method: "apiKeys.verify",
        kind: Query,
        access: Org(Permission::ApiKeysRead),
        params: VerifyParams,
        output: VerifyResult,
        org: CallerKeyOr = |p| CallerKeyOr(p.org_id),
        reasons: NoReason,
        example: VerifyParams {
            // Shaped like a key, but its checksum is wrong: API_KEY_INVALID, found
            // without a database lookup.
            key: Token::try_from("trl_IsMFyY0L83zYeuJ8Gu5fwpngwGV8ZJeNCknxKe0m_3CylIx".to_owned()).expect("a key"),
            org_id: Some(OrgId::EXAMPLE),
        },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_api_keys {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::api_keys::Create,
            $crate::api_keys::List,
            $crate::api_keys::Get,
            $crate::api_keys::Update,
            $crate::api_keys::Rotate,
            $crate::api_keys::Revoke,
            $crate::api_keys::UsageReport,
            $crate::api_keys::Verify,
        ]; $($rest)* }
    };
}
