//! Subscriptions against the real server, in-process: jsonrpsee's own
//! WebSocket client subscribes to `notifications.subscribe` (the wire is plain
//! JSON-RPC), and the SDK's stream resumes across connections cut by a TCP
//! proxy, 1,000 notifications later, with none lost or repeated.
//!
//! Notifications come from API keys made in an organization the subscriber
//! owns (each notifies its owner: `apiKey.created`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use jsonrpsee_core::client::SubscriptionClientT;
use jsonrpsee_core::params::ObjectParams;
use jsonrpsee_ws_client::{HeaderMap, HeaderValue, WsClientBuilder};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinSet;
use trellis_client::{Client, RetryPolicy, Session};
use trellis_schema::access::Permission;
use trellis_schema::api_keys::CreateApiKeyParams;
use trellis_schema::auth::{LoginParams, RegisterParams};
use trellis_schema::ids::OrgId;
use trellis_schema::notifications::{ListNotificationsParams, Notification, Subscribe, SubscribeParams};
use trellis_schema::orgs::CreateOrgParams;
use trellis_schema::values::{Cursor, DisplayName, Email, NewPassword, Password, Slug};
use trellis_server::{Application, Config};

const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
const PASSWORD: &str = "correct horse battery staple";

struct Server {
    url: String,
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir")).await
    }

    /// A server on the SQLite file in `data_dir`; servers on one directory
    /// share the database (as replicas share theirs).
    async fn start_in(data_dir: tempfile::TempDir) -> Self {
        let mut config = Config::ephemeral(data_dir.path());
        config.jwt_secret = Some(JWT_SECRET.into());
        // Replicas without Redis hear of each other's notifications by the sweep.
        config.notification_poll_ms = 50;
        let app = Application::build(config).await.expect("server builds");
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        Self { url: format!("http://{addr}/rpc"), port: addr.port(), shutdown: Some(tx), _data_dir: data_dir }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A signed-in user owning an organization.
struct Owner {
    session: Session,
    org: OrgId,
}

async fn owner(url: &str) -> Owner {
    let client = Client::builder(url).build().expect("client");
    let email = format!("user-{}@example.com", uuid::Uuid::now_v7().simple());
    let register = RegisterParams {
        email: Email::parse(&email).expect("e-mail"),
        password: NewPassword::parse(PASSWORD.to_owned()).expect("password"),
        display_name: None,
    };
    client.auth().register(register).await.expect("registered");
    let login = LoginParams {
        email: Email::parse(&email).expect("e-mail"),
        password: Password::try_from(PASSWORD.to_owned()).expect("password"),
        otp: None,
    };
    let session = client.sign_in(login).await.expect("signed in");
    let slug = format!("org-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let org = session
        .orgs()
        .create(CreateOrgParams {
            name: DisplayName::parse("Notified").expect("name"),
            slug: Slug::try_from(slug).expect("slug"),
        })
        .await
        .expect("org created");
    Owner { session, org: org.id }
}

/// Makes `count` API keys, 50 at a time: one notification each for the owner.
async fn make_keys(owner: &Owner, count: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
        let calls = chunk.iter().map(|i| {
            owner.session.api_keys().create(CreateApiKeyParams {
                org_id: owner.org,
                name: DisplayName::parse(&format!("key-{i}")).expect("name"),
                scopes: vec![Permission::ApiKeysRead],
                expires_at: None,
                rate_limit_per_minute: None,
                current_password: None,
            })
        });
        for made in futures_util::future::join_all(calls).await {
            made.expect("key made");
        }
    }
}

/// Every notification of the owner, oldest first.
async fn all_notifications(owner: &Owner) -> Vec<Notification> {
    let mut all = vec![];
    let mut cursor = None;
    loop {
        let params = ListNotificationsParams {
            unread_only: None,
            cursor: cursor.take().map(Cursor::new),
            limit: Some(serde_json::from_value(serde_json::json!(200)).expect("limit")),
        };
        let page = owner.session.notifications().list(params).await.expect("listed");
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.reverse();
    all
}

fn access_token(owner: &Owner) -> String {
    owner.session.tokens().expect("signed in").access_token
}

#[tokio::test(flavor = "multi_thread")]
async fn jsonrpsee_ws_client_subscribes_and_receives_an_item() {
    let server = Server::start().await;
    let owner = owner(&server.url).await;
    let mut headers = HeaderMap::new();
    headers
        .insert("authorization", HeaderValue::from_str(&format!("Bearer {}", access_token(&owner))).expect("header"));
    let ws = WsClientBuilder::default()
        .set_headers(headers)
        .build(server.url.replacen("http", "ws", 1))
        .await
        .expect("connected");
    let mut items = ws
        .subscribe::<serde_json::Value, _>("notifications.subscribe", ObjectParams::new(), "notifications.unsubscribe")
        .await
        .expect("subscribed");
    make_keys(&owner, 1).await;
    // A first sign-in may notify too (`signin.newDevice`): read up to the key's.
    let item = loop {
        let item = tokio::time::timeout(Duration::from_secs(10), items.next())
            .await
            .expect("an item in time")
            .expect("open")
            .expect("JSON");
        if item["type"] == "apiKey.created" {
            break item;
        }
    };
    let kept = all_notifications(&owner).await;
    assert!(kept.iter().any(|n| serde_json::to_value(n.id).expect("id") == item["id"]), "{item} is kept");
    items.unsubscribe().await.expect("unsubscribed");
}

/// A TCP proxy whose connections the test can cut, which can refuse new
/// ones, and which connects to the port it is currently given.
struct Proxy {
    url: String,
    refusing: Arc<AtomicBool>,
    open: Arc<Mutex<JoinSet<()>>>,
    upstream: Arc<std::sync::atomic::AtomicU16>,
}

impl Proxy {
    async fn start(port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/rpc", listener.local_addr().expect("address"));
        let refusing = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(JoinSet::new()));
        let upstream = Arc::new(std::sync::atomic::AtomicU16::new(port));
        let (refuse, tasks, to) = (refusing.clone(), open.clone(), upstream.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let port = to.load(Ordering::SeqCst);
                tasks.lock().await.spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Self { url, refusing, open, upstream }
    }

    /// New connections go to `port` from now on.
    fn route_to(&self, port: u16) {
        self.upstream.store(port, Ordering::SeqCst);
    }

    /// Closes every connection through the proxy.
    async fn cut(&self) {
        self.open.lock().await.abort_all();
    }

    fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_resumes_across_cut_connections_without_loss_or_duplicate() {
    let server = Server::start().await;
    let owner = owner(&server.url).await;
    let proxy = Proxy::start(server.port).await;
    let through_proxy = Client::builder(&proxy.url)
        .retry(RetryPolicy::default().min_delay(Duration::from_millis(20)).max_delay(Duration::from_millis(200)))
        .build()
        .expect("client");
    let tokens = owner.session.tokens().expect("tokens");
    let subscriber = Session::with_tokens(through_proxy, tokens);
    let mut items = Box::pin(subscriber.subscribe::<Subscribe>(SubscribeParams::default()));

    // Keys until the first item arrives: the subscribe call may still be on its way.
    let mut seen = vec![];
    while seen.is_empty() {
        make_keys(&owner, 1).await;
        if let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(300), items.next()).await {
            seen.push(item.expect("an item").id);
        }
    }
    let before = seen.len();

    proxy.refuse(true);
    proxy.cut().await;
    make_keys(&owner, 1_000).await;
    proxy.refuse(false);

    while seen.len() < before + 1_000 {
        let item = tokio::time::timeout(Duration::from_secs(30), items.next())
            .await
            .expect("items keep coming")
            .expect("the stream goes on");
        seen.push(item.expect("an item").id);
        // Cut once more while the backlog streams in.
        if seen.len() == before + 300 {
            proxy.cut().await;
        }
    }
    // Nothing more than the 1,000.
    assert!(tokio::time::timeout(Duration::from_millis(300), items.next()).await.is_err(), "an extra item");

    let kept: Vec<_> = all_notifications(&owner).await.into_iter().map(|n| n.id).collect();
    let first = kept.iter().position(|id| *id == seen[0]).expect("the first item is kept");
    assert_eq!(seen, kept[first..], "exactly the kept notifications, in order, once each");
}

/// The server holding the socket goes away mid-stream (it shuts down: it
/// ends the subscription with SHUTTING_DOWN and closes the socket); the
/// stream reconnects to another server on the same database and resumes:
/// 1,000 items, none lost or repeated.
#[tokio::test(flavor = "multi_thread")]
async fn the_stream_resumes_on_another_server_when_its_server_goes_away() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    let mut first = Server::start_in(dir).await;
    // A second server on the first one's database: its URL, port and stop signal.
    let second = {
        let mut config = Config::ephemeral(&path);
        config.jwt_secret = Some(JWT_SECRET.into());
        config.notification_poll_ms = 50;
        let app = Application::build(config).await.expect("second server builds");
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        (format!("http://{addr}/rpc"), addr.port(), tx)
    };
    let owner = owner(&first.url).await;
    let on_second = Owner {
        session: Session::with_tokens(
            Client::builder(&second.0).build().expect("client"),
            owner.session.tokens().expect("tokens"),
        ),
        org: owner.org,
    };
    let proxy = Proxy::start(first.port).await;
    let through_proxy = Client::builder(&proxy.url)
        .retry(RetryPolicy::default().min_delay(Duration::from_millis(20)).max_delay(Duration::from_millis(200)))
        .build()
        .expect("client");
    let subscriber = Session::with_tokens(through_proxy, owner.session.tokens().expect("tokens"));
    let mut items = Box::pin(subscriber.subscribe::<Subscribe>(SubscribeParams::default()));
    let mut seen = vec![];
    while seen.is_empty() {
        make_keys(&on_second, 1).await;
        if let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(300), items.next()).await {
            seen.push(item.expect("an item").id);
        }
    }
    let before = seen.len();
    let producer = tokio::spawn(async move {
        make_keys(&on_second, 1_000).await;
        on_second
    });
    while seen.len() < before + 1_000 {
        let item = tokio::time::timeout(Duration::from_secs(30), items.next())
            .await
            .expect("items keep coming")
            .expect("the stream goes on");
        seen.push(item.expect("an item").id);
        if seen.len() == before + 300 {
            // The first server goes away; the proxy sends new connections to the second.
            proxy.route_to(second.1);
            if let Some(stop) = first.shutdown.take() {
                let _ = stop.send(());
            }
        }
    }
    let _ = producer.await.expect("keys made");
    assert!(tokio::time::timeout(Duration::from_millis(300), items.next()).await.is_err(), "an extra item");
    let kept: Vec<_> = all_notifications(&owner_on(&second.0, &owner)).await.into_iter().map(|n| n.id).collect();
    let first_seen = kept.iter().position(|id| *id == seen[0]).expect("the first item is kept");
    assert_eq!(seen, kept[first_seen..], "exactly the kept notifications, in order, once each");
    let _ = second.2.send(());
}

/// The owner's session, on the server at `url`.
fn owner_on(url: &str, owner: &Owner) -> Owner {
    Owner {
        session: Session::with_tokens(
            Client::builder(url).build().expect("client"),
            owner.session.tokens().expect("tokens"),
        ),
        org: owner.org,
    }
}
