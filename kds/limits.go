package kds

import (
	"strconv"

	"github.com/shardflow/shardflow/internal/engine"
)

// BatchLimits returns the per-batch limits carried by the source's options
// (kinesis.maxFetchRecordsPerShard, kinesis.maxFetchTimePerShardSec,
// kinesis.minBatchesToRetain, kinesis.failOnDataLoss). shardflow.NewQuery
// uses them unless QueryConfig.Limits is set.
func (s *Source) BatchLimits() engine.Limits {
	return engine.Limits{
		MaxRecordsPerShard:   s.cfg.MaxFetchRecordsPerShard,
		MaxFetchTimePerShard: s.cfg.MaxFetchTimePerShard,
		MinBatchesToRetain:   s.cfg.MinBatchesToRetain,
		FailOnDataLoss:       s.cfg.FailOnDataLoss,
	}
}

// ProgressMetrics returns the source's counters for progress records,
// since the source was created: Kinesis call attempts retried, refused by
// a throughput quota, and calls that failed for good; user records taken
// out of KPL aggregates (kplDeaggregatedRecords), records with the KPL
// magic that failed its checks and were emitted whole
// (kplCorruptAggregates), and sub-records dropped because their hash key
// is outside the shard's range (kplFilteredSubRecords).
func (s *Source) ProgressMetrics() map[string]string {
	m := s.retry.metrics()
	m["kplDeaggregatedRecords"] = strconv.FormatInt(s.kpl.deaggregated.Load(), 10)
	m["kplCorruptAggregates"] = strconv.FormatInt(s.kpl.corrupt.Load(), 10)
	m["kplFilteredSubRecords"] = strconv.FormatInt(s.kpl.filtered.Load(), 10)
	return m
}
