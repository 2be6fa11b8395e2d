//! WebSocket transport: jsonrpsee serves `GET /rpc` upgrades on the same port
//! and dispatches into the same registry, so a call behaves alike on both
//! transports. Its RPC middleware runs batch entries concurrently (jsonrpsee
//! alone runs them one after another) and executes notifications.

use std::sync::Arc;

use futures::future::join_all;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use jsonrpsee::RpcModule;
use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceBuilder, RpcServiceT};
use jsonrpsee::core::server::{BatchResponseBuilder, MethodResponse};
use jsonrpsee::server::{ServerConfig, StopHandle, TowerServiceBuilder};
use jsonrpsee::types::{ErrorObjectOwned, Id, Request as RpcRequest};
use serde_json::value::RawValue;
use tower::Service;

use super::context::RequestMeta;
use super::http::{BoxError, HttpBody, json_response};
use super::registry::Registry;
use crate::config::Config;
use crate::state::AppState;

type Middleware = tower::layer::util::Stack<
    tower::layer::LayerFn<
        fn(
            jsonrpsee::server::middleware::rpc::RpcService,
        ) -> ConcurrentBatch<jsonrpsee::server::middleware::rpc::RpcService>,
    >,
    tower::layer::util::Identity,
>;

pub(crate) struct WsEndpoint {
    builder: TowerServiceBuilder<Middleware, tower::layer::util::Identity>,
    methods: jsonrpsee::Methods,
    stop: StopHandle,
}

impl WsEndpoint {
    pub(crate) fn new(
        config: &Config,
        state: AppState,
        registry: Arc<Registry>,
        stop: StopHandle,
    ) -> anyhow::Result<Self> {
        let server_config = ServerConfig::builder()
            .ws_only()
            .max_request_body_size(u32::try_from(config.max_body_bytes).unwrap_or(u32::MAX))
            .max_response_body_size(u32::try_from(config.max_response_bytes).unwrap_or(u32::MAX))
            .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
            .set_batch_request_config(jsonrpsee::server::BatchRequestConfig::Limit(
                u32::try_from(config.max_batch).unwrap_or(u32::MAX),
            ))
            .max_connections(u32::try_from(config.max_connections).unwrap_or(u32::MAX))
            .build();
        let layer: fn(
            jsonrpsee::server::middleware::rpc::RpcService,
        ) -> ConcurrentBatch<jsonrpsee::server::middleware::rpc::RpcService> = |inner| ConcurrentBatch { inner };
        let builder = jsonrpsee::server::Server::builder()
            .set_config(server_config)
            .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(layer))
            .to_service_builder();

        let mut module = RpcModule::new((state, registry.clone()));
        for method in registry.methods() {
            module.register_async_method(method, move |params, ctx, ext| async move {
                let (state, registry) = (ctx.0.clone(), ctx.1.clone());
                let meta = ext
                    .get::<Arc<RequestMeta>>()
                    .cloned()
                    .ok_or_else(|| ErrorObjectOwned::owned(-32603, "internal error", None::<()>))?;
                let raw: Option<&RawValue> = params.as_str().and_then(|s| serde_json::from_str(s).ok());
                let request_id = meta.request_id.clone();
                let fut = registry
                    .call(method, state, meta, raw)
                    .ok_or_else(|| ErrorObjectOwned::owned(-32601, "Method not found", None::<()>))?;
                fut.await.map_err(|e| {
                    let obj = e.to_error_object(&request_id);
                    ErrorObjectOwned::owned(e.code().number(), e.message.into_owned(), obj.get("data").cloned())
                })
            })?;
        }
        Ok(Self { builder, methods: module.into(), stop })
    }

    pub(crate) async fn upgrade(&self, mut req: Request<Incoming>, meta: RequestMeta) -> Response<HttpBody> {
        req.extensions_mut().insert(Arc::new(meta));
        let mut svc = self.builder.clone().build(self.methods.clone(), self.stop.clone());
        match svc.call(req).await {
            Ok(resp) => resp.map(|b| b.map_err(|e| -> BoxError { e }).boxed_unsync()),
            Err(e) => {
                tracing::warn!(error = %e, "WebSocket upgrade failed");
                json_response(
                    http::StatusCode::BAD_REQUEST,
                    bytes::Bytes::from_static(br#"{"error":"WebSocket upgrade failed"}"#),
                )
            }
        }
    }
}

/// Runs a batch's calls concurrently and runs notifications (answering none).
#[derive(Clone)]
pub(crate) struct ConcurrentBatch<S> {
    inner: S,
}

impl<S> RpcServiceT for ConcurrentBatch<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(&self, req: RpcRequest<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.call(req)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        async move {
            let answers = join_all(batch.into_iter().map(|entry| {
                let inner = inner.clone();
                async move {
                    match entry {
                        Ok(BatchEntry::Call(req)) => Some(inner.call(req).await),
                        Ok(BatchEntry::Notification(n)) => {
                            inner.call(as_request(n)).await;
                            None
                        }
                        Err(err) => {
                            let (err, id) = err.into_parts();
                            Some(MethodResponse::error(id, err))
                        }
                    }
                }
            }))
            .await;
            let mut builder = BatchResponseBuilder::new_with_limit(usize::MAX);
            let mut any = false;
            for answer in answers.into_iter().flatten() {
                any = true;
                if let Err(too_big) = builder.append(answer) {
                    return too_big;
                }
            }
            if any { MethodResponse::from_batch(builder.finish()) } else { MethodResponse::notification() }
        }
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        async move {
            inner.call(as_request(n)).await;
            MethodResponse::notification()
        }
    }
}

fn as_request(n: Notification<'_>) -> RpcRequest<'static> {
    let mut req = RpcRequest::owned(n.method.into_owned(), n.params.map(std::borrow::Cow::into_owned), Id::Null);
    req.extensions = n.extensions;
    req
}
