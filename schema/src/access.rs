//! Who may call what: organization roles, their permissions, and API key scopes
//! (a scope is a permission granted to a key).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// An organization permission, also used as an API key scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS, JsonSchema)]
pub enum Permission {
    #[serde(rename = "org:read")]
    OrgRead,
    #[serde(rename = "org:manage")]
    OrgManage,
    #[serde(rename = "org:delete")]
    OrgDelete,
    #[serde(rename = "apiKeys:read")]
    ApiKeysRead,
    #[serde(rename = "apiKeys:manage")]
    ApiKeysManage,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "performance:read")]
    PerformanceRead,
    #[serde(rename = "notifications:read")]
    NotificationsRead,
    #[serde(rename = "notifications:manage")]
    NotificationsManage,
    #[serde(rename = "trades:read")]
    TradesRead,
    #[serde(rename = "trades:write")]
    TradesWrite,
    #[serde(rename = "trades:approve")]
    TradesApprove,
}

impl Permission {
    pub const ALL: &'static [Permission] = &[
        Self::OrgRead,
        Self::OrgManage,
        Self::OrgDelete,
        Self::ApiKeysRead,
        Self::ApiKeysManage,
        Self::AuditRead,
        Self::PerformanceRead,
        Self::NotificationsRead,
        Self::NotificationsManage,
        Self::TradesRead,
        Self::TradesWrite,
        Self::TradesApprove,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OrgRead => "org:read",
            Self::OrgManage => "org:manage",
            Self::OrgDelete => "org:delete",
            Self::ApiKeysRead => "apiKeys:read",
            Self::ApiKeysManage => "apiKeys:manage",
            Self::AuditRead => "audit:read",
            Self::PerformanceRead => "performance:read",
            Self::NotificationsRead => "notifications:read",
            Self::NotificationsManage => "notifications:manage",
            Self::TradesRead => "trades:read",
            Self::TradesWrite => "trades:write",
            Self::TradesApprove => "trades:approve",
        }
    }

    const fn is_read(self) -> bool {
        matches!(
            self,
            Self::OrgRead
                | Self::ApiKeysRead
                | Self::AuditRead
                | Self::PerformanceRead
                | Self::NotificationsRead
                | Self::TradesRead
        )
    }
}

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OrgRole {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl OrgRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }

    /// Higher roles may do all that lower ones may: owner 3, admin 2,
    /// member 1, viewer 0. Nobody grants a role above their own.
    pub const fn rank(self) -> u8 {
        match self {
            Self::Owner => 3,
            Self::Admin => 2,
            Self::Member => 1,
            Self::Viewer => 0,
        }
    }

    /// The role defaults of the contract: owner = all; admin = all but deleting
    /// the org; member = every read, `trades:write`, `notifications:*`;
    /// viewer = every read.
    pub const fn allows(self, p: Permission) -> bool {
        match self {
            Self::Owner => true,
            Self::Admin => !matches!(p, Permission::OrgDelete),
            Self::Member => p.is_read() || matches!(p, Permission::TradesWrite | Permission::NotificationsManage),
            Self::Viewer => p.is_read(),
        }
    }
}

/// For `apiKeys.verify`: the organization of the API key making the call,
/// or the one named, when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerKeyOr(pub Option<crate::ids::OrgId>);

/// For an [`Access::OrgOrAdmin`](crate::Access::OrgOrAdmin) procedure: the
/// organization its params name, or none (the whole server, for a system
/// administrator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgOrServer(pub Option<crate::ids::OrgId>);

/// The [`Procedure::InOrg`](crate::Procedure::InOrg) of a procedure that is
/// not organization-scoped: it names no organization (no value exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoOrg {}
