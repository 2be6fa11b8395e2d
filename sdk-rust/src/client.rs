//! [`Client`]: one call of a procedure, by type, over `POST <url>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::Stream;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use trellis_schema::{ErrorReason, Kind, Procedure};

use crate::batch::Batch;
use crate::error::{BuildError, Error, WireError};
use crate::retry::RetryPolicy;
use crate::subscription::{self, Connector};

const REQUEST_ID: &str = "x-request-id";
const API_KEY: &str = "x-api-key";

/// Settings of one call, beyond the client's own.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Retry a mutation on transient failures too. Only when the procedure is
    /// safe to repeat: the first attempt may have been carried out.
    pub retry_mutation: bool,
    /// Time limit of each attempt (default: the client's).
    pub timeout: Option<Duration>,
    /// Retry policy of this call (default: the client's).
    pub retry: Option<RetryPolicy>,
    /// Sent as `X-Request-Id`: names the call in the server's logs.
    pub request_id: Option<String>,
}

impl CallOptions {
    pub fn retry_mutation(mut self, on: bool) -> Self {
        self.retry_mutation = on;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
}

/// Configures a [`Client`]; made by [`Client::builder`].
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    timeout: Duration,
    retry: RetryPolicy,
    /// Name, value, whether the value is a secret.
    headers: Vec<(String, String, bool)>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _, _)| name.as_str()).collect();
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("headers", &names)
            .finish()
    }
}

impl ClientBuilder {
    /// Time limit of each attempt of a call (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How failed calls are retried (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sends `Authorization: Bearer <token>` with every call.
    pub fn bearer_token(self, token: impl AsRef<str>) -> Self {
        let value = format!("Bearer {}", token.as_ref());
        self.secret_header(AUTHORIZATION.as_str(), value)
    }

    /// Sends `X-Api-Key: <key>` with every call.
    pub fn api_key(self, key: impl Into<String>) -> Self {
        self.secret_header(API_KEY, key.into())
    }

    /// Sends a header with every call.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into(), false));
        self
    }

    fn secret_header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_owned(), value, true));
        self
    }

    /// Checks the URL and headers and makes the client. Installs rustls' `ring`
    /// provider as the process default when no provider is installed yet.
    pub fn build(self) -> Result<Client, BuildError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| BuildError::Url(self.url.clone(), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BuildError::Url(self.url, "the scheme must be http or https".into()));
        }
        let mut headers = HeaderMap::new();
        for (name, value, secret) in &self.headers {
            let header_name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| BuildError::Header(name.clone(), e.to_string()))?;
            let mut header_value =
                HeaderValue::from_str(value).map_err(|e| BuildError::Header(name.clone(), e.to_string()))?;
            header_value.set_sensitive(*secret);
            headers.insert(header_name, header_value);
        }
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Fails only when another thread installed one first: fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("trellis-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        // A subscription's socket carries the same credentials, as upgrade headers.
        let socket_headers =
            self.headers.into_iter().filter(|(_, _, secret)| *secret).map(|(name, value, _)| (name, value)).collect();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                url,
                timeout: self.timeout,
                retry: self.retry,
                next_id: AtomicU64::new(1),
                socket_headers,
            }),
        })
    }
}

/// A Trellis client: cheap to clone (clones share connections).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use trellis_client::Client;
/// use trellis_schema::Empty;
/// use trellis_schema::health::Check;
///
/// let client = Client::builder("http://127.0.0.1:8080/rpc").build()?;
/// let status = client.call::<Check>(Empty {}).await?;
/// let same = client.health().check().await?;
/// # let _ = (status, same); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    retry: RetryPolicy,
    next_id: AtomicU64,
    /// The credential headers (`Authorization`, `X-Api-Key`), for subscriptions.
    socket_headers: Vec<(String, String)>,
}

/// An HTTP answer: status, `x-request-id` and body.
pub(crate) struct Answer {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Vec<u8>,
}

/// One JSON-RPC request object.
#[derive(Serialize)]
pub(crate) struct Request<'a, T: Serialize + ?Sized> {
    pub jsonrpc: &'static str,
    pub method: &'a str,
    pub params: &'a T,
    pub id: u64,
}

/// One JSON-RPC response object.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    #[serde(default)]
    pub id: serde_json::Value,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<WireError>,
}

