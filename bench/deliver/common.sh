# What the delivery benchmarks share, sourced by run.sh and packs.sh: the git server and
# the configuration they give `courier deliver`.

# Starts the test kit's git server (http-backend behind token auth) on the bare
# repositories under WORK/repos, until this script exits: it runs until its stdin closes,
# a fifo this shell holds open. Sets base_url (ends with /).
start_server() { # SERVER_BINARY WORK TOKEN
    rm -f "$2/server.in" && mkfifo "$2/server.in"
    "$1" "$2/repos" "$3" <"$2/server.in" >"$2/server.out" 2>"$2/server.err" &
    server_pid=$!
    exec 3>"$2/server.in"
    trap 'exec 3>&-; kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do grep -q READY "$2/server.out" 2>/dev/null && break; sleep 0.1; done
    base_url=$(awk '/READY/ {print $2}' "$2/server.out")
}

# A git connection with the server's token, one target writing the export into
# design/tokens/ with purge.
courier_config() { # CACHE URL HEAD: writes CACHE.yaml, with CACHE as the data directory
    mkdir -p "$1"
    cat >"$1.yaml" <<YAML
data_dir: $1
platform:
  insecure_hosts: ["127.0.0.1"]
connections:
  bench: { kind: git, token: "\${BENCH_GIT_TOKEN}" }
hooks:
  - match: any
    targets:
      - connection: bench
        repository: $2
        branch: main
        relative_path: design/tokens
        purge_directory: true
        head_branch: "$3"
        commit_message: "Benchmark delivery"
YAML
}
