# The configuration the delivery benchmarks give `courier deliver`, sourced by run.sh and
# packs.sh: a git connection with the server's token, one target writing the export into
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
