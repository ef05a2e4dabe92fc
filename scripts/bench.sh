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
#   - the in-process reader benchmarks of package kds;
#   - BenchmarkDeaggregate (kds/kpl): 50 KB KPL aggregates of 100x500 B
#     records, zero-copy parser vs a straightforward decoder (ns/record,
#     allocs: allocs/op over 100 records); BenchmarkSinkAggregation: the
#     aggregating vs the plain sink under kdsfake's write quotas (records/s,
#     Kinesis records per user record);
#   - BenchmarkEndToEndLatency: PutRecord -> sink latency with
#     ProcessingTime(0), enhanced fan-out and polling in the same run, on
#     kdsfake (over TLS and HTTP/2, in a child process with the producer,
#     1000 records/s): efo-/polling-p50-ms and -p99-ms, and CPU-seconds per
#     million records (efo-/polling-cpu-s/Mrec) of the query's process;
#     with the checkpoint in memory and in a local directory (fsync'd
#     around every batch), (put=50) with the records written 50 per
#     PutRecords call to one shard, so that each EFO event carries about
#     what one polling call returns, and (shards=100/rate=200) on a wide,
#     mostly idle stream. floor-cpu-s/Mrec: the same process only reading
#     one event-sized chunk per put call, on the same schedule, from a plain
#     TCP connection: a lower bound for any enhanced fan-out client.
#     Goal: EFO p99 at most 10 ms over kdsfake's push
#     (efo-arrival-p99-ms), and efo-cpu-s/Mrec <= polling-cpu-s/Mrec.
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
sf_run go test -run '^$' -bench 'BenchmarkEndToEndLatency' -benchtime 1x -count "$count" . | tee -a "$out"
# Batch latency and throughput before, during and after a split of all 16
# shards under a steady load; the longest a child waited for its first batch.
sf_run go test -run '^$' -bench 'BenchmarkReshardUnderLoad' -benchtime 1x -count "$count" . | tee -a "$out"
# The empty-batch loop (write offsets, commit, purge) on fsstore, s3store
# (gofakes3) and ddbstore (dynalite): p50/p99 and calls per batch.
sf_run go test -run '^$' -bench 'BenchmarkEmptyBatchLoop' -count "$count" ./checkpoint/ckptopen/ | tee -a "$out"
# Worker mode: 1, 2 and 4 worker processes over a 64-shard kdsfake stream
# sharing a dynalite lease table (1 s trigger, 64k records/s written;
# SHARDFLOW_BENCH_TRIGGER=200ms for a shorter trigger): records/s, CPU-seconds per million records,
# lease-table calls per second in steady state, time to rebalance after a
# join and after a crash. Goal: 4 workers within 1.2x of 1 worker's CPU per
# record; at most one lease-table write per lease per renewal interval.
sf_run go test -run '^$' -bench 'BenchmarkWorkers' -benchtime 1x -count "$count" ./internal/cli/ | tee -a "$out"
# KPL: de-aggregation (zero-copy vs a straightforward decoder) and the
# aggregating sink vs the plain sink on kdsfake with write quotas on.
sf_run go test -run '^$' -bench 'BenchmarkDeaggregate' -count "$count" ./kds/kpl/ | tee -a "$out"
sf_run go test -run '^$' -bench 'BenchmarkSinkAggregation' -benchtime 2x -count "$count" ./kds/ | tee -a "$out"
# BenchmarkBlogQuery (package batchsql): the blog's parse-and-project SQL on
# batches of 100,000 ~100-byte JSON events through DuckDB, next to a
# hand-written encoding/json Go version; rows/s for both. Goal: >= 1M rows/s
# and >= 2x encoding/json.
sf_run go test -run '^$' -bench 'BenchmarkBlogQuery' -benchtime 5x -count "$count" ./batchsql/ | tee -a "$out"
if sf_run go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out" >"$out.stat" 2>/dev/null; then
  cat "$out.stat"
else
  echo "benchstat unavailable; raw results in $out"
fi
