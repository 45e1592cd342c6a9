#!/usr/bin/env bash
# Builds Courier and runs it on its embedded defaults (SQLite under the data directory)
# against a local bare repository, with the platform's sample event ready to send.
#
#   scripts/quickstart.sh           prepare .quickstart/, then run `courier serve` in the
#                                   foreground (Ctrl-C stops it)
#   scripts/quickstart.sh --check   the same steps without a person: start the server, post
#                                   the sample event, wait for the branch in the bare
#                                   repository, check it with the git CLI, stop; exit 1 on
#                                   any failure. Runs in a fresh temporary directory.
#
# .quickstart/ (git-ignored) holds: remote.git (the bare repository Courier pushes to, with
# a first commit on main), courier.yaml (deploy/examples/quickstart.yaml), export/result.zip
# (deploy/examples/sample-export, served by a local HTTP server on 127.0.0.1), event.json
# (the platform's sample event, its artifact URL pointing at that server) and env (the
# generated webhook and admin tokens). Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

mode=serve
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "quickstart: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

if [ -t 2 ]; then
  say() { printf '\033[1mquickstart:\033[0m %s\n' "$*" >&2; }
else
  say() { printf 'quickstart: %s\n' "$*" >&2; }
fi
fail() { say "FAILED: $*"; exit 1; }

scripts/install-deps.sh
if ! command -v curl >/dev/null 2>&1; then
  say "installing curl (to send the sample event)"
  sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get install -y -qq --no-install-recommends curl
fi
say "building courier"
cargo build --locked --quiet -p courier
courier="${CARGO_TARGET_DIR:-$root/target}/debug/courier"
case "$courier" in /*) ;; *) courier="$root/$courier" ;; esac

if [ "$mode" = check ]; then
  qs=$(mktemp -d "${TMPDIR:-/tmp}/courier-quickstart.XXXXXX")
else
  qs="$root/.quickstart"
fi
export QUICKSTART_DIR="$qs"
mkdir -p "$qs/export"

# Children this script starts, stopped on any exit by their process ids.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$mode" = check ] && [ -n "${keep:-}" ]; then
    say "kept $qs for inspection"
  elif [ "$mode" = check ]; then
    rm -rf "$qs"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the repository Courier delivers into, with a first commit on its base branch -----
if [ ! -d "$qs/remote.git" ]; then
  git init -q --bare --initial-branch=main "$qs/remote.git"
  work=$(mktemp -d)
  git -C "$work" init -q --initial-branch=main
  printf '# Web app\n\nDesign tokens arrive under tokens/ through Courier.\n' > "$work/README.md"
  git -C "$work" add README.md
  git -C "$work" -c user.name=Quickstart -c user.email=quickstart@example.invalid \
    -c commit.gpgsign=false commit -qm "Initial commit"
  git -C "$work" push -q "$qs/remote.git" HEAD:main
  rm -rf "$work"
fi

# --- configuration and tokens ----------------------------------------------------------
cp deploy/examples/quickstart.yaml "$qs/courier.yaml"
if [ ! -f "$qs/env" ]; then
  token() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
  umask 077
  {
    echo "export COURIER_WEBHOOK_TOKEN=$(token)"
    echo "export COURIER_ADMIN_TOKEN=$(token)"
  } > "$qs/env"
  umask 022
fi
# shellcheck source=/dev/null
. "$qs/env"
"$courier" validate --config "$qs/courier.yaml" >/dev/null \
  || fail "the quickstart configuration does not validate"

# --- the sample export, served on 127.0.0.1 like the platform's result URL --------------
rm -f "$qs/export/result.zip"
(cd deploy/examples/sample-export && zip -qr -X "$qs/export/result.zip" .)
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$qs/export" \
  > "$qs/artifact-server.log" 2>&1 &
pids+=($!)
artifact_port=""
for _ in $(seq 100); do
  artifact_port=$(sed -n 's/^Serving HTTP on 127\.0\.0\.1 port \([0-9]*\).*/\1/p' "$qs/artifact-server.log")
  [ -n "$artifact_port" ] && break
  sleep 0.1
done
[ -n "$artifact_port" ] || fail "the artifact server did not start: $(cat "$qs/artifact-server.log")"
sed "s#https://example\.supernova\.io/[^\"]*result\.zip#http://127.0.0.1:$artifact_port/result.zip#" \
  tests/fixtures/payloads/v1-seed.json > "$qs/event.json"
grep -q "127.0.0.1:$artifact_port" "$qs/event.json" || fail "could not point the sample event at the artifact server"

if [ "$mode" = serve ]; then
  cat >&2 <<EOF

