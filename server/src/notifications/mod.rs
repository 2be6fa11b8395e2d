//! `notifications.*`: the signed-in user's notifications, kept in the
//! database (the source of truth), listed, marked read, and streamed over
//! WebSocket. Everything that notifies goes through [`events`]: an event row
//! written with the change, dispatched into notifications and webhook
//! deliveries; [`hub`] wakes the subscribers.

pub(crate) mod events;
pub(crate) mod hub;
mod store;
mod stream;

use trellis_schema::ApiError;
use trellis_schema::error::{FieldError, NoReason};
use trellis_schema::list::Page;
use trellis_schema::notifications::{
    GetPreferences, List, ListNotificationsParams, MAX_MARK_READ_IDS, MarkRead, MarkReadParams, MarkReadResult, Notification,
    Preferences, Unsubscribe, UpdatePreferences, UpdatePreferencesParams,
};
use trellis_schema::rpc::UnsubscribeParams;
use trellis_schema::{Empty, Reason};

pub(crate) use self::events::{Event, Events};
use crate::access::UserCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::paging::{after_id, page};
use crate::rpc::registry::Handler;

pub(crate) use self::store::{prune, prune_events};
pub(crate) use self::stream::spawn_sweeper;

impl Handler for List {
    async fn handle(ctx: UserCtx, p: ListNotificationsParams) -> Result<Page<Notification>, HandlerError<NoReason>> {
        let limit = p.limit.map_or(50, |l| l.get());
        let rows = store::list(
            &ctx.state.db,
            ctx.caller.user_id,
            p.unread_only.unwrap_or(false),
            after_id(p.cursor.as_ref())?,
            i64::from(limit) + 1,
        )
        .await?;
        let mut page = page(rows, limit as usize, |r| r.id, |r| r.to_api());
        Ok(Page { items: page.items.drain(..).flatten().collect(), next_cursor: page.next_cursor })
    }
}

impl Handler for MarkRead {
    async fn handle(ctx: UserCtx, p: MarkReadParams) -> Result<MarkReadResult, HandlerError<NoReason>> {
        let invalid = |path: &str, message: &str| {
            HandlerError::Common(ApiError::validation(vec![FieldError { path: path.into(), message: message.into() }]))
        };
        let ids = match (&p.ids, p.all) {
            (Some(_), Some(true)) | (None, None | Some(false)) => {
                return Err(invalid("", "give either ids or all: true"));
            }
            (Some(ids), _) if ids.len() > MAX_MARK_READ_IDS => {
                return Err(invalid("ids", &format!("at most {MAX_MARK_READ_IDS} ids")));
            }
            (Some(ids), _) => Some(ids.as_slice()),
            (None, Some(true)) => None,
        };
        let updated = store::mark_read(&ctx.state.db, ctx.caller.user_id, ids).await?;
        Ok(MarkReadResult { updated })
    }
}

impl Handler for GetPreferences {
    async fn handle(ctx: UserCtx, _: Empty) -> Result<Preferences, HandlerError<NoReason>> {
        Ok(store::preferences(&ctx.state.db, ctx.caller.user_id).await?)
    }
}

impl Handler for UpdatePreferences {
    async fn handle(ctx: UserCtx, p: UpdatePreferencesParams) -> Result<Preferences, HandlerError<NoReason>> {
        if p.muted.as_ref().is_some_and(|m| m.len() > 64) {
            return Err(HandlerError::Common(ApiError::validation(vec![FieldError {
                path: "muted".into(),
                message: "at most 64 event types".into(),
            }])));
        }
        Ok(store::update_preferences(&ctx.state.db, ctx.caller.user_id, &p).await?)
    }
}

impl Handler for Unsubscribe {
    /// Reached over HTTP only: on a WebSocket the connection ends its own
    /// subscriptions before any handler runs.
    async fn handle(_: UserCtx, _: UnsubscribeParams) -> Result<bool, HandlerError<NoReason>> {
        Err(HandlerError::Common(
            ApiError::new(Reason::InvalidRequest).message("subscriptions are served over WebSocket (GET /rpc)"),
        ))
    }
}
