DROP TABLE perf_minutes;
