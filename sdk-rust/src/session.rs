//! [`Session`]: calls as a signed-in user, with the access token renewed when
//! it expires.
//!
//! A session holds the [`Tokens`] of `auth.login` and sends
//! `Authorization: Bearer <access token>` with each call. When a call fails
//! with TOKEN_EXPIRED, the session trades its refresh token for new tokens
//! (`auth.refresh`) and makes the call once more. Refreshes are single-flight:
//! calls that meet the expired token at the same time wait for one refresh
//! (a refresh token is single use, so a second refresh would end the session).
//! When the server refuses the refresh, the session is signed out and the
//! call returns that refusal; when the refresh cannot reach the server, the
//! tokens are kept and the call returns the transport error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::Stream;

use trellis_schema::auth::{self, LoginParams, LogoutParams, RefreshParams, Tokens, User};
use trellis_schema::error::NoReason;
use trellis_schema::values::Token;
use trellis_schema::{Procedure, Reason};

use crate::batch::Batch;
use crate::client::{CallOptions, Client};
use crate::error::Error;

/// A signed-in user's calls. Cheap to clone: clones share the tokens.
#[derive(Debug, Clone)]
pub struct Session {
    client: Client,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Held while a refresh runs.
    refreshing: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    tokens: Option<Tokens>,
    /// Bumped each time the tokens change (refresh, sign-in, sign-out).
    generation: u64,
}

impl Client {
    /// Signs in (`auth.login`) and returns the session.
    pub async fn sign_in(&self, params: LoginParams) -> Result<Session, Error<auth::LoginReason>> {
        let session = Session::new(self.clone());
        session.sign_in(params).await?;
        Ok(session)
    }
}

impl Session {
    /// A session not signed in yet (see [`Session::sign_in`]).
    pub fn new(client: Client) -> Self {
        Self { client, shared: Arc::default() }
    }

    /// A session resuming tokens kept from an earlier sign-in.
    pub fn with_tokens(client: Client, tokens: Tokens) -> Self {
        let session = Self::new(client);
        session.set_tokens(Some(tokens));
        session
    }

    /// Signs in with `auth.login`; the tokens replace any the session held.
    pub async fn sign_in(&self, params: LoginParams) -> Result<User, Error<auth::LoginReason>> {
        let body = self.client.encode::<auth::Login>(&params)?;
        let tokens = self.client.execute::<auth::Login>(body, &CallOptions::default(), None).await?;
        let user = tokens.user.clone();
        self.set_tokens(Some(tokens));
        Ok(user)
    }

    /// Ends the session on the server (`auth.logout`) and forgets the tokens,
    /// whatever the server answers.
    pub async fn logout(&self) -> Result<(), Error<NoReason>> {
        let result = self.call::<auth::Logout>(LogoutParams::default()).await;
        self.set_tokens(None);
        result.map(|_| ())
    }

    /// Whether the session holds tokens.
    pub fn is_signed_in(&self) -> bool {
        self.lock().tokens.is_some()
    }

    /// The tokens held now (to keep them for [`Session::with_tokens`]).
    pub fn tokens(&self) -> Option<Tokens> {
        self.lock().tokens.clone()
    }

    /// The signed-in user, as of the last sign-in or refresh.
    pub fn user(&self) -> Option<User> {
        self.lock().tokens.as_ref().map(|t| t.user.clone())
    }

    /// How many times the session refreshed its tokens.
    pub fn refresh_count(&self) -> u64 {
        self.shared.refreshes.load(Ordering::Relaxed)
    }

    /// The client the session calls through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Calls procedure `P` as the signed-in user (without credentials when
    /// signed out).
    pub async fn call<P: Procedure>(&self, params: P::Params) -> Result<P::Output, Error<P::Reason>> {
        self.call_with::<P>(params, CallOptions::default()).await
    }

