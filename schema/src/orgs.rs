//! `orgs.*`: organizations, their members and roles, and invitations.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Empty;
use crate::access::{OrgRole, Permission};
use crate::error::NoReason;
use crate::ids::{InvitationId, OrgId, UserId};
use crate::list::{Page, example_limit, list_params};
use crate::users::User;
use crate::values::{DisplayName, Email, Slug, Token};
use crate::{procedure, reasons};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    /// Per currency, the deal value (price × quantity) above which an agreed
    /// trade of the organization needs approval (in `orgs.get` and
    /// `orgs.update` answers; absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub approval_thresholds:
        Option<std::collections::BTreeMap<crate::commodities::Currency, crate::commodities::Price>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub org: Org,
    pub role: OrgRole,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrgParams {
    pub name: DisplayName,
    /// Unique across the server.
    pub slug: Slug,
}

reasons! {
    /// Why `orgs.create` can refuse.
    pub enum CreateOrgReason { AlreadyExists }
}

procedure! {
    /// Creates an organization; the caller becomes its owner.
    Create {
        method: "orgs.create",
        kind: Mutation,
        access: User,
        params: CreateOrgParams,
        output: Org,
        reasons: CreateOrgReason,
        example: CreateOrgParams {
            name: DisplayName::parse("Acme Research").expect("a name"),
            slug: Slug::try_from("acme-research".to_owned()).expect("a slug"),
        },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgList {
    pub items: Vec<Membership>,
}

procedure! {
    /// The organizations the caller belongs to, with the role held in each.
    List {
        method: "orgs.list",
        kind: Query,
        access: User,
        params: Empty,
        output: OrgList,
        reasons: NoReason,
    }
}

/// Params that name only an organization.
#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgParams {
    pub org_id: OrgId,
}

procedure! {
    /// One organization.
    Get {
        method: "orgs.get",
        kind: Query,
        access: Org(Permission::OrgRead),
        params: OrgParams,
        output: Org,
        org: OrgId = |p| p.org_id,
        reasons: NoReason,
        example: OrgParams { org_id: OrgId::EXAMPLE },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateOrgParams {
    pub org_id: OrgId,
    #[serde(default)]
    #[ts(optional)]
    pub name: Option<DisplayName>,
    /// Replaces the approval thresholds (at most 20 currencies; `{}` clears them).
    #[serde(default)]
    #[ts(optional)]
    pub approval_thresholds:
        Option<std::collections::BTreeMap<crate::commodities::Currency, crate::commodities::Price>>,
}

procedure! {
    /// Renames an organization and/or replaces its approval thresholds for trades.
    Update {
        method: "orgs.update",
        kind: Mutation,
        access: Org(Permission::OrgManage),
        params: UpdateOrgParams,
        output: Org,
        org: OrgId = |p| p.org_id,
        reasons: NoReason,
        example: UpdateOrgParams {
            org_id: OrgId::EXAMPLE,
            name: Some(DisplayName::parse("Acme Research Labs").expect("a name")),
            approval_thresholds: None,
        },
    }
}

list_params! {
    pub struct ListMembersParams {
        pub org_id: OrgId,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user: User,
    pub role: OrgRole,
    pub joined_at: DateTime<Utc>,
}

procedure! {
    /// The members of an organization, in the order they joined.
    ListMembers {
        method: "orgs.listMembers",
        kind: Query,
        access: Org(Permission::OrgRead),
        params: ListMembersParams,
        output: Page<Member>,
        org: OrgId = |p| p.org_id,
        reasons: NoReason,
        example: ListMembersParams { org_id: OrgId::EXAMPLE, cursor: None, limit: example_limit() },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteParams {
    pub org_id: OrgId,
    pub email: Email,
    pub role: OrgRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub invitation_id: InvitationId,
    pub expires_at: DateTime<Utc>,
}

reasons! {
    /// Why `orgs.invite` can refuse.
    pub enum InviteReason { MissingPermission, AlreadyExists }
}

procedure! {
    /// E-mails an invitation (single use, 7 days) to join with a role no higher than the inviter's (for an API key: its holder's). Limited per inviter (default 20 an hour; an API key counts for its holder), per organization (100 a day) and per recipient address (3 a day from all organizations); over a limit, `RATE_LIMITED` with `retryAfterMs` and `limit`.
    Invite {
        method: "orgs.invite",
        kind: Mutation,
        access: Org(Permission::OrgManage),
        params: InviteParams,
        output: Invitation,
        org: OrgId = |p| p.org_id,
        reasons: InviteReason,
        example: InviteParams {
            org_id: OrgId::EXAMPLE,
            email: Email::parse("new@example.com").expect("an address"),
            role: OrgRole::Viewer,
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcceptInviteParams {
    /// The token from the invitation e-mail.
    pub token: Token,
}

reasons! {
    /// Why `orgs.acceptInvite` can refuse. `INVITATION_REVOKED`: the
    /// invitation was revoked (`orgs.revokeInvite`), or the member who sent
    /// it may no longer grant its role (no longer a member, disabled, without
    /// `org:manage`, or now ranked below the role).
    pub enum AcceptInviteReason { TokenInvalid, TokenExpired, TokenUsed, InvitationMismatch, InvitationRevoked, AlreadyExists }
}

procedure! {
    /// Joins the organization of an invitation sent to the caller's own address. The invitation must still be pending, and the member who sent it must still be one who may grant its role (`org:manage`, and a role at least as high); otherwise `INVITATION_REVOKED`.
    AcceptInvite {
        method: "orgs.acceptInvite",
        kind: Mutation,
        access: User,
        params: AcceptInviteParams,
        output: Membership,
        reasons: AcceptInviteReason,
        example: AcceptInviteParams {
            token: Token::try_from("FRnlKhKzoPbkZs1ZJ9Ve6cnTtV9wsPBLjLIn8qI_eSQ".to_owned()).expect("a token"),
        },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMemberRoleParams {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: OrgRole,
}

reasons! {
    /// Why `orgs.updateMemberRole` and `orgs.removeMember` can refuse.
    pub enum MemberChangeReason { NotFound, MissingPermission, InvalidTransition }
}

procedure! {
    /// Changes a member's role. Nobody grants a role above their own or changes a member above them; the last owner stays.
    UpdateMemberRole {
        method: "orgs.updateMemberRole",
        kind: Mutation,
        access: Org(Permission::OrgManage),
        params: UpdateMemberRoleParams,
        output: Empty,
        org: OrgId = |p| p.org_id,
        reasons: MemberChangeReason,
        example: UpdateMemberRoleParams { org_id: OrgId::EXAMPLE, user_id: UserId::EXAMPLE, role: OrgRole::Admin },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveMemberParams {
    pub org_id: OrgId,
    pub user_id: UserId,
}

procedure! {
    /// Removes a member; nobody removes a member above them, and the last owner stays.
    RemoveMember {
        method: "orgs.removeMember",
        kind: Mutation,
        access: Org(Permission::OrgManage),
        params: RemoveMemberParams,
        output: Empty,
        org: OrgId = |p| p.org_id,
        reasons: MemberChangeReason,
        example: RemoveMemberParams { org_id: OrgId::EXAMPLE, user_id: UserId::EXAMPLE },
    }
}

list_params! {
    pub struct ListInvitesParams {
        pub org_id: OrgId,
    }
}

/// An invitation not yet accepted, revoked or expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingInvitation {
    pub id: InvitationId,
    /// The invited address, normalized (lower case).
    pub email: String,
    pub role: OrgRole,
    /// The member who sent it (for an API key: its holder).
    pub invited_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

procedure! {
    /// The organization's pending invitations (not accepted, revoked or expired), oldest first.
    ListInvites {
        method: "orgs.listInvites",
        kind: Query,
        access: Org(Permission::OrgManage),
        params: ListInvitesParams,
        output: Page<PendingInvitation>,
        org: OrgId = |p| p.org_id,
        reasons: NoReason,
        example: ListInvitesParams { org_id: OrgId::EXAMPLE, cursor: None, limit: example_limit() },
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeInviteParams {
    pub org_id: OrgId,
    pub invitation_id: InvitationId,
}

reasons! {
    /// Why `orgs.revokeInvite` can refuse: no such invitation in the
    /// organization (`NOT_FOUND`), or it was accepted already (`INVALID_TRANSITION`).
    pub enum RevokeInviteReason { NotFound, InvalidTransition }
}

procedure! {
    /// Revokes an invitation: its token stops working at once (`INVITATION_REVOKED`). Revoking a revoked or expired invitation changes nothing and succeeds; an accepted one is `INVALID_TRANSITION`.
    RevokeInvite {
        method: "orgs.revokeInvite",
        kind: Mutation,
        access: Org(Permission::OrgManage),
        params: RevokeInviteParams,
        output: Empty,
        org: OrgId = |p| p.org_id,
        reasons: RevokeInviteReason,
        example: RevokeInviteParams { org_id: OrgId::EXAMPLE, invitation_id: InvitationId::EXAMPLE },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_orgs {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::orgs::Create,
            $crate::orgs::List,
            $crate::orgs::Get,
            $crate::orgs::Update,
            $crate::orgs::ListMembers,
            $crate::orgs::Invite,
            $crate::orgs::AcceptInvite,
            $crate::orgs::UpdateMemberRole,
            $crate::orgs::RemoveMember,
            $crate::orgs::ListInvites,
            $crate::orgs::RevokeInvite,
        ]; $($rest)* }
    };
}
