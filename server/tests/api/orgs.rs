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
