DROP TABLE leases;
DROP TABLE alert_rules;
