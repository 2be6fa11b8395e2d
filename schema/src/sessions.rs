//! `sessions.*`: the signed-in user's sessions, and ending them.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Empty;
use crate::error::NoReason;
use crate::ids::SessionId;
use crate::{procedure, reasons};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The session this call was made with.
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionList {
    pub items: Vec<SessionInfo>,
}

procedure! {
    /// The caller's live sessions, newest first.
    List {
        method: "sessions.list",
        kind: Query,
        access: User,
        params: Empty,
        output: SessionList,
        reasons: NoReason,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeParams {
    pub session_id: SessionId,
}

reasons! {
    /// Why `sessions.revoke` can refuse.
    pub enum RevokeReason { NotFound }
}

procedure! {
    /// Ends one of the caller's sessions; its tokens stop working at once.
    Revoke {
        method: "sessions.revoke",
        kind: Mutation,
        access: User,
        params: RevokeParams,
        output: Empty,
        reasons: RevokeReason,
        example: RevokeParams { session_id: SessionId::EXAMPLE },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_sessions {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::sessions::List,
            $crate::sessions::Revoke,
        ]; $($rest)* }
    };
}
