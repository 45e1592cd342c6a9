#!/usr/bin/env bash
# Posts the quickstart's sample `job:updated` event to a running `courier serve`, with the
# webhook token scripts/quickstart.sh generated, and prints Courier's answer.
#   scripts/send-sample-event.sh [URL]     (default http://127.0.0.1:8080)
set -euo pipefail
cd "$(dirname "$0")/.."
qs="${QUICKSTART_DIR:-$PWD/.quickstart}"
if [ ! -f "$qs/env" ] || [ ! -f "$qs/event.json" ]; then
  echo "send-sample-event: $qs is not prepared; run scripts/quickstart.sh first" >&2
  exit 2
fi
# shellcheck source=/dev/null
. "$qs/env"
base="${1:-http://127.0.0.1:8080}"
curl --silent --show-error --fail-with-body \
  -H "Authorization: Bearer $COURIER_WEBHOOK_TOKEN" \
  -H 'Content-Type: application/json' \
  --data-binary @"$qs/event.json" \
  "$base/webhooks/supernova"
echo
