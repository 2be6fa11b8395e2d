//! One method per procedure, grouped by namespace: `client.auth().login(params)`,
//! `session.auth().me()`, `client.health().check()`.
//!
//! The namespaces and their methods are generated from the schema's list of
//! procedures (`generated/namespaces.rs`, written by `just gen`; a test fails
//! when it is stale), so a new procedure gets its method without a change
//! here. Procedures without params (`Empty`) get a method without arguments.
//! This file holds the hand-written rest: [`Caller`], through which the
//! methods call.

use std::future::Future;

use trellis_schema::Procedure;

use crate::error::Error;
use crate::{Client, Session};

#[path = "generated/namespaces.rs"]
mod generated;

// The generated names (`Auth`, `ApiKeys`, ...) follow the schema, so they are
// re-exported as a whole rather than listed by hand.
pub use generated::*;

/// Something procedures can be called through: a [`Client`] or a [`Session`].
pub trait Caller: Sync {
    /// Calls procedure `P`.
    fn call<P: Procedure>(&self, params: P::Params)
    -> impl Future<Output = Result<P::Output, Error<P::Reason>>> + Send;
}

impl Caller for Client {
    fn call<P: Procedure>(
        &self,
        params: P::Params,
    ) -> impl Future<Output = Result<P::Output, Error<P::Reason>>> + Send {
        Client::call::<P>(self, params)
    }
}

impl Caller for Session {
    fn call<P: Procedure>(
        &self,
        params: P::Params,
    ) -> impl Future<Output = Result<P::Output, Error<P::Reason>>> + Send {
        Session::call::<P>(self, params)
    }
}

/// What a generated method returns.
type Output<P> = Result<<P as Procedure>::Output, Error<<P as Procedure>::Reason>>;

#[cfg(test)]
mod tests {
    use super::generated::COVERED;

    #[test]
    fn every_procedure_has_a_method() {
        let procedures = trellis_schema::procedure::procedures();
        // Subscriptions are streams (`subscribe::<P>`), and the methods that
        // end them are sent by that stream: neither is a plain method.
        let on_socket: Vec<&str> = procedures.iter().filter_map(|p| p.unsubscribe).collect();
        let missing: Vec<&str> = procedures
            .iter()
            .filter(|p| p.kind != trellis_schema::Kind::Subscription && !on_socket.contains(&p.method))
            .map(|p| p.method)
            .filter(|m| !COVERED.iter().any(|(_, covered)| covered == m))
            .collect();
        assert!(missing.is_empty(), "no method for {missing:?}: run `just gen` and commit the result");
    }

    #[test]
    fn methods_sit_in_their_namespace() {
        for (accessor, method) in COVERED {
            let (namespace, _) = method.split_once('.').expect("`namespace.procedure`");
            let snake: String = namespace
                .chars()
                .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
                .collect();
            assert_eq!(*accessor, snake, "{method} is listed under {accessor}");
        }
        let mut sorted: Vec<&str> = COVERED.iter().map(|(_, method)| *method).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), COVERED.len(), "a procedure is listed twice");
    }

    #[test]
    fn generated_file_is_what_the_schema_makes() {
        assert!(
            include_str!("generated/namespaces.rs") == trellis_schema::codegen_rust::namespaces(),
            "sdk-rust/src/generated/namespaces.rs is stale: run `just gen` and commit the result"
        );
    }
}
