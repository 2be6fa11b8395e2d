DROP TABLE address_lockouts;
