-- One message of a webhook is being tried at most once at a time: a
-- redelivery asked for while one is pending (or 40 asked for at once) adds
-- nothing.
CREATE UNIQUE INDEX webhook_deliveries_one_pending_idx ON webhook_deliveries(webhook_id, message_id) WHERE status = 'pending';
