#!/usr/bin/env bash
# `make demo`: starts a local Kinesis (kinesalite, from testenv/) on a free
# 127.0.0.1 port, runs `shardflow demo` against it, and stops it. When
# shardflow's built-in local Kinesis lands, `shardflow demo` needs no emulator.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh
export SF_SKIP_AWS_CLI=1
export CI=true # a demo without its local Kinesis is a failure, not a skip
sf_env_up || exit 1
rc=0
sf_run go run ./cmd/shardflow demo "$@" || rc=$?
exit "$rc"
