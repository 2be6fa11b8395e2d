//! Subscriptions over WebSocket: `client.subscribe::<P>(params)`, a stream of
//! items that outlives connections.
//!
//! The stream subscribes through jsonrpsee's WebSocket client (the URL is the
//! client's, `http(s)://` made `ws(s)://`; credentials as headers on the
//! upgrade). When the connection drops, or the server ends the subscription
//! with SUBSCRIPTION_LAGGED or SHUTTING_DOWN, it connects and subscribes again
//! after a backoff (the client's retry policy's delays, without a limit on
//! attempts), with the params set by [`Procedure::resume_after`] the last item
//! received: the server sends what came after it, so no item is lost or
//! repeated. SESSION_ENDED, TOKEN_EXPIRED and every other refusal end the
//! stream with that error as its last item. Dropping the stream unsubscribes
//! (jsonrpsee sends [`Procedure::UNSUBSCRIBE`]).
//!
//! jsonrpsee's client reads the server's end message
//! (`{"params":{"subscription":id,"error":...}}`) only as "closed", without
//! its reason, so the socket's receiving half is wrapped ([`Watch`]) to note
//! each end message's error before jsonrpsee sees it.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::Stream;
use http::{HeaderMap, HeaderName, HeaderValue};
use jsonrpsee_client_transport::ws::{CertificateStore, Url, WsTransportClientBuilder};
use jsonrpsee_core::client::{
    Client as WsClient, ClientBuilder, Error as WsError, ReceivedMessage, Subscription, SubscriptionClientT,
    SubscriptionKind, TransportReceiverT,
};
use jsonrpsee_core::traits::ToRpcParams;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use trellis_schema::{Kind, Procedure, Reason};

use crate::error::{Error, WireError};

/// Items a subscription may hold in memory for a reader that falls behind;
/// past that the connection is dropped and the stream resumes once read.
const BUFFER: usize = 4096;

/// What a stream needs to (re)connect: where, with which credentials, and how
/// long to wait after failures.
#[derive(Clone)]
pub(crate) struct Connector {
    pub url: String,
    /// Headers of the upgrade request (name, value); asked at every connect.
    pub headers: Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

/// The errors the server ended subscriptions with, by subscription id, as
/// [`Watch`] saw them go by.
type Ends = Arc<Mutex<HashMap<String, WireError>>>;

/// The receiving half of the socket, noting end messages on their way to jsonrpsee.
struct Watch<R> {
    inner: R,
    ends: Ends,
}

#[derive(Deserialize)]
struct EndMessage {
    params: EndParams,
}

#[derive(Deserialize)]
struct EndParams {
    subscription: String,
    error: WireError,
}

impl<R: TransportReceiverT + Send> TransportReceiverT for Watch<R> {
    type Error = R::Error;

    async fn receive(&mut self) -> Result<ReceivedMessage, Self::Error> {
        let message = self.inner.receive().await?;
        if let ReceivedMessage::Text(text) = &message
            && text.contains("\"error\"")
            && let Ok(end) = serde_json::from_str::<EndMessage>(text)
        {
            let mut ends = self.ends.lock().unwrap_or_else(PoisonError::into_inner);
            ends.insert(end.params.subscription, end.params.error);
        }
        Ok(message)
    }
}

/// Params sent by name (the object itself), as the server reads them.
struct ByName(Box<RawValue>);

impl ToRpcParams for ByName {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        Ok(Some(self.0))
    }
}

/// One open subscription: the connection it lives on, and its end messages.
struct Open {
    /// Kept for the subscription's life: dropping it closes the connection.
    _client: WsClient,
    subscription: Subscription<Value>,
    ends: Ends,
}

/// Why an attempt to subscribe failed.
enum Refused<R> {
    /// Try again after a backoff (no connection, a transient refusal).
    Retry,
    /// End the stream with this error.
    Fatal(Error<R>),
}

struct State<P: Procedure> {
    connector: Connector,
    params: P::Params,
    open: Option<Open>,
    /// Consecutive failed attempts; they set the backoff.
    failures: u32,
    done: bool,
}

/// The stream of `P`'s items (see the module's documentation).
pub(crate) fn subscribe<P: Procedure>(
    connector: Connector,
    params: P::Params,
) -> impl Stream<Item = Result<P::Output, Error<P::Reason>>> + Send + 'static
where
    P::Params: Sync,
{
    const { assert!(matches!(P::KIND, Kind::Subscription), "subscribe::<P> needs a subscription") };
    let state = State::<P> { connector, params, open: None, failures: 0, done: false };
    futures_util::stream::unfold(state, |mut state| async move {
        let item = next::<P>(&mut state).await?;
        Some((item, state))
    })
}

