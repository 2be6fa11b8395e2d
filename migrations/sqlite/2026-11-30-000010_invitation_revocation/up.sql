-- An invitation can be revoked: its token stops working at once.
ALTER TABLE invitations ADD COLUMN revoked_at TIMESTAMP;