    /// Calls procedure `P` with options of this call.
    pub async fn call_with<P: Procedure>(
        &self,
        params: P::Params,
        options: CallOptions,
    ) -> Result<P::Output, Error<P::Reason>> {
        let body = self.client.encode::<P>(&params)?;
        let (access, generation) = self.access_token();
        let first = self.client.execute::<P>(body.clone(), &options, access.as_deref()).await;
        match first {
            Err(e) if access.is_some() && P::METHOD != auth::Refresh::METHOD && is_expired(&e) => {
                match self.refresh_after(generation).await {
                    Ok(true) => {
                        let (access, _) = self.access_token();
                        self.client.execute::<P>(body, &options, access.as_deref()).await
                    }
                    // Signed out by a refresh another call made: the first error stands.
                    Ok(false) => Err(e),
                    Err(refused) => Err(refused.widen()),
                }
            }
            other => other,
        }
    }

    /// Subscribes to `P` over WebSocket as the signed-in user, like
    /// [`Client::subscribe`]; each (re)connect presents the session's access
    /// token of the moment, so one refreshed meanwhile by a call is used.
    /// TOKEN_EXPIRED ends the stream (refresh, e.g. with [`Session::refresh`],
    /// and subscribe again after the last item received).
    pub fn subscribe<P: Procedure>(
        &self,
        params: P::Params,
    ) -> impl Stream<Item = Result<P::Output, Error<P::Reason>>> + Send + 'static
    where
        P::Params: Sync,
    {
        let session = self.clone();
        let headers = move || {
            let (access, _) = session.access_token();
            access.map(|token| vec![("authorization".to_owned(), format!("Bearer {token}"))]).unwrap_or_default()
        };
        self.client.subscribe_with::<P>(Arc::new(headers), params)
    }

    /// Trades the refresh token for new tokens now (`auth.refresh`).
    pub async fn refresh(&self) -> Result<(), Error<auth::RefreshReason>> {
        let (_, generation) = self.access_token();
        self.refresh_after(generation).await.map(|_| ())
    }

    /// A batch sent as the signed-in user. Its calls are not retried after a
    /// refresh: a TOKEN_EXPIRED answer is returned as it is.
    pub fn batch(&self) -> Batch {
        Batch::new(self.client.clone(), self.access_token().0)
    }

    /// Refreshes unless the tokens changed since `generation` (another call
    /// refreshed them meanwhile). `Ok(true)`: signed in with fresh tokens;
    /// `Ok(false)`: signed out meanwhile.
    async fn refresh_after(&self, generation: u64) -> Result<bool, Error<auth::RefreshReason>> {
        let _one_at_a_time = self.shared.refreshing.lock().await;
        let refresh_token = {
            let state = self.lock();
            if state.generation != generation {
                return Ok(state.tokens.is_some());
            }
            match &state.tokens {
                Some(t) => t.refresh_token.clone(),
                None => return Ok(false),
            }
        };
        let params = match Token::try_from(refresh_token) {
            Ok(refresh_token) => RefreshParams { refresh_token },
            Err(_) => {
                self.set_tokens(None);
                return Err(Error::from_reason(Reason::TokenInvalid, "the refresh token is malformed"));
            }
        };
        let body = self.client.encode::<auth::Refresh>(&params)?;
        match self.client.execute::<auth::Refresh>(body, &CallOptions::default(), None).await {
            Ok(tokens) => {
                self.set_tokens(Some(tokens));
                self.shared.refreshes.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(e) => {
                if matches!(e, Error::Api(_)) {
                    self.set_tokens(None);
                }
                Err(e)
            }
        }
    }

    fn access_token(&self) -> (Option<String>, u64) {
        let state = self.lock();
        (state.tokens.as_ref().map(|t| t.access_token.clone()), state.generation)
    }

    fn set_tokens(&self, tokens: Option<Tokens>) {
        let mut state = self.lock();
        state.tokens = tokens;
        state.generation += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn is_expired<R: trellis_schema::ErrorReason>(e: &Error<R>) -> bool {
    e.reason().is_some_and(|r| r.reason() == Some(Reason::TokenExpired))
}
