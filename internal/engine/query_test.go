package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// collector is a sink that records every batch it accepted, keyed by id, so
// a replay replaces the earlier attempt (like an idempotent sink).
type collector struct {
	mu      sync.Mutex
	batches map[int64][]string // "shard/seq/sub"
	order   []int64
	fail    func(b *Batch) error
}

func newCollector() *collector { return &collector{batches: map[int64][]string{}} }

func (c *collector) AddBatch(ctx context.Context, b *Batch) error {
	if c.fail != nil {
		if err := c.fail(b); err != nil {
			return err
		}
	}
	var keys []string
	shard, seq, sub := b.Schema.Index(ColShardID), b.Schema.Index(ColSequenceNumber), b.Schema.Index(ColSubSequenceNumber)
	for _, r := range b.Rows {
		keys = append(keys, fmt.Sprintf("%s/%s/%d", r[shard], r[seq], r[sub]))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.batches[b.ID]; !ok {
		c.order = append(c.order, b.ID)
	}
	c.batches[b.ID] = keys
	return nil
}

func (c *collector) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range c.order {
		out = append(out, c.batches[id]...)
	}
	return out
}

func keysOf(shard string, seqs []string) []string {
	var out []string
	for _, s := range seqs {
		out = append(out, shard+"/"+s+"/0")
	}
	return out
}

func run(t *testing.T, cfg Config) error {
	t.Helper()
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q.Run(t.Context())
}

func TestAvailableNowReadsAllThenRestartsContinue(t *testing.T) {
	src := newFakeSource("s", "shardId-0", "shardId-1")
	store := memstore.New()
	sink := newCollector()
	want := append(keysOf("shardId-0", src.put("shardId-0", 10)), keysOf("shardId-1", src.put("shardId-1", 7))...)
	cfg := Config{Store: store, Source: src, Sink: sink, Trigger: Trigger{Kind: KindAvailableNow}}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got := sink.all(); !slices.Equal(got, want) {
		t.Fatalf("first run got %v\nwant %v", got, want)
	}
	// Four restarts with no new data: no batch, no error.
	for i := range 4 {
		if err := run(t, cfg); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
	}
	if len(sink.order) != 1 {
		t.Fatalf("restarts with no data ran batches: %v", sink.order)
	}
	more := keysOf("shardId-1", src.put("shardId-1", 5))
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got := sink.batches[1]; !slices.Equal(got, more) {
		t.Fatalf("batch after restart got %v want %v", got, more)
	}
}

func TestMaxRecordsPerShardCutsBatches(t *testing.T) {
	src := newFakeSource("s", "shardId-0", "shardId-1")
	a := keysOf("shardId-0", src.put("shardId-0", 10))
	b := keysOf("shardId-1", src.put("shardId-1", 10))
	sink := newCollector()
	cfg := Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Kind: KindAvailableNow},
		Limits: Limits{MaxRecordsPerShard: 3}}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		slices.Concat(a[0:3], b[0:3]),
		slices.Concat(a[3:6], b[3:6]),
		slices.Concat(a[6:9], b[6:9]),
		slices.Concat(a[9:], b[9:]),
	}
	for i, w := range want {
		if got := sink.batches[int64(i)]; !slices.Equal(got, w) {
			t.Errorf("batch %d = %v, want %v", i, got, w)
		}
	}
	if len(sink.order) != len(want) {
		t.Errorf("ran %d batches, want %d", len(sink.order), len(want))
	}
	// Readers live across batches: one per shard for the whole run.
	for _, id := range []string{"shardId-0", "shardId-1"} {
		if n := src.openCount(id); n != 1 {
			t.Errorf("shard %s was opened %d times across %d batches, want once", id, n, len(want))
		}
	}
}

