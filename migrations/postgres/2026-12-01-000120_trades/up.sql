-- The trade desk. Prices and quantities are kept as their canonical decimal
-- strings (never floats). Every change of a trade or an offer bumps its
-- version, under a condition on the state it was read in.
CREATE TABLE trades (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    side TEXT NOT NULL,
    commodity TEXT NOT NULL,
    quantity TEXT NOT NULL,
    unit TEXT NOT NULL,
    price_limit TEXT,
    currency TEXT NOT NULL,
    lot_id TEXT,
    visibility TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    agreed_offer_id TEXT,
    -- The member who accepted the agreed offer (for the four-eyes check).
    accepted_by TEXT,
    approved_by TEXT
);
CREATE INDEX trades_org_idx ON trades(org_id, id);
CREATE INDEX trades_visibility_idx ON trades(visibility, id);
CREATE INDEX trades_expiry_idx ON trades(status, expires_at);

CREATE TABLE trade_invites (
    trade_id TEXT NOT NULL REFERENCES trades(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    PRIMARY KEY (trade_id, org_id)
);
CREATE INDEX trade_invites_org_idx ON trade_invites(org_id, trade_id);

CREATE TABLE offers (
    id TEXT PRIMARY KEY NOT NULL,
    trade_id TEXT NOT NULL REFERENCES trades(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    price TEXT NOT NULL,
    quantity TEXT NOT NULL,
    lot_id TEXT,
    valid_until TIMESTAMP NOT NULL,
    note TEXT,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX offers_trade_idx ON offers(trade_id, id);
CREATE INDEX offers_org_idx ON offers(org_id, trade_id);
CREATE INDEX offers_expiry_idx ON offers(status, valid_until);

CREATE TABLE offer_steps (
    id TEXT PRIMARY KEY NOT NULL,
    offer_id TEXT NOT NULL REFERENCES offers(id) ON DELETE CASCADE,
    at TIMESTAMP NOT NULL,
    action TEXT NOT NULL,
    party TEXT,
    price TEXT NOT NULL,
    quantity TEXT NOT NULL,
    note TEXT,
    version BIGINT NOT NULL
);
CREATE INDEX offer_steps_offer_idx ON offer_steps(offer_id, id);

CREATE TABLE org_approval_thresholds (
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    currency TEXT NOT NULL,
    threshold TEXT NOT NULL,
    PRIMARY KEY (org_id, currency)
);
