-- Lots: an organization's tested lots of a commodity. Quantities and
-- percentages are kept as their canonical decimal strings (never floats).
CREATE TABLE lots (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    commodity TEXT NOT NULL,
    quantity TEXT NOT NULL,
    unit TEXT NOT NULL,
    location TEXT NOT NULL,
    grade TEXT NOT NULL,
    moisture_pct TEXT,
    tested_at TIMESTAMP NOT NULL,
    lab TEXT,
    notes TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX lots_org_idx ON lots(org_id, id);
CREATE INDEX lots_org_commodity_idx ON lots(org_id, commodity, id);
