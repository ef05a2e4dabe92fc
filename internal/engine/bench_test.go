package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// BenchmarkOneRecordBatches measures the engine's own work per batch
// (plan, offsets/N, rows, sink call, commits/N, progress) with a memory
// checkpoint, where a batch holds one record: what ProcessingTime(0) does
// with a push source that delivers each record as it arrives. Each batch's
// sink puts the next batch's record, on the next of 4 shards, so the
// engine never waits.
func BenchmarkOneRecordBatches(b *testing.B) { benchSmallBatches(b, 1, 4) }

// BenchmarkOneRecordBatchesWide: the same on 100 shards, where every
// batch's offsets entry and progress record list every shard.
func BenchmarkOneRecordBatchesWide(b *testing.B) { benchSmallBatches(b, 1, 100) }

// BenchmarkOneRecordBatches1000: 1000 shards, where the offsets entry
// alone is about 160 KB.
func BenchmarkOneRecordBatches1000(b *testing.B) { benchSmallBatches(b, 1, 1000) }

func BenchmarkTenRecordBatches(b *testing.B) { benchSmallBatches(b, 10, 4) }

func benchSmallBatches(b *testing.B, per, nShards int) {
	shards := make([]string, nShards)
	for i := range shards {
		shards[i] = fmt.Sprintf("shardId-%012d", i)
	}
	src := newFakeSource("s", shards...)
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	n := 0
	var q *Query
	sink := SinkFunc(func(ctx context.Context, batch *Batch) error {
		if len(batch.Rows) != per {
			b.Errorf("batch of %d rows", len(batch.Rows))
		}
		n++
		if n == b.N {
			go q.Stop(context.Background())
			return nil
		}
		src.put(shards[n%len(shards)], per)
		return nil
	})
	q, err := New(Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{}})
	if err != nil {
		b.Fatal(err)
	}
	src.put(shards[0], per)
	b.ReportAllocs()
	b.ResetTimer()
	if err := q.Run(ctx); err != nil {
		b.Fatal(err)
	}
	if n != b.N {
		b.Fatalf("%d batches, want %d", n, b.N)
	}
}
