DROP TABLE org_members;
DROP TABLE orgs;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
