#!/usr/bin/env bash
# Installs what building and testing Ordo needs and a fresh machine lacks. The README's two
# commands (scripts/testnet.sh and scripts/test.sh) and CI (.ci/run) all call this one script, so
# there is one list of prerequisites. It is quick when everything is already there.
#
#   scripts/setup.sh            # what the build needs (clang/libclang for RocksDB's bindings)
#   scripts/setup.sh --tests    # also what the test suite needs (Python `cryptography`)
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
need_crypto=0
if [ "$want_tests" = 1 ] && ! python3 -c 'import cryptography' >/dev/null 2>&1; then
  # scripts/spec_check.py, the independent Python implementation of the contract, signs and
  # verifies with it (chain/tests/python_interop.rs runs it).
  need_crypto=1
fi

if [ ${#apt_missing[@]} -eq 0 ] && [ "$need_crypto" = 0 ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  cmd=""
  [ ${#apt_missing[@]} -gt 0 ] && cmd="sudo apt-get update && sudo apt-get install -y ${apt_missing[*]}"
  if [ "$need_crypto" = 1 ]; then
    [ -n "$cmd" ] && cmd="$cmd && "
    cmd="${cmd}python3 -m pip install --user cryptography"
  fi
  echo "Ordo needs packages this machine lacks. Run this once, then try again:" >&2
  echo "  $cmd" >&2
  exit 1
fi

if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "setup: installing ${apt_missing[*]} (needed to build RocksDB's bindings) ..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
if [ "$need_crypto" = 1 ]; then
  echo "setup: installing Python's cryptography (for the independent SPEC check) ..." >&2
  # pip where Python is not Debian-managed; Debian's own package where it is (PEP 668).
  python3 -m pip install --quiet cryptography 2>/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null; }
fi
echo "setup: done" >&2
