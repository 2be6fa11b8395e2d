//! [`Batch`]: several calls in one request, each result typed by its [`Handle`].
//!
//! ```no_run
//! # async fn run(client: trellis_client::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use trellis_schema::{health, rpc};
//!
//! let mut batch = client.batch();
//! let status = batch.add::<health::Check>(trellis_schema::Empty {});
//! let doc = batch.add::<rpc::Discover>(trellis_schema::Empty {});
//! let results = batch.send().await?;
//! let status = results.get(status)?; // health::CheckResult
//! let doc = results.get(doc)?; // rpc::OpenRpcDocument
//! # let _ = (status, doc); Ok(()) }
//! ```
//!
//! The server runs the calls of a batch concurrently and may answer in any
//! order; answers are matched by id. A call without an answer fails alone (its
//! handle gives [`Error::Decode`]); a failed request (no connection, an HTTP
//! error, a whole-batch error) fails [`Batch::send`].

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use serde_json::value::RawValue;
use trellis_schema::error::NoReason;
use trellis_schema::{Kind, Procedure};

use crate::client::{Answer, CallOptions, Client, Envelope, Request, decode_result};
use crate::error::Error;

/// Calls gathered to be sent together; made by [`Client::batch`] or
/// [`crate::Session::batch`].
#[derive(Debug)]
pub struct Batch {
    client: Client,
    bearer: Option<String>,
    options: CallOptions,
    calls: Vec<Call>,
    encode_error: Option<serde_json::Error>,
}

#[derive(Debug)]
struct Call {
    id: u64,
    method: &'static str,
    kind: Kind,
    params: Box<RawValue>,
}

/// Names one call of a batch and the type of its result.
pub struct Handle<P> {
    id: u64,
    _procedure: PhantomData<fn() -> P>,
}

impl<P> Clone for Handle<P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Handle<P> {}

impl<P: Procedure> fmt::Debug for Handle<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle<{}>({})", P::METHOD, self.id)
    }
}

impl<P> Handle<P> {
    /// The JSON-RPC id of the call.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Batch {
    pub(crate) fn new(client: Client, bearer: Option<String>) -> Self {
        Self { client, bearer, options: CallOptions::default(), calls: vec![], encode_error: None }
    }

    /// Options of the whole request (time limit, retries, request id). The
    /// batch is retried on transient failures only when every call is a
    /// query, or `retry_mutation` is set.
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds a call of procedure `P`; its result is read with the handle.
    pub fn add<P: Procedure>(&mut self, params: P::Params) -> Handle<P> {
        let id = self.client.next_id();
        match serde_json::value::to_raw_value(&params) {
            Ok(params) => self.calls.push(Call { id, method: P::METHOD, kind: P::KIND, params }),
            Err(e) => {
                self.encode_error.get_or_insert(e);
            }
        }
        Handle { id, _procedure: PhantomData }
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Sends every call in one request. An empty batch sends nothing.
    pub async fn send(self) -> Result<BatchResults, Error<NoReason>> {
        if let Some(e) = self.encode_error {
            return Err(Error::Encode(e));
        }
        if self.calls.is_empty() {
            return Ok(BatchResults { answers: HashMap::new(), methods: HashMap::new(), request_id: None });
        }
        let requests: Vec<Request<'_, RawValue>> = self
            .calls
            .iter()
            .map(|c| Request { jsonrpc: "2.0", method: c.method, params: &*c.params, id: c.id })
            .collect();
        let body = serde_json::to_vec(&requests).map_err(Error::Encode)?;
        let allowed = self.options.retry_mutation || self.calls.iter().all(|c| c.kind == Kind::Query);
        let policy = self.options.retry.as_ref().unwrap_or(self.client.retry_policy());
        let (answers, request_id) = policy
            .run("batch", allowed, || async {
                let answer = self.client.post(body.clone(), &self.options, self.bearer.as_deref()).await?;
                decode_batch(answer)
            })
            .await?;
        let methods = self.calls.iter().map(|c| (c.id, c.method)).collect();
        Ok(BatchResults { answers, methods, request_id })
    }
}

type Answers = HashMap<u64, Envelope>;

fn decode_batch(answer: Answer) -> Result<(Answers, Option<String>), Error<NoReason>> {
    let Answer { status, request_id, body } = answer;
    let ok = (200..300).contains(&status);
    if ok && let Ok(list) = serde_json::from_slice::<Vec<Envelope>>(&body) {
        let answers = list.into_iter().filter_map(|e| Some((e.id.as_u64()?, e))).collect();
        return Ok((answers, request_id));
    }
    match serde_json::from_slice::<Envelope>(&body) {
        // The whole request was refused (too large, unreadable, rate limited).
        Ok(Envelope { error: Some(error), .. }) => Err(Error::from_wire(error, request_id)),
        _ if !ok => Err(Error::Http { status, request_id }),
        _ => Err(Error::Decode { message: "a batch must be answered with an array".into(), request_id }),
    }
}

/// The answers of a sent batch.
#[derive(Debug)]
pub struct BatchResults {
    answers: Answers,
    methods: HashMap<u64, &'static str>,
    request_id: Option<String>,
}

impl BatchResults {
    /// The result of the call named by `handle`, typed by its procedure.
    pub fn get<P: Procedure>(&self, handle: Handle<P>) -> Result<P::Output, Error<P::Reason>> {
        let request_id = self.request_id.clone();
        match self.answers.get(&handle.id) {
            Some(Envelope { error: Some(error), .. }) => Err(Error::from_wire(error.clone(), request_id)),
            Some(Envelope { result, .. }) => decode_result::<P>(result.as_deref(), request_id),
            None => Err(Error::Decode {
                message: format!(
                    "no answer for call {} ({})",
                    handle.id,
                    self.methods.get(&handle.id).copied().unwrap_or(P::METHOD)
                ),
                request_id,
            }),
        }
    }

