//! `admin.*`: what system administrators do to accounts.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Empty;
use crate::ids::UserId;
use crate::list::{Page, example_limit, list_params};
use crate::users::User;
use crate::values::SearchQuery;
use crate::{procedure, reasons};

/// A user as administrators see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUser {
    #[serde(flatten)]
    pub user: User,
    pub disabled: bool,
    /// Set while the account is locked after failed sign-ins.
    pub locked_until: Option<DateTime<Utc>>,
}

list_params! {
    #[derive(Default)]
    pub struct ListUsersParams {
        /// Part of the e-mail or display name.
        #[serde(default)]
        #[ts(optional)]
        pub query: Option<SearchQuery>,
    }
}

procedure! {
    /// Every account, oldest first, optionally filtered by e-mail or name.
    ListUsers {
        method: "admin.listUsers",
        kind: Query,
        access: Admin,
        params: ListUsersParams,
        output: Page<AdminUser>,
        reasons: crate::error::NoReason,
        example: ListUsersParams {
            query: Some(SearchQuery::try_from("ann".to_owned()).expect("a query")),
            cursor: None,
            limit: example_limit(),
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetUserParams {
    pub user_id: UserId,
}

reasons! {
    /// Why `admin.getUser` can refuse.
    pub enum GetUserReason { NotFound }
}

procedure! {
    /// One account by its id, as administrators see it (whether it is disabled, until when it is locked).
    GetUser {
        method: "admin.getUser",
        kind: Query,
        access: Admin,
        params: GetUserParams,
        output: AdminUser,
        reasons: GetUserReason,
        example: GetUserParams { user_id: UserId::EXAMPLE },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetUserDisabledParams {
    pub user_id: UserId,
    pub disabled: bool,
}

reasons! {
    /// Why `admin.setUserDisabled` can refuse.
    pub enum SetUserDisabledReason { NotFound, InvalidTransition }
}

procedure! {
    /// Disables (ending every session) or re-enables an account. Administrators cannot disable themselves.
    SetUserDisabled {
        method: "admin.setUserDisabled",
        kind: Mutation,
        access: Admin,
        params: SetUserDisabledParams,
        output: User,
        reasons: SetUserDisabledReason,
        example: SetUserDisabledParams { user_id: UserId::EXAMPLE, disabled: true },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnlockUserParams {
    pub user_id: UserId,
}

reasons! {
    /// Why `admin.unlockUser` can refuse.
    pub enum UnlockUserReason { NotFound }
}

procedure! {
    /// Lifts a lockout after failed sign-ins and clears the failure count.
    UnlockUser {
        method: "admin.unlockUser",
        kind: Mutation,
        access: Admin,
        params: UnlockUserParams,
        output: Empty,
        reasons: UnlockUserReason,
        example: UnlockUserParams { user_id: UserId::EXAMPLE },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_admin {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::admin::ListUsers,
            $crate::admin::GetUser,
            $crate::admin::SetUserDisabled,
            $crate::admin::UnlockUser,
        ]; $($rest)* }
    };
}
