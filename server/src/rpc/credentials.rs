//! Credentials read from a request: `Authorization: Bearer <JWT | API
//! key>`, `X-Api-Key`, or on a WebSocket upgrade the URL's `access_token` /
//! `api_key`. A token is verified and its session looked up in the ended
//! ones; an API key is checked for shape (its checksum) and hashed, never
//! looked up here.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use trellis_schema::{ApiError, Reason};

use crate::access::{Credential, Principal};
use crate::state::AppState;

static API_KEY: http::HeaderName = http::HeaderName::from_static("x-api-key");

/// Reads credentials: `Authorization: Bearer <JWT | API key>` or `X-Api-Key`.
pub(crate) fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Option<Credential>, ApiError> {
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
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
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
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
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