func TestUncommittedBatchIsReplayedExactly(t *testing.T) {
	src := newFakeSource("s", "shardId-0", "shardId-1")
	store := memstore.New()
	src.put("shardId-0", 4)
	src.put("shardId-1", 4)
	sink := newCollector()
	cfg := Config{Store: store, Source: src, Sink: sink, Trigger: Trigger{Kind: KindAvailableNow}, Limits: Limits{MaxRecordsPerShard: 3}}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	// Batch 2 fails in the sink; the attempt's rows are remembered.
	src.put("shardId-0", 5)
	var attempt []string
	boom := errors.New("sink down")
	failing := newCollector()
	failing.fail = func(b *Batch) error {
		for _, r := range b.Rows {
			attempt = append(attempt, fmt.Sprintf("%s/%s/%d", r[5], r[3], r[6]))
		}
		return boom
	}
	cfg.Sink = failing
	err := run(t, cfg)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "batch 2") {
		t.Fatalf("failed batch: got %v", err)
	}
	if _, err := store.Read(t.Context(), "commits/2"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("commits/2 written for a failed batch: %v", err)
	}
	// More data arrives before the restart; the replay must not include it.
	late := keysOf("shardId-1", src.put("shardId-1", 2))
	cfg.Sink = sink
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got := sink.batches[2]; !slices.Equal(got, attempt) {
		t.Fatalf("replayed batch 2 = %v\nfirst attempt = %v", got, attempt)
	}
	got := sink.all()
	if !slices.Equal(got[len(got)-2:], late) || len(got) != 4+4+5+2 {
		t.Fatalf("after replay got %d rows, tail %v; want 15 rows ending with %v", len(got), got[len(got)-2:], late)
	}
	assertUnique(t, got)
}

func assertUnique(t *testing.T, keys []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Fatalf("duplicate row %s", k)
		}
		seen[k] = true
	}
}

func TestSecondQueryOnCheckpointIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource("s", "shardId-0")
		src.now = time.Now
		store := memstore.New()
		q1, err := New(Config{Store: store, Source: src, Sink: newCollector()})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- q1.Run(t.Context()) }()
		synctest.Wait()
		before, _ := store.List(t.Context(), "offsets")
		q2, _ := New(Config{Store: store, Source: src, Sink: newCollector()})
		err = q2.Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "checkpoint in use") {
			t.Fatalf("second query: got %v, want checkpoint in use", err)
		}
		after, _ := store.List(t.Context(), "offsets")
		if !slices.Equal(before, after) {
			t.Fatalf("refused query wrote offsets: %v -> %v", before, after)
		}
		if err := q1.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("first query after Stop: %v", err)
		}
	})
}

func TestIdleShardsNeverStallProcessingTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource("s", "shardId-0", "shardId-1", "shardId-2", "shardId-3")
		sink := newCollector()
		q, err := New(Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Interval: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- q.Run(t.Context()) }()
		// Put between triggers (every second on the second), so each
		// trigger finds exactly one put.
		time.Sleep(500 * time.Millisecond)
		var want []string
		for range 5 {
			want = append(want, keysOf("shardId-0", src.put("shardId-0", 3))...)
			time.Sleep(time.Second)
		}
		synctest.Wait()
		for range 5 {
			want = append(want, keysOf("shardId-3", src.put("shardId-3", 2))...)
			time.Sleep(time.Second)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := sink.all(); !slices.Equal(got, want) {
			t.Fatalf("got %v\nwant %v", got, want)
		}
		// One batch per trigger that had data: the cadence holds.
		if n := len(q.Progress()); n != 10 {
			t.Errorf("ran %d batches, want 10", n)
		}
		if err := q.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestChildrenAreReadAfterParentsEnd(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	parent := keysOf("shardId-0", src.put("shardId-0", 5))
	src.split("shardId-0", "shardId-1", "shardId-2")
	c1 := keysOf("shardId-1", src.put("shardId-1", 3))
	c2 := keysOf("shardId-2", src.put("shardId-2", 3))
	sink := newCollector()
	cfg := Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Kind: KindAvailableNow}, Limits: Limits{MaxRecordsPerShard: 2}}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	got := sink.all()
	if !slices.Equal(got[:5], parent) {
		t.Fatalf("parent records must come first: %v", got)
	}
	rest := slices.Clone(got[5:])
	slices.Sort(rest)
	wantRest := slices.Concat(c1, c2)
	slices.Sort(wantRest)
	if !slices.Equal(rest, wantRest) {
		t.Fatalf("children: got %v want %v", rest, wantRest)
	}
	// The parent's last batch is committed before any child record.
	for id, keys := range sink.batches {
		hasParent, hasChild := false, false
		for _, k := range keys {
			hasParent = hasParent || strings.HasPrefix(k, "shardId-0/")
			hasChild = hasChild || !strings.HasPrefix(k, "shardId-0/")
		}
		if hasParent && hasChild {
			t.Errorf("batch %d mixes parent and child records: %v", id, keys)
		}
	}
}

