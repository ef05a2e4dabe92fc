#!/usr/bin/env bash
# The test command (`make test`): installs what the tests need, starts the
# local emulators on free 127.0.0.1 ports (scripts/emulators.sh), runs
#   go test -race -timeout 25m $GOTESTFLAGS ./...
# and stops the emulators. Arguments, if any, replace ./... (packages).
# CI=true turns a missing emulator into a failure instead of skipped tests.
# Exits with go test's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh

read -r -a extra <<<"${GOTESTFLAGS:-}"
pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)

sf_env_up || exit 1
rc=0
sf_run go test -race -timeout 25m "${extra[@]}" "${pkgs[@]}" || rc=$?
exit "$rc"
