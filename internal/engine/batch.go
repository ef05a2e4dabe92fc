package engine

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ColumnType is the type of a batch column. Values in a Row have the Go type
// named next to each constant, or are nil.
type ColumnType int

// Column types.
const (
	TypeBytes     ColumnType = iota + 1 // []byte
	TypeString                          // string
	TypeInt64                           // int64
	TypeFloat64                         // float64
	TypeBool                            // bool
	TypeTimestamp                       // time.Time
)

// String returns the Spark SQL name of the type.
func (t ColumnType) String() string {
	switch t {
	case TypeBytes:
		return "binary"
	case TypeString:
		return "string"
	case TypeInt64:
		return "bigint"
	case TypeFloat64:
		return "double"
	case TypeBool:
		return "boolean"
	case TypeTimestamp:
		return "timestamp"
	}
	return fmt.Sprintf("ColumnType(%d)", int(t))
}

// Column is one column of a batch.
type Column struct {
	Name string
	Type ColumnType
}

// Schema is an ordered list of columns.
type Schema []Column

// Index returns the position of the named column, or -1. Names match
// case-insensitively, as in Spark SQL.
func (s Schema) Index(name string) int {
	for i, c := range s {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// Source column names, as in the Spark connector plus shardId and
// subSequenceNumber.
const (
	ColData                        = "data"
	ColStreamName                  = "streamName"
	ColPartitionKey                = "partitionKey"
	ColSequenceNumber              = "sequenceNumber"
	ColApproximateArrivalTimestamp = "approximateArrivalTimestamp"
	ColShardID                     = "shardId"
	ColSubSequenceNumber           = "subSequenceNumber"
)

// SourceSchema returns the schema of rows read from Kinesis.
func SourceSchema() Schema {
	return Schema{
		{ColData, TypeBytes},
		{ColStreamName, TypeString},
		{ColPartitionKey, TypeString},
		{ColSequenceNumber, TypeString},
		{ColApproximateArrivalTimestamp, TypeTimestamp},
		{ColShardID, TypeString},
		{ColSubSequenceNumber, TypeInt64},
	}
}

// Row is one row; Row[i] holds a value of Schema[i].Type or nil.
type Row []any

// Batch is one micro-batch handed to a sink. ID is stable: a replayed batch
// has the same ID and the same rows (invariant 2), so sinks can be
// idempotent. Row values (byte slices in particular) are valid only until
// AddBatch returns; copy them to keep them.
type Batch struct {
	ID int64
	// Time is the batch's timestamp, recorded in offsets/N when the batch
	// was planned, so a replay has the same Time (Spark's
	// batchTimestampMs; SQL's current_timestamp). Zero when unknown.
	Time   time.Time
	Schema Schema
	Rows   []Row
}

// Sink receives every batch. AddBatch must tolerate a replay of the same ID.
type Sink interface {
	AddBatch(ctx context.Context, b *Batch) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, b *Batch) error

// AddBatch calls f.
func (f SinkFunc) AddBatch(ctx context.Context, b *Batch) error { return f(ctx, b) }

// RowsFromRecords turns source records into rows of SourceSchema.
func RowsFromRecords(stream string, recs []Record) []Row {
	rows := make([]Row, len(recs))
	cells := make([]any, 7*len(recs)) // one allocation for all cells
	for i := range recs {
		r := &recs[i]
		row := cells[i*7 : i*7+7 : i*7+7]
		row[0] = r.Data
		row[1] = stream
		row[2] = r.PartitionKey
		row[3] = r.SequenceNumber
		row[4] = r.ApproximateArrivalTimestamp
		row[5] = r.ShardID
		row[6] = r.SubSequenceNumber
		rows[i] = row
	}
	return rows
}
