package engine

import (
	"context"
	"fmt"
	"time"
)

// Record is one user record read from a shard. After KPL de-aggregation
// (a later issue) each sub-record is its own Record sharing the outer
// SequenceNumber and ApproximateArrivalTimestamp.
//
// (ShardID, SequenceNumber, SubSequenceNumber) is unique within a stream.
type Record struct {
	Data                        []byte
	PartitionKey                string
	ExplicitHashKey             string
	SequenceNumber              string
	SubSequenceNumber           int64
	ApproximateArrivalTimestamp time.Time
	ShardID                     string
}

// Size is the number of bytes the record holds in a buffer; it bounds memory.
func (r *Record) Size() int {
	return len(r.Data) + len(r.PartitionKey) + len(r.ExplicitHashKey) + len(r.SequenceNumber) + len(r.ShardID) + 64
}

// Position names one record of a shard: its sequence number and, for
// records packed in a KPL aggregate, its sub-sequence number.
type Position struct {
	Seq string `json:"seq"`
	Sub int64  `json:"sub"`
}

// StartType is how a shard's reading begins. The names are the Kinesis
// iterator types; LATEST never appears here because it is resolved to
// AT_TIMESTAMP at the query's first start (invariant 5).
type StartType string

// The start types kept in a checkpoint.
const (
	TrimHorizon         StartType = "TRIM_HORIZON"
	AtTimestamp         StartType = "AT_TIMESTAMP"
	AtSequenceNumber    StartType = "AT_SEQUENCE_NUMBER"
	AfterSequenceNumber StartType = "AFTER_SEQUENCE_NUMBER"
)

