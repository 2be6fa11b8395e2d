//! JSON-RPC 2.0 framing, exactly as the specification says: which bodies are
//! requests, batches, notifications or invalid, and how answers are written.
//! Ids are echoed byte for byte, so a client gets back the very id it sent.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// One entry of a body, classified.
pub(crate) enum Entry<'a> {
    /// A call (`id` present) or a notification (`id` absent).
    Call(Call<'a>),
    /// Not a valid Request object; answered with INVALID_REQUEST and this id
    /// (the one it carried when that id was itself valid, else `null`).
    Invalid { id: Option<&'a RawValue> },
}

/// The methods a batch calls.
pub(crate) fn methods<'e>(entries: &'e [Entry<'_>]) -> impl Iterator<Item = &'e str> {
    entries.iter().filter_map(|e| match e {
        Entry::Call(call) => Some(&*call.method),
        Entry::Invalid { .. } => None,
    })
}

pub(crate) struct Call<'a> {
    pub method: std::borrow::Cow<'a, str>,
    pub params: Option<&'a RawValue>,
    /// `None` for a notification.
    pub id: Option<&'a RawValue>,
}

/// What the whole body is.
pub(crate) enum Body<'a> {
    Single(Entry<'a>),
    Batch(Vec<Entry<'a>>),
}

/// Why a body could not be read as JSON-RPC at all.
pub(crate) enum BodyError {
    Parse,
    EmptyBatch,
    TooDeep,
    BatchTooLarge {
        len: usize,
        max: usize,
    },
    /// Valid JSON that is neither an object nor an array.
    NotRequest,
}

impl BodyError {
    /// The error answered for a body that could not be read as JSON-RPC
    /// (the same on HTTP and WebSocket); `max_depth` is the nesting limit.
    pub(crate) fn to_api(&self, max_depth: u32) -> trellis_schema::ApiError {
        use trellis_schema::{ApiError, Reason};
        let e = match self {
            Self::Parse => ApiError::new(Reason::ParseError),
            Self::EmptyBatch | Self::NotRequest => ApiError::new(Reason::InvalidRequest),
            Self::TooDeep => ApiError::new(Reason::NestingTooDeep).with("limit", max_depth),
            Self::BatchTooLarge { len, max } => ApiError::new(Reason::BatchTooLarge)
                .message(format!("the batch has {len} calls; at most {max} are accepted"))
                .with("limit", *max),
        };
        crate::observe::refused(&e);
        e
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
}

/// Keeps an explicit `null` apart from an absent member.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses a body into entries, refusing it whole only where the
/// specification says to answer with a single error.
pub(crate) fn parse_body(bytes: &[u8], max_depth: u32, max_batch: usize) -> Result<Body<'_>, BodyError> {
    check_depth(bytes, max_depth)?;
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_slice(bytes).map_err(|_| BodyError::Parse)?;
            if items.is_empty() {
                return Err(BodyError::EmptyBatch);
            }
            if items.len() > max_batch {
                return Err(BodyError::BatchTooLarge { len: items.len(), max: max_batch });
            }
            Ok(Body::Batch(items.into_iter().map(classify).collect()))
        }
        _ => {
            let raw: &RawValue = serde_json::from_slice(bytes).map_err(|_| BodyError::Parse)?;
            if !raw.get().starts_with('{') {
                return Err(BodyError::NotRequest);
            }
            Ok(Body::Single(classify(raw)))
        }
    }
}

fn classify(raw: &RawValue) -> Entry<'_> {
    let Ok(env) = serde_json::from_str::<Envelope<'_>>(raw.get()) else {
        return Entry::Invalid { id: None };
    };
    let id_ok = env.id.is_none_or(|id| matches!(id.get().as_bytes()[0], b'"' | b'-' | b'0'..=b'9' | b'n'));
    let readable_id = if id_ok { env.id } else { None };
    let version_ok = env
        .jsonrpc
        .is_some_and(|v| v.get() == "\"2.0\"" || serde_json::from_str::<String>(v.get()).is_ok_and(|s| s == "2.0"));
    let params_ok = env.params.is_none_or(|p| matches!(p.get().as_bytes()[0], b'[' | b'{'));
    let method = env.method.and_then(|m| serde_json::from_str::<std::borrow::Cow<'_, str>>(m.get()).ok());
    match method {
        Some(method) if version_ok && params_ok && id_ok => {
            Entry::Call(Call { method, params: env.params, id: env.id })
        }
        _ => Entry::Invalid { id: readable_id },
    }
}

/// Refuses nesting deeper than `max` without building anything, in one pass.
fn check_depth(bytes: &[u8], max: u32) -> Result<(), BodyError> {
    let mut depth = 0u32;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(BodyError::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Appends `{"jsonrpc":"2.0","result":…,"id":…}`.
pub(crate) fn write_result(out: &mut Vec<u8>, id: Option<&RawValue>, result: &RawValue) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"result\":");
    out.extend_from_slice(result.get().as_bytes());
    write_id_and_close(out, id);
}

/// Appends `{"jsonrpc":"2.0","error":…,"id":…}`.
pub(crate) fn write_error(out: &mut Vec<u8>, id: Option<&RawValue>, error: &serde_json::Value) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"error\":");
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, error);
    write_id_and_close(out, id);
}

fn write_id_and_close(out: &mut Vec<u8>, id: Option<&RawValue>) {
    out.extend_from_slice(b",\"id\":");
    out.extend_from_slice(id.map_or("null", RawValue::get).as_bytes());
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(s: &str) -> Entry<'_> {
        match parse_body(s.as_bytes(), 64, 100) {
            Ok(Body::Single(e)) => e,
            _ => panic!("not a single entry: {s}"),
        }
    }

    #[test]
    fn valid_requests_are_calls_and_ids_keep_their_text() {
        let Entry::Call(c) = single(r#"{"jsonrpc":"2.0","method":"a.b","params":{},"id":-1.5}"#) else {
            panic!("call expected")
        };
        assert_eq!(c.method, "a.b");
        assert_eq!(c.id.map(RawValue::get), Some("-1.5"));
        let Entry::Call(n) = single(r#"{"jsonrpc":"2.0","method":"a.b"}"#) else { panic!("call expected") };
        assert!(n.id.is_none());
        let Entry::Call(null_id) = single(r#"{"jsonrpc":"2.0","method":"a.b","id":null}"#) else {
            panic!("call expected")
        };
        assert_eq!(null_id.id.map(RawValue::get), Some("null"));
    }

    #[test]
    fn malformed_requests_are_invalid() {
        for s in [
            r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#,
            r#"{"jsonrpc":"1.0","method":"a","id":1}"#,
            r#"{"method":"a","id":1}"#,
            r#"{"jsonrpc":"2.0","method":"a","params":"s","id":1}"#,
            r#"{"jsonrpc":"2.0","method":"a","id":{}}"#,
            r#"{"jsonrpc":"2.0","method":"a","id":true}"#,
            r#"{"jsonrpc":"2.0","method":"a","method":"b","id":1}"#,
        ] {
            assert!(matches!(single(s), Entry::Invalid { .. }), "{s}");
        }
    }

    #[test]
    fn depth_is_bounded_and_strings_do_not_count() {
        assert!(check_depth(b"[[[1]]]", 3).is_ok());
        assert!(matches!(check_depth(b"[[[[1]]]]", 3), Err(BodyError::TooDeep)));
        assert!(check_depth(br#"{"a":"[[[[[[\"[["}"#, 2).is_ok());
    }
}
