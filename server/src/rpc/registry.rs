//! Binds every procedure of the schema to its handler and runs the per-call
//! pipeline: credentials → rate limit → permission → params → handler.
//! Every call, alone or inside a batch, takes the whole pipeline on its own;
//! only an API key's limit is taken once for the calls of a batch
//! ([`Registry::for_batch`]), each call still counting.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use trellis_schema::error::FieldError;
use trellis_schema::procedure::shape;
use trellis_schema::{Access, ApiError, Procedure, Reason};

use super::error::HandlerError;
use crate::access::caller::KeyBudget;
use crate::access::usage::Counted;
use crate::access::{Credential, Grant, InOrg, RequestMeta};
use crate::state::AppState;

/// The server side of a procedure. A procedure of the schema's list without
/// an implementation fails to compile (see [`Registry::build`]). Its context
/// is the one its access rule proves (`PublicCtx`, `UserCtx`, `OrgCtx`,
/// `AdminCtx`).
pub(crate) trait Handler: Procedure<Rule: Grant, InOrg: InOrg> {
    fn handle(
        ctx: <Self::Rule as Grant>::Ctx,
        params: Self::Params,
    ) -> impl Future<Output = Result<Self::Output, HandlerError<Self::Reason>>> + Send;
}

/// The items of a subscription, as its handler makes them: an error ends it
/// (its last message says why).
pub(crate) type Items<T, R> = BoxStream<'static, Result<T, HandlerError<R>>>;

/// What a subscribe handler answers: its items, or why it refuses.
pub(crate) type Subscribed<T, R> = Result<Items<T, R>, HandlerError<R>>;

/// The server side of a subscription: checks made at subscribe time (access,
/// params, the handler's own) answer the subscribe call; then its items.
pub(crate) trait Streamer: Procedure<Rule: Grant, InOrg: InOrg> {
    fn subscribe(
        ctx: <Self::Rule as Grant>::Ctx,
        params: Self::Params,
    ) -> impl Future<Output = Subscribed<Self::Output, Self::Reason>> + Send;
}

/// A subscription's items as the transport sends them.
pub(crate) type RawItems = BoxStream<'static, Result<Box<RawValue>, ApiError>>;

/// Binds a procedure by its kind: a query or mutation to its [`Handler`], a
/// subscription to its [`Streamer`].
pub(crate) trait Bind<P> {
    fn bind(registry: &mut Registry);
}

impl<P: Handler> Bind<P> for shape::Query {
    fn bind(registry: &mut Registry) {
        registry.add::<P>();
    }
}

impl<P: Handler> Bind<P> for shape::Mutation {
    fn bind(registry: &mut Registry) {
        registry.add::<P>();
    }
}

impl<P: Streamer> Bind<P> for shape::Subscription {
    fn bind(registry: &mut Registry) {
        registry.add_stream::<P>();
    }
}

type SubscribeFn = dyn Fn(AppState, Arc<RequestMeta>, Option<&RawValue>) -> BoxFuture<'static, Result<RawItems, ApiError>>
    + Send
    + Sync;

type CallFn = dyn Fn(AppState, Arc<RequestMeta>, Option<&RawValue>) -> BoxFuture<'static, Result<Box<RawValue>, ApiError>>
    + Send
    + Sync;

/// Method name → the call, with its whole pipeline.
pub(crate) struct Registry {
    calls: HashMap<&'static str, Box<CallFn>>,
    /// Subscriptions (WebSocket only), by method.
    streams: HashMap<&'static str, Box<SubscribeFn>>,
    /// The methods that end a subscription, with the subscription's method.
    ends: HashMap<&'static str, &'static str>,
    /// The procedures whose calls with an API key take from its limit (all
    /// but the public ones).
    charged: HashSet<&'static str>,
}

macro_rules! register_all {
    ($($p:path),* $(,)?) => {
        impl Registry {
            /// One entry per procedure of the schema's list.
            pub(crate) fn build() -> Self {
                let mut r = Registry {
                    calls: HashMap::new(),
                    streams: HashMap::new(),
                    ends: HashMap::new(),
                    charged: HashSet::new(),
                };
                $( <<$p as Procedure>::Shape as Bind<$p>>::bind(&mut r); )*
                r
            }
        }
    };
}
trellis_schema::all_procedures!(register_all);

impl Registry {
    fn add<P: Handler>(&mut self) {
        let metrics = crate::observe::call_metrics(P::METHOD);
        let call: Box<CallFn> = Box::new(move |state, meta, params| {
            // Params are decoded now, while they are borrowed, but a decoding
            // error is reported only after the access checks: a caller without
            // access learns nothing about the params.
            let params = decode_params::<P::Params>(params);
            Box::pin(async move {
                let _in_flight = crate::observe::in_flight();
                let (usage, perf, started) = (state.keys.usage.clone(), state.perf.clone(), std::time::Instant::now());
                let (key, org, result) = match params {
                    // A refused call is timed too (its key's usage counted it already).
                    Ok(params) => {
                        match <P::Rule as Grant>::grant(state, meta, P::ACCESS, P::org_of(&params), P::METHOD).await {
                            Err(refused) => (None, None, Err(refused)),
                            Ok(granted) => {
                                let result = match P::handle(granted.ctx, params).await {
                                    Ok(output) => serde_json::value::to_raw_value(&output).map_err(|e| {
                                        tracing::error!(error = %e, method = P::METHOD, "result did not serialize");
                                        ApiError::new(Reason::Internal)
                                    }),
                                    Err(e) => Err(e.into_api()),
                                };
                                (granted.key, granted.org, result)
                            }
                        }
                    }
                    Err(e) => {
                        match <P::Rule as Grant>::check_before_params_error(state, meta, P::ACCESS, P::METHOD).await {
                            Ok(key) => (key, None, Err(e)),
                            Err(refused) => (None, None, Err(refused)),
                        }
                    }
                };
                // One clock read each end, for both the call's metrics and its latency.
                let ended = std::time::Instant::now();
                crate::performance::record(&perf, P::METHOD, org, result.is_ok(), started, ended);
                if let Some(m) = metrics {
                    m.record(result.as_ref().map(|_| ()), ended - started);
                }
                if let Some(key) = key {
                    let outcome = if result.is_ok() { Counted::Ok } else { Counted::Error };
                    usage.record(key, P::METHOD, outcome);
                }
                result
            })
        });
        if P::ACCESS != Access::Public {
            self.charged.insert(P::METHOD);
        }
        let previous = self.calls.insert(P::METHOD, call);
        assert!(previous.is_none(), "procedure {} is listed twice", P::METHOD);
    }

