//! Organizations, roles, invitations and the audit trail, through the real
//! server on both backends, with invitations received by the SMTP sink.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};
use crate::mail_sink::MailSink;
use crate::mail_test;

pub fn token(tokens: &Value) -> String {
    tokens["accessToken"].as_str().expect("access token").to_owned()
}

/// Signs up `email` and returns its access token.
pub async fn user(app: &TestApp, email: &str) -> String {
    token(&app.signed_in(email).await)
}

pub async fn create_org(app: &TestApp, owner: &str, slug: &str) -> String {
    let org = app
        .call("orgs.create", json!({"name": format!("Org {slug}"), "slug": slug}), Some(owner))
        .await
        .expect("created");
    org["id"].as_str().expect("id").to_owned()
}

/// Invites `email` (a new user) with `role` and accepts as them; returns
/// their access token.
pub async fn join(app: &TestApp, mail: &MailSink, inviter: &str, org: &str, email: &str, role: &str) -> String {
    let t = user(app, email).await;
    app.call("orgs.invite", json!({"orgId": org, "email": email, "role": role}), Some(inviter)).await.expect("invited");
    let invitation = mail.wait_for(email, "invited").await;
    let m = app.call("orgs.acceptInvite", json!({"token": invitation.link_token()}), Some(&t)).await.expect("accepted");
    assert_eq!(m["role"], role);
    t
}

mail_test! {
    /// Two organizations, four roles, invitations accepted and refused, and
    /// nobody sees another organization (NOT_FOUND, not FORBIDDEN).
    async fn two_orgs_four_roles_and_invitations(app, mail) where |c| { c.require_verified_email = Some(false); } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let e = app.call("orgs.create", json!({"name": "Again", "slug": "org-a"}), Some(&owner)).await.expect_err("taken");
        assert_error(&e, -32009, "ALREADY_EXISTS");
        let admin = join(app, mail, &owner, &a, "admin@a.example", "admin").await;
        let member = join(app, mail, &admin, &a, "member@a.example", "member").await;
        let viewer = join(app, mail, &owner, &a, "viewer@a.example", "viewer").await;
        let outsider = user(app, "owner@b.example").await;
        let b = create_org(app, &outsider, "org-b").await;

        let members = app.call("orgs.listMembers", json!({"orgId": a}), Some(&viewer)).await.expect("members");
        let mut roles: Vec<&str> = members["items"].as_array().expect("items").iter().map(|m| m["role"].as_str().expect("role")).collect();
        roles.sort_unstable();
        assert_eq!(roles, ["admin", "member", "owner", "viewer"]);
        let list = app.call("orgs.list", json!({}), Some(&member)).await.expect("list");
        assert_eq!(list["items"][0]["org"]["slug"], "org-a");
        assert_eq!(list["items"][0]["role"], "member");

        // Permissions by role.
        let e = app.call("orgs.update", json!({"orgId": a, "name": "Renamed"}), Some(&viewer)).await.expect_err("viewer");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        assert_eq!(e["data"]["required"], "org:manage");
        let e = app.call("orgs.invite", json!({"orgId": a, "email": "x@a.example", "role": "viewer"}), Some(&member)).await.expect_err("member");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let e = app.call("orgs.invite", json!({"orgId": a, "email": "x@a.example", "role": "owner"}), Some(&admin)).await.expect_err("above own");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let e = app.call("orgs.invite", json!({"orgId": a, "email": "member@a.example", "role": "viewer"}), Some(&admin)).await.expect_err("member");
        assert_error(&e, -32009, "ALREADY_EXISTS");
        let renamed = app.call("orgs.update", json!({"orgId": a, "name": "Renamed"}), Some(&admin)).await.expect("admin renames");
        assert_eq!(renamed["name"], "Renamed");

        // Another tenant's organization does not exist for them.
        for (method, params) in [("orgs.get", json!({"orgId": a})), ("orgs.listMembers", json!({"orgId": a}))] {
            let e = app.call(method, params, Some(&outsider)).await.expect_err("outsider");
            assert_error(&e, -32004, "NOT_FOUND");
        }
        let e = app.call("orgs.get", json!({"orgId": uuid::Uuid::now_v7()}), Some(&outsider)).await.expect_err("none");
        assert_error(&e, -32004, "NOT_FOUND");
        app.call("orgs.get", json!({"orgId": b}), Some(&outsider)).await.expect("own org");

        // An invitation is for its address only, and works once.
        app.call("orgs.invite", json!({"orgId": b, "email": "invitee@b.example", "role": "member"}), Some(&outsider)).await.expect("invited");
        let inv = mail.wait_for("invitee@b.example", "invited").await;
        assert!(inv.text.contains("https://app.example.test/accept-invite?token="), "{}", inv.text);
        let e = app.call("orgs.acceptInvite", json!({"token": inv.link_token()}), Some(&member)).await.expect_err("not theirs");
        assert_error(&e, -32003, "INVITATION_MISMATCH");
        let invitee = user(app, "Invitee@B.example").await;
        app.call("orgs.acceptInvite", json!({"token": inv.link_token()}), Some(&invitee)).await.expect("accepted");
        let e = app.call("orgs.acceptInvite", json!({"token": inv.link_token()}), Some(&invitee)).await.expect_err("used");
        assert_error(&e, -32012, "TOKEN_USED");
        let e = app.call("orgs.acceptInvite", json!({"token": "nope"}), Some(&invitee)).await.expect_err("unknown");
        assert_error(&e, -32001, "TOKEN_INVALID");
    }
}

