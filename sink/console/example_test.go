package console_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/sink/console"
)

func Example() {
	sink, err := console.New(os.Stdout, console.Config{NumRows: 2})
	if err != nil {
		log.Fatal(err)
	}
	arrival := time.Date(2026, 3, 1, 12, 30, 5, 250e6, time.UTC)
	batch := &shardflow.Batch{
		ID: 3,
		Schema: shardflow.Schema{
			{Name: "partitionKey", Type: shardflow.TypeString},
			{Name: "data", Type: shardflow.TypeBytes},
			{Name: "approximateArrivalTimestamp", Type: shardflow.TypeTimestamp},
		},
		Rows: []shardflow.Row{
			{"user-17", []byte(`{"n":1}`), arrival},
			{"user-4", []byte("hi"), nil},
			{"user-9", []byte("not shown"), arrival},
		},
	}
	if err := sink.AddBatch(context.Background(), batch); err != nil {
		log.Fatal(err)
	}
	// Output:
	// -------------------------------------------
	// Batch: 3
	// -------------------------------------------
	// +------------+--------------------+---------------------------+
	// |partitionKey|                data|approximateArrivalTimestamp|
	// +------------+--------------------+---------------------------+
	// |     user-17|[7B 22 6E 22 3A 3...|       2026-03-01 12:30:...|
	// |      user-4|             [68 69]|                       NULL|
	// +------------+--------------------+---------------------------+
	// only showing top 2 rows
}

// With NoTruncate, cells are whole and left-aligned, as with Spark's
// truncate=false.
func Example_noTruncate() {
	sink, err := console.New(os.Stdout, console.Config{NoTruncate: true})
	if err != nil {
		log.Fatal(err)
	}
	batch := &shardflow.Batch{
		ID: 0,
		Schema: shardflow.Schema{
			{Name: "shardId", Type: shardflow.TypeString},
			{Name: "sequenceNumber", Type: shardflow.TypeString},
			{Name: "approximateArrivalTimestamp", Type: shardflow.TypeTimestamp},
		},
		Rows: []shardflow.Row{
			{"shardId-000000000000", "49654926387419520461231836155226578457606744128593821698", time.Date(2026, 3, 1, 12, 30, 5, 0, time.UTC)},
		},
	}
	if err := sink.AddBatch(context.Background(), batch); err != nil {
		log.Fatal(err)
	}
	// Output:
	// -------------------------------------------
	// Batch: 0
	// -------------------------------------------
	// +--------------------+--------------------------------------------------------+---------------------------+
	// |shardId             |sequenceNumber                                          |approximateArrivalTimestamp|
	// +--------------------+--------------------------------------------------------+---------------------------+
	// |shardId-000000000000|49654926387419520461231836155226578457606744128593821698|2026-03-01 12:30:05.000    |
	// +--------------------+--------------------------------------------------------+---------------------------+
}
