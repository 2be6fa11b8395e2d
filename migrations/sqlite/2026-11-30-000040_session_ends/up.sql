-- Every session end, numbered in the order the database wrote it. Replicas
-- follow this log by number, so neither a replica's clock nor a stalled
-- replica can make one miss an end. Written by a trigger, so no way of
-- ending a session can forget it.
CREATE TABLE session_ends (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    -- The database's clock, in milliseconds since the Unix epoch.
    ended_ms BIGINT NOT NULL
);
CREATE INDEX session_ends_time_idx ON session_ends(ended_ms);

CREATE TRIGGER sessions_ended AFTER UPDATE OF revoked_at ON sessions
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO session_ends (session_id, ended_ms)
    VALUES (NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

-- Sessions ended lately, whose access tokens may still be live.
INSERT INTO session_ends (session_id, ended_ms)
SELECT id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= datetime('now', '-1 day')
ORDER BY revoked_at;
