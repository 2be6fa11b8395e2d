//! The typed Rust client of Trellis.
//!
//! Procedures are called by their type from `trellis-schema`, so params,
//! results and error reasons are checked by the compiler:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use trellis_client::{Client, Failure};
//! use trellis_schema::auth::{LoginParams, LoginReason};
//! use trellis_schema::values::{Email, Password};
//!
//! let client = Client::builder("http://127.0.0.1:8080/rpc").build()?;
//! let params = LoginParams {
//!     email: Email::parse("ann@example.com")?,
//!     password: Password::try_from("correct horse battery".to_owned())?,
//!     otp: None,
//! };
//! match client.sign_in(params).await {
//!     Ok(session) => println!("{:?}", session.auth().me().await?.user),
//!     Err(e) if e.reason() == Some(&Failure::Own(LoginReason::InvalidCredentials)) => println!("wrong password"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`client`]: [`Client`], its builder and [`CallOptions`]; one call over
//!   `POST <url>` (`call::<P>`, `call_with::<P>`).
//! - [`namespaces`]: one method per procedure (`client.auth().login(..)`),
//!   generated from the schema's list by `just gen`.
//! - [`error`]: [`Error`], typed by the procedure's own reasons ([`Failure`]).
//! - [`retry`]: [`RetryPolicy`]: which failures are retried, and how often.
//! - [`batch`]: [`Batch`]: several calls in one request, typed [`Handle`]s.
//! - [`session`]: [`Session`]: calls as a signed-in user, with the access
//!   token refreshed when it expires.
//! - [`subscription`]: `client.subscribe::<P>(params)`, a stream of a
//!   subscription's items over WebSocket, resumed after the last item across
//!   reconnects.
//!
//! TLS goes through rustls with the `ring` provider; no OpenSSL.

pub mod batch;
pub mod client;
pub mod error;
pub mod namespaces;
pub mod retry;
pub mod session;
pub mod subscription;

pub use batch::{Batch, BatchResults, Handle};
pub use client::{CallOptions, Client, ClientBuilder};
pub use error::{ApiFailure, BuildError, Error, Failure};
pub use namespaces::Caller;
pub use retry::{RetryEvent, RetryPolicy};
pub use session::Session;
pub use trellis_schema as schema;
