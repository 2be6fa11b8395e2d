//! The subscriptions of one WebSocket. Each runs as a task that takes items
//! from its stream and queues them for the socket's writer, after the
//! subscribe call's answer. Everything is bounded:
//! - subscriptions per connection and per user (on this replica): further
//!   subscribe calls answer TOO_MANY_SUBSCRIPTIONS;
//! - items of one subscription queued but not yet written to the socket:
//!   past `TRELLIS_SUBSCRIPTION_BUFFER` the subscription ends with a last
//!   message saying it lagged (SUBSCRIPTION_LAGGED), and the client resumes
//!   from the last item it got. A subscriber that never reads holds at most
//!   that many items in the server's memory.
//!
//! Wire: items are `{"jsonrpc":"2.0","method":M,"params":{"subscription":ID,
//! "result":ITEM}}`; the server's end of a subscription is one last
//! `{..., "params":{"subscription":ID,"error":ERROR}}`; an unsubscribe call
//! ends one with no further message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use trellis_schema::ids::UserId;
use trellis_schema::{ApiError, Reason};

use super::registry::RawItems;
use super::ws_frames as frames;

/// A frame for the socket's writer; an item frame counts against its
/// subscription's buffer until written.
pub(crate) struct Queued {
    pub frame: Vec<u8>,
    pub pending: Option<Arc<AtomicUsize>>,
}

/// Live subscriptions per user on this replica, over all their sockets.
#[derive(Default)]
pub(crate) struct PerUser(Mutex<HashMap<UserId, usize>>);

/// One socket's subscriptions.
pub(crate) struct Subscriptions {
    open: Mutex<HashMap<String, Open>>,
    /// Open or being opened.
    count: AtomicUsize,
    max: usize,
    max_per_user: usize,
    buffer: usize,
    per_user: Arc<PerUser>,
    items: mpsc::UnboundedSender<Queued>,
}

struct Open {
    method: &'static str,
    /// Ends the subscription: with a last message saying why, or silently.
    stop: oneshot::Sender<Option<ApiError>>,
    task: tokio::task::JoinHandle<()>,
}

/// A place taken among the caps; given back when dropped.
pub(crate) struct Slot {
    subs: Arc<Subscriptions>,
    user: Option<UserId>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.subs.count.fetch_sub(1, Ordering::AcqRel);
        if let Some(user) = self.user {
            let mut users = self.subs.per_user.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = users.get_mut(&user) {
                *n -= 1;
                if *n == 0 {
                    users.remove(&user);
                }
            }
        }
    }
}

impl Subscriptions {
    pub(crate) fn new(
        max: usize,
        max_per_user: usize,
        buffer: usize,
        per_user: Arc<PerUser>,
        items: mpsc::UnboundedSender<Queued>,
    ) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
            max,
            max_per_user,
            buffer: buffer.max(1),
            per_user,
            items,
        })
    }

    /// Takes a place for one more subscription of `user`, within the caps.
    pub(crate) fn reserve(self: &Arc<Self>, user: Option<UserId>) -> Result<Slot, ApiError> {
        let too_many = |what: &str, max: usize| {
            ApiError::new(Reason::TooManySubscriptions)
                .message(format!("at most {max} subscriptions {what}"))
                .with("limit", max)
        };
        if self.count.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Err(too_many("per connection", self.max));
        }
        if let Some(user) = user {
            let mut users = self.per_user.0.lock().unwrap_or_else(PoisonError::into_inner);
            let n = users.entry(user).or_insert(0);
            if *n >= self.max_per_user {
                drop(users);
                self.count.fetch_sub(1, Ordering::AcqRel);
                return Err(too_many("per user", self.max_per_user));
            }
            *n += 1;
        }
        Ok(Slot { subs: self.clone(), user })
    }

    /// Starts sending `items` as subscription items of `method` once
    /// `started` fires (after the subscribe call's answer is queued).
    /// Returns the subscription's id.
    pub(crate) fn start(
        self: &Arc<Self>,
        method: &'static str,
        items: RawItems,
        slot: Slot,
        request_id: Arc<str>,
        started: oneshot::Receiver<()>,
    ) -> String {
        let id = format!("{:016x}", rand::rng().random::<u64>());
        let (stop, stopped) = oneshot::channel();
        let pump = Pump { subs: self.clone(), method, id: id.clone(), request_id };
        let task = tokio::spawn(pump.run(items, started, stopped, slot));
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), Open { method, stop, task });
        id
    }

    /// Ends subscription `id` of `method` (an unsubscribe call): whether it was open.
    pub(crate) fn end(&self, id: &str, method: &str) -> bool {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.get(id).is_none_or(|o| o.method != method) {
            return false;
        }
        match open.remove(id) {
            Some(o) => {
                // The task may have ended on its own just now: ended either way.
                let _ = o.stop.send(None);
                true
            }
            None => false,
        }
    }

    /// Ends every subscription, each with a last message saying `why` (or
    /// silently), and waits briefly for those messages to be queued.
    pub(crate) async fn end_all(&self, why: Option<Reason>) {
        let open: Vec<Open> =
            self.open.lock().unwrap_or_else(PoisonError::into_inner).drain().map(|(_, o)| o).collect();
        let mut tasks = Vec::with_capacity(open.len());
        for o in open {
            let _ = o.stop.send(why.map(ApiError::new));
            tasks.push(o.task);
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), futures::future::join_all(tasks)).await;
    }
}

/// One subscription's task.
struct Pump {
    subs: Arc<Subscriptions>,
    method: &'static str,
    id: String,
    request_id: Arc<str>,
}

impl Pump {
    async fn run(
        self,
        mut items: RawItems,
        started: oneshot::Receiver<()>,
        mut stopped: oneshot::Receiver<Option<ApiError>>,
        slot: Slot,
    ) {
        let _live = crate::observe::ws_subscription();
        // The answer was never sent (the socket closed first): nothing to do.
        if started.await.is_err() {
            self.subs.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
            return;
        }
        let pending = Arc::new(AtomicUsize::new(0));
        let end = loop {
            tokio::select! {
                biased;
                why = &mut stopped => break why.unwrap_or(None),
                item = items.next() => match item {
                    Some(Ok(item)) => {
                        if pending.load(Ordering::Acquire) >= self.subs.buffer {
                            break Some(ApiError::new(Reason::SubscriptionLagged));
                        }
                        pending.fetch_add(1, Ordering::AcqRel);
                        let frame = self.message(b"result", item.get().as_bytes());
                        if self.subs.items.send(Queued { frame, pending: Some(pending.clone()) }).is_err() {
                            break None;
                        }
                    }
                    Some(Err(e)) => break Some(e),
                    None => break None,
                },
            }
        };
        self.subs.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
        if let Some(e) = end {
            tracing::debug!(subscription = %self.id, error = %e, "subscription ended");
            let error = e.to_error_object(&self.request_id).to_string();
            let frame = self.message(b"error", error.as_bytes());
            let _ = self.subs.items.send(Queued { frame, pending: None });
        }
        drop(slot);
    }

    /// A text frame `{"jsonrpc":"2.0","method":M,"params":{"subscription":ID,"<key>":<value>}}`.
    fn message(&self, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(value.len() + 96);
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"");
        out.extend_from_slice(self.method.as_bytes());
        out.extend_from_slice(b"\",\"params\":{\"subscription\":\"");
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        out.extend_from_slice(value);
        out.extend_from_slice(b"}}");
        frames::frame(frames::TEXT, &out)
    }
}
