#!/usr/bin/env bash
# Run with `bash examples/batch.sh [url]` against a running server (default http://127.0.0.1:8080/rpc).
# Raw JSON-RPC with curl: one batch registers an account and signs in, then auth.me with the token.
set -euo pipefail
url="${1:-${TRELLIS_URL:-http://127.0.0.1:8080/rpc}}"
email="batch-$(date +%s)-$RANDOM@example.com"
password="correct horse battery staple"

answer=$(curl -sS --fail-with-body "$url" -H 'content-type: application/json' -d @- <<JSON
[
  {"jsonrpc": "2.0", "method": "auth.register", "params": {"email": "$email", "password": "$password"}, "id": "register"},
  {"jsonrpc": "2.0", "method": "auth.login", "params": {"email": "$email", "password": "$password"}, "id": "login"},
  {"jsonrpc": "2.0", "method": "health.check", "id": "health"}
]
JSON
)
echo "batch answer: $answer"

# Calls of a batch run concurrently: if the login ran before the account existed, sign in again on its own.
token=$(printf '%s' "$answer" | python3 -c '
import json, sys
answers = {a["id"]: a for a in json.load(sys.stdin)}
print(answers["login"].get("result", {}).get("accessToken", ""))')
if [ -z "$token" ]; then
  token=$(curl -sS --fail-with-body "$url" -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"method\":\"auth.login\",\"params\":{\"email\":\"$email\",\"password\":\"$password\"},\"id\":1}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["accessToken"])')
fi

me=$(curl -sS --fail-with-body "$url" -H 'content-type: application/json' -H "authorization: Bearer $token" \
  -d '{"jsonrpc":"2.0","method":"auth.me","id":1}')
echo "auth.me: $me"
printf '%s' "$me" | python3 -c "
import json, sys
me = json.load(sys.stdin)
assert me['result']['user']['email'] == '$email', me
print('ok: signed in as', me['result']['user']['email'])"
