package kds

import "github.com/shardflow/shardflow/internal/engine"

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

// ProgressMetrics returns the source's counters for progress records:
// Kinesis call attempts retried, refused by a throughput quota, and calls
// that failed for good, since the source was created.
func (s *Source) ProgressMetrics() map[string]string { return s.retry.metrics() }
