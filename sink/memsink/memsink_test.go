package memsink_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/sink/memsink"
)

var schema = shardflow.Schema{
	{Name: "data", Type: shardflow.TypeBytes},
	{Name: "partitionKey", Type: shardflow.TypeString},
	{Name: "ts", Type: shardflow.TypeTimestamp},
}

var ts = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestKeepsCopies(t *testing.T) {
	s := memsink.New()
	data := []byte("abc")
	b := &shardflow.Batch{ID: 1, Schema: slices.Clone(schema), Rows: []shardflow.Row{{data, "pk", ts}, {nil, nil, nil}}}
	if err := s.AddBatch(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	// The engine reuses buffers after AddBatch returns.
	data[0] = 'X'
	b.Rows[0][1] = "changed"
	b.Schema[0].Name = "changed"

	want := []shardflow.Batch{{ID: 1, Schema: shardflow.Schema{
		{Name: "data", Type: shardflow.TypeBytes},
		{Name: "partitionKey", Type: shardflow.TypeString},
		{Name: "ts", Type: shardflow.TypeTimestamp},
	}, Rows: []shardflow.Row{{[]byte("abc"), "pk", ts}, {nil, nil, nil}}}}
	if diff := cmp.Diff(want, s.Batches()); diff != "" {
		t.Fatalf("Batches (-want +got):\n%s", diff)
	}
	// Callers cannot change what the sink keeps either.
	got := s.Batches()
	got[0].Rows[0][0].([]byte)[0] = 'Y'
	s.Rows()[0][1] = "changed"
	if diff := cmp.Diff(want, s.Batches()); diff != "" {
		t.Fatalf("Batches after mutating a result (-want +got):\n%s", diff)
	}
}

func TestReplayReplaces(t *testing.T) {
	s := memsink.New()
	add := func(id int64, keys ...string) {
		t.Helper()
		rows := make([]shardflow.Row, len(keys))
		for i, k := range keys {
			rows[i] = shardflow.Row{[]byte(k), k, ts}
		}
		if err := s.AddBatch(t.Context(), &shardflow.Batch{ID: id, Schema: schema, Rows: rows}); err != nil {
			t.Fatal(err)
		}
	}
	add(2, "c")
	add(0, "a")
	add(1, "b-first-attempt")
	add(1, "b")
	add(3)
	var ids []int64
	for _, b := range s.Batches() {
		ids = append(ids, b.ID)
	}
	if diff := cmp.Diff([]int64{0, 1, 2, 3}, ids); diff != "" {
		t.Errorf("batch IDs (-want +got):\n%s", diff)
	}
	var keys []string
	for _, r := range s.Rows() {
		keys = append(keys, r[1].(string))
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, keys); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestConcurrent(t *testing.T) {
	s := memsink.New()
	var wg sync.WaitGroup
	for id := range 16 {
		wg.Go(func() {
			b := &shardflow.Batch{ID: int64(id % 4), Schema: schema, Rows: []shardflow.Row{{[]byte{byte(id)}, "k", ts}}}
			if err := s.AddBatch(t.Context(), b); err != nil {
				t.Error(err)
			}
			s.Rows()
		})
	}
	wg.Wait()
	if n := len(s.Batches()); n != 4 {
		t.Fatalf("%d batches, want 4", n)
	}
}

func TestCanceled(t *testing.T) {
	s := memsink.New()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.AddBatch(ctx, &shardflow.Batch{ID: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("AddBatch = %v, want context.Canceled", err)
	}
	if n := len(s.Batches()); n != 0 {
		t.Fatalf("kept %d batches after a canceled AddBatch", n)
	}
}
