//! `users.*`: the signed-in user's own profile and security activity.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::audit::AuditEvent;
use crate::auth::User;
use crate::error::NoReason;
use crate::list::{Page, example_limit, list_params};
use crate::procedure;
use crate::values::DisplayName;

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
