//! A dependency that goes away: calls fail with a clear UNAVAILABLE error,
//! health says so, and everything works again when it comes back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{Backend, assert_error, try_spawn};

/// A TCP proxy in front of a real server that can be cut and restored.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = watch::channel(0u64);
        let accepting = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let mut cuts = cuts.clone();
                // Only cuts from now on end this connection.
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn host_port(url: &str) -> SocketAddr {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
    host_port.replace("localhost", "127.0.0.1").parse().expect("host:port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn the_database_going_away_and_coming_back() {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL not set: skipped");
        return;
    };
    let proxy = Proxy::start(host_port(&admin)).await;
    let proxy_addr = proxy.addr;
    let app = try_spawn(Backend::Postgres, |c| {
        let url = c.database_url.clone().expect("PostgreSQL URL");
        let real = host_port(&admin).to_string();
        let via_proxy = url.replacen(&real, &proxy_addr.to_string(), 1).replacen(
            &real.replace("127.0.0.1", "localhost"),
            &proxy_addr.to_string(),
            1,
        );
        assert_ne!(url, via_proxy, "the URL names the database host");
        c.database_url = Some(via_proxy);
    })
    .await
    .expect("PostgreSQL");
    let tokens = app.signed_in("fault@example.com").await;
    let token = tokens["accessToken"].as_str().expect("token").to_owned();
    app.call("auth.me", json!({}), Some(&token)).await.expect("works before the fault");

    proxy.down();
    let e = app.call("auth.me", json!({}), Some(&token)).await.expect_err("database gone");
    assert_error(&e, -32050, "DATABASE_UNAVAILABLE");
    assert!(e["data"]["retryAfterMs"].is_u64(), "{e}");
    let text = e.to_string().to_lowercase();
    assert!(!text.contains("postgres") && !text.contains("diesel"), "internals leaked: {e}");

    let base = format!("http://{}", app.addr);
    let ready = app.http.get(format!("{base}/readyz")).send().await.expect("sent");
    assert_eq!(ready.status(), 503);
    let mut degraded = Value::Null;
    for _ in 0..50 {
        degraded = app.call("health.check", json!({}), None).await.expect("health answers");
        if degraded["status"] == "degraded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(degraded["status"], "degraded");
    assert_eq!(degraded["checks"]["database"]["ok"], false);

    proxy.restore();
    let mut recovered = None;
    for _ in 0..50 {
        if let Ok(me) = app.call("auth.me", json!({}), Some(&token)).await {
            recovered = Some(me);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recovered.expect("recovered")["user"]["email"], "fault@example.com");
    let ready = app.http.get(format!("{base}/readyz")).send().await.expect("sent");
    assert_eq!(ready.status(), 200);
    app.stop().await;
}
