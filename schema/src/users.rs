//! `users.*`: the signed-in user's own profile and security activity.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::audit::AuditEvent;
use crate::error::NoReason;
use crate::ids::UserId;
use crate::list::{Page, example_limit, list_params};
use crate::procedure;
use crate::values::DisplayName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateProfileParams {
    pub display_name: DisplayName,
}

procedure! {
    /// Changes the caller's display name.
    UpdateProfile {
        method: "users.updateProfile",
        kind: Mutation,
        access: User,
        params: UpdateProfileParams,
        output: User,
        reasons: NoReason,
        example: UpdateProfileParams { display_name: DisplayName::parse("Ann Lee").expect("a name") },
    }
}

list_params! {
    /// Params of a list that pages.
    #[derive(Default)]
    pub struct PageParams {}
}

procedure! {
    /// The caller's own security events (sign-ins, failures, lockouts, password and MFA changes, sessions ended), newest first.
    Activity {
        method: "users.activity",
        kind: Query,
        access: User,
        params: PageParams,
        output: Page<AuditEvent>,
        reasons: NoReason,
        example: PageParams { cursor: None, limit: example_limit() },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_users {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::users::UpdateProfile,
            $crate::users::Activity,
        ]; $($rest)* }
    };
}
