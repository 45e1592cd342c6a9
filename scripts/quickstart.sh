#!/usr/bin/env bash
# Builds Courier and runs it on its embedded defaults against a local bare repository:
# inspect the platform's sample event, dry-run it with a diff, then deliver it and show
# the branch Courier pushed. Everything it creates lives in .quickstart/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --locked --quiet -p courier
courier="$PWD/target/debug/courier"

qs="$PWD/.quickstart"
mkdir -p "$qs"
cp deploy/examples/quickstart.yaml "$qs/courier.yaml"
if [ ! -d "$qs/remote.git" ]; then
  # The repository Courier delivers into, with a first commit on its base branch.
  git init -q --bare --initial-branch=main "$qs/remote.git"
  work=$(mktemp -d)
  git -C "$work" init -q --initial-branch=main
  printf '# Web app\n\nDesign tokens arrive under tokens/ through Courier.\n' > "$work/README.md"
  git -C "$work" add README.md
  git -C "$work" -c user.name=Quickstart -c user.email=quickstart@example.invalid commit -qm "Initial commit"
  git -C "$work" push -q "$qs/remote.git" HEAD:main
  rm -rf "$work"
fi
rm -f "$qs/export.zip"
(cd deploy/examples/sample-export && zip -qr "$qs/export.zip" .)

# The quickstart config authenticates webhooks with this token; any 16+ characters do.
export COURIER_WEBHOOK_TOKEN="${COURIER_WEBHOOK_TOKEN:-quickstart-$(date +%s)-token}"
payload=tests/fixtures/payloads/v1-seed.json
run() { echo; echo "\$ courier $*"; "$courier" "$@"; }

run inspect --config "$qs/courier.yaml" --payload "$payload" --artifact "$qs/export.zip"
run dry-run --config "$qs/courier.yaml" --payload "$payload" --artifact "$qs/export.zip" --diff
run deliver --config "$qs/courier.yaml" --payload "$payload" --artifact "$qs/export.zip"

echo
echo "\$ git --git-dir .quickstart/remote.git log --stat --all -1"
git --git-dir "$qs/remote.git" log --stat --all -1
