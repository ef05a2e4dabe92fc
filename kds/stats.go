package kds

import (
	"maps"
	"sync"
	"sync/atomic"
)

// CallStats counts what happened to one Kinesis API call (ListShards,
// GetRecords, GetShardIterator, SubscribeToShard, PutRecords, ...) since a
// source or sink was created.
type CallStats struct {
	// Retries are attempts that failed and were tried again.
	Retries int64
	// Throttles are attempts refused by a throughput quota.
	Throttles int64
	// Failures are calls that failed for good.
	Failures int64
}

// SourceStats are a Source's counters, for metrics (package metrics/prom).
type SourceStats struct {
	// Calls are the counters by API call name.
	Calls map[string]CallStats
	// Subscriptions are SubscribeToShard calls made (enhanced fan-out).
	Subscriptions int64
	// Renewals are subscriptions renewed after the previous one ended
	// normally (Kinesis ends each after 5 minutes).
	Renewals int64
}

// SinkStats are a Sink's counters, for metrics (package metrics/prom).
type SinkStats struct {
	// Calls are the counters by API call name (PutRecords).
	Calls map[string]CallStats
	// Records and Bytes are the records, and their data bytes, written.
	Records, Bytes int64
	// RecordRetries are records sent again after PutRecords reported them
	// failed (FailedRecordCount > 0).
	RecordRetries int64
	// BatchFailures are batches AddBatch failed.
	BatchFailures int64
}

// Stats returns the source's counters. It is safe for concurrent use.
func (s *Source) Stats() SourceStats {
	return SourceStats{
		Calls:         s.retry.callStats(),
		Subscriptions: s.subscribes.Load(),
		Renewals:      s.renewals.Load(),
	}
}

// Stats returns the sink's counters. It is safe for concurrent use.
func (s *Sink) Stats() SinkStats {
	return SinkStats{
		Calls:         s.retry.callStats(),
		Records:       s.records.Load(),
		Bytes:         s.bytes.Load(),
		RecordRetries: s.recordRetries.Load(),
		BatchFailures: s.batchFailures.Load(),
	}
}

// opStats are one API call's counters.
type opStats struct {
	retries, throttles, failures atomic.Int64
}

// callCounters are a retrier's counters by API call.
type callCounters struct {
	mu  sync.Mutex
	ops map[string]*opStats
}

func (c *callCounters) op(name string) *opStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.ops[name]
	if !ok {
		if c.ops == nil {
			c.ops = map[string]*opStats{}
		}
		o = &opStats{}
		c.ops[name] = o
	}
	return o
}

// countRetry, countThrottle and countFailure add to the totals of the
// progress metrics and to op's counters.
func (r *retrier) countRetry(op string) {
	r.retries.Add(1)
	r.calls.op(op).retries.Add(1)
}

func (r *retrier) countThrottle(op string) {
	r.throttles.Add(1)
	r.calls.op(op).throttles.Add(1)
}

func (r *retrier) countFailure(op string) {
	r.failures.Add(1)
	r.calls.op(op).failures.Add(1)
}

func (r *retrier) callStats() map[string]CallStats {
	r.calls.mu.Lock()
	ops := maps.Clone(r.calls.ops)
	r.calls.mu.Unlock()
	out := make(map[string]CallStats, len(ops))
	for name, o := range ops {
		out[name] = CallStats{Retries: o.retries.Load(), Throttles: o.throttles.Load(), Failures: o.failures.Load()}
	}
	return out
}
