//! The HTTP front: routes, request ids, credentials, body limits, and the
//! JSON-RPC exchange over `POST /rpc`. WebSocket upgrades on `GET /rpc` are
//! served by [`super::ws`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use std::task::Poll;

use futures::future::BoxFuture;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ALLOW, CACHE_CONTROL,
    CONTENT_LENGTH, CONTENT_TYPE, ORIGIN, USER_AGENT, VARY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::value::RawValue;
use tracing::Instrument;
use trellis_schema::{ApiError, Reason};
use uuid::Uuid;

use super::credentials::{bearer, from_headers, query_param, resolve_credentials};
use super::framing::{self, Body, Entry};
use super::registry::Registry;
use super::respond::{HttpBody, full, json_response};
use super::ws::WsEndpoint;
use crate::access::RequestMeta;
use crate::state::AppState;

static REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// What every connection's service shares.
pub(crate) struct Front {
    pub state: AppState,
    pub registry: Arc<Registry>,
    pub ws: WsEndpoint,
}

pub(crate) async fn handle(
    front: Arc<Front>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<HttpBody>, Infallible> {
    let request_id = request_id_of(req.headers());
    let trace_id = req.headers().get(&TRACEPARENT).and_then(trace_id_of).unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %request_id, trace_id = %trace_id);
    async move {
        let origin = allowed_origin(&front.state.config.cors_origins, req.headers());
        let mut resp = if req.method() == Method::OPTIONS {
            preflight(origin.as_ref(), req.headers())
        } else if !front.state.config.cors_origins.is_empty()
            && origin.is_none()
            && req.headers().contains_key(ORIGIN)
            && is_upgrade(&req)
        {
            // With origins listed, a page on any other origin may not open a
            // socket (clients that are not browsers send no `Origin`).
            refused_origin()
        } else {
            route(&front, peer, request_id.clone(), req).await
        };
        let headers = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert(REQUEST_ID.clone(), v);
        }
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if !headers.contains_key(CACHE_CONTROL) {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if let Some(origin) = origin {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-request-id"));
            headers.append(VARY, HeaderValue::from_static("origin"));
        }
        Ok(resp)
    }
    .instrument(span)
    .await
}