// Start is where a shard reader begins. For AfterSequenceNumber the record
// at (Seq, Sub) itself is excluded and reading resumes right after it; for
// AtSequenceNumber it is included.
type Start struct {
	Type      StartType `json:"type"`
	Seq       string    `json:"seq,omitempty"`
	Sub       int64     `json:"sub,omitempty"`
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// String describes the start for messages: its type, and its sequence
// number or timestamp.
func (s Start) String() string {
	switch s.Type {
	case AtTimestamp:
		return "AT_TIMESTAMP " + s.Timestamp.UTC().Format(time.RFC3339Nano)
	case AtSequenceNumber, AfterSequenceNumber:
		return fmt.Sprintf("%s %s/%d", s.Type, s.Seq, s.Sub)
	}
	return string(s.Type)
}

// After returns the start that resumes right after p.
func After(p Position) Start {
	return Start{Type: AfterSequenceNumber, Seq: p.Seq, Sub: p.Sub}
}

// ShardInfo is what ListShards tells about one shard.
type ShardInfo struct {
	ID string `json:"id"`
	// Parents are ParentShardId and AdjacentParentShardId when present.
	Parents []string `json:"parents,omitempty"`
	// Closed is true when the shard has an EndingSequenceNumber: it takes
	// no new writes, but may still hold unread records.
	Closed                 bool   `json:"closed,omitempty"`
	StartingSequenceNumber string `json:"startingSequenceNumber,omitempty"`
	HashKeyStart           string `json:"hashKeyStart,omitempty"`
	HashKeyEnd             string `json:"hashKeyEnd,omitempty"`
}

// InitialPosition is the configured kinesis.startingPosition resolved once at
// a query's first start and kept in the checkpoint metadata, so a restart
// never re-resolves LATEST (invariant 5).
type InitialPosition struct {
	// Type is TRIM_HORIZON or AT_TIMESTAMP.
	Type      StartType `json:"type"`
	Timestamp time.Time `json:"timestamp,omitzero"`
	// Shards holds explicit per-shard starts (the JSON form of
	// kinesis.startingPosition); shards not listed use Type/Timestamp.
	Shards map[string]Start `json:"shards,omitempty"`
}

// StartFor returns where a shard that is not yet in the checkpoint begins.
func (p InitialPosition) StartFor(shardID string) Start {
	if s, ok := p.Shards[shardID]; ok {
		return s
	}
	return Start{Type: p.Type, Timestamp: p.Timestamp}
}

// Source is a Kinesis-like stream the engine plans batches from. It is
// defined here, where it is used; kds.Source implements it.
type Source interface {
	// Describe is the source's description in progress records,
	// e.g. "KinesisSource[stream]".
	Describe() string
	// Stream is the stream name written to every row's streamName column.
	Stream() string
	// ResolveInitial resolves kinesis.startingPosition at the query's first
	// start; now is the engine's clock.
	ResolveInitial(ctx context.Context, now time.Time) (InitialPosition, error)
	// ListShards lists every shard of the stream, open and closed, with
	// lineage. Implementations cache it for kinesis.describeShardInterval.
	ListShards(ctx context.Context) ([]ShardInfo, error)
	// OpenShard starts a long-lived reader for one shard at from. The reader
	// runs until Close or until ctx is done.
	OpenShard(ctx context.Context, shardID string, from Start) (ShardReader, error)
}

// MetricsReporter is a Source that adds its own counters (API retries,
// throttles, ...) to the metrics of every progress record.
type MetricsReporter interface {
	ProgressMetrics() map[string]string
}

// ShardReader is one shard's long-lived reader with a bounded buffer
// (invariant 8). Only the engine's planner decides what a batch contains;
// the reader never writes checkpoints (invariant 1).
type ShardReader interface {
	// Peek returns at most max buffered records, oldest first, without
	// removing them. The slice is valid until the next Release.
	Peek(max int) Snapshot
	// Release drops the first n records, once the batch holding them is
	// committed.
	Release(n int)
	// Ready receives a value whenever the buffer or the reader's state
	// changes (new records, tail reached, shard end, error). It never closes.
	Ready() <-chan struct{}
	// Close stops the reader and waits for its goroutine to exit.
	Close()
}

// DataLossError is a reader's report that records it had to read are gone:
// the shard was removed (trimmed by retention) before it was read to its
// end, or the record the reader resumes after was trimmed, so the records
// between it and the first one still available are lost. The engine fails
// the query with it when kinesis.failOnDataLoss is true, and otherwise
// logs and counts it and goes on from the earliest available position.
type DataLossError struct {
	ShardID string
	// After is the last record read before the loss.
	After *Position
	// FirstAvailable is the first record still available, when known.
	FirstAvailable *Position
	// Gone is true when the shard itself no longer exists.
	Gone bool
	// Err is the service's answer, when there was one.
	Err error
}

func (e *DataLossError) Error() string {
	after := "its start"
	if e.After != nil {
		after = fmt.Sprintf("sequence number %s/%d", e.After.Seq, e.After.Sub)
	}
	msg := fmt.Sprintf("data loss on shard %s: ", e.ShardID)
	switch {
	case e.Gone:
		msg += "the shard no longer exists (trimmed by the retention period?); its records after " + after + " are lost"
	case e.FirstAvailable != nil:
		msg += fmt.Sprintf("the records after %s up to %s/%d were trimmed by the retention period before they were read", after, e.FirstAvailable.Seq, e.FirstAvailable.Sub)
	default:
		msg += "records after " + after + " were trimmed before they were read"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *DataLossError) Unwrap() error { return e.Err }

// Snapshot is a point-in-time view of a shard reader.
type Snapshot struct {
	// Records are the buffered records (at most the max given to Peek).
	Records []Record
	// Buffered is the total number of buffered records, which may exceed
	// len(Records).
	Buffered int
	// Ended is true when the shard is closed and read to its end: no record
	// follows the buffered ones.
	Ended bool
	// Full is true when the buffer is at its record or byte bound: the
	// reader waits for a Release before it fetches more.
	Full bool
	// AtTail is true when the reader has seen an empty page with
	// MillisBehindLatest == 0 since its last buffered record: it is caught up.
	AtTail bool
	// MillisBehindLatest is the last value GetRecords reported (-1: unknown).
	MillisBehindLatest int64
	// Children are child shards the service reported at shard end, if any.
	Children []ShardInfo
	// Err is a failure the reader could not retry past. It names the shard
	// and the API call.
	Err error
}
