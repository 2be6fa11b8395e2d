//! The outbox: mail survives an SMTP server that is down, arrives once it is
//! back, and is never sent twice for one event.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, try_spawn};
use crate::mail_sink::MailSink;

async fn outbox_retries_until_the_smtp_server_is_back(backend: Backend) {
    // A port with nothing listening: every attempt fails until the sink
    // starts on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let Some(app) = try_spawn(backend, |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.mail_poll_ms = 100;
        c.require_verified_email = Some(false);
    })
    .await
    else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    app.register("otto@example.com", PASSWORD).await;
    app.call("auth.requestPasswordReset", json!({"email": "otto@example.com"}), None).await.expect("accepted");
    // Let a few attempts fail.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sink = MailSink::start_on(port).await;
    let reset = sink.wait_for("otto@example.com", "Reset your password").await;
    sink.wait_for("otto@example.com", "Confirm your e-mail").await;
    app.call("auth.resetPassword", json!({"token": reset.link_token(), "newPassword": "a brand new secret"}), None)
        .await
        .expect("the delayed link works");
    // Nothing is sent twice: wait past a few more polls and count.
    sink.wait_for("otto@example.com", "Your password was changed").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let subjects: Vec<String> = sink.to("otto@example.com").into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    app.stop().await;
    sink.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_retries_until_the_smtp_server_is_back_sqlite() {
    outbox_retries_until_the_smtp_server_is_back(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn outbox_retries_until_the_smtp_server_is_back_postgres() {
    outbox_retries_until_the_smtp_server_is_back(Backend::Postgres).await;
}