mail_test! {
    /// An organization always keeps an owner; nobody changes a member above
    /// them or grants a role above their own.
    async fn the_last_owner_is_protected(app, mail) where |c| { c.require_verified_email = Some(false); } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let admin = join(app, mail, &owner, &a, "admin@a.example", "admin").await;
        let me = |t: &str| {
            let t = t.to_owned();
            async move { app.call("auth.me", json!({}), Some(&t)).await.expect("me")["user"]["id"].clone() }
        };
        let (owner_id, admin_id) = (me(&owner).await, me(&admin).await);
        let e = app.call("orgs.updateMemberRole", json!({"orgId": a, "userId": owner_id, "role": "admin"}), Some(&owner)).await.expect_err("last owner");
        assert_error(&e, -32009, "INVALID_TRANSITION");
        let e = app.call("orgs.removeMember", json!({"orgId": a, "userId": owner_id}), Some(&owner)).await.expect_err("last owner");
        assert_error(&e, -32009, "INVALID_TRANSITION");
        let e = app.call("orgs.updateMemberRole", json!({"orgId": a, "userId": owner_id, "role": "viewer"}), Some(&admin)).await.expect_err("above them");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let e = app.call("orgs.updateMemberRole", json!({"orgId": a, "userId": admin_id, "role": "owner"}), Some(&admin)).await.expect_err("above own");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        app.call("orgs.updateMemberRole", json!({"orgId": a, "userId": admin_id, "role": "owner"}), Some(&owner)).await.expect("second owner");
        app.call("orgs.updateMemberRole", json!({"orgId": a, "userId": owner_id, "role": "viewer"}), Some(&owner)).await.expect("now allowed");
        let e = app.call("orgs.update", json!({"orgId": a, "name": "x"}), Some(&owner)).await.expect_err("now a viewer");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        app.call("orgs.removeMember", json!({"orgId": a, "userId": owner_id}), Some(&admin)).await.expect("removed");
        let e = app.call("orgs.get", json!({"orgId": a}), Some(&owner)).await.expect_err("gone");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("orgs.removeMember", json!({"orgId": a, "userId": owner_id}), Some(&admin)).await.expect_err("not a member");
        assert_error(&e, -32004, "NOT_FOUND");
    }
}

mail_test! {
    /// Every change is in the audit trail with actor, target, outcome, IP,
    /// user agent and request id, filtered and paged.
    async fn the_audit_trail_records_every_change(app, mail) where |c| { c.require_verified_email = Some(false); } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let viewer = join(app, mail, &owner, &a, "viewer@a.example", "viewer").await;
        app.call("orgs.update", json!({"orgId": a, "name": "Renamed"}), Some(&owner)).await.expect("renamed");
        let page = app.call("audit.list", json!({"orgId": a, "limit": 2}), Some(&viewer)).await.expect("audit");
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["action"], "orgs.update");
        assert_eq!(items[0]["actor"]["kind"], "user");
        assert_eq!(items[0]["outcome"], "success");
        assert_eq!(items[0]["ip"], "127.0.0.1");
        assert!(items[0]["requestId"].is_string() && items[0]["target"].is_string());
        let rest = app.call("audit.list", json!({"orgId": a, "cursor": page["nextCursor"]}), Some(&viewer)).await.expect("page 2");
        let actions: Vec<&str> = rest["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("a")).collect();
        assert_eq!(actions, ["orgs.invite", "orgs.create"], "{rest}");
        let only = app.call("audit.list", json!({"orgId": a, "action": "orgs.invite"}), Some(&viewer)).await.expect("filtered");
        assert_eq!(only["items"].as_array().map(Vec::len), Some(1));
        let owner_id = app.call("auth.me", json!({}), Some(&owner)).await.expect("me")["user"]["id"].clone();
        let by = app.call("audit.list", json!({"orgId": a, "actorId": owner_id}), Some(&viewer)).await.expect("by actor");
        assert_eq!(by["items"].as_array().map(Vec::len), Some(3));
        let stranger = user(app, "stranger@x.example").await;
        let e = app.call("audit.list", json!({"orgId": a}), Some(&stranger)).await.expect_err("outsider");
        assert_error(&e, -32004, "NOT_FOUND");
    }
}