func TestCorruptOffsetsGiveClearErrors(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.put("shardId-0", 3)
	store := memstore.New()
	cfg := Config{Store: store, Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindAvailableNow}}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// An uncommitted, corrupt entry: the error says removing it is safe.
	if err := store.Create(ctx, "offsets/1", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	err := run(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "offsets/1 is corrupt") || !strings.Contains(err.Error(), "removing offsets/1 is safe") {
		t.Fatalf("got %v", err)
	}
	if err := store.Delete(ctx, "offsets/1"); err != nil {
		t.Fatal(err)
	}
	more := keysOf("shardId-0", src.put("shardId-0", 2))
	sink := newCollector()
	cfg.Sink = sink
	if err := run(t, cfg); err != nil {
		t.Fatalf("after removing the corrupt entry: %v", err)
	}
	if !slices.Equal(sink.all(), more) {
		t.Fatalf("got %v want %v", sink.all(), more)
	}
	// A committed batch whose offsets entry was removed: a clear error.
	if err := store.Delete(ctx, "offsets/1"); err != nil {
		t.Fatal(err)
	}
	err = run(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "commits/1 has no offsets/1") {
		t.Fatalf("got %v", err)
	}
}

func TestStreamChangeUnderCheckpointIsRefused(t *testing.T) {
	store := memstore.New()
	if err := run(t, Config{Store: store, Source: newFakeSource("a", "shardId-0"), Sink: newCollector(), Trigger: Trigger{Kind: KindOnce}}); err != nil {
		t.Fatal(err)
	}
	err := run(t, Config{Store: store, Source: newFakeSource("b", "shardId-0"), Sink: newCollector(), Trigger: Trigger{Kind: KindOnce}})
	if err == nil || !strings.Contains(err.Error(), `stream "a", not "b"`) {
		t.Fatalf("got %v", err)
	}
}

func TestPurgeKeepsMinBatchesToRetain(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.put("shardId-0", 10)
	store := memstore.New()
	cfg := Config{Store: store, Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindAvailableNow},
		Limits: Limits{MaxRecordsPerShard: 1, MinBatchesToRetain: 3}}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"offsets", "commits"} {
		names, err := store.List(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		if want := []string{"7", "8", "9"}; !slices.Equal(names, want) {
			t.Errorf("%s = %v, want %v", dir, names, want)
		}
	}
}

func TestProgressRecord(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.put("shardId-0", 4)
	var got []Progress
	cfg := Config{Name: "q1", Store: memstore.New(), Source: src, Sink: newCollector(), SinkDescription: "MemorySink",
		Trigger: Trigger{Kind: KindOnce}, OnProgress: func(p Progress) { got = append(got, p) }}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d progress records", len(got))
	}
	p := got[0]
	if p.Name != "q1" || p.BatchID != 0 || p.NumInputRows != 4 || p.Sources[0].NumInputRows != 4 || p.Sink.NumOutputRows != 4 || p.Sink.Description != "MemorySink" {
		t.Errorf("progress = %+v", p)
	}
	for _, k := range []string{"addBatch", "getBatch", "latestOffset", "queryPlanning", "triggerExecution", "walCommit"} {
		if _, ok := p.DurationMs[k]; !ok {
			t.Errorf("durationMs lacks %s", k)
		}
	}
	if p.Sources[0].Description != "FakeSource[s]" || p.Sources[0].EndOffset["shardId-0"] == nil {
		t.Errorf("source progress = %+v", p.Sources[0])
	}
	for _, k := range []string{"avgMsBehindLatest", "maxMsBehindLatest"} {
		if _, ok := p.Sources[0].Metrics[k]; !ok {
			t.Errorf("metrics lack %s", k)
		}
	}
}

type metricsSource struct{ *fakeSource }

func (metricsSource) ProgressMetrics() map[string]string { return map[string]string{"retries": "7"} }

func TestSourceMetricsReachProgress(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.put("shardId-0", 1)
	var got []Progress
	cfg := Config{Store: memstore.New(), Source: metricsSource{src}, Sink: newCollector(), Trigger: Trigger{Kind: KindOnce},
		OnProgress: func(p Progress) { got = append(got, p) }}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Sources[0].Metrics["retries"] != "7" || got[0].Sources[0].Metrics["avgMsBehindLatest"] == "" {
		t.Fatalf("metrics = %v", got[0].Sources[0].Metrics)
	}
}
