//! WebSocket transport on `GET /rpc`: the same procedures through the same
//! registry and the same JSON-RPC framing as HTTP (a batch's calls run
//! concurrently, notifications run unanswered, ids are echoed byte for byte).
//!
//! A socket is not trusted for its life on the strength of its upgrade:
//! - every message passes the checks an HTTP request passes: a JWT is
//!   verified again (from the verified-token cache) and its session looked up
//!   in the revocation set; an API key is looked up per call as on HTTP;
//! - the server closes the socket when its session ends (close code 4001,
//!   "session ended"): at once for a session ended on this replica, within
//!   the sync interval for one ended on another; and when its token expires
//!   (4002, "token expired");
//! - `rpc.authenticate {accessToken}` presents a fresh token of the same user
//!   without reconnecting; the socket then lives to that token's expiry;
//! - the server pings every `TRELLIS_WS_PING_INTERVAL_MS` and closes (1001) a
//!   socket it has heard nothing from (no message, no pong) for
//!   `TRELLIS_WS_IDLE_TIMEOUT_MS`.
//!
//! Subscriptions live here too ([`super::ws_subscriptions`]): a subscribe
//! call starts one, its items follow its answer, an unsubscribe call ends
//! it; when the socket closes for a reason of the server's (session ended,
//! token expired, shutdown) each subscription first gets a last message
//! saying why.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming as Body;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use trellis_schema::rpc::UnsubscribeParams;
use trellis_schema::{ApiError, Reason};

use super::connection::{Connection, stopped};
use super::credentials::resolve_credentials;
use super::framing::{self, Entry};
use super::registry::{Registry, decode_params};
use super::respond::{HttpBody, full, json_response};
use super::ws_frames::{self as frames, FrameError, FrameReader, close};
use super::ws_subscriptions::{PerUser, Queued, Subscriptions};
use crate::access::{Credential, RequestMeta};
use crate::auth::tokens::LEEWAY_SECS;
use crate::state::AppState;

/// The transport method that replaces a socket's access token.
pub(crate) const AUTHENTICATE: &str = "rpc.authenticate";

/// Messages of one socket handled at once; further ones wait to be read.
const MAX_IN_FLIGHT: usize = 32;

pub(crate) struct WsEndpoint {
    shared: Arc<Shared>,
}

struct Shared {
    state: AppState,
    registry: Arc<Registry>,
    /// Subscriptions per user on this replica.
    per_user: Arc<PerUser>,
}

impl WsEndpoint {
    pub(crate) fn new(state: AppState, registry: Arc<Registry>) -> Self {
        Self { shared: Arc::new(Shared { state, registry, per_user: Arc::default() }) }
    }

    /// Answers an upgrade request (101, or 400/426 when it is not a valid
    /// one) and hands the socket to the connection's task. `token` is the
    /// access token among the credentials, checked again on every message.
    pub(crate) fn upgrade(
        &self,
        mut req: Request<Body>,
        meta: RequestMeta,
        token: Option<String>,
    ) -> Response<HttpBody> {
        let bad = |status: StatusCode, why: &'static str| {
            json_response(status, Bytes::from(format!(r#"{{"error":"{why}"}}"#)))
        };
        if req.version() != http::Version::HTTP_11 {
            return bad(StatusCode::BAD_REQUEST, "WebSocket is served over HTTP/1.1");
        }
        let headers = req.headers();
        if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
            let mut r = bad(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 is required");
            r.headers_mut().insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            return r;
        }
        let upgrade_asked = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        let Some(key) = headers.get(SEC_WEBSOCKET_KEY).filter(|_| upgrade_asked) else {
            return bad(StatusCode::BAD_REQUEST, "not a valid WebSocket upgrade request");
        };
        let Some(connection) = req.extensions().get::<Arc<Connection>>().cloned() else {
            return bad(StatusCode::BAD_REQUEST, "WebSocket is served over HTTP/1.1");
        };
        let accept = frames::accept_key(key.as_bytes());
        let on_upgrade = hyper::upgrade::on(&mut req);
        let user = match &meta.principal {
            Ok(Some(Credential::User(p))) => Some(p.user_id),
            _ => None,
        };
        let token = token.filter(|_| user.is_some()).map(Arc::from);
        let auth = Auth { meta: Arc::new(meta), token, user };
        let shared = self.shared.clone();
        let stopping = connection.stopping();
        connection.take_over(Box::pin(async move {
            match on_upgrade.await {
                Ok(upgraded) => shared.serve(TokioIo::new(upgraded), auth, stopping).await,
                Err(e) => tracing::debug!(error = %e, "WebSocket upgrade not completed"),
            }
        }));
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            h.insert(SEC_WEBSOCKET_ACCEPT, v);
        }
        r
    }
}

/// Who a socket acts as.
struct Auth {
    /// The facts shared by its calls; `principal` as of the last check.
    meta: Arc<RequestMeta>,
    /// The access token, checked again before each message.
    token: Option<Arc<str>>,
    /// The user the socket belongs to: a fresh token must be theirs.
    user: Option<trellis_schema::ids::UserId>,
}

impl Auth {
    /// The credentials of the next message, checked now as an HTTP request's
    /// would be (expiry, ended session).
    fn current(&mut self, state: &AppState) -> Arc<RequestMeta> {
        if let Some(token) = &self.token {
            let principal = resolve_credentials(state, Some(token), None);
            if principal.is_err() || self.meta.principal.is_err() {
                self.meta = Arc::new(RequestMeta { principal, ..(*self.meta).clone() });
            }
        }
        self.meta.clone()
    }