async fn user_id(app: &TestApp, token: &str) -> Value {
    app.call("auth.me", json!({}), Some(token)).await.expect("me")["user"]["id"].clone()
}

async fn invite(app: &TestApp, by: &str, org: &str, email: &str, role: &str) -> Value {
    let made =
        app.call("orgs.invite", json!({"orgId": org, "email": email, "role": role}), Some(by)).await.expect("invited");
    made["invitationId"].clone()
}

mail_test! {
    /// Pending invitations are listed; a revoked one stops working at once,
    /// is audited, and revoking it again changes nothing; an accepted one
    /// cannot be revoked; another organization's is not found.
    async fn invitations_can_be_listed_and_revoked(app, mail) where |c| { c.require_verified_email = Some(false); } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let outsider = user(app, "owner@b.example").await;
        let b = create_org(app, &outsider, "org-b").await;
        let owner_id = user_id(app, &owner).await;
        let ix = invite(app, &owner, &a, "X@a.example", "viewer").await;
        let iy = invite(app, &owner, &a, "y@a.example", "member").await;

        let listed = app.call("orgs.listInvites", json!({"orgId": a}), Some(&owner)).await.expect("listed");
        let items = listed["items"].as_array().expect("items");
        assert_eq!(items.len(), 2, "{listed}");
        assert_eq!((items[0]["id"].clone(), items[0]["email"].clone(), items[0]["role"].clone()), (ix.clone(), json!("x@a.example"), json!("viewer")));
        assert_eq!(items[0]["invitedBy"], owner_id);
        assert!(items[0]["createdAt"].is_string() && items[0]["expiresAt"].is_string());
        let page = app.call("orgs.listInvites", json!({"orgId": a, "limit": 1}), Some(&owner)).await.expect("page");
        let rest = app.call("orgs.listInvites", json!({"orgId": a, "cursor": page["nextCursor"]}), Some(&owner)).await.expect("rest");
        assert_eq!(rest["items"][0]["id"], iy);

        let e = app.call("orgs.revokeInvite", json!({"orgId": b, "invitationId": ix}), Some(&outsider)).await.expect_err("not theirs");
        assert_error(&e, -32004, "NOT_FOUND");
        app.call("orgs.revokeInvite", json!({"orgId": a, "invitationId": ix}), Some(&owner)).await.expect("revoked");
        app.call("orgs.revokeInvite", json!({"orgId": a, "invitationId": ix}), Some(&owner)).await.expect("again: nothing changes");
        let listed = app.call("orgs.listInvites", json!({"orgId": a}), Some(&owner)).await.expect("listed");
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));

        let x = user(app, "x@a.example").await;
        let token = mail.wait_for("x@a.example", "invited").await.link_token();
        let e = app.call("orgs.acceptInvite", json!({"token": token}), Some(&x)).await.expect_err("revoked");
        assert_error(&e, -32012, "INVITATION_REVOKED");
        let audit = app.call("audit.list", json!({"orgId": a, "action": "orgs.revokeInvite"}), Some(&owner)).await.expect("audit");
        let events = audit["items"].as_array().expect("items");
        assert_eq!(events.len(), 1, "revoked once: {audit}");
        assert_eq!(events[0]["actor"]["id"], owner_id);
        assert_eq!(events[0]["target"], format!("invitation:{}", ix.as_str().expect("id")));

        let y = user(app, "y@a.example").await;
        let token = mail.wait_for("y@a.example", "invited").await.link_token();
        app.call("orgs.acceptInvite", json!({"token": token}), Some(&y)).await.expect("accepted");
        let e = app.call("orgs.revokeInvite", json!({"orgId": a, "invitationId": iy}), Some(&owner)).await.expect_err("accepted");
        assert_error(&e, -32009, "INVALID_TRANSITION");
        let listed = app.call("orgs.listInvites", json!({"orgId": a}), Some(&owner)).await.expect("listed");
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(0));
        let e = app.call("orgs.revokeInvite", json!({"orgId": a, "invitationId": uuid::Uuid::now_v7()}), Some(&owner)).await.expect_err("none");
        assert_error(&e, -32004, "NOT_FOUND");
    }
}

