DROP TRIGGER IF EXISTS sessions_ended ON sessions;
DROP FUNCTION IF EXISTS trellis_session_ended();
DROP TABLE IF EXISTS session_ends;
