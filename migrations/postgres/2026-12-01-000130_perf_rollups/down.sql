DROP TABLE perf_dirty;
DROP TABLE perf_days;
DROP TABLE perf_quarters;
ALTER TABLE perf_hours DROP COLUMN p95_us;
