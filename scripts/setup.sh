#!/usr/bin/env bash
# Installs what building and testing Ordo needs and a fresh machine lacks. The README's two
# commands (scripts/testnet.sh and scripts/test.sh) and CI (.ci/run) all call this one script, so
# there is one list of prerequisites. It is quick when everything is already there.
#
#   scripts/setup.sh            # what the build needs (clang/libclang for RocksDB's bindings)
#   scripts/setup.sh --tests    # also what the test suite needs (Python `cryptography` and
#                               # `prometheus-client`, Chromium with its WebDriver for the
#                               # explorer's browser test)
#
# As root it installs what is missing (apt-get, pip). As another user it prints the one command
# to run and exits 1, so that nothing fails half-way through a 15-minute build.
set -euo pipefail

want_tests=0
for a in "$@"; do
  case "$a" in
    --tests) want_tests=1 ;;
    *) echo "usage: scripts/setup.sh [--tests]" >&2; exit 2 ;;
  esac
done

apt_missing=()
# librocksdb-sys generates its Rust bindings with bindgen, which loads libclang at build time.
for pkg in clang libclang-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || apt_missing+=("$pkg")
done
if [ "$want_tests" = 1 ]; then
  # node/tests/explorer_browser.rs drives the block explorer in headless Chromium through
  # chromedriver (/usr/bin/chromium, /usr/bin/chromedriver); Debian ships both, the same version.
  for pkg in chromium chromium-driver; do
    dpkg -s "$pkg" >/dev/null 2>&1 || apt_missing+=("$pkg")
  done
fi
# Python modules the tests run (as pip name, Debian package, import name):
#  - cryptography: scripts/spec_check.py, the independent Python implementation of the contract,
#    signs and verifies with it (chain/tests/python_interop.rs runs it);
#  - prometheus-client: the Prometheus project's own OpenMetrics parser, which
#    api/tests/metrics.rs runs on /metrics (api/tests/parse_metrics.py).
py_missing=()
py_debian=()
if [ "$want_tests" = 1 ]; then
  for spec in cryptography:python3-cryptography:cryptography \
              prometheus-client:python3-prometheus-client:prometheus_client; do
    IFS=: read -r pip_name deb_name module <<<"$spec"
    if ! python3 -c "import $module" >/dev/null 2>&1; then
      py_missing+=("$pip_name")
      py_debian+=("$deb_name")
    fi
  done
fi

if [ ${#apt_missing[@]} -eq 0 ] && [ ${#py_missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  cmd=""
  [ ${#apt_missing[@]} -gt 0 ] && cmd="sudo apt-get update && sudo apt-get install -y ${apt_missing[*]}"
  if [ ${#py_missing[@]} -gt 0 ]; then
    [ -n "$cmd" ] && cmd="$cmd && "
    cmd="${cmd}python3 -m pip install --user ${py_missing[*]}"
  fi
  echo "Ordo needs packages this machine lacks. Run this once, then try again:" >&2
  echo "  $cmd" >&2
  exit 1
fi

if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "setup: installing ${apt_missing[*]} (RocksDB's bindings; with --tests, the browser test's Chromium) ..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
if [ ${#py_missing[@]} -gt 0 ]; then
  echo "setup: installing Python's ${py_missing[*]} (the SPEC cross-check, the metrics parser) ..." >&2
  # pip where Python is not Debian-managed; Debian's own packages where it is (PEP 668).
  python3 -m pip install --quiet "${py_missing[@]}" 2>/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${py_debian[@]}" >/dev/null; }
fi
echo "setup: done" >&2
