package engine

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// fakeCoord holds every listed shard, at the given starts; unsafeOnce
// makes the next Unsafe call report these shards.
type fakeCoord struct {
	mu         sync.Mutex
	starts     map[string]Lease
	listed     []ShardInfo // the last listing given to Sync
	unsafeOnce []string
	closed     map[string]Held
	wake       chan struct{}
}

func newFakeCoord() *fakeCoord {
	return &fakeCoord{starts: map[string]Lease{}, wake: make(chan struct{}, 1)}
}

func (c *fakeCoord) Join(ctx context.Context, resolve func(context.Context) (Shared, error)) (Shared, error) {
	return resolve(ctx)
}

func (c *fakeCoord) Sync(ctx context.Context, listed []ShardInfo, mine map[string]Held) (map[string]Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if listed != nil {
		c.listed = listed
	}
	out := map[string]Lease{}
	for _, s := range c.listed {
		l, ok := c.starts[s.ID]
		if !ok {
			l = Lease{Start: Start{Type: TrimHorizon}}
		}
		l.Info = s
		out[s.ID] = l
	}
	return out, nil
}

func (c *fakeCoord) Unsafe(ids []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.unsafeOnce
	c.unsafeOnce = nil
	return u
}

func (c *fakeCoord) Wake() <-chan struct{} { return c.wake }

func (c *fakeCoord) Close(ctx context.Context, release bool, mine map[string]Held) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = maps.Clone(mine)
	return nil
}

