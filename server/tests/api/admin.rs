//! System administrators: `trellis create-admin` and the `admin.*`
//! procedures, on both backends.

use serde_json::json;
use trellis_server::admin::create::{Created, create_admin};

use crate::db_test;
use crate::helpers::{PASSWORD, TestApp, assert_error};

/// Registers `email`, makes it an administrator as `trellis create-admin`
/// does, and signs in; returns the access token.
pub async fn admin_token(app: &TestApp, email: &str) -> String {
    app.register(email, PASSWORD).await;
    let created = create_admin(&app.config, email, None).await.expect("create-admin");
    assert!(matches!(created, Created::Promoted { .. }), "{created:?}");
    app.login(email, PASSWORD).await["accessToken"].as_str().expect("token").to_owned()
}

db_test! {
    /// create-admin makes a new, verified administrator from nothing, and
    /// refuses a password the policy refuses.
    async fn create_admin_makes_the_first_administrator(app) {
        let e = create_admin(&app.config, "boss@example.com", Some("password".into())).await.expect_err("policy");
        assert!(e.to_string().contains("common"), "{e}");
        let created = create_admin(&app.config, "boss@example.com", Some("the chief's own secret".into())).await.expect("made");
        assert!(matches!(created, Created::NewAccount { .. }));
        let tokens = app.login("boss@example.com", "the chief's own secret").await;
        assert_eq!(tokens["user"]["isAdmin"], true);
        assert_eq!(tokens["user"]["emailVerified"], true);
        let t = tokens["accessToken"].as_str().expect("token");
        app.call("admin.listUsers", json!({}), Some(t)).await.expect("an administrator lists users");
    }
}

db_test! {
    /// Users are listed by search and page; only administrators may list.
    async fn list_users_searches_and_pages(app) {
        let admin = admin_token(app, "root@example.com").await;
        for i in 0..5 {
            app.register(&format!("member{i}@example.com"), PASSWORD).await;
        }
        let ordinary = app.login("member0@example.com", PASSWORD).await;
        let e = app.call("admin.listUsers", json!({}), ordinary["accessToken"].as_str()).await.expect_err("not admin");
        assert_error(&e, -32003, "ADMIN_REQUIRED");

        let found = app.call("admin.listUsers", json!({"query": "MEMBER"}), Some(&admin)).await.expect("search");
        assert_eq!(found["items"].as_array().map(Vec::len), Some(5));
        assert_eq!(found["items"][0]["disabled"], false);
        assert!(found["items"][0]["lockedUntil"].is_null());
        let none = app.call("admin.listUsers", json!({"query": "100%_"}), Some(&admin)).await.expect("search");
        assert_eq!(none["items"], json!([]));

        let mut seen = Vec::new();
        let mut cursor = serde_json::Value::Null;
        loop {
            let mut params = json!({"limit": 2});
            if cursor.is_string() {
                params["cursor"] = cursor.clone();
            }
            let page = app.call("admin.listUsers", params, Some(&admin)).await.expect("page");
            seen.extend(page["items"].as_array().expect("items").iter().map(|u| u["email"].as_str().expect("email").to_owned()));
            cursor = page["nextCursor"].clone();
            if !cursor.is_string() {
                break;
            }
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
        assert_eq!(seen[0], "root@example.com");
    }
}

db_test! {
    /// Disabling ends the user's sessions at once and refuses sign-in;
    /// enabling lets them back; administrators cannot disable themselves.
    async fn disabling_a_user_ends_their_sessions(app) {
        let admin = admin_token(app, "root@example.com").await;
        let user = app.signed_in("dana@example.com").await;
        let (t, id) = (user["accessToken"].as_str().expect("token"), user["user"]["id"].clone());
        let out = app.call("admin.setUserDisabled", json!({"userId": id, "disabled": true}), Some(&admin)).await.expect("disabled");
        assert_eq!(out["email"], "dana@example.com");
        let e = app.call("auth.me", json!({}), Some(t)).await.expect_err("session ended");
        assert_error(&e, -32001, "TOKEN_INVALID");
        let e = app.call("auth.login", json!({"email": "dana@example.com", "password": PASSWORD}), None).await.expect_err("disabled");
        assert_error(&e, -32003, "ACCOUNT_DISABLED");
        let e = app.call("auth.refresh", json!({"refreshToken": user["refreshToken"]}), None).await.expect_err("ended");
        assert_eq!(e["code"], -32001);
        app.call("admin.setUserDisabled", json!({"userId": id, "disabled": false}), Some(&admin)).await.expect("enabled");
        app.login("dana@example.com", PASSWORD).await;

        let me = app.call("auth.me", json!({}), Some(&admin)).await.expect("me");
        let e = app.call("admin.setUserDisabled", json!({"userId": me["user"]["id"], "disabled": true}), Some(&admin))
            .await.expect_err("self");
        assert_error(&e, -32009, "INVALID_TRANSITION");
        let nobody = uuid::Uuid::now_v7();
        let e = app.call("admin.setUserDisabled", json!({"userId": nobody, "disabled": true}), Some(&admin)).await.expect_err("none");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("admin.unlockUser", json!({"userId": nobody}), Some(&admin)).await.expect_err("none");
        assert_error(&e, -32004, "NOT_FOUND");
    }
}

db_test! {
    /// An administrator reads one account by id, as the list shows it, with
    /// its disabled flag; an unknown id is NOT_FOUND, a non-administrator is
    /// refused, and an API key cannot ask.
    async fn get_user_reads_one_account(app) {
        let admin = admin_token(app, "root@example.com").await;
        let user = app.signed_in("erin@example.com").await;
        let (t, id) = (user["accessToken"].as_str().expect("token"), user["user"]["id"].clone());

        let got = app.call("admin.getUser", json!({"userId": id}), Some(&admin)).await.expect("get");
        assert_eq!(got["id"], id);
        assert_eq!(got["email"], "erin@example.com");
        assert_eq!(got["disabled"], false);
        assert!(got["lockedUntil"].is_null());
        let listed = app.call("admin.listUsers", json!({"query": "erin"}), Some(&admin)).await.expect("list");
        assert_eq!(listed["items"][0], got, "the same account as the list shows");

        app.call("admin.setUserDisabled", json!({"userId": id, "disabled": true}), Some(&admin)).await.expect("disabled");
        let got = app.call("admin.getUser", json!({"userId": id}), Some(&admin)).await.expect("get");
        assert_eq!(got["disabled"], true);

        let e = app.call("admin.getUser", json!({"userId": uuid::Uuid::now_v7()}), Some(&admin)).await.expect_err("none");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("admin.getUser", json!({"userId": "not-an-id"}), Some(&admin)).await.expect_err("bad id");
        assert_error(&e, -32602, "VALIDATION");
        let other = app.signed_in("fred@example.com").await;
        let e = app.call("admin.getUser", json!({"userId": id}), other["accessToken"].as_str()).await.expect_err("not admin");
        assert_error(&e, -32003, "ADMIN_REQUIRED");
        let e = app.call("admin.getUser", json!({"userId": id}), None).await.expect_err("anonymous");
        assert_error(&e, -32001, "CREDENTIALS_MISSING");
        // The disabled user's own token stopped with their sessions.
        let e = app.call("admin.getUser", json!({"userId": id}), Some(t)).await.expect_err("ended");
        assert_error(&e, -32001, "TOKEN_INVALID");
    }
}
