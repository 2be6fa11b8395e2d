//! A WebSocket lives no longer than its credentials: each message passes the
//! checks an HTTP request passes, the server closes the socket (with a code
//! and a reason) the moment its session ends or its token expires, and
//! `rpc.authenticate` renews the token without reconnecting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};

use crate::admin::admin_token;
use crate::api_keys::make_key;
use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, try_spawn};
use crate::orgs::create_org;
use crate::ws::{Receiver, Sender, connect, connect_with, exchange};
use crate::{db_test, db_test_with, mail_test};

fn me() -> Value {
    json!({"jsonrpc": "2.0", "method": "auth.me", "id": 1})
}

/// Reads until the server closes the socket; its close code and reason.
pub async fn closed_with(rx: &mut Receiver) -> (u16, String) {
    let mut data = Vec::new();
    loop {
        data.clear();
        let next = tokio::time::timeout(Duration::from_secs(30), rx.receive(&mut data)).await;
        match next.expect("the server closed the socket in time") {
            Ok(soketto::Incoming::Closed(r)) => return (r.code, r.descr.unwrap_or_default()),
            Ok(_) => {}
            Err(e) => panic!("the socket ended without a close frame: {e}"),
        }
    }
}

/// Right after the session ended: a call on the socket is refused (or finds
/// the socket closing), and the server closes it with 4001.
async fn refused_then_closed(tx: &mut Sender, rx: &mut Receiver) {
    let sent = tx.send_text(me().to_string()).await.is_ok() && tx.flush().await.is_ok();
    let mut data = Vec::new();
    if sent {
        match tokio::time::timeout(Duration::from_secs(30), rx.receive(&mut data)).await.expect("in time") {
            Ok(soketto::Incoming::Data(_)) => {
                let r: Value = serde_json::from_slice(&data).expect("JSON");
                assert_error(&r["error"], -32001, "TOKEN_INVALID");
            }
            Ok(soketto::Incoming::Closed(r)) => {
                assert_eq!((r.code, r.descr.as_deref()), (4001, Some("session ended")));
                return;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(closed_with(rx).await, (4001, "session ended".to_owned()));
}

/// A socket whose upgrade carried `token` answers calls with `reason`.
async fn new_socket_refuses(app: &TestApp, token: &str, reason: &str) {
    let (mut tx, mut rx) = connect(app.addr, Some(token)).await;
    let r = exchange(&mut tx, &mut rx, me()).await;
    assert_error(&r["error"], -32001, reason);
}

fn access(tokens: &Value) -> String {
    tokens["accessToken"].as_str().expect("access token").to_owned()
}

db_test! {
    /// Sign-out, revocation from another session and an administrator
    /// disabling the account each close the socket at once, and a new
    /// socket with the old token is refused.
    async fn a_socket_is_closed_when_its_session_ends(app) {
        // auth.logout with the socket's own token.
        let t = access(&app.signed_in("out@example.com").await);
        let (mut tx, mut rx) = connect(app.addr, Some(&t)).await;
        assert_eq!(exchange(&mut tx, &mut rx, me()).await["result"]["user"]["email"], "out@example.com");
        app.call("auth.logout", json!({}), Some(&t)).await.expect("signed out");
        refused_then_closed(&mut tx, &mut rx).await;
        new_socket_refuses(app, &t, "TOKEN_INVALID").await;

        // sessions.revoke from another device.
        let phone = access(&app.signed_in("two@example.com").await);
        let laptop = access(&app.login("two@example.com", PASSWORD).await);
        let (mut tx, mut rx) = connect(app.addr, Some(&phone)).await;
        assert!(exchange(&mut tx, &mut rx, me()).await["result"].is_object());
        let sessions = app.call("sessions.list", json!({}), Some(&laptop)).await.expect("listed");
        let other = sessions["items"].as_array().expect("items").iter().find(|s| s["current"] == false).expect("the phone's")["id"].clone();
        app.call("sessions.revoke", json!({"sessionId": other}), Some(&laptop)).await.expect("revoked");
        refused_then_closed(&mut tx, &mut rx).await;
        new_socket_refuses(app, &phone, "TOKEN_INVALID").await;
        // The other session's socket is untouched.
        let (mut tx, mut rx) = connect(app.addr, Some(&laptop)).await;
        assert!(exchange(&mut tx, &mut rx, me()).await["result"].is_object());

        // An administrator disables the account.
        let admin = admin_token(app, "root@example.com").await;
        let tokens = app.signed_in("gone@example.com").await;
        let t = access(&tokens);
        let (mut tx, mut rx) = connect(app.addr, Some(&t)).await;
        assert!(exchange(&mut tx, &mut rx, me()).await["result"].is_object());
        app.call("admin.setUserDisabled", json!({"userId": tokens["user"]["id"], "disabled": true}), Some(&admin))
            .await
            .expect("disabled");
        refused_then_closed(&mut tx, &mut rx).await;
        new_socket_refuses(app, &t, "TOKEN_INVALID").await;
    }
}

mail_test! {
    /// A password reset ends every session: its sockets are closed.
    async fn a_password_reset_closes_the_sockets(app, mail) {
        let t = access(&app.verified_in(mail, "reset@example.com").await);
        let (mut tx, mut rx) = connect(app.addr, Some(&t)).await;
        assert!(exchange(&mut tx, &mut rx, me()).await["result"].is_object());
        app.call("auth.requestPasswordReset", json!({"email": "reset@example.com"}), None).await.expect("requested");
        let link = mail.wait_for("reset@example.com", "Reset your password").await.link_token();
        app.call("auth.resetPassword", json!({"token": link, "newPassword": "a brand new secret"}), None)
            .await
            .expect("reset");
        refused_then_closed(&mut tx, &mut rx).await;
        new_socket_refuses(app, &t, "TOKEN_INVALID").await;
    }
}

db_test! {
    /// A key revoked while its socket is open is refused on the next call.
    async fn a_revoked_key_is_refused_on_an_open_socket(app) {
        let owner = access(&app.signed_in("keys@example.com").await);
        let org = create_org(app, &owner, "socket-keys").await;
        let (key, record) = make_key(app, &owner, &org, &["org:read"], json!({})).await;
        let (mut tx, mut rx) = connect_with(app.addr, "/rpc", Some(("X-Api-Key", &key))).await;
        let get = json!({"jsonrpc": "2.0", "method": "orgs.get", "params": {"orgId": org}, "id": 7});
        assert_eq!(exchange(&mut tx, &mut rx, get.clone()).await["result"]["id"], org.as_str());
        app.call("apiKeys.revoke", json!({"id": record["id"]}), Some(&owner)).await.expect("revoked");
        let r = exchange(&mut tx, &mut rx, get).await;
        assert_error(&r["error"], -32001, "API_KEY_REVOKED");
        // rpc.authenticate replaces an access token, not a key.
        let r = exchange(&mut tx, &mut rx, json!({"jsonrpc": "2.0", "method": "rpc.authenticate", "params": {"accessToken": owner}, "id": 8})).await;
        assert_error(&r["error"], -32600, "INVALID_REQUEST");
    }
}

/// The `exp` claim of an access token.
fn exp_of(token: &str) -> u64 {
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64"))
            .expect("claims");
    claims["exp"].as_u64().expect("exp")
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64()
}

db_test_with! {
    /// A socket is closed when its token expires (after the 5 s leeway every
    /// check allows), unless a fresh token of the same user came through
    /// `rpc.authenticate`: then it lives to that token's expiry.
    async fn expiry_closes_the_socket_and_rpc_authenticate_extends_it(app) where |c| { c.access_token_ttl_secs = 2; } {
        // Expiry alone.
        let tokens = app.signed_in("late@example.com").await;
        let (mut tx, mut rx) = connect(app.addr, Some(&access(&tokens))).await;
        assert!(exchange(&mut tx, &mut rx, me()).await["result"].is_object());
        assert_eq!(closed_with(&mut rx).await, (4002, "token expired".to_owned()));
        new_socket_refuses(app, &access(&tokens), "TOKEN_EXPIRED").await;

        // Renewed on the open socket.
        let tokens = app.login("late@example.com", PASSWORD).await;
        let first = access(&tokens);
        let (mut tx, mut rx) = connect(app.addr, Some(&first)).await;
        let authenticate = |t: &str| json!({"jsonrpc": "2.0", "method": "rpc.authenticate", "params": {"accessToken": t}, "id": 2});
        // Garbage, and another user's token, are refused; the socket keeps its own.
        let r = exchange(&mut tx, &mut rx, authenticate("not.a.token")).await;
        assert_error(&r["error"], -32001, "TOKEN_INVALID");
        let stranger = access(&app.signed_in("stranger@example.com").await);
        let r = exchange(&mut tx, &mut rx, authenticate(&stranger)).await;
        assert_error(&r["error"], -32001, "TOKEN_INVALID");
        assert_eq!(exchange(&mut tx, &mut rx, me()).await["result"]["user"]["email"], "late@example.com");

        tokio::time::sleep(Duration::from_millis(2100)).await;
        let fresh = app.call("auth.refresh", json!({"refreshToken": tokens["refreshToken"]}), None).await.expect("refreshed");
        let second = access(&fresh);
        assert!(exp_of(&second) > exp_of(&first));
        let r = exchange(&mut tx, &mut rx, authenticate(&second)).await;
        let expires_at = chrono::DateTime::from_timestamp(exp_of(&second) as i64, 0).expect("time");
        assert_eq!(r["result"]["expiresAt"], expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "{r}");
        // Past the moment the first token would have closed the socket, it still serves.
        let first_closes = exp_of(&first) as f64 + 6.0;
        tokio::time::sleep(Duration::from_secs_f64((first_closes - unix_now()).max(0.0) + 0.5)).await;
        assert_eq!(exchange(&mut tx, &mut rx, me()).await["result"]["user"]["email"], "late@example.com");
        assert_eq!(closed_with(&mut rx).await, (4002, "token expired".to_owned()));
    }
}

async fn a_session_ended_on_another_replica_closes_the_socket(backend: Backend) {
    let Some(a) = try_spawn(backend, |c| c.session_sync_ms = 200).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| {
        c.session_sync_ms = 200;
        c.database_url = Some(shared);
    })
    .await
    .expect("second replica");
    let t = access(&a.signed_in("far@example.com").await);
    let (mut tx, mut rx) = connect(b.addr, Some(&t)).await;
    assert!(exchange(&mut tx, &mut rx, me()).await["result"].is_object());
    a.call("auth.logout", json!({}), Some(&t)).await.expect("signed out on A");
    assert_eq!(closed_with(&mut rx).await, (4001, "session ended".to_owned()));
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_on_another_replica_closes_the_socket_sqlite() {
    a_session_ended_on_another_replica_closes_the_socket(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn a_session_ended_on_another_replica_closes_the_socket_postgres() {
    a_session_ended_on_another_replica_closes_the_socket(Backend::Postgres).await;
}
