//! `GET /metrics` on its own listener (`TRELLIS_METRICS_LISTEN`), never on
//! the public port: a small HTTP/1 server that samples this server's pool
//! and outbox, then renders the process's recorder.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::metrics::{Sampled, handle, render};
use crate::db::schema::outbox;
use crate::db::{DbError, db_read};
use crate::state::State;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The bound metrics listener, not yet serving.
pub(crate) struct MetricsListener {
    listener: TcpListener,
}

impl MetricsListener {
    /// Binds `addr` (port 0 picks a free port) and installs the recorder.
    pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        anyhow::ensure!(handle().is_some(), "the metrics recorder could not be installed");
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("failed to bind the metrics listener {addr}"))?;
        Ok(Self { listener })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        #[allow(clippy::unwrap_used)] // a bound listener has an address
        self.listener.local_addr().unwrap()
    }

    /// Serves until the task is aborted; its connections end with it.
    pub(crate) fn spawn(self, state: Arc<State>) -> tokio::task::JoinHandle<()> {
        let addr = self.local_addr();
        tracing::info!(%addr, "serving metrics on http://{addr}/metrics");
        tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    accepted = self.listener.accept() => accepted,
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                };
                let Ok((socket, _)) = accepted else {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                };
                let state = state.clone();
                connections.spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&state, &req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(std::time::Duration::from_secs(10))
                        .serve_connection(TokioIo::new(socket), svc)
                        .await;
                });
            }
        })
    }
}

async fn answer(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let found = req.uri().path() == "/metrics";
    let (status, body) = match (req.method(), found, handle()) {
        (&Method::GET, true, Some(handle)) => {
            sample(state).await.set();
            (StatusCode::OK, render(handle))
        }
        (_, true, _) => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
        _ => (StatusCode::NOT_FOUND, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(CONTENT_TYPE));
    response
}

async fn sample(state: &State) -> Sampled {
    let (pool_size, pool_idle) = state.db.pool_state();
    let outbox = match outbox_depth(state).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the outbox depth");
            None
        }
    };
    Sampled { uptime: state.started_at.elapsed(), pool_size, pool_idle, outbox }
}

/// Mails not yet sent nor given up on.
async fn outbox_depth(state: &State) -> Result<i64, DbError> {
    db_read!(state.db, |conn| {
        Ok(outbox::table
            .filter(outbox::sent_at.is_null().and(outbox::failed_at.is_null()))
            .count()
            .get_result::<i64>(conn)
            .await?)
    })
}
