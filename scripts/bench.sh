#!/usr/bin/env bash
# `make bench`: starts the local emulators (scripts/emulators.sh) and runs the
# benchmarks side by side in one run:
#   - BenchmarkEmulatorRead: a 4-shard stream of 1 KiB records on kinesalite
#     and on kdsfake (in process), read by a plain aws-sdk-go-v2 GetRecords
#     loop and by a shardflow query; records/s and CPU-seconds per million
#     records for both, and the ratio;
#   - BenchmarkGetRecordsServers, BenchmarkPutRecordsServers: the same
#     workload (1 KiB records, 4 shards, a plain aws-sdk-go-v2 loop) on
#     kdsfake, kinesalite and kinesis-mock (20k, 20k and 5k records per
#     iteration): records/s per server; GetRecords also as raw-records/s,
#     read by undecoded signed HTTP requests, which is the server's own speed
#     (the SDK's decoding caps the plain loop at about 200k records/s on
#     2 cores). Goal: kdsfake >= 200,000 records/s and >= 10x kinesalite;
#   - BenchmarkIdleShardsMemory (a process of its own): heap and RSS per idle
#     shard, from queries over 4 and 100 idle shards;
#   - the in-process reader benchmarks of package kds.
# The machine is noisy: each runs BENCH_COUNT times (default 5); quote the
# medians (benchstat prints them when it is available).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh
export SF_SKIP_AWS_CLI=1 CI=true
count="${BENCH_COUNT:-5}"
out="${BENCH_OUT:-bench.out}"
sf_env_up || exit 1
: >"$out"
sf_run go test -run '^$' -bench 'BenchmarkEmulatorRead' -benchtime 2x -count "$count" . | tee -a "$out"
sf_run go test -run '^$' -bench 'Benchmark(GetRecords|PutRecords)Servers' -count "$count" . | tee -a "$out"
sf_run go test -run '^$' -bench 'BenchmarkIdleShardsMemory' -benchtime 1x -count "$count" . | tee -a "$out"
sf_run go test -run '^$' -bench 'BenchmarkPolling' -count "$count" ./kds/ | tee -a "$out"
if sf_run go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out" >"$out.stat" 2>/dev/null; then
  cat "$out.stat"
else
  echo "benchstat unavailable; raw results in $out"
fi
