//! Per-account and per-IP limits on sign-in, codes, verification and mail
//! requests: RATE_LIMITED with `retryAfterMs` and `limit`, keyed by the
//! address whatever the IP and by the connection, never a header.

use serde_json::{Value, json};

use crate::db_test_with;
use crate::helpers::{PASSWORD, TestApp, assert_error};

async fn login_from(app: &TestApp, email: &str, forwarded_for: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "auth.login",
        "params": {"email": email, "password": "not the password"}});
    let resp = app.http.post(&app.url).header("x-forwarded-for", forwarded_for).json(&body).send().await.expect("sent");
    resp.json().await.expect("json")
}

db_test_with! {
    /// Three attempts a minute per account: the fourth is refused whatever
    /// X-Forwarded-For says, and another account is unaffected.
    async fn sign_in_attempts_are_limited_per_account(app) where |c| {
        c.auth_rate_per_account = 3;
        c.auth_rate_per_ip = 1000;
    } {
        app.register("alice@example.com", PASSWORD).await;
        for i in 0..3 {
            let r = login_from(app, "alice@example.com", &format!("10.1.0.{i}")).await;
            assert_error(&r["error"], -32001, "INVALID_CREDENTIALS");
        }
        for i in 3..5 {
            let r = login_from(app, "alice@example.com", &format!("10.1.0.{i}")).await;
            assert_error(&r["error"], -32029, "RATE_LIMITED");
            assert!(r["error"]["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0 && ms <= 60_000), "{r}");
            assert_eq!(r["error"]["data"]["limit"], 3);
        }
        // The same limit holds for an address with no account: the answer
        // tells nothing about which addresses exist.
        for _ in 0..3 {
            let r = login_from(app, "nobody@example.com", "10.2.0.1").await;
            assert_error(&r["error"], -32001, "INVALID_CREDENTIALS");
        }
        assert_error(&login_from(app, "nobody@example.com", "10.2.0.1").await["error"], -32029, "RATE_LIMITED");
        app.register("bob@example.com", PASSWORD).await;
        app.login("bob@example.com", PASSWORD).await;
    }
}

db_test_with! {
    /// Sign-in, verification and reset attempts from one IP share one limit.
    async fn attempts_are_limited_per_ip(app) where |c| {
        c.auth_rate_per_ip = 4;
    } {
        for (i, method) in ["auth.login", "auth.login", "auth.verifyEmail", "auth.resetPassword"].iter().enumerate() {
            let params = match *method {
                "auth.login" => json!({"email": format!("u{i}@example.com"), "password": "whatever it is"}),
                "auth.verifyEmail" => json!({"token": "no-such-token"}),
                _ => json!({"token": "no-such-token", "newPassword": "a brand new secret"}),
            };
            let e = app.call(method, params, None).await.expect_err("refused");
            assert_eq!(e["code"], -32001, "{e}");
        }
        let e = app.call("auth.verifyEmail", json!({"token": "no-such-token"}), None).await.expect_err("limited");
        assert_error(&e, -32029, "RATE_LIMITED");
        let e = app.call("auth.login", json!({"email": "z@example.com", "password": "x"}), None).await.expect_err("limited");
        assert_error(&e, -32029, "RATE_LIMITED");
    }
}

db_test_with! {
    /// Mail requests (reset, code, verification) are limited per address.
    async fn mail_requests_are_limited_per_address(app) where |c| {
        c.mail_rate_per_account = 2;
    } {
        app.register("mailer@example.com", PASSWORD).await; // the first of two
        app.call("auth.requestPasswordReset", json!({"email": "mailer@example.com"}), None).await.expect("second");
        for method in ["auth.requestPasswordReset", "auth.requestLoginCode", "auth.resendVerification"] {
            let e = app.call(method, json!({"email": "mailer@example.com"}), None).await.expect_err("third");
            assert_error(&e, -32029, "RATE_LIMITED");
        }
        app.call("auth.requestLoginCode", json!({"email": "other@example.com"}), None).await.expect("another address");
    }
}

db_test_with! {
    /// Legacy composition rules, when set, are listed with every other
    /// violation.
    async fn composition_rules_are_a_setting(app) where |c| {
        c.password_composition = vec![trellis_server::config::CharClass::Upper, trellis_server::config::CharClass::Digit];
        c.password_min_chars = 12;
    } {
        let e = app.call("auth.register", json!({"email": "x@example.com", "password": "lowercase only"}), None)
            .await.expect_err("policy");
        assert_error(&e, -32012, "PASSWORD_POLICY");
        let codes: Vec<&str> = e["data"]["violations"].as_array().expect("list").iter()
            .map(|v| v["code"].as_str().expect("code")).collect();
        assert_eq!(codes, ["NEEDS_UPPER", "NEEDS_DIGIT"]);
        let e = app.call("auth.register", json!({"email": "x@example.com", "password": "Short1a"}), None)
            .await.expect_err("validation");
        assert_eq!(e["code"], -32602, "under the schema's 8 characters: a params error");
        let e = app.call("auth.register", json!({"email": "x@example.com", "password": "Short1abc"}), None)
            .await.expect_err("policy");
        assert_eq!(e["data"]["violations"][0]["code"], "TOO_SHORT");
        app.register("x@example.com", "Long enough 2 pass").await;
    }
}
