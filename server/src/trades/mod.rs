//! `trades.*`: the trade desk. Handlers check what the params alone can
//! say (values, times, lots), then hand the change to `store`, which makes
//! it in one transaction through the state machines of
//! `trellis_schema::trade_machine`; the notices it wrote are published
//! after the commit. `sweeper` expires what passed its time.

mod approve;
mod cancel;
mod create;
mod get;
pub(crate) mod limits;
mod list;
mod negotiate;
mod offer;
mod parse;
pub(crate) mod store;
pub(crate) mod sweeper;

use serde_json::Map;
use trellis_schema::ApiError;
use trellis_schema::error::{ErrorReason, FieldError};
use trellis_schema::trade_machine::Refused;

use crate::rpc::error::HandlerError;
use store::Blocked;

/// A VALIDATION error on one field.
pub(crate) fn invalid<R>(path: &str, message: impl Into<String>) -> HandlerError<R> {
    HandlerError::Common(ApiError::validation(vec![FieldError { path: path.into(), message: message.into() }]))
}

/// The answer for a change the store did not make: each procedure names
/// its reasons for the cases it can meet (`None`: it cannot, an internal
/// error).
pub(crate) struct Reasons<R> {
    pub not_found: Option<R>,
    pub version: Option<R>,
    pub invalid_transition: Option<R>,
    pub not_your_turn: Option<R>,
    pub already_exists: Option<R>,
    pub self_approval: Option<R>,
}

impl<R> Default for Reasons<R> {
    fn default() -> Self {
        Self {
            not_found: None,
            version: None,
            invalid_transition: None,
            not_your_turn: None,
            already_exists: None,
            self_approval: None,
        }
    }
}

pub(crate) fn blocked<R: ErrorReason>(b: Blocked, reasons: Reasons<R>) -> HandlerError<R> {
    let with = |reason: Option<R>, data: Map<String, serde_json::Value>, message: Option<String>| match reason {
        Some(reason) => HandlerError::Reason { reason, message: message.map(Into::into), data },
        None => HandlerError::Common(ApiError::new(trellis_schema::Reason::Internal)),
    };
    match b {
        Blocked::NotFound => with(reasons.not_found, Map::new(), None),
        Blocked::Version(current) => {
            let mut data = Map::new();
            data.insert("currentVersion".into(), current.into());
            with(reasons.version, data, None)
        }
        Blocked::Refused(Refused::InvalidTransition { from, to }) => {
            let mut data = Map::new();
            data.insert("from".into(), from.into());
            if let Some(to) = to {
                data.insert("to".into(), to.into());
            }
            with(reasons.invalid_transition, data, None)
        }
        Blocked::Refused(Refused::NotYourTurn) => with(reasons.not_your_turn, Map::new(), None),
        Blocked::AlreadyExists => with(
            reasons.already_exists,
            Map::new(),
            Some("the organization has an open offer on this trade already".into()),
        ),
        Blocked::SelfApproval => with(reasons.self_approval, Map::new(), None),
        Blocked::Invalid(path, message) => invalid(path, message),
    }
}
