DROP TABLE org_approval_thresholds;
DROP TABLE offer_steps;
DROP TABLE offers;
DROP TABLE trade_invites;
DROP TABLE trades;
