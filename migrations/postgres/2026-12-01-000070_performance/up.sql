-- Call latency per minute, method, acting organization ('' for none) and
-- replica: an HDR histogram of microseconds (V2, deflate-compressed) with
-- the call and error counts. Each replica writes only its own rows, so two
-- replicas never conflict; reports merge the rows of a window.
CREATE TABLE perf_minutes (
    bucket_start TIMESTAMP NOT NULL,
    method TEXT NOT NULL,
    org_id TEXT NOT NULL,
    replica TEXT NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    max_us BIGINT NOT NULL,
    histogram BYTEA NOT NULL,
    PRIMARY KEY (bucket_start, method, org_id, replica)
);
CREATE INDEX perf_minutes_org_idx ON perf_minutes(org_id, bucket_start);

-- The same, an hour a row and all replicas merged, made from minute rows
-- once their hour is over two hours old (a report of a long window reads
-- these). Written once (a second writer's identical row is ignored).
CREATE TABLE perf_hours (
    bucket_start TIMESTAMP NOT NULL,
    method TEXT NOT NULL,
    org_id TEXT NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    max_us BIGINT NOT NULL,
    histogram BYTEA NOT NULL,
    PRIMARY KEY (bucket_start, method, org_id)
);
CREATE INDEX perf_hours_org_idx ON perf_hours(org_id, bucket_start);
