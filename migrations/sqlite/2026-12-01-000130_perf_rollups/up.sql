-- Call latency a quarter of a day (6 hours) a row and a day a row, all
-- replicas merged, rolled up from hour rows and quarter rows (a report over
-- days reads these). Like `perf_hours` from now on, they also hold each
-- organization's calls of all methods merged (method '*') and the whole
-- server's (method and organization '*'), which a report's series reads,
-- and each row's 95th percentile (a series point of one row needs no
-- histogram read).
CREATE TABLE perf_quarters (
    bucket_start TIMESTAMP NOT NULL,
    method TEXT NOT NULL,
    org_id TEXT NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    max_us BIGINT NOT NULL,
    p95_us BIGINT,
    histogram BLOB NOT NULL,
    PRIMARY KEY (bucket_start, method, org_id)
);

CREATE TABLE perf_days (
    bucket_start TIMESTAMP NOT NULL,
    method TEXT NOT NULL,
    org_id TEXT NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    max_us BIGINT NOT NULL,
    p95_us BIGINT,
    histogram BLOB NOT NULL,
    PRIMARY KEY (bucket_start, method, org_id)
);

ALTER TABLE perf_hours ADD COLUMN p95_us BIGINT;

-- The hours (span 'hour'), quarters ('quarter') and days ('day') whose
-- rollup is behind their rows: a flush bumps the version of its minutes'
-- hours, an hour's rollup its quarter's, a quarter's its day's. A rollup
-- removes the mark only if the version is still the one it read before
-- reading the rows, so a change made meanwhile is rolled up next time.
CREATE TABLE perf_dirty (
    span TEXT NOT NULL,
    bucket_start TIMESTAMP NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (span, bucket_start)
);

-- Every hour kept by the minute is rolled up again, with its quarter, its
-- day and their all-methods rows.
INSERT INTO perf_dirty (span, bucket_start, version)
SELECT DISTINCT 'hour', strftime('%Y-%m-%d %H:00:00', bucket_start), 1 FROM perf_minutes;