impl Client {
    /// Starts configuring a client of the endpoint at `url` (e.g.
    /// `http://127.0.0.1:8080/rpc`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            headers: vec![],
        }
    }

    /// A client with default settings.
    pub fn new(url: impl Into<String>) -> Result<Self, BuildError> {
        Self::builder(url).build()
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// The client's retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// Calls procedure `P`: `client.call::<auth::Login>(params)`.
    pub async fn call<P: Procedure>(&self, params: P::Params) -> Result<P::Output, Error<P::Reason>> {
        let body = self.encode::<P>(&params)?;
        self.execute::<P>(body, &CallOptions::default(), None).await
    }

    /// Calls procedure `P` with options of this call.
    pub async fn call_with<P: Procedure>(
        &self,
        params: P::Params,
        options: CallOptions,
    ) -> Result<P::Output, Error<P::Reason>> {
        let body = self.encode::<P>(&params)?;
        self.execute::<P>(body, &options, None).await
    }

    /// Starts a batch: calls sent in one request, run concurrently.
    pub fn batch(&self) -> Batch {
        Batch::new(self.clone(), None)
    }

    /// Subscribes to `P` over WebSocket (the client's URL as `ws(s)://`, its
    /// credentials as upgrade headers): a stream of items that reconnects and
    /// resumes after the last item; see [`crate::subscription`]. `P` must be a
    /// subscription (checked when compiled). Dropping the stream unsubscribes.
    ///
    /// ```no_run
    /// # async fn run(client: trellis_client::Client) {
    /// use futures_util::StreamExt;
    /// use trellis_schema::notifications::{Subscribe, SubscribeParams};
    ///
    /// let mut items = std::pin::pin!(client.subscribe::<Subscribe>(SubscribeParams::default()));
    /// while let Some(item) = items.next().await {
    ///     match item {
    ///         Ok(notification) => println!("{}", notification.title),
    ///         Err(e) => eprintln!("ended: {e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn subscribe<P: Procedure>(
        &self,
        params: P::Params,
    ) -> impl Stream<Item = Result<P::Output, Error<P::Reason>>> + Send + 'static
    where
        P::Params: Sync,
    {
        let headers = self.inner.socket_headers.clone();
        self.subscribe_with::<P>(Arc::new(move || headers.clone()), params)
    }

    /// [`Client::subscribe`] with the upgrade's headers asked of `headers` at each connect.
    pub(crate) fn subscribe_with<P: Procedure>(
        &self,
        headers: Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>,
        params: P::Params,
    ) -> impl Stream<Item = Result<P::Output, Error<P::Reason>>> + Send + 'static
    where
        P::Params: Sync,
    {
        subscription::subscribe::<P>(self.connector(headers), params)
    }

    /// How a subscription reaches the server, with `headers` asked at each connect.
    fn connector(&self, headers: Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>) -> Connector {
        let mut url = self.inner.url.clone();
        // Both are special schemes of the same kind: the change cannot fail.
        let _ = url.set_scheme(if url.scheme() == "https" { "wss" } else { "ws" });
        let (min_delay, max_delay) = self.inner.retry.delays();
        Connector { url: url.to_string(), headers, min_delay, max_delay }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The request object of one call of `P`.
    pub(crate) fn encode<P: Procedure>(&self, params: &P::Params) -> Result<Vec<u8>, Error<P::Reason>> {
        let request = Request { jsonrpc: "2.0", method: P::METHOD, params, id: self.next_id() };
        serde_json::to_vec(&request).map_err(Error::Encode)
    }

    /// One call (`body` from [`Client::encode`]), retried as the policy and
    /// options allow; `bearer` overrides the client's `Authorization` header.
    pub(crate) async fn execute<P: Procedure>(
        &self,
        body: Vec<u8>,
        options: &CallOptions,
        bearer: Option<&str>,
    ) -> Result<P::Output, Error<P::Reason>> {
        let policy = options.retry.as_ref().unwrap_or(&self.inner.retry);
        let allowed = P::KIND == Kind::Query || options.retry_mutation;
        policy
            .run(P::METHOD, allowed, || async {
                let answer = self.post(body.clone(), options, bearer).await?;
                decode_single::<P>(answer)
            })
            .await
    }

    /// Posts a body once.
    pub(crate) async fn post<R: ErrorReason>(
        &self,
        body: Vec<u8>,
        options: &CallOptions,
        bearer: Option<&str>,
    ) -> Result<Answer, Error<R>> {
        let mut req = self
            .inner
            .http
            .post(self.inner.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(options.timeout.unwrap_or(self.inner.timeout))
            .body(body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(id) = &options.request_id {
            req = req.header(REQUEST_ID, id);
        }
        let resp = req.send().await.map_err(Error::from_reqwest)?;
        let status = resp.status().as_u16();
        let request_id = resp.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.bytes().await.map_err(Error::from_reqwest)?.to_vec();
        Ok(Answer { status, request_id, body })
    }
}

/// Reads the answer to one call.
fn decode_single<P: Procedure>(answer: Answer) -> Result<P::Output, Error<P::Reason>> {
    let Answer { status, request_id, body } = answer;
    match serde_json::from_slice::<Envelope>(&body) {
        Ok(Envelope { error: Some(error), .. }) => Err(Error::from_wire(error, request_id)),
        _ if !(200..300).contains(&status) => Err(Error::Http { status, request_id }),
        Ok(Envelope { result, .. }) => decode_result::<P>(result.as_deref(), request_id),
        Err(e) => Err(Error::Decode { message: format!("not a JSON-RPC answer: {e}"), request_id }),
    }
}

/// Reads a `result` as procedure `P`'s output.
pub(crate) fn decode_result<P: Procedure>(
    result: Option<&RawValue>,
    request_id: Option<String>,
) -> Result<P::Output, Error<P::Reason>> {
    let json = result.map_or("null", RawValue::get);
    serde_json::from_str(json).map_err(|e| Error::Decode {
        message: format!("the result of {} is not what the schema says: {e}", P::METHOD),
        request_id,
    })
}
