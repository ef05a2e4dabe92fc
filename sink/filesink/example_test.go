package filesink_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/sink/filesink"
)

func Example() {
	dir, err := os.MkdirTemp("", "filesink-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	sink, err := filesink.New(filesink.Config{Path: dir, Format: "json"})
	if err != nil {
		log.Fatal(err)
	}
	batch := &shardflow.Batch{
		ID: 42,
		Schema: shardflow.Schema{
			{Name: "partitionKey", Type: shardflow.TypeString},
			{Name: "data", Type: shardflow.TypeBytes},
			{Name: "approximateArrivalTimestamp", Type: shardflow.TypeTimestamp},
		},
		Rows: []shardflow.Row{
			{"user-17", []byte("hi"), time.Date(2026, 3, 1, 12, 30, 5, 250e6, time.UTC)},
			{"user-4", nil, time.Date(2026, 3, 1, 12, 30, 6, 0, time.UTC)},
		},
	}
	ctx := context.Background()
	if err := sink.AddBatch(ctx, batch); err != nil {
		log.Fatal(err)
	}
	// A replay of batch 42 (after a crash) replaces the file.
	if err := sink.AddBatch(ctx, batch); err != nil {
		log.Fatal(err)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Printf("%s:\n%s", filepath.Base(f), data)
	}
	// Output:
	// part-00000000000000000042.json:
	// {"partitionKey":"user-17","data":"aGk=","approximateArrivalTimestamp":"2026-03-01T12:30:05.25Z"}
	// {"partitionKey":"user-4","data":null,"approximateArrivalTimestamp":"2026-03-01T12:30:06Z"}
}

func Example_csv() {
	dir, err := os.MkdirTemp("", "filesink-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	sink, err := filesink.New(filesink.Config{Path: dir, Format: "csv"})
	if err != nil {
		log.Fatal(err)
	}
	batch := &shardflow.Batch{
		ID: 7,
		Schema: shardflow.Schema{
			{Name: "partitionKey", Type: shardflow.TypeString},
			{Name: "n", Type: shardflow.TypeInt64},
		},
		Rows: []shardflow.Row{{"a,b", int64(1)}, {"c", nil}},
	}
	if err := sink.AddBatch(context.Background(), batch); err != nil {
		log.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, sink.FileName(7)))
	fmt.Print(string(data))
	// Output:
	// partitionKey,n
	// "a,b",1
	// c,
}
