package shardflow

import (
	"context"

	"github.com/shardflow/shardflow/internal/engine"
)

// Batch is one micro-batch: its stable ID, its schema and its rows. A replayed
// batch has the same ID and the same rows, so sinks can be idempotent. Row
// values are valid only until the sink returns; copy them to keep them.
type Batch = engine.Batch

// Schema is an ordered list of columns.
type Schema = engine.Schema

// Column is one column of a Schema.
type Column = engine.Column

// ColumnType is a column's type.
type ColumnType = engine.ColumnType

// Row is one row of a Batch; Row[i] has the Go type of Schema[i].Type or is nil.
type Row = engine.Row

// Column types and the Go type of their values.
const (
	TypeBytes     = engine.TypeBytes     // []byte
	TypeString    = engine.TypeString    // string
	TypeInt64     = engine.TypeInt64     // int64
	TypeFloat64   = engine.TypeFloat64   // float64
	TypeBool      = engine.TypeBool      // bool
	TypeTimestamp = engine.TypeTimestamp // time.Time
)

// SourceSchema returns the schema of rows read from Kinesis: the Spark
// connector's data, streamName, partitionKey, sequenceNumber and
// approximateArrivalTimestamp, plus shardId and subSequenceNumber.
func SourceSchema() Schema { return engine.SourceSchema() }

// Sink receives every batch. AddBatch must tolerate a replay of the same
// batch ID (after a crash between the offset and commit logs).
type Sink interface {
	AddBatch(ctx context.Context, b *Batch) error
}

// ForEachBatch adapts a function to a Sink, like Spark's foreachBatch. The
// function gets the batch ID and the rows; use the ID to make writes
// idempotent.
func ForEachBatch(fn func(ctx context.Context, b *Batch) error) Sink {
	return engine.SinkFunc(fn)
}