    /// How many answers came back.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// `x-request-id` of the HTTP answer.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use trellis_schema::Empty;
    use trellis_schema::health;

    use super::*;

    #[test]
    fn answers_are_matched_by_id_and_a_missing_one_fails_alone() {
        let client = Client::new("http://127.0.0.1:1/rpc").expect("client");
        let mut batch = client.batch();
        let first = batch.add::<health::Check>(Empty {});
        let second = batch.add::<health::Check>(Empty {});
        let third = batch.add::<health::Check>(Empty {});
        let result = r#"{"status":"ok","version":"1","uptimeSecs":2,
            "checks":{"database":{"ok":true,"latencyMs":0.1},"cache":{"ok":true,"latencyMs":0,"backend":"memory"}}}"#;
        // Out of order; no answer for `second`.
        let body = format!(
            r#"[{{"jsonrpc":"2.0","id":{},"error":{{"code":-32050,"message":"down","data":{{"reason":"DATABASE_UNAVAILABLE"}}}}}},
                {{"jsonrpc":"2.0","id":{},"result":{result}}}]"#,
            third.id(),
            first.id()
        );
        let answer = Answer { status: 200, request_id: Some("req".into()), body: body.into_bytes() };
        let (answers, request_id) = decode_batch(answer).expect("decoded");
        let results = BatchResults { answers, methods: HashMap::new(), request_id };
        assert_eq!(results.get(first).expect("first").uptime_secs, 2);
        assert!(matches!(results.get(second), Err(Error::Decode { .. })));
        let e = results.get(third).expect_err("third");
        assert_eq!(e.code(), Some(trellis_schema::ErrorCode::Unavailable));
        assert_eq!(e.request_id(), Some("req"));
    }

    #[test]
    fn a_whole_batch_error_fails_the_batch() {
        let body = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"too many","data":{"reason":"BATCH_TOO_LARGE"}}}"#;
        let answer = Answer { status: 200, request_id: None, body: body.to_vec() };
        let e = decode_batch(answer).expect_err("refused");
        assert_eq!(e.reason(), Some(&crate::Failure::Common(trellis_schema::Reason::BatchTooLarge)));
        let answer = Answer { status: 502, request_id: Some("x".into()), body: b"<html>".to_vec() };
        assert!(matches!(decode_batch(answer), Err(Error::Http { status: 502, .. })));
    }
}
