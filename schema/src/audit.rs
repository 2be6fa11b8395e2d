//! `audit.*`: who did what, when, from where, and how it ended.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::access::Permission;
use crate::error::NoReason;
use crate::ids::{ActorId, AuditEventId, OrgId};
use crate::list::{Page, example_limit, list_params};
use crate::procedure;
use crate::values::SearchQuery;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ActorKind {
    User,
    ApiKey,
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub kind: ActorKind,
    /// The user's or key's id; absent for the system and for an anonymous
    /// caller (a failed sign-in names no one).
    pub id: Option<ActorId>,
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Success,
    Failure,
}

/// One recorded action. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// What was done, e.g. `auth.login`, `account.locked`, `mfa.enabled`.
    pub action: String,
    /// What it was done to (`user:<id>`, `session:<id>`), when not the actor.
    pub target: Option<String>,
    pub outcome: Outcome,
    /// Why it failed (an error reason), or a detail of the action.
    pub detail: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

list_params! {
    pub struct ListAuditParams {
        pub org_id: OrgId,
        /// Only what this user or key did.
        #[serde(default)]
        #[ts(optional)]
        pub actor_id: Option<ActorId>,
        /// Only this action (e.g. `apiKeys.revoke`).
        #[serde(default)]
        #[ts(optional)]
        pub action: Option<SearchQuery>,
        #[serde(default)]
        #[ts(optional)]
        pub from: Option<DateTime<Utc>>,
        #[serde(default)]
        #[ts(optional)]
        pub to: Option<DateTime<Utc>>,
    }
}

procedure! {
    /// The organization's audit trail, newest first.
    List {
        method: "audit.list",
        kind: Query,
        access: Org(Permission::AuditRead),
        params: ListAuditParams,
        output: Page<AuditEvent>,
        org: OrgId = |p| p.org_id,
        reasons: NoReason,
        example: ListAuditParams {
            org_id: OrgId::EXAMPLE,
            actor_id: None,
            action: Some(SearchQuery::try_from("apiKeys.revoke".to_owned()).expect("an action")),
            from: None,
            to: None,
            cursor: None,
            limit: example_limit(),
        },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_audit {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::audit::List,
        ]; $($rest)* }
    };
}