    fn add_stream<P: Streamer>(&mut self) {
        let metrics = crate::observe::call_metrics(P::METHOD);
        let subscribe: Box<SubscribeFn> = Box::new(move |state, meta, params| {
            let params = decode_params::<P::Params>(params);
            Box::pin(async move {
                // The subscribe call is timed until it is answered (its
                // items are not calls).
                let _in_flight = crate::observe::in_flight();
                let (perf, started) = (state.perf.clone(), std::time::Instant::now());
                let observed = |org, result: Result<(), &ApiError>| {
                    let ended = std::time::Instant::now();
                    crate::performance::record(&perf, P::METHOD, org, result.is_ok(), started, ended);
                    if let Some(m) = metrics {
                        m.record(result, ended - started);
                    }
                };
                let params = match params {
                    Ok(params) => params,
                    Err(e) => {
                        let checked =
                            <P::Rule as Grant>::check_before_params_error(state, meta, P::ACCESS, P::METHOD).await;
                        let e = checked.err().unwrap_or(e);
                        observed(None, Err(&e));
                        return Err(e);
                    }
                };
                let org = P::org_of(&params);
                let granted = match <P::Rule as Grant>::grant(state, meta, P::ACCESS, org, P::METHOD).await {
                    Ok(granted) => granted,
                    Err(refused) => {
                        observed(None, Err(&refused));
                        return Err(refused);
                    }
                };
                let org = granted.org;
                let items = P::subscribe(granted.ctx, params).await.map_err(HandlerError::into_api);
                observed(org, items.as_ref().map(|_| ()));
                let items = items?;
                let items: RawItems = items
                    .map(|item| match item {
                        Ok(item) => serde_json::value::to_raw_value(&item).map_err(|e| {
                            tracing::error!(error = %e, method = P::METHOD, "item did not serialize");
                            ApiError::new(Reason::Internal)
                        }),
                        Err(e) => Err(e.into_api()),
                    })
                    .boxed();
                Ok(items)
            })
        });
        self.streams.insert(P::METHOD, subscribe);
        if let Some(end) = P::UNSUBSCRIBE {
            self.ends.insert(end, P::METHOD);
        }
        if P::ACCESS != Access::Public {
            self.charged.insert(P::METHOD);
        }
    }

    /// Starts a subscription: `None` when `method` is not one; else its
    /// method's name and its items (or why it is refused).
    pub(crate) fn subscribe(
        &self,
        method: &str,
        state: AppState,
        meta: Arc<RequestMeta>,
        params: Option<&RawValue>,
    ) -> Option<(&'static str, BoxFuture<'static, Result<RawItems, ApiError>>)> {
        let (name, f) = self.streams.get_key_value(method)?;
        Some((*name, f(state, meta, params)))
    }

    /// The subscription method `method` ends, if it is an unsubscribe method.
    pub(crate) fn ended_by(&self, method: &str) -> Option<&'static str> {
        self.ends.get(method).copied()
    }

    /// The request's facts for a batch of calls to `methods`: with an API
    /// key, the calls that take from its limit take together, in one pass.
    pub(crate) fn for_batch<'m>(
        &self,
        meta: &Arc<RequestMeta>,
        methods: impl Iterator<Item = &'m str>,
    ) -> Arc<RequestMeta> {
        if !matches!(meta.principal, Ok(Some(Credential::ApiKey(_)))) {
            return meta.clone();
        }
        let calls = methods.filter(|m| self.charged.contains(m)).count();
        if calls < 2 {
            return meta.clone();
        }
        let budget = KeyBudget::new(u32::try_from(calls).unwrap_or(u32::MAX));
        Arc::new(RequestMeta { budget: Some(budget), ..(**meta).clone() })
    }

    /// Runs one call. `None` when no procedure has that name.
    pub(crate) fn call(
        &self,
        method: &str,
        state: AppState,
        meta: Arc<RequestMeta>,
        params: Option<&RawValue>,
    ) -> Option<BoxFuture<'static, Result<Box<RawValue>, ApiError>>> {
        if self.streams.contains_key(method) {
            return Some(Box::pin(std::future::ready(Err(
                ApiError::new(Reason::InvalidRequest).message("subscriptions are served over WebSocket (GET /rpc)")
            ))));
        }
        match self.calls.get(method) {
            Some(f) => Some(f(state, meta, params)),
            None => {
                crate::observe::unknown_method();
                None
            }
        }
    }
}

/// Decodes params: absent is `{}`; an array fills the fields in order.
pub(crate) fn decode_params<T: DeserializeOwned>(raw: Option<&RawValue>) -> Result<T, ApiError> {
    let text = raw.map_or("{}", RawValue::get);
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let mut message = e.inner().to_string();
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        ApiError::validation(vec![FieldError { path, message }])
    })
}
