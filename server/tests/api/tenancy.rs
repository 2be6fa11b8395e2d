//! The permission model, walked over every procedure of the schema: each
//! organization-scoped one is called by a member of another organization, by
//! a viewer, by an API key without the scope, and with no credentials, and
//! must answer the right refusal (and another tenant's objects NOT_FOUND).

use serde_json::{Value, json};
use trellis_schema::Access;

use crate::api_keys::make_key;
use crate::helpers::assert_error;
use crate::mail_test;
use crate::orgs::{create_org, join, user};

/// Valid params for each organization-scoped procedure, naming objects of
/// `org`. A procedure missing here fails the test: add it.
fn sample(method: &str, org: &str, key_id: &str, user_id: &Value) -> Value {
    match method {
        "orgs.get" | "orgs.listMembers" | "orgs.listInvites" | "apiKeys.list" | "audit.list" => json!({"orgId": org}),
        "orgs.revokeInvite" => json!({"orgId": org, "invitationId": uuid::Uuid::now_v7()}),
        "orgs.update" => json!({"orgId": org, "name": "Changed"}),
        "orgs.invite" => json!({"orgId": org, "email": "new@example.com", "role": "viewer"}),
        "orgs.updateMemberRole" => json!({"orgId": org, "userId": user_id, "role": "viewer"}),
        "orgs.removeMember" => json!({"orgId": org, "userId": user_id}),
        "apiKeys.create" => json!({"orgId": org, "name": "k", "scopes": ["org:read"]}),
        "apiKeys.get" | "apiKeys.revoke" | "apiKeys.usage" => json!({"id": key_id}),
        "apiKeys.update" => json!({"id": key_id, "name": "renamed"}),
        "apiKeys.rotate" => json!({"id": key_id}),
        "apiKeys.verify" => json!({"orgId": org, "key": "trl_not_a_key"}),
        other => panic!("no sample params for {other}: add them to tenancy.rs"),
    }
}

mail_test! {
    async fn every_org_procedure_refuses_outsiders_viewers_and_narrow_keys(app, mail) where |c| {
        c.require_verified_email = Some(false);
    } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let viewer = join(app, mail, &owner, &a, "viewer@a.example", "viewer").await;
        let (_, key) = make_key(app, &owner, &a, &["org:read"], json!({})).await;
        let (narrow, _) = make_key(app, &owner, &a, &["trades:read"], json!({})).await;
        let owner_id = app.call("auth.me", json!({}), Some(&owner)).await.expect("me")["user"]["id"].clone();
        let outsider = user(app, "owner@b.example").await;
        create_org(app, &outsider, "org-b").await;
        let key_id = key["id"].as_str().expect("id").to_owned();

        let mut walked = 0;
        for p in trellis_schema::procedure::procedures() {
            let Access::Org(permission) = p.access else { continue };
            walked += 1;
            let params = sample(p.method, &a, &key_id, &owner_id);
            let required = permission.as_str();

            let e = app.call(p.method, params.clone(), None).await.expect_err("anonymous");
            assert_error(&e, -32001, "CREDENTIALS_MISSING");

            let e = app.call(p.method, params.clone(), Some(&outsider)).await.expect_err("outsider");
            assert_eq!(e["data"]["reason"], "NOT_FOUND", "{}: {e}", p.method);

            let e = app.call_with_key(p.method, params.clone(), &narrow).await.expect_err("narrow key");
            assert_eq!(e["data"]["reason"], "MISSING_SCOPE", "{}: {e}", p.method);
            assert_eq!(e["data"]["required"], required, "{}", p.method);

            let as_viewer = app.call(p.method, params.clone(), Some(&viewer)).await;
            if required.ends_with(":read") {
                assert!(as_viewer.is_ok(), "{}: a viewer may read: {as_viewer:?}", p.method);
            } else {
                let e = as_viewer.expect_err("viewer");
                assert_eq!(e["data"]["reason"], "MISSING_PERMISSION", "{}: {e}", p.method);
                assert_eq!(e["data"]["required"], required, "{}", p.method);
            }
        }
        assert_eq!(walked, 17, "every organization-scoped procedure was walked");
        // Nothing the refused calls asked for happened.
        let org = app.call("orgs.get", json!({"orgId": a}), Some(&owner)).await.expect("org");
        assert_eq!(org["name"], "Org org-a");
        let k = app.call("apiKeys.get", json!({"id": key_id}), Some(&owner)).await.expect("key");
        assert!(k["revokedAt"].is_null());
    }
}
