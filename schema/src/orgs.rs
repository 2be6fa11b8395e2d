//! `orgs.*`: organizations, their members and roles, and invitations.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::access::{OrgRef, OrgRole, Permission};
use crate::auth::{Membership, Org, User};
use crate::error::NoReason;
use crate::health::Empty;
use crate::list::Page;
use crate::values::{Cursor, DisplayName, Email, PageLimit, Slug, Token};
use crate::{Access, procedure, reasons};

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
        access: Access::User,
        params: CreateOrgParams,
        output: Org,
        reasons: CreateOrgReason,
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
        access: Access::User,
        params: Empty,
        output: OrgList,
        reasons: NoReason,
    }
}

/// Params that name only an organization.
#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgParams {
    pub org_id: Uuid,
}

procedure! {
    /// One organization.
    Get {
        method: "orgs.get",
        kind: Query,
        access: Access::Org(Permission::OrgRead),
        params: OrgParams,
        output: Org,
        org: |p| OrgRef::Org(p.org_id),
        reasons: NoReason,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateOrgParams {
    pub org_id: Uuid,
    #[serde(default)]
    #[ts(optional)]
    pub name: Option<DisplayName>,
}

procedure! {
    /// Renames an organization.
    Update {
        method: "orgs.update",
        kind: Mutation,
        access: Access::Org(Permission::OrgManage),
        params: UpdateOrgParams,
        output: Org,
        org: |p| OrgRef::Org(p.org_id),
        reasons: NoReason,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListMembersParams {
    pub org_id: Uuid,
    #[serde(default)]
    #[ts(optional)]
    pub cursor: Option<Cursor>,
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<PageLimit>,
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
        access: Access::Org(Permission::OrgRead),
        params: ListMembersParams,
        output: Page<Member>,
        org: |p| OrgRef::Org(p.org_id),
        reasons: NoReason,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteParams {
    pub org_id: Uuid,
    pub email: Email,
    pub role: OrgRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub invitation_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

reasons! {
    /// Why `orgs.invite` can refuse.
    pub enum InviteReason { MissingPermission, AlreadyExists }
}

procedure! {
    /// E-mails an invitation (single use, 7 days) to join with a role no higher than the inviter's.
    Invite {
        method: "orgs.invite",
        kind: Mutation,
        access: Access::Org(Permission::OrgManage),
        params: InviteParams,
        output: Invitation,
        org: |p| OrgRef::Org(p.org_id),
        reasons: InviteReason,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcceptInviteParams {
    /// The token from the invitation e-mail.
    pub token: Token,
}

reasons! {
    /// Why `orgs.acceptInvite` can refuse.
    pub enum AcceptInviteReason { TokenInvalid, TokenExpired, TokenUsed, InvitationMismatch, AlreadyExists }
}

procedure! {
    /// Joins the organization of an invitation sent to the caller's own address.
    AcceptInvite {
        method: "orgs.acceptInvite",
        kind: Mutation,
        access: Access::User,
        params: AcceptInviteParams,
        output: Membership,
        reasons: AcceptInviteReason,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMemberRoleParams {
    pub org_id: Uuid,
    pub user_id: Uuid,
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
        access: Access::Org(Permission::OrgManage),
        params: UpdateMemberRoleParams,
        output: Empty,
        org: |p| OrgRef::Org(p.org_id),
        reasons: MemberChangeReason,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveMemberParams {
    pub org_id: Uuid,
    pub user_id: Uuid,
}

procedure! {
    /// Removes a member; nobody removes a member above them, and the last owner stays.
    RemoveMember {
        method: "orgs.removeMember",
        kind: Mutation,
        access: Access::Org(Permission::OrgManage),
        params: RemoveMemberParams,
        output: Empty,
        org: |p| OrgRef::Org(p.org_id),
        reasons: MemberChangeReason,
    }
}
