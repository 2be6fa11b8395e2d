#!/usr/bin/env bash
# The Prometheus files in deploy/ are valid: the scrape config, the rules, and
# every query of the Grafana dashboard (checked as recording rules, with
# Grafana's variables given values).
set -euo pipefail
cd "$(dirname "$0")/.."
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - deploy/grafana/trellis.json >"$tmp/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
n = 0
for panel in dash["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*")
        n += 1
        print(f"      - record: dashboard:query_{n}\n        expr: {json.dumps(expr)}")
if n == 0:
    sys.exit("no queries in the dashboard")
PY
promtool check rules "$tmp/dashboard-rules.yml"