async fn route(front: &Front, peer: SocketAddr, request_id: Arc<str>, req: Request<Incoming>) -> Response<HttpBody> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::POST, "/rpc") => rpc_over_http(front, peer, request_id, req).await,
        (&Method::GET, "/rpc") if is_upgrade(&req) => {
            let mut meta = request_meta(front, peer, request_id, req.headers());
            // The access token is checked again on every message of the socket.
            let mut token = bearer(req.headers()).map(str::to_owned);
            // Browsers cannot set headers on a WebSocket upgrade: there, the
            // credentials may come in the URL instead (RFC 6750 §2.3).
            if matches!(meta.principal, Ok(None)) {
                let query = req.uri().query().unwrap_or_default();
                let key = query_param(query, "api_key");
                token = query_param(query, "access_token");
                meta.principal = resolve_credentials(&front.state, token.as_deref(), key.as_deref());
            }
            front.ws.upgrade(req, meta, token)
        }
        (_, "/rpc") => {
            let mut r = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                Bytes::from_static(br#"{"error":"use POST, or GET with a WebSocket upgrade"}"#),
            );
            r.headers_mut().insert(ALLOW, HeaderValue::from_static("POST, GET"));
            r
        }
        (&Method::GET, "/healthz") => json_response(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#)),
        (&Method::GET, "/readyz") => readyz(front).await,
        (&Method::GET, "/openrpc.json") => {
            let body = serde_json::to_vec(&front.state.openrpc).unwrap_or_default();
            let mut r = json_response(StatusCode::OK, body);
            r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        _ => json_response(StatusCode::NOT_FOUND, Bytes::from_static(br#"{"error":"not found"}"#)),
    }
}

/// The request's `Origin`, if it is one of the allowed origins (compared
/// exactly, as browsers send them).
fn allowed_origin(allowed: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed.iter().any(|a| a == text).then(|| origin.clone())
}

/// Headers a browser may send on a cross-origin call.
const CORS_ALLOW_HEADERS: &str = "authorization, content-type, x-api-key, x-request-id, traceparent";

/// The answer to a CORS preflight: allowed for a listed origin, refused
/// (403, no CORS headers) otherwise.
fn preflight(origin: Option<&HeaderValue>, headers: &HeaderMap) -> Response<HttpBody> {
    let wants_method = headers.get(ACCESS_CONTROL_REQUEST_METHOD).and_then(|v| v.to_str().ok());
    let method_ok = wants_method.is_some_and(|m| m == "POST" || m == "GET");
    if origin.is_none() || !method_ok {
        let mut r = json_response(StatusCode::FORBIDDEN, Bytes::from_static(br#"{"error":"origin not allowed"}"#));
        r.headers_mut().insert(VARY, HeaderValue::from_static("origin"));
        return r;
    }
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET"));
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(CORS_ALLOW_HEADERS));
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

fn refused_origin() -> Response<HttpBody> {
    json_response(StatusCode::FORBIDDEN, Bytes::from_static(br#"{"error":"origin not allowed"}"#))
}

/// Ready when the database answers (503 otherwise, so a balancer sends
/// elsewhere); `degraded` while Redis is away (still 200: the replica
/// serves, on its fallbacks).
async fn readyz(front: &Front) -> Response<HttpBody> {
    let cache = front.state.health.cache();
    let (status, database) = match front.state.db.ping().await {
        Ok(latency) => (
            if cache.ok { "ready" } else { "degraded" },
            serde_json::json!({ "ok": true, "latencyMs": latency.as_secs_f64() * 1000.0 }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe failed");
            ("unavailable", serde_json::json!({ "ok": false }))
        }
    };
    let code = if status == "unavailable" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = serde_json::json!({ "status": status, "database": database, "cache": cache });
    json_response(code, serde_json::to_vec(&body).unwrap_or_default())
}

async fn rpc_over_http(
    front: &Front,
    peer: SocketAddr,
    request_id: Arc<str>,
    req: Request<Incoming>,
) -> Response<HttpBody> {
    let config = &front.state.config;
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !is_json {
        let err = ApiError::new(Reason::InvalidRequest).message("Content-Type must be application/json");
        crate::observe::refused(&err);
        return single_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &err, &request_id);
    }
    let too_large = || {
        let err = ApiError::new(Reason::BodyTooLarge).with("limit", config.max_body_bytes);
        crate::observe::refused(&err);
        // The connection cannot carry another request after a refused body:
        // say so, or a client may reuse it and fail.
        closing(single_error(StatusCode::PAYLOAD_TOO_LARGE, &err, &request_id))
    };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (config.max_body_bytes + DRAIN_LIMIT_BYTES) as u64) {
        return too_large();
    }
    let meta = Arc::new(request_meta(front, peer, request_id.clone(), req.headers()));
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(0)).min(config.max_body_bytes);
    let read = read_body(req.into_body(), config.max_body_bytes, capacity);
    let bytes = match tokio::time::timeout(config.body_read_timeout(), read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyRead::TooLarge)) => return too_large(),
        Ok(Err(BodyRead::Failed(e))) => {
            tracing::debug!(error = %e, "request body read failed");
            return closing(json_response(
                StatusCode::BAD_REQUEST,
                Bytes::from_static(br#"{"error":"request body could not be read"}"#),
            ));
        }
        Err(_) => {
            return closing(json_response(
                StatusCode::REQUEST_TIMEOUT,
                Bytes::from_static(br#"{"error":"request body not received in time"}"#),
            ));
        }
    };

    let parsed = framing::parse_body(&bytes, config.max_json_depth, config.max_batch);
    let body = match parsed {
        Ok(b) => b,
        Err(e) => return single_error(StatusCode::OK, &e.to_api(config.max_json_depth), &request_id),
    };

    let mut out;
    match body {
        Body::Single(entry) => {
            out = Vec::with_capacity(256);
            let (id, outcome) = start(front, &meta, entry);
            let Some(outcome) = finish(outcome).await else { return no_content() };
            write_answer(&mut out, id, outcome, &meta);
        }
        Body::Batch(entries) => {
            crate::observe::batch(entries.len());
            out = Vec::with_capacity(entries.len() * 192);
            let meta = front.registry.for_batch(&meta, framing::methods(&entries));
            // Start every call, then drive them all at once: they run
            // concurrently, and answers keep the order of the calls.
            let mut started: Vec<_> = entries.into_iter().map(|entry| start(front, &meta, entry)).collect();
            join_in_place(&mut started).await;
            out.push(b'[');
            for (id, outcome) in started {
                let Pending::Done(result, answered) = outcome else { continue };
                if !answered {
                    continue;
                }
                if out.len() > 1 {
                    out.push(b',');
                }
                write_answer(&mut out, id, result, &meta);
            }
            if out.len() == 1 {
                return no_content();
            }
            out.push(b']');
        }
    }
    if out.len() > config.max_response_bytes {
        tracing::warn!(bytes = out.len(), "response over the size limit");
        let err = ApiError::new(Reason::Internal).message("the response is larger than the server sends");
        return single_error(StatusCode::OK, &err, &request_id);
    }
    json_response(StatusCode::OK, out)
}

/// How much of a refused body is still read, and thrown away, before the
/// answer: closing a connection with unread data resets it, and the client
/// would lose the 413 under the reset.
const DRAIN_LIMIT_BYTES: usize = 16 << 20;

enum BodyRead {
    TooLarge,
    Failed(hyper::Error),
}

/// Reads a body of at most `max` bytes. A single-frame body is kept without a
/// copy. Past `max`, the rest is drained (up to [`DRAIN_LIMIT_BYTES`]).
async fn read_body(mut body: Incoming, max: usize, capacity: usize) -> Result<Bytes, BodyRead> {
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(BodyRead::Failed)?.into_data() else { continue };
        len += data.len();
        if len > max {
            while len < max + DRAIN_LIMIT_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => len += frame.data_ref().map_or(0, Bytes::len),
                    _ => break,
                }
            }
            return Err(BodyRead::TooLarge);
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            None => joined.extend_from_slice(&data),
            Some(earlier) => {
                joined.reserve(capacity.max(earlier.len() + data.len()));
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| joined.into()))
}

type CallResult = Result<Box<RawValue>, ApiError>;

/// A call on its way: still running, or done (`answered` is false for a
/// notification, which runs but gets no answer).
enum Pending {
    Running(BoxFuture<'static, CallResult>, bool),
    Done(CallResult, bool),
}

/// Starts one entry; returns the id to answer with and its outcome.
fn start<'a>(front: &Front, meta: &Arc<RequestMeta>, entry: Entry<'a>) -> (Option<&'a RawValue>, Pending) {
    match entry {
        Entry::Invalid { id } => {
            let err = ApiError::new(Reason::InvalidRequest);
            crate::observe::refused(&err);
            (id, Pending::Done(Err(err), true))
        }
        Entry::Call(call) => {
            let answered = call.id.is_some();
            let outcome = match front.registry.call(&call.method, front.state.clone(), meta.clone(), call.params) {
                Some(fut) => Pending::Running(fut, answered),
                None => Pending::Done(Err(ApiError::new(Reason::MethodNotFound)), answered),
            };
            (call.id, outcome)
        }
    }
}

/// Finishes one outcome; `None` for a notification.
async fn finish(outcome: Pending) -> Option<CallResult> {
    let (result, answered) = match outcome {
        Pending::Running(fut, answered) => (fut.await, answered),
        Pending::Done(result, answered) => (result, answered),
    };
    if !answered {
        if let Err(e) = &result {
            tracing::debug!(error = %e, "notification failed");
        }
        return None;
    }
    Some(result)
}

/// Drives every running call until all are done. The futures are boxed (so
/// `Unpin`) and polled in place: no task or allocation per call.
async fn join_in_place<I>(calls: &mut [(I, Pending)]) {
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (_, outcome) in calls.iter_mut() {
            if let Pending::Running(fut, answered) = outcome {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(result) => *outcome = Pending::Done(result, *answered),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
}

fn write_answer(out: &mut Vec<u8>, id: Option<&RawValue>, result: CallResult, meta: &RequestMeta) {
    match result {
        Ok(value) => framing::write_result(out, id, &value),
        Err(e) => {
            tracing::debug!(error = %e, "call failed");
            framing::write_error(out, id, &e.to_error_object(&meta.request_id));
        }
    }
}

pub(crate) fn request_meta(front: &Front, peer: SocketAddr, request_id: Arc<str>, headers: &HeaderMap) -> RequestMeta {
    RequestMeta {
        request_id,
        client: Some(crate::net::client_ip(peer.ip(), headers, &front.state.config.trusted_proxies)),
        user_agent: headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect()),
        principal: from_headers(&front.state, headers),
        budget: None,
    }
}

fn request_id_of(headers: &HeaderMap) -> Arc<str> {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
        })
        .map_or_else(|| Uuid::now_v7().to_string().into(), Arc::from)
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`).
fn trace_id_of(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let mut parts = s.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(version, 2) && hex(trace, 32) && hex(parent, 16) && hex(flags, 2) && trace != "0".repeat(32))
        .then(|| trace.to_ascii_lowercase())
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn single_error(status: StatusCode, err: &ApiError, request_id: &str) -> Response<HttpBody> {
    let mut out = Vec::with_capacity(128);
    framing::write_error(&mut out, None, &err.to_error_object(request_id));
    json_response(status, out)
}

/// Marks a response as the connection's last.
fn closing(mut r: Response<HttpBody>) -> Response<HttpBody> {
    r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn no_content() -> Response<HttpBody> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}
