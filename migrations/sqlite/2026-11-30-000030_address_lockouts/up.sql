-- Failed sign-ins of addresses that have no account, so they lock as an
-- account does (same threshold, same lock time, same answers) and locking
-- tells nobody whether an address is registered; and the sign-in code such
-- an address was "sent" (none is), whose attempts run out as a real code's
-- do. Keyed by the normalized address; in the database, so every replica
-- shares it.
CREATE TABLE address_lockouts (
    email_key TEXT PRIMARY KEY NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    code_expires_at TIMESTAMP,
    code_attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX address_lockouts_updated_idx ON address_lockouts(updated_at);
