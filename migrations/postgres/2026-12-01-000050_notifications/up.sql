-- Events: what happened that someone must hear of, written in the
-- transaction of the change itself (an outbox). The dispatcher turns each
-- into notifications for its recipients (notified_at); the webhook worker
-- into deliveries for its organization's webhooks (hooked_at).
CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    org_id TEXT,
    -- The user the event is about (their role changed, they were removed).
    subject_user_id TEXT,
    -- JSON array of the user ids to notify.
    recipients TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    -- JSON object: the facts of the event.
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    notified_at TIMESTAMP,
    hooked_at TIMESTAMP
);
CREATE INDEX events_to_notify_idx ON events(id) WHERE notified_at IS NULL;
CREATE INDEX events_to_hook_idx ON events(id) WHERE hooked_at IS NULL;
CREATE INDEX events_created_idx ON events(created_at);

-- One user's notifications, numbered per user (seq) in commit order: a
-- subscriber follows them by number, so none is skipped.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    read_at TIMESTAMP,
    UNIQUE (user_id, seq),
    UNIQUE (event_id, user_id)
);
CREATE INDEX notifications_user_idx ON notifications(user_id, id);
CREATE INDEX notifications_created_idx ON notifications(created_at);

CREATE TABLE notification_preferences (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    in_app BOOLEAN NOT NULL,
    email BOOLEAN NOT NULL,
    webhook BOOLEAN NOT NULL,
    -- JSON array of muted event types.
    muted TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
