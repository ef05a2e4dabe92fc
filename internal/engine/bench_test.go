package engine

import (
	"context"
	"testing"

	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// BenchmarkOneRecordBatches measures the engine's own work per batch
// (plan, offsets/N, rows, sink call, commits/N, progress) with a memory
// checkpoint, where a batch holds one record: what ProcessingTime(0) does
// with a push source that delivers each record as it arrives. Each batch's
// sink puts the next batch's record, on the next of 4 shards, so the
// engine never waits.
func BenchmarkOneRecordBatches(b *testing.B) {
	shards := []string{"shardId-0", "shardId-1", "shardId-2", "shardId-3"}
	src := newFakeSource("s", shards...)
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	n := 0
	var q *Query
	sink := SinkFunc(func(ctx context.Context, batch *Batch) error {
		if len(batch.Rows) != 1 {
			b.Errorf("batch of %d rows", len(batch.Rows))
		}
		n++
		if n == b.N {
			go q.Stop(context.Background())
			return nil
		}
		src.put(shards[n%len(shards)], 1)
		return nil
	})
	q, err := New(Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{}})
	if err != nil {
		b.Fatal(err)
	}
	src.put(shards[0], 1)
	b.ReportAllocs()
	b.ResetTimer()
	if err := q.Run(ctx); err != nil {
		b.Fatal(err)
	}
	if n != b.N {
		b.Fatalf("%d batches, want %d", n, b.N)
	}
}