    /// The session to watch and when the token stops being accepted.
    fn limits(&self, state: &AppState) -> (Option<watch::Receiver<bool>>, Option<tokio::time::Instant>) {
        let Some(token) = &self.token else { return (None, None) };
        match state.auth.tokens.verify_until(token) {
            Ok((_, sid, exp)) => (Some(state.auth.revoked.watch(sid)), Some(instant_after(exp + LEEWAY_SECS))),
            // Already refused: each call says why; nothing to watch.
            Err(_) => (None, None),
        }
    }
}

/// The first instant at which Unix second `last` is over.
fn instant_after(last: u64) -> tokio::time::Instant {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    tokio::time::Instant::now() + Duration::from_secs(last + 1).saturating_sub(now)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthenticateParams {
    access_token: String,
}

/// Why the server closes a socket: the close code and reason, and the
/// reason each subscription's last message gives.
struct Closing(u16, &'static str, Option<Reason>);

impl Shared {
    async fn serve(
        self: Arc<Self>,
        io: TokioIo<hyper::upgrade::Upgraded>,
        mut auth: Auth,
        mut stopping: watch::Receiver<bool>,
    ) {
        let _open = crate::observe::ws_connection();
        let config = &self.state.config;
        let (read, write) = tokio::io::split(io);
        let (out, out_rx) = mpsc::channel::<Vec<u8>>(64);
        let (items, items_rx) = mpsc::unbounded_channel::<Queued>();
        let writer = tokio::spawn(write_frames(write, out_rx, items_rx));
        let subs = Subscriptions::new(
            config.max_subscriptions_per_connection as usize,
            config.max_subscriptions_per_user as usize,
            config.subscription_buffer as usize,
            self.per_user.clone(),
            items.clone(),
        );
        let max_message = config.max_body_bytes;
        let frames = futures::stream::unfold(
            FrameReader::new(tokio::io::BufReader::new(read), max_message),
            |mut r| async move { Some((r.next().await, r)) },
        );
        tokio::pin!(frames);

        let ping_every = Duration::from_millis(config.ws_ping_interval_ms.max(10));
        let idle_limit = Duration::from_millis(config.ws_idle_timeout_ms.max(10));
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = Instant::now();

        let (mut session, mut expires) = auth.limits(&self.state);
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut slot = slots.clone().try_acquire_owned().ok();
        let mut calls = JoinSet::new();

        let closing: Option<Closing> = loop {
            tokio::select! {
                frame = frames.next(), if slot.is_some() => {
                    let Some(frame) = frame else { break None };
                    match frame {
                        Ok(frames::Incoming::Message(data)) => {
                            heard = Instant::now();
                            if contains(&data, AUTHENTICATE.as_bytes())
                                && let Some(answer) = self.authenticate(&data, &mut auth)
                            {
                                (session, expires) = auth.limits(&self.state);
                                if let Some(answer) = answer {
                                    // Queued by a task: the loop never waits on a client that does not read.
                                    let out = out.clone();
                                    calls.spawn(async move {
                                        let _ = out.send(frames::frame(frames::TEXT, &answer)).await;
                                    });
                                }
                                continue;
                            }
                            let meta = auth.current(&self.state);
                            let (this, out, permit, subs) = (self.clone(), out.clone(), slot.take(), subs.clone());
                            calls.spawn(async move {
                                let _permit = permit;
                                let started = Mutex::new(Vec::new());
                                if let Some(answer) = this.answer(&meta, &data, &subs, &started).await {
                                    let _ = out.send(frames::frame(frames::TEXT, &answer)).await;
                                }
                                // Items of the subscriptions it started follow the answer.
                                for start in started.into_inner().unwrap_or_else(PoisonError::into_inner) {
                                    let _ = start.send(());
                                }
                            });
                            slot = slots.clone().try_acquire_owned().ok();
                        }
                        Ok(frames::Incoming::Ping(payload)) => {
                            heard = Instant::now();
                            // Under backpressure (the client does not read) a pong is dropped.
                            let _ = out.try_send(frames::frame(frames::PONG, &payload));
                        }
                        Ok(frames::Incoming::Pong) => heard = Instant::now(),
                        Ok(frames::Incoming::Close(code)) => {
                            // The client's close: echo its code, let its calls finish unanswered.
                            let code = code.filter(|c| !matches!(c, 1005 | 1006 | 1015)).unwrap_or(close::NORMAL);
                            let _ = out.try_send(frames::close_frame(code, ""));
                            break None;
                        }
                        Err(FrameError::Protocol(code, why)) => break Some(Closing(code, why, None)),
                        Err(FrameError::Io) => break None,
                    }
                }
                permit = slots.clone().acquire_owned(), if slot.is_none() => slot = permit.ok(),
                Some(_) = calls.join_next(), if !calls.is_empty() => {}
                () = ended(&mut session) => {
                    break Some(Closing(close::SESSION_ENDED, "session ended", Some(Reason::SessionEnded)));
                }
                () = until(expires) => {
                    break Some(Closing(close::TOKEN_EXPIRED, "token expired", Some(Reason::TokenExpired)));
                }
                _ = ping.tick() => {
                    if heard.elapsed() >= idle_limit {
                        break Some(Closing(close::GOING_AWAY, "no answer to pings", None));
                    }
                    let _ = out.try_send(frames::frame(frames::PING, b""));
                }
                () = stopped(&mut stopping) => {
                    // In-flight calls finish and are answered first.
                    while calls.join_next().await.is_some() {}
                    break Some(Closing(close::GOING_AWAY, "server shutting down", Some(Reason::ShuttingDown)));
                }
            }
        };
        // Calls still running finish on their own; a closed socket drops their answers.
        calls.detach_all();
        // Each subscription's last message, then the close frame, in that
        // order on the items' queue.
        subs.end_all(closing.as_ref().and_then(|c| c.2)).await;
        if let Some(Closing(code, why, _)) = closing {
            tracing::debug!(code, reason = why, "closing WebSocket");
            let _ = items.send(Queued { frame: frames::close_frame(code, why), pending: None });
            // The closing handshake: wait (briefly) for the client's close
            // frame, so that closing the connection does not reset it under
            // data the client is still sending.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(frame)) = frames.next().await {
                    if matches!(frame, frames::Incoming::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        drop(out);
        drop(items);
        drop(subs);
        // The writer ends once the close frame is out. A peer that stopped
        // reading cannot hold the connection: the writer is stopped.
        let mut writer = writer;
        if tokio::time::timeout(Duration::from_secs(5), &mut writer).await.is_err() {
            writer.abort();
        }
    }

    /// Handles a message that is a single `rpc.authenticate` call: `None` if
    /// it is not one; `Some(None)` for a notification (nothing to answer).
    fn authenticate(&self, data: &[u8], auth: &mut Auth) -> Option<Option<Vec<u8>>> {
        let Ok(framing::Body::Single(Entry::Call(call))) =
            framing::parse_body(data, self.state.config.max_json_depth, self.state.config.max_batch)
        else {
            return None;
        };
        if call.method != AUTHENTICATE {
            return None;
        }
        let result = self.reauthenticate(call.params, auth);
        let id = call.id?;
        let mut out = Vec::with_capacity(128);
        match result {
            Ok(value) => framing::write_result(&mut out, Some(id), &value),
            Err(e) => framing::write_error(&mut out, Some(id), &e.to_error_object(&auth.meta.request_id)),
        }
        Some(Some(out))
    }

    fn reauthenticate(&self, params: Option<&RawValue>, auth: &mut Auth) -> Result<Box<RawValue>, ApiError> {
        let params: AuthenticateParams = decode_params(params)?;
        if matches!(auth.meta.principal, Ok(Some(Credential::ApiKey(_)))) {
            return Err(ApiError::new(Reason::InvalidRequest)
                .message("this connection uses an API key; rpc.authenticate replaces an access token"));
        }
        let (user, _, exp) = self.state.auth.tokens.verify_until(&params.access_token).map_err(ApiError::new)?;
        let principal = resolve_credentials(&self.state, Some(&params.access_token), None)?;
        if auth.user.is_some_and(|u| u != user) {
            return Err(
                ApiError::new(Reason::TokenInvalid).message("the token is for another user than this connection's")
            );
        }
        auth.user = Some(user);
        auth.token = Some(Arc::from(params.access_token));
        auth.meta = Arc::new(RequestMeta { principal: Ok(principal), ..(*auth.meta).clone() });
        let expires_at = i64::try_from(exp)
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        serde_json::value::to_raw_value(&serde_json::json!({
            "expiresAt": expires_at,
            "expiresIn": exp.saturating_sub(now),
        }))
        .map_err(|_| ApiError::new(Reason::Internal))
    }

    /// The answer to one message (`None` when it held only notifications).
    /// Subscriptions it starts wait for the signals left in `started`.
    async fn answer(
        &self,
        meta: &Arc<RequestMeta>,
        data: &[u8],
        subs: &Arc<Subscriptions>,
        started: &Mutex<Vec<oneshot::Sender<()>>>,
    ) -> Option<Vec<u8>> {
        let config = &self.state.config;
        let mut out = Vec::with_capacity(256);
        match framing::parse_body(data, config.max_json_depth, config.max_batch) {
            Err(e) => {
                let err = e.to_api(config.max_json_depth);
                framing::write_error(&mut out, None, &err.to_error_object(&meta.request_id));
            }
            Ok(framing::Body::Single(entry)) => {
                let (id, answered, result) = self.run(meta, entry, subs, started).await;
                if !answered {
                    return None;
                }
                write_answer(&mut out, id, result, meta);
            }
            Ok(framing::Body::Batch(entries)) => {
                crate::observe::batch(entries.len());
                let meta = &self.registry.for_batch(meta, framing::methods(&entries));
                let results = join_all(entries.into_iter().map(|e| self.run(meta, e, subs, started))).await;
                out.push(b'[');
                for (id, answered, result) in results {
                    if !answered {
                        continue;
                    }
                    if out.len() > 1 {
                        out.push(b',');
                    }
                    write_answer(&mut out, id, result, meta);
                }
                if out.len() == 1 {
                    return None;
                }
                out.push(b']');
            }
        }
        if out.len() > config.max_response_bytes {
            tracing::warn!(bytes = out.len(), "response over the size limit");
            out.clear();
            let err = ApiError::new(Reason::Internal).message("the response is larger than the server sends");
            framing::write_error(&mut out, None, &err.to_error_object(&meta.request_id));
        }
        Some(out)
    }

    /// Runs one entry: its id, whether it is answered, its result.
    async fn run<'a>(
        &self,
        meta: &Arc<RequestMeta>,
        entry: Entry<'a>,
        subs: &Arc<Subscriptions>,
        started: &Mutex<Vec<oneshot::Sender<()>>>,
    ) -> (Option<&'a RawValue>, bool, Result<Box<RawValue>, ApiError>) {
        match entry {
            Entry::Invalid { id } => {
                let err = ApiError::new(Reason::InvalidRequest);
                crate::observe::refused(&err);
                (id, true, Err(err))
            }
            Entry::Call(call) => {
                let answered = call.id.is_some();
                let result = if call.method == AUTHENTICATE {
                    Err(ApiError::new(Reason::InvalidRequest)
                        .message("send rpc.authenticate on its own, not in a batch"))
                } else if let Some(subscription) = self.registry.ended_by(&call.method) {
                    decode_params::<UnsubscribeParams>(call.params)
                        .map(|p| subs.end(&p.subscription.0, subscription))
                        .and_then(|ended| {
                            serde_json::value::to_raw_value(&ended).map_err(|_| ApiError::new(Reason::Internal))
                        })
                } else if let Some((method, subscribe)) =
                    self.registry.subscribe(&call.method, self.state.clone(), meta.clone(), call.params)
                {
                    self.start(meta, method, subscribe, answered, subs, started).await
                } else {
                    match self.registry.call(&call.method, self.state.clone(), meta.clone(), call.params) {
                        Some(fut) => fut.await,
                        None => Err(ApiError::new(Reason::MethodNotFound)),
                    }
                };
                if !answered && let Err(e) = &result {
                    tracing::debug!(error = %e, "notification failed");
                }
                (call.id, answered, result)
            }
        }
    }
}

impl Shared {
    /// A subscribe call: its place among the caps, then the procedure's
    /// checks; answers the subscription's id.
    async fn start(
        &self,
        meta: &Arc<RequestMeta>,
        method: &'static str,
        subscribe: futures::future::BoxFuture<'static, Result<super::registry::RawItems, ApiError>>,
        answered: bool,
        subs: &Arc<Subscriptions>,
        started: &Mutex<Vec<oneshot::Sender<()>>>,
    ) -> Result<Box<RawValue>, ApiError> {
        if !answered {
            return Err(ApiError::new(Reason::InvalidRequest).message("a subscribe call needs an id"));
        }
        let user = match &meta.principal {
            Ok(Some(Credential::User(p))) => Some(p.user_id),
            _ => None,
        };
        let slot = subs.reserve(user)?;
        let items = subscribe.await?;
        let (start, wait) = oneshot::channel();
        let id = subs.start(method, items, slot, Arc::from(&*meta.request_id), wait);
        started.lock().unwrap_or_else(PoisonError::into_inner).push(start);
        serde_json::value::to_raw_value(&id).map_err(|_| ApiError::new(Reason::Internal))
    }
}

fn write_answer(out: &mut Vec<u8>, id: Option<&RawValue>, result: Result<Box<RawValue>, ApiError>, meta: &RequestMeta) {
    match result {
        Ok(value) => framing::write_result(out, id, &value),
        Err(e) => {
            tracing::debug!(error = %e, "call failed");
            framing::write_error(out, id, &e.to_error_object(&meta.request_id));
        }
    }
}

/// Writes frames in order (answers and control frames first, then
/// subscription items); after a close frame, ends the connection.
async fn write_frames(
    mut io: impl tokio::io::AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut items: mpsc::UnboundedReceiver<Queued>,
) {
    let mut items_open = true;
    loop {
        let (frame, pending) = tokio::select! {
            biased;
            frame = rx.recv() => match frame {
                Some(frame) => (frame, None),
                None => break,
            },
            item = items.recv(), if items_open => match item {
                Some(q) => (q.frame, q.pending),
                None => {
                    items_open = false;
                    continue;
                }
            },
        };
        let is_close = frame.first() == Some(&(0x80 | frames::CLOSE));
        if io.write_all(&frame).await.is_err() {
            return;
        }
        if let Some(pending) = pending {
            pending.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
        if rx.is_empty() && items.is_empty() && io.flush().await.is_err() {
            return;
        }
        if is_close {
            break;
        }
    }
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

async fn ended(session: &mut Option<watch::Receiver<bool>>) {
    match session {
        Some(rx) => {
            if rx.wait_for(|ended| *ended).await.is_err() {
                // The watch was dropped (cannot happen while the set lives).
                *session = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
