-- Webhooks: an organization's endpoints that receive its events, and the
-- deliveries of events to them (one row per event and webhook, over all
-- its attempts).
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- Comma-separated event types (wire names).
    events TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    -- The signing secret, sealed (never readable in the database alone);
    -- during a rotation's grace period the previous one signs too, until
    -- previous_secret_until.
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until TIMESTAMP,
    -- Deliveries given up (every attempt failed) since the last success.
    failure_streak INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhooks_org_idx ON webhooks(org_id, id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    -- The `webhook-id` header: the same on every attempt and redelivery.
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- The exact body posted, so every attempt signs the same bytes.
    payload TEXT NOT NULL,
    -- pending, delivered or failed.
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    response_code INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    -- The last attempt (or the creation, before the first).
    attempted_at TIMESTAMP NOT NULL,
    -- Set while pending.
    next_attempt_at TIMESTAMP,
    -- A sender's lease on the delivery while it posts it.
    claimed_until TIMESTAMP
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries(webhook_id, id);
CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries(created_at);
