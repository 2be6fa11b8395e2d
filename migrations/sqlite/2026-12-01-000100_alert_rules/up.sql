-- Performance alert rules: an organization's (org_id) or the server's
-- (org_id NULL), each with its state. firing_since is set by a conditional
-- update (only while NULL) and cleared the same way, so a rule fires and
-- resolves once per episode whichever replica evaluates it.
CREATE TABLE alert_rules (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT REFERENCES orgs(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    method TEXT,
    threshold DOUBLE PRECISION NOT NULL,
    window_secs INTEGER NOT NULL,
    firing_since TIMESTAMP,
    last_value DOUBLE PRECISION,
    evaluated_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX alert_rules_org_idx ON alert_rules(org_id);

-- Leases: background work that one replica at a time does (the alert
-- evaluator) is done by whoever holds its row's lease until it lapses.
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