Courier is starting on http://127.0.0.1:8080 with $qs/courier.yaml
(SQLite store and repository cache in $qs/.courier). In another terminal:

  # send the platform's sample job:updated event (its artifact URL is the local server)
  scripts/send-sample-event.sh
  #   = curl -H "Authorization: Bearer \$COURIER_WEBHOOK_TOKEN" --data-binary @.quickstart/event.json \\
  #          http://127.0.0.1:8080/webhooks/supernova      (tokens: . .quickstart/env)

  # the branch Courier pushed
  git --git-dir .quickstart/remote.git log --all --stat -1

  # what was delivered, and why not
  . .quickstart/env
  curl -s -H "Authorization: Bearer \$COURIER_ADMIN_TOKEN" http://127.0.0.1:8080/api/deliveries
  $courier deliveries --config .quickstart/courier.yaml

  # the same event, planned without writing anything
  $courier dry-run --config .quickstart/courier.yaml --payload .quickstart/event.json --diff

Ctrl-C stops Courier and the artifact server.

EOF
  COURIER_LOG="${COURIER_LOG:-info}" "$courier" serve --config "$qs/courier.yaml" &
  pids+=($!)
  wait "${pids[-1]}"
  exit $?
fi

# --- --check: the same steps, verified -----------------------------------------------
keep="${QUICKSTART_KEEP:-}"
say "starting courier serve (port picked by the system)"
COURIER_LOG=info "$courier" serve --config "$qs/courier.yaml" --listen 127.0.0.1:0 \
  > "$qs/serve.out" 2> "$qs/serve.log" &
server_pid=$!
pids+=("$server_pid")
on_failure() { keep=1; say "courier serve log:"; tail -n 40 "$qs/serve.log" >&2 || true; }
trap 'status=$?; if [ $status -ne 0 ]; then on_failure; fi; cleanup; exit $status' EXIT

addr=""
for _ in $(seq 300); do
  addr=$(sed -n 's/^listening on \(.*\)$/\1/p' "$qs/serve.out")
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "courier serve exited before listening"
  sleep 0.1
done
[ -n "$addr" ] || fail "courier serve did not start listening within 30 s"
base="http://$addr"
for _ in $(seq 100); do
  curl -sf "$base/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "$base/readyz" >/dev/null || fail "$base/readyz does not answer 200"

say "posting the sample event to $base/webhooks/supernova"
answer=$(scripts/send-sample-event.sh "$base") || fail "the webhook was refused: $answer"
say "courier answered: $answer"
grep -q '"status":"accepted"' <<< "$answer" || fail "the sample event was not accepted as new"
if grep -q '"deliveries":\[\]' <<< "$answer"; then
  fail "the sample event routed to no target: check hooks[].match in $qs/courier.yaml"
fi

say "waiting for the branch in the bare repository"
branch=""
for _ in $(seq 600); do
  branch=$(git --git-dir "$qs/remote.git" for-each-ref --format='%(refname:short)' 'refs/heads/courier/')
  [ -n "$branch" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "courier serve exited while delivering"
  sleep 0.1
done
[ -n "$branch" ] || fail "no courier/ branch in remote.git after 60 s"
say "branch $branch"

# The branch holds exactly the sample export under tokens/, on top of main.
git --git-dir "$qs/remote.git" merge-base --is-ancestor main "$branch" \
  || fail "$branch is not based on main"
expected=$(cd deploy/examples/sample-export && find . -type f | sed 's#^\./#tokens/#' | sort)
actual=$(git --git-dir "$qs/remote.git" ls-tree -r --name-only "$branch" -- tokens | sort)
[ "$expected" = "$actual" ] || fail "files under tokens/ differ from the sample export:
expected:
$expected
actual:
$actual"
while read -r path; do
  git --git-dir "$qs/remote.git" cat-file blob "$branch:$path" \
    | cmp -s - "deploy/examples/sample-export/${path#tokens/}" \
    || fail "$path differs from the sample export"
done <<< "$expected"
git --git-dir "$qs/remote.git" cat-file blob "$branch:README.md" | grep -q "Web app" \
  || fail "README.md from main is missing on $branch"
git --git-dir "$qs/remote.git" log -1 --format=%s "$branch" | grep -q "Design tokens from Example Design System" \
  || fail "unexpected commit message: $(git --git-dir "$qs/remote.git" log -1 --format=%s "$branch")"

say "reading /api/deliveries"
deliveries=""
for _ in $(seq 100); do
  deliveries=$(curl -sf -H "Authorization: Bearer $COURIER_ADMIN_TOKEN" "$base/api/deliveries") \
    || fail "/api/deliveries refused the admin token"
  grep -q '"delivered"' <<< "$deliveries" && break
  sleep 0.1
done
grep -q '"delivered"' <<< "$deliveries" || fail "no delivered delivery in /api/deliveries: $deliveries"
curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $COURIER_WEBHOOK_TOKEN" \
  "$base/api/deliveries" | grep -q '^40[13]$' || fail "/api/deliveries accepted the webhook token"

say "stopping courier serve"
kill -TERM "$server_pid"
for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then fail "courier serve did not stop within 30 s of SIGTERM"; fi
wait "$server_pid" || fail "courier serve exited with status $? after SIGTERM"
say "ok: the sample event became branch $branch in a local bare repository"
