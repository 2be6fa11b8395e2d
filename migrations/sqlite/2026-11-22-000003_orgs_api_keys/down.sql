DROP TABLE api_key_usage;
DROP TABLE api_key_secrets;
DROP TABLE api_keys;
DROP TABLE invitations;