mail_test! {
    /// An invitation is accepted only while the member who sent it may still
    /// grant its role: demoted below it, without org:manage, or gone, the
    /// invitation answers INVITATION_REVOKED.
    async fn an_invitation_needs_an_inviter_who_may_still_grant_it(app, mail) where |c| { c.require_verified_email = Some(false); } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let deputy = join(app, mail, &owner, &a, "deputy@a.example", "admin").await;
        let deputy_id = user_id(app, &deputy).await;
        let set_role = |role: &'static str| {
            let (owner, a, deputy_id) = (owner.clone(), a.clone(), deputy_id.clone());
            async move {
                app.call("orgs.updateMemberRole", json!({"orgId": a, "userId": deputy_id, "role": role}), Some(&owner)).await.expect("role set");
            }
        };
        let accept = |email: &'static str| async move {
            let t = user(app, email).await;
            let token = mail.wait_for(email, "invited").await.link_token();
            (t, token)
        };

        // Without org:manage: refused; with it again: accepted.
        invite(app, &deputy, &a, "z@a.example", "admin").await;
        set_role("member").await;
        let (z, token) = accept("z@a.example").await;
        let e = app.call("orgs.acceptInvite", json!({"token": token}), Some(&z)).await.expect_err("inviter is a member now");
        assert_error(&e, -32012, "INVITATION_REVOKED");
        set_role("admin").await;
        let m = app.call("orgs.acceptInvite", json!({"token": token}), Some(&z)).await.expect("inviter may again");
        assert_eq!(m["role"], "admin");

        // Ranked below the role now.
        set_role("owner").await;
        invite(app, &deputy, &a, "k@a.example", "owner").await;
        set_role("admin").await;
        let (k, token) = accept("k@a.example").await;
        let e = app.call("orgs.acceptInvite", json!({"token": token}), Some(&k)).await.expect_err("inviter below the role");
        assert_error(&e, -32012, "INVITATION_REVOKED");

        // Gone.
        invite(app, &deputy, &a, "m@a.example", "member").await;
        app.call("orgs.removeMember", json!({"orgId": a, "userId": deputy_id}), Some(&owner)).await.expect("removed");
        let (m, token) = accept("m@a.example").await;
        let e = app.call("orgs.acceptInvite", json!({"token": token}), Some(&m)).await.expect_err("inviter gone");
        assert_error(&e, -32012, "INVITATION_REVOKED");
        let refusals = app.call("audit.list", json!({"orgId": a, "action": "orgs.acceptInvite"}), Some(&owner)).await.expect("audit");
        let failed = refusals["items"].as_array().expect("items").iter().filter(|e| e["outcome"] == "failure").count();
        assert_eq!(failed, 3, "{refusals}");
    }
}

mail_test! {
    /// Invitations are limited per recipient address (a day), per inviter
    /// (an hour) and per organization (a day); a refused one costs nothing.
    async fn invitations_are_limited_per_inviter_org_and_recipient(app, mail) where |c| {
        c.require_verified_email = Some(false);
        c.invite_rate_per_recipient = 2;
        c.invite_rate_per_inviter = 4;
        c.invite_rate_per_org = 6;
    } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let deputy = join(app, mail, &owner, &a, "deputy@a.example", "admin").await; // owner 1, org 1
        let limited = |e: &Value, limit: u64| {
            assert_error(e, -32029, "RATE_LIMITED");
            assert_eq!(e["data"]["limit"], limit, "{e}");
            assert!(e["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0), "{e}");
        };
        let try_invite = |by: &str, org: &str, email: &str| {
            let (by, org, email) = (by.to_owned(), org.to_owned(), email.to_owned());
            async move { app.call("orgs.invite", json!({"orgId": org, "email": email, "role": "viewer"}), Some(&by)).await }
        };
        // Per recipient: 2 a day.
        for _ in 0..2 {
            try_invite(&owner, &a, "r@a.example").await.expect("within the recipient's limit");
        }
        limited(&try_invite(&owner, &a, "R@a.example").await.expect_err("recipient"), 2); // owner 3, org 3
        // Per inviter: 4 an hour (the refusal above took nothing).
        try_invite(&owner, &a, "s@a.example").await.expect("the owner's 4th");
        limited(&try_invite(&owner, &a, "t@a.example").await.expect_err("inviter"), 4);
        // Per organization: 6 a day, whoever invites.
        try_invite(&deputy, &a, "u@a.example").await.expect("org's 5th");
        try_invite(&deputy, &a, "v@a.example").await.expect("org's 6th");
        limited(&try_invite(&deputy, &a, "w@a.example").await.expect_err("organization"), 6);
        // Another organization has its own allowance.
        let other = user(app, "owner@b.example").await;
        let b = create_org(app, &other, "org-b").await;
        try_invite(&other, &b, "w@a.example").await.expect("another organization");
        // A key's invitations count for its holder.
        let (key, _) = crate::api_keys::make_key(app, &owner, &a, &["org:manage"], json!({})).await;
        let e = app.call_with_key("orgs.invite", json!({"orgId": a, "email": "q@a.example", "role": "viewer"}), &key).await.expect_err("holder's allowance");
        assert_error(&e, -32029, "RATE_LIMITED");
        assert_eq!(e["data"]["limit"], 4, "the inviter's limit: {e}");
    }
}
