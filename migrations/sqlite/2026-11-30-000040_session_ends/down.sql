DROP TRIGGER IF EXISTS sessions_ended;
DROP TABLE IF EXISTS session_ends;
