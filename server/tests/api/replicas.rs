//! Two servers on one database, as replicas behind a load balancer: a
//! session ended on one is refused by the other within about a second, and
//! their mail senders share the outbox without sending anything twice.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, try_spawn_with_mail};
use crate::mail_sink::MailSink;

async fn pair(backend: Backend, sink: &MailSink) -> Option<(TestApp, TestApp)> {
    let a = try_spawn_with_mail(backend, sink, |c| c.require_verified_email = Some(false)).await?;
    let shared = a.config.database_url();
    let b = try_spawn_with_mail(backend, sink, move |c| {
        c.require_verified_email = Some(false);
        c.database_url = Some(shared);
    })
    .await?;
    Some((a, b))
}

async fn replicas_share_revocations_and_the_outbox(backend: Backend) {
    let sink = MailSink::start().await;
    let Some((a, b)) = pair(backend, &sink).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    let tokens = a.signed_in("rep@example.com").await;
    let access = tokens["accessToken"].as_str().expect("token");
    b.call("auth.me", json!({}), Some(access)).await.expect("the other replica accepts the token");
    a.call("auth.logout", json!({}), Some(access)).await.expect("signed out on A");
    let start = Instant::now();
    loop {
        match b.call("auth.me", json!({}), Some(access)).await {
            Err(e) => {
                assert_eq!(e["data"]["reason"], "TOKEN_INVALID");
                break;
            }
            Ok(_) => {
                assert!(start.elapsed() < Duration::from_secs(10), "B never learned the session ended");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eprintln!("session ended on A refused by B after {:?}", start.elapsed());

    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        app.register(&format!("r{i}@example.com"), PASSWORD).await;
    }
    for i in 0..10 {
        sink.wait_for(&format!("r{i}@example.com"), "Confirm").await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // rep@ got one too.
    assert_eq!(sink.all().len(), 11, "each mail exactly once");
    b.stop().await;
    a.stop().await;
    sink.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_revocations_and_the_outbox_sqlite() {
    replicas_share_revocations_and_the_outbox(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn replicas_share_revocations_and_the_outbox_postgres() {
    replicas_share_revocations_and_the_outbox(Backend::Postgres).await;
}
