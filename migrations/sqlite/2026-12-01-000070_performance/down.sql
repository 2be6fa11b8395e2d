DROP TABLE perf_hours;
DROP TABLE perf_minutes;
