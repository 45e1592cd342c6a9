#!/usr/bin/env bash
# How the number of packs in Courier's repository cache slows a warm delivery. libgit2
# cannot repack: each fetch and each delivery with new blobs adds a pack, and every
# repository handle loads every pack's index. `courier deliver` pushes the 2,000-file
# export held by a 200-file repository (the shapes of run.sh) again and again, the base
# moved 3 commits before each, and the median of 5 deliveries is printed as the cache
# passes each pack count in MARKS.
#
# Usage: bench/deliver/packs.sh      env: MARKS (default "4 16 32 48"), BENCH_DIR (default:
#        on tmpfs, /dev/shm/courier-bench-packs). A cache starts over past its limit
#        (`MAX_PACKS` in crates/providers/src/git/cache.rs) and each delivery adds two, so
#        a mark must stay 10 below the limit: raise it in a build of your own to go on.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --locked -p courier >&2
cargo build --release --locked -p courier-providers --example deliver_bench_server >&2
if [ -z "${BENCH_DIR:-}" ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    BENCH_DIR=/dev/shm/courier-bench-packs
fi
work=${BENCH_DIR:-$CARGO_TARGET_DIR/bench-packs}
fixtures="python3 $root/bench/deliver/fixtures.py"
mkdir -p "$work/repos" "$work/home"
export HOME=$work/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.invalid
[ -f "$work/e2000.zip" ] || $fixtures zip "$work/e2000.zip" 2000 20000000
[ -d "$work/repos/r200.git" ] || $fixtures repo "$work/repos/r200.git" 200
[ -d "$work/repos/r200-e2000.git" ] || $fixtures held "$work/repos/r200.git" "$work/repos/r200-e2000.git" "$work/e2000.zip"
git --git-dir="$work/repos/r200-e2000.git" config receive.autogc false
git --git-dir="$work/repos/r200-e2000.git" config gc.auto 0

export BENCH_GIT_TOKEN=bench-token-$$
source "$root/bench/deliver/common.sh"
start_server "$CARGO_TARGET_DIR/release/examples/deliver_bench_server" "$work" "$BENCH_GIT_TOKEN"
url=${base_url}r200-e2000.git

rm -rf "$work/cache"
courier_config "$work/cache" "$url" courier/packs
python3 - "$CARGO_TARGET_DIR/release/courier" "$work" "$root" "${MARKS:-4 16 32 48}" <<'PY'
import glob, json, statistics, subprocess, sys, time

courier, work, root, marks = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()

def packs():
    return len(glob.glob(f"{work}/cache/repositories/*.git/objects/pack/*.pack"))

def deliver():
    subprocess.run(["python3", f"{root}/bench/deliver/fixtures.py", "advance",
                    f"{work}/repos/r200-e2000.git", "3"], check=True)
    started = time.perf_counter()
    out = subprocess.run([courier, "deliver", "--config", f"{work}/cache.yaml",
                          "--payload", f"{root}/tests/fixtures/payloads/v2-seed.json",
                          "--artifact", f"{work}/e2000.zip", "--json"],
                         capture_output=True, check=True).stdout
    wall = (time.perf_counter() - started) * 1000
    target = json.loads(out)["targets"][0]
    assert target["action"] == "push", target
    return wall, target["timings"]["total"]

deliver()
print("packs      wall ms   courier total ms")
for mark in map(int, marks):
    while packs() < mark:
        before = packs()
        deliver()
        if packs() < before:
            sys.exit(f"the cache started over below {mark} packs (its limit)")
    runs = []
    for _ in range(5):
        before = packs()
        runs.append(deliver())
        if packs() < before:
            sys.exit(f"the cache started over after {before} packs (its limit): lower the mark")
    print(f"{mark:>5} {statistics.median(r[0] for r in runs):>9.1f} "
          f"{statistics.median(r[1] for r in runs):>18.0f}", flush=True)
PY