// runWorker runs a worker-mode query with ProcessingTime(0) until done
// reports true (or 10 s pass), then stops it.
func runWorker(t *testing.T, cfg Config, done func() bool) error {
	t.Helper()
	cfg.Trigger = Trigger{Kind: KindProcessingTime}
	cfg.Limits.DiscoveryInterval = 5 * time.Millisecond
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { res <- q.Run(t.Context()) }()
	deadline := time.Now().Add(10 * time.Second)
	for !done() && time.Now().Before(deadline) {
		select {
		case err := <-res:
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := q.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	return <-res
}

func rowsAtLeast(c *collector, n int) func() bool { return func() bool { return len(c.all()) >= n } }

func readCommit(t *testing.T, s checkpoint.Store, n string) CommitEntry {
	t.Helper()
	b, err := s.Read(t.Context(), "commits/"+n)
	if err != nil {
		t.Fatal(err)
	}
	var c CommitEntry
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWorkerAbandonsABatchWhoseLeaseIsUnsafe(t *testing.T) {
	src := newFakeSource("s", "shardId-0", "shardId-1")
	want := append(keysOf("shardId-0", src.put("shardId-0", 3)), keysOf("shardId-1", src.put("shardId-1", 3))...)
	co := newFakeCoord()
	co.unsafeOnce = []string{"shardId-1"}
	sink := newCollector()
	store := memstore.New()
	if err := runWorker(t, Config{Store: store, Source: src, Sink: sink, Coordinator: co}, rowsAtLeast(sink, 6)); err != nil {
		t.Fatal(err)
	}
	if _, ok := sink.batches[0]; ok {
		t.Fatal("the sink got batch 0, whose lease was unsafe")
	}
	if c := readCommit(t, store, "0"); !c.Abandoned {
		t.Fatalf("commits/0 = %+v, want abandoned", c)
	}
	got := sink.all()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v once each", got, want)
	}
	// Close gets the committed positions, to release the leases with.
	if co.closed["shardId-1"].Next.Seq == "" {
		t.Fatalf("Close got %v, want each shard's committed position", co.closed)
	}
}

func TestWorkerRestartAbandonsItsUncommittedBatch(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.put("shardId-0", 3)
	store := memstore.New()
	boom := errors.New("sink down")
	failing := newCollector()
	failing.fail = func(*Batch) error { return boom }
	cfg := Config{Store: store, Source: src, Sink: failing, Coordinator: newFakeCoord()}
	if err := runWorker(t, cfg, func() bool { return false }); !errors.Is(err, boom) {
		t.Fatalf("run: %v", err)
	}
	sink := newCollector()
	cfg.Sink, cfg.Coordinator = sink, newFakeCoord()
	if err := runWorker(t, cfg, rowsAtLeast(sink, 3)); err != nil {
		t.Fatal(err)
	}
	if c := readCommit(t, store, "0"); !c.Abandoned {
		t.Fatalf("commits/0 = %+v, want abandoned: positions come from the leases, not the worker's own log", c)
	}
	if len(sink.batches[1]) != 3 {
		t.Fatalf("batch 1 = %v, want the 3 records again", sink.batches[1])
	}
}

func TestWorkerResumesAfterTheDeadOwnersLastCommit(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.put("shardId-0", 4)
	dead := memstore.New()
	first := newCollector()
	if err := runWorker(t, Config{Store: dead, Source: src, Sink: first, Coordinator: newFakeCoord()}, rowsAtLeast(first, 4)); err != nil {
		t.Fatal(err)
	}
	later := keysOf("shardId-0", src.put("shardId-0", 2))
	// The lease still says TRIM_HORIZON: the dead worker's last renewal
	// did not carry its last commit. Its log does.
	co := newFakeCoord()
	co.starts["shardId-0"] = Lease{Start: Start{Type: TrimHorizon}, PrevOwner: "dead"}
	sink := newCollector()
	peers := func(ctx context.Context, worker string) (checkpoint.Store, error) {
		if worker != "dead" {
			t.Errorf("opened the log of %q", worker)
		}
		return dead, nil
	}
	if err := runWorker(t, Config{Store: memstore.New(), Source: src, Sink: sink, Coordinator: co, PeerLogs: peers}, rowsAtLeast(sink, 2)); err != nil {
		t.Fatal(err)
	}
	if got := sink.all(); !slices.Equal(got, later) {
		t.Fatalf("the new owner read %v, want only %v", got, later)
	}
}

// TestWorkerResumesPastTheOwnersLaterBatches: the previous owner went on
// committing batches of its other shards after it stopped reading the
// shard (it lost the lease), so its latest commits do not hold the shard;
// the new owner still resumes after the last batch that did, not from the
// lease's older position.
func TestWorkerResumesPastTheOwnersLaterBatches(t *testing.T) {
	src := newFakeSource("s", "shardId-0", "shardId-1")
	src.put("shardId-0", 4)
	prev := memstore.New()
	first := newCollector()
	if err := runWorker(t, Config{Store: prev, Source: src, Sink: first, Coordinator: newFakeCoord()}, rowsAtLeast(first, 4)); err != nil {
		t.Fatal(err)
	}
	// The same worker without shardId-0 commits more batches of shardId-1.
	rest := newFakeSource("s", "shardId-1")
	rest.put("shardId-1", 3)
	second := newCollector()
	if err := runWorker(t, Config{Store: prev, Source: rest, Sink: second, Coordinator: newFakeCoord()}, rowsAtLeast(second, 3)); err != nil {
		t.Fatal(err)
	}
	if n := len(second.batches); n == 0 {
		t.Fatal("the previous owner committed no batch without shardId-0")
	}
	later := keysOf("shardId-0", src.put("shardId-0", 2))
	co := newFakeCoord()
	co.starts["shardId-0"] = Lease{Start: Start{Type: TrimHorizon}, PrevOwner: "prev"}
	sink := newCollector()
	peers := func(ctx context.Context, worker string) (checkpoint.Store, error) { return prev, nil }
	if err := runWorker(t, Config{Store: memstore.New(), Source: src, Sink: sink, Coordinator: co, PeerLogs: peers}, rowsAtLeast(sink, 2)); err != nil {
		t.Fatal(err)
	}
	if got := sink.all(); !slices.Equal(got, later) {
		t.Fatalf("the new owner read %v, want only %v", got, later)
	}
}

func TestWorkerModeRunsContinuously(t *testing.T) {
	_, err := New(Config{Store: memstore.New(), Source: newFakeSource("s"), Sink: newCollector(), Coordinator: newFakeCoord(), Trigger: Trigger{Kind: KindAvailableNow}})
	if err == nil || !strings.Contains(err.Error(), "processing-time") {
		t.Fatalf("worker mode with AvailableNow: %v", err)
	}
}
