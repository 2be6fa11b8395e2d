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
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ALLOW, AUTHORIZATION,
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ORIGIN, USER_AGENT, VARY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::value::RawValue;
use tracing::Instrument;
use trellis_schema::{ApiError, Reason};
use uuid::Uuid;

use super::framing::{self, Body, Entry};
use super::registry::Registry;
use super::ws::WsEndpoint;
use crate::access::{Credential, Principal, RequestMeta};
use crate::state::AppState;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type HttpBody = UnsyncBoxBody<Bytes, BoxError>;

static REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
static API_KEY: http::HeaderName = http::HeaderName::from_static("x-api-key");
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

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

async fn readyz(front: &Front) -> Response<HttpBody> {
    match front.state.db.ping().await {
        Ok(latency) => json_response(
            StatusCode::OK,
            serde_json::to_vec(&serde_json::json!({
                "status": "ready",
                "database": { "ok": true, "latencyMs": latency.as_secs_f64() * 1000.0 },
                "cache": { "ok": true, "backend": "memory" },
            }))
            .unwrap_or_default(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                Bytes::from_static(
                    br#"{"status":"unavailable","database":{"ok":false},"cache":{"ok":true,"backend":"memory"}}"#,
                ),
            )
        }
    }
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
        return single_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &err, &request_id);
    }
    let too_large = || {
        let err = ApiError::new(Reason::BodyTooLarge).with("limit", config.max_body_bytes);
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
            out = Vec::with_capacity(entries.len() * 192);
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
        Entry::Invalid { id } => (id, Pending::Done(Err(ApiError::new(Reason::InvalidRequest)), true)),
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
        principal: resolve_principal(&front.state, headers),
    }
}

/// Reads credentials: `Authorization: Bearer <JWT | API key>` or `X-Api-Key`.
fn resolve_principal(state: &AppState, headers: &HeaderMap) -> Result<Option<Credential>, ApiError> {
    let bearer = match headers.get(AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| ApiError::new(Reason::TokenInvalid))?;
            match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                    Some(token.trim())
                }
                _ => {
                    return Err(ApiError::new(Reason::TokenInvalid).message("expected `Authorization: Bearer <token>`"));
                }
            }
        }
    };
    let api_key = headers.get(&API_KEY).map(|v| v.to_str().unwrap_or_default());
    resolve_credentials(state, bearer, api_key)
}

/// The token of `Authorization: Bearer <token>`, when well formed.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = headers.get(AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Checks a bearer token (JWT or API key) or an API key.
pub(crate) fn resolve_credentials(
    state: &AppState,
    bearer: Option<&str>,
    api_key: Option<&str>,
) -> Result<Option<Credential>, ApiError> {
    match (bearer, api_key) {
        (Some(key), _) if key.starts_with("trl_") => api_key_credential(state, key),
        (Some(jwt), _) => {
            let (user_id, session_id) = state.auth.tokens.verify(jwt).map_err(ApiError::new)?;
            if state.auth.revoked.is_revoked(&session_id) {
                return Err(ApiError::new(Reason::TokenInvalid).message("the session of this token has ended"));
            }
            Ok(Some(Credential::User(Principal { user_id, session_id })))
        }
        (None, Some(key)) => api_key_credential(state, key),
        (None, None) => Ok(None),
    }
}

/// A key whose checksum fails is refused here, without a database query.
fn api_key_credential(state: &AppState, key: &str) -> Result<Option<Credential>, ApiError> {
    if !crate::api_keys::secret::well_formed(key) {
        return Err(
            ApiError::new(Reason::ApiKeyInvalid).message("the API key is malformed (its checksum does not match)")
        );
    }
    Ok(Some(Credential::ApiKey(state.auth.codes.hash("api key", "", key).into())))
}

/// The percent-decoded value of `name` in a URL query.
fn query_param(query: &str, name: &str) -> Option<String> {
    let raw = query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
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

pub(crate) fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<HttpBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
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

pub(crate) fn full(body: impl Into<Bytes>) -> HttpBody {
    Full::new(body.into()).map_err(|never| match never {}).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::query_param;

    #[test]
    fn query_params_are_found_and_decoded() {
        assert_eq!(query_param("a=1&access_token=x.y%2Dz&b=2", "access_token").as_deref(), Some("x.y-z"));
        assert_eq!(query_param("access_token=", "access_token"), None);
        assert_eq!(query_param("access_tokens=1", "access_token"), None);
        assert_eq!(query_param("access_token=%zz", "access_token"), None);
        assert_eq!(query_param("access_token=%4", "access_token"), None);
    }
}
