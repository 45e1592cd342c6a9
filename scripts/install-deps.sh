#!/usr/bin/env bash
# Installs the system packages Courier's build and tests need, and only those missing;
# further package names given as arguments (e.g. `wrk` for the benchmarks) too.
# Idempotent; safe to run on every invocation. Needs root (or sudo) only when
# something is actually missing.
set -euo pipefail

# pkg-config + libssl-dev: libssh2 (git over SSH) links the system OpenSSL; HTTPS is rustls.
# cmake: builds zlib-ng, the zlib libgit2 links (git2's zlib-ng-compat feature).
# git, unzip, zip, rsync: the tests and benchmarks compare Courier with the git CLI.
# python3: the shared contract scripts and benchmark helpers.
# postgresql: the store suite runs against a real server (initdb in a temp dir).
# time: GNU time for peak-RSS figures in benchmarks.
# openssh-client, openssh-server: ssh-keygen makes the keys the signing and SSH-remote
# tests use; the SSH-remote tests start their own sshd on 127.0.0.1.
# gnupg: gpg makes the OpenPGP signing keys and `git verify-commit` checks their signatures.
# socat, openssl: the private-CA tests put TLS (a test CA's certificate) in front of the
# git server and a forge fake.
# squid: the proxy tests put a real forward proxy with basic auth between Courier and the
# test servers.
# chromium, chromium-driver: the dashboard's browser tests drive headless Chromium over WebDriver.
wanted=(pkg-config libssl-dev cmake git unzip zip rsync python3 postgresql time openssh-client openssh-server gnupg socat openssl squid chromium chromium-driver "$@")

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

# npm: the browser tests install axe-core from it. Checked as a command, since a Node.js
# from elsewhere (NodeSource) carries its own npm that Debian's package would clash with.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
