//! Wake-ups: "user X has something new", to the subscriptions of X on this
//! replica. A wake-up carries the number of the user's newest notification;
//! each subscriber reads from the database what came after its own cursor,
//! so a wake-up is never the item itself and a lost one costs latency only:
//! while anyone here subscribes, a sweep every poll interval wakes the users
//! with notifications newer than their subscribers last heard of.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use trellis_schema::ids::UserId;
use tokio::sync::watch;

/// The users with subscriptions on this replica, and the newest
/// notification number each was woken for.
#[derive(Default)]
pub(crate) struct Hub {
    users: Mutex<HashMap<UserId, Entry>>,
}

struct Entry {
    newest: watch::Sender<i64>,
    watchers: usize,
}

/// A subscription's hold on its user's wake-ups; released when dropped.
pub(crate) struct Watch {
    hub: Arc<Hub>,
    user: UserId,
    pub rx: watch::Receiver<i64>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut users = self.hub.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = users.get_mut(&self.user) {
            e.watchers -= 1;
            if e.watchers == 0 {
                users.remove(&self.user);
            }
        }
    }
}

impl Hub {
    pub(crate) fn watch(self: &Arc<Self>, user: UserId) -> Watch {
        let mut users = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = users.entry(user).or_insert_with(|| Entry { newest: watch::Sender::new(0), watchers: 0 });
        e.watchers += 1;
        let rx = e.newest.subscribe();
        Watch { hub: self.clone(), user, rx }
    }

    /// User `user` has notification number `seq`: wake their subscribers
    /// here unless they were already woken for it (or a later one).
    pub(crate) fn wake(&self, user: UserId, seq: i64) {
        let users = self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = users.get(&user) {
            e.newest.send_if_modified(|newest| {
                let newer = seq > *newest;
                if newer {
                    *newest = seq;
                }
                newer
            });
        }
    }

    /// The users someone here subscribes for.
    pub(crate) fn users(&self) -> Vec<UserId> {
        self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner).keys().copied().collect()
    }
}