async fn next<P: Procedure>(state: &mut State<P>) -> Option<Result<P::Output, Error<P::Reason>>>
where
    P::Params: Sync,
{
    while !state.done {
        let Some(open) = state.open.as_mut() else {
            if state.failures > 0 {
                tokio::time::sleep(backoff(&state.connector, state.failures)).await;
            }
            match open_subscription::<P>(&state.connector, &state.params).await {
                Ok(open) => {
                    state.open = Some(open);
                    state.failures = 0;
                }
                Err(Refused::Retry) => state.failures += 1,
                Err(Refused::Fatal(e)) => {
                    state.done = true;
                    return Some(Err(e));
                }
            }
            continue;
        };
        match open.subscription.next().await {
            Some(Ok(value)) => match serde_json::from_value::<P::Output>(value) {
                Ok(item) => {
                    P::resume_after(&mut state.params, &item);
                    return Some(Ok(item));
                }
                Err(e) => {
                    state.done = true;
                    let message = format!("an item of {} is not what the schema says: {e}", P::METHOD);
                    return Some(Err(Error::Decode { message, request_id: None }));
                }
            },
            Some(Err(e)) => {
                state.done = true;
                let message = format!("an item of {} is not JSON: {e}", P::METHOD);
                return Some(Err(Error::Decode { message, request_id: None }));
            }
            None => {
                let end = subscription_id(&open.subscription)
                    .and_then(|id| open.ends.lock().unwrap_or_else(PoisonError::into_inner).remove(&id));
                state.open = None;
                match end {
                    // The connection closed (or this reader fell behind): resume.
                    None => state.failures += 1,
                    Some(wire) => {
                        let error = Error::<P::Reason>::from_wire(wire, None);
                        match error.reason().and_then(|r| r.reason()) {
                            Some(Reason::SubscriptionLagged) => {}
                            // The server is stopping: wait a little, then connect again.
                            Some(Reason::ShuttingDown) => state.failures = 1,
                            _ => {
                                state.done = true;
                                return Some(Err(error));
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

fn subscription_id(subscription: &Subscription<Value>) -> Option<String> {
    let SubscriptionKind::Subscription(id) = subscription.kind() else { return None };
    // The server's ids are strings; jsonrpsee keeps them as it read them.
    match serde_json::to_value(id).ok()? {
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn backoff(connector: &Connector, failures: u32) -> Duration {
    let doubled = connector.min_delay.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let delay = doubled.min(connector.max_delay);
    // ±25 % so that clients cut off together do not come back together.
    let random = RandomState::new().build_hasher().finish();
    delay.mul_f64(0.75 + (random % 1000) as f64 / 2000.0)
}

/// Connects and subscribes once.
async fn open_subscription<P: Procedure>(connector: &Connector, params: &P::Params) -> Result<Open, Refused<P::Reason>>
where
    P::Params: Sync,
{
    let unsubscribe = P::UNSUBSCRIBE.unwrap_or(P::METHOD);
    let raw = serde_json::value::to_raw_value(params).map_err(|e| Refused::Fatal(Error::Encode(e)))?;
    let ends = Ends::default();
    let client = connect(connector, ends.clone()).await.ok_or(Refused::Retry)?;
    match client.subscribe::<Value, _>(P::METHOD, ByName(raw), unsubscribe).await {
        Ok(subscription) => Ok(Open { _client: client, subscription, ends }),
        Err(WsError::Call(e)) => {
            let wire = WireError {
                code: i64::from(e.code()),
                message: e.message().to_owned(),
                data: e.data().and_then(|d| serde_json::from_str(d.get()).ok()).unwrap_or(Value::Null),
            };
            let error = Error::<P::Reason>::from_wire(wire, None);
            let retry =
                error.is_transient() && error.reason().and_then(|r| r.reason()) != Some(Reason::TooManySubscriptions);
            Err(if retry { Refused::Retry } else { Refused::Fatal(error) })
        }
        Err(_) => Err(Refused::Retry),
    }
}

/// Opens the WebSocket; `None` when it cannot be opened now.
async fn connect(connector: &Connector, ends: Ends) -> Option<WsClient> {
    let url = Url::parse(&connector.url).ok()?;
    let mut headers = HeaderMap::new();
    for (name, value) in (connector.headers)() {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        let mut value = HeaderValue::from_str(&value).ok()?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let mut transport = WsTransportClientBuilder { headers, ..WsTransportClientBuilder::default() };
    if url.scheme() == "wss" {
        use rustls_platform_verifier::ConfigVerifierExt;
        transport.certificate_store = CertificateStore::Custom(rustls::ClientConfig::with_platform_verifier().ok()?);
    }
    let (sender, receiver) = transport.build(url).await.ok()?;
    let client = ClientBuilder::default()
        .max_buffer_capacity_per_subscription(BUFFER)
        .build_with_tokio(sender, Watch { inner: receiver, ends });
    Some(client)
}
