-- Account security: lockout, password history and age, TOTP, one-time
-- tokens and codes, recovery codes, the mail outbox and the audit trail.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until TIMESTAMP;
ALTER TABLE users ADD COLUMN password_changed_at TIMESTAMP;
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;

-- Hashes of an account's previous passwords, newest kept.
CREATE TABLE password_history (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX password_history_user_idx ON password_history(user_id, created_at);

-- Verification and reset tokens and e-mailed sign-in codes, stored hashed.
CREATE TABLE one_time_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX one_time_tokens_hash_idx ON one_time_tokens(token_hash);
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens(user_id, purpose);

-- MFA recovery codes, stored hashed, single use.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    used_at TIMESTAMP
);
CREATE INDEX recovery_codes_user_idx ON recovery_codes(user_id);

-- Mail to send, written in the transaction of the change that causes it.
-- One row per event and recipient (dedupe_key), so nothing is sent twice.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    sent_at TIMESTAMP,
    failed_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX outbox_due_idx ON outbox(sent_at, failed_at, next_attempt_at);

-- Who did what, when, from where, and how it ended. Never a secret.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    org_id TEXT,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    subject_user_id TEXT,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT
);
CREATE INDEX audit_events_subject_idx ON audit_events(subject_user_id, id);
CREATE INDEX audit_events_org_idx ON audit_events(org_id, id);
