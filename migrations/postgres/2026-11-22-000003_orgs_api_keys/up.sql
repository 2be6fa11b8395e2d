-- Invitations to organizations, API keys with their secrets, and per-minute
-- usage of each key by method.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email_key TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP
);
CREATE INDEX invitations_org_idx ON invitations(org_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    rate_limit_per_minute INTEGER
);
CREATE INDEX api_keys_org_idx ON api_keys(org_id, id);

-- A key's secrets, stored as keyed hashes: one, or two during a rotation's
-- grace period (the old one with its end in expires_at).
CREATE TABLE api_key_secrets (
    secret_hash TEXT PRIMARY KEY NOT NULL,
    key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP
);
CREATE INDEX api_key_secrets_key_idx ON api_key_secrets(key_id);

CREATE TABLE api_key_usage (
    key_id TEXT NOT NULL,
    minute TIMESTAMP NOT NULL,
    method TEXT NOT NULL,
    calls BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    rate_limited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, minute, method)
);
CREATE INDEX api_key_usage_minute_idx ON api_key_usage(minute);
