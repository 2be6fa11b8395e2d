//! Accounts and sessions through the real server, on both backends.

use serde_json::json;

use crate::db_test;
use crate::helpers::{PASSWORD, assert_error};

db_test! {
    /// register → login → me → refresh → reuse of the old refresh token
    /// (TOKEN_REUSED, session gone) → login → logout → refresh refused.
    async fn the_whole_session_lifecycle(app) {
        let registered = app.register("ann@example.com", PASSWORD).await;
        assert_eq!(registered["verificationRequired"], false);
        let user_id = registered["userId"].as_str().expect("userId").to_owned();

        let first = app.login("Ann@Example.com", PASSWORD).await;
        assert_eq!(first["tokenType"], "Bearer");
        assert_eq!(first["expiresIn"], 900);
        assert_eq!(first["user"]["id"], user_id.as_str());
        let access = first["accessToken"].as_str().expect("access token");
        let refresh = first["refreshToken"].as_str().expect("refresh token");

        let me = app.call("auth.me", json!({}), Some(access)).await.expect("me");
        assert_eq!(me["user"]["email"], "ann@example.com");
        assert_eq!(me["user"]["id"], user_id.as_str());
        assert_eq!(me["memberships"], json!([]));

        let second = app.call("auth.refresh", json!({"refreshToken": refresh}), None).await.expect("refreshed");
        let access2 = second["accessToken"].as_str().expect("access token");
        let refresh2 = second["refreshToken"].as_str().expect("refresh token");
        assert_ne!(refresh2, refresh);
        app.call("auth.me", json!({}), Some(access2)).await.expect("new access token works");

        // The spent token comes back: someone has a copy. The session ends.
        let e = app.call("auth.refresh", json!({"refreshToken": refresh}), None).await.expect_err("reuse");
        assert_error(&e, -32001, "TOKEN_REUSED");
        let e = app.call("auth.refresh", json!({"refreshToken": refresh2}), None).await.expect_err("session gone");
        assert_eq!(e["code"], -32001);
        let e = app.call("auth.me", json!({}), Some(access2)).await.expect_err("access token of the ended session");
        assert_error(&e, -32001, "TOKEN_INVALID");

        let third = app.login("ann@example.com", PASSWORD).await;
        let access3 = third["accessToken"].as_str().expect("access token");
        let refresh3 = third["refreshToken"].as_str().expect("refresh token");
        app.call("auth.logout", json!({}), Some(access3)).await.expect("signed out");
        let e = app.call("auth.refresh", json!({"refreshToken": refresh3}), None).await.expect_err("after logout");
        assert_error(&e, -32001, "TOKEN_INVALID");
        let e = app.call("auth.me", json!({}), Some(access3)).await.expect_err("after logout");
        assert_error(&e, -32001, "TOKEN_INVALID");
    }
}

db_test! {
    async fn logout_of_all_sessions_ends_every_one(app) {
        let a = app.signed_in("multi@example.com").await;
        let b = app.login("multi@example.com", PASSWORD).await;
        let (ta, tb) = (a["accessToken"].as_str().expect("a"), b["accessToken"].as_str().expect("b"));
        app.call("auth.logout", json!({"allSessions": true}), Some(ta)).await.expect("signed out");
        for t in [ta, tb] {
            let e = app.call("auth.me", json!({}), Some(t)).await.expect_err("ended");
            assert_error(&e, -32001, "TOKEN_INVALID");
        }
        let e = app.call("auth.refresh", json!({"refreshToken": b["refreshToken"]}), None).await.expect_err("ended");
        assert_eq!(e["code"], -32001);
    }
}

db_test! {
    async fn unknown_email_and_wrong_password_get_the_same_answer(app) {
        app.register("known@example.com", PASSWORD).await;
        let wrong = app.call("auth.login", json!({"email": "known@example.com", "password": "not it at all"}), None).await.expect_err("wrong");
        let unknown = app.call("auth.login", json!({"email": "unknown@example.com", "password": "not it at all"}), None).await.expect_err("unknown");
        assert_error(&wrong, -32001, "INVALID_CREDENTIALS");
        assert_eq!(wrong["code"], unknown["code"]);
        assert_eq!(wrong["message"], unknown["message"]);
        assert_eq!(wrong["data"]["reason"], unknown["data"]["reason"]);
    }
}

db_test! {
    async fn registering_a_taken_address_looks_like_success_but_changes_nothing(app) {
        let first = app.register("taken@example.com", PASSWORD).await;
        let again = app.register("TAKEN@example.com", "a different password").await;
        assert_eq!(again["verificationRequired"], first["verificationRequired"]);
        assert_ne!(again["userId"], first["userId"]);
        let tokens = app.login("taken@example.com", PASSWORD).await;
        assert_eq!(tokens["user"]["id"], first["userId"]);
        let e = app.call("auth.login", json!({"email": "taken@example.com", "password": "a different password"}), None).await.expect_err("second password");
        assert_error(&e, -32001, "INVALID_CREDENTIALS");
    }
}

db_test! {
    /// Two uses of one refresh token in the same instant: exactly one wins,
    /// and the other is treated as reuse.
    async fn a_refresh_token_works_once_even_under_concurrency(app) {
        let t = app.signed_in("race@example.com").await;
        let rt = t["refreshToken"].as_str().expect("refresh token");
        let body = json!([
            {"jsonrpc": "2.0", "method": "auth.refresh", "params": {"refreshToken": rt}, "id": 1},
            {"jsonrpc": "2.0", "method": "auth.refresh", "params": {"refreshToken": rt}, "id": 2},
        ]);
        let (_, r) = app.post_json(body.to_string()).await;
        let answers = r.as_array().expect("array");
        let won = answers.iter().filter(|a| a.get("result").is_some()).count();
        let reused = answers.iter().filter(|a| a["error"]["data"]["reason"] == "TOKEN_REUSED").count();
        assert_eq!((won, reused), (1, 1), "{r}");
    }
}

db_test! {
    async fn signed_in_procedures_refuse_anonymous_calls(app) {
        for method in ["auth.me", "auth.logout"] {
            let e = app.call(method, json!({}), None).await.expect_err("anonymous");
            assert_error(&e, -32001, "CREDENTIALS_MISSING");
        }
        let e = app.call("auth.refresh", json!({"refreshToken": "rt_not-a-real-token"}), None).await.expect_err("unknown token");
        assert_error(&e, -32001, "TOKEN_INVALID");
    }
}
