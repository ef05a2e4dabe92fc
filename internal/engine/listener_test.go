package engine

import (
	"errors"
	"slices"
	"testing"

	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// events records what a Listener receives, in order.
type events struct {
	log        []string
	started    []QueryStarted
	progress   []Progress
	terminated []QueryTerminated
}

func (e *events) listener() Listener {
	return Listener{
		QueryStarted:    func(s QueryStarted) { e.log = append(e.log, "started"); e.started = append(e.started, s) },
		QueryProgress:   func(p Progress) { e.log = append(e.log, "progress"); e.progress = append(e.progress, p) },
		QueryTerminated: func(t QueryTerminated) { e.log = append(e.log, "terminated"); e.terminated = append(e.terminated, t) },
	}
}

func TestListenersGetStartedProgressPerBatchAndTerminated(t *testing.T) {
	src := newFakeSource("s", "shardId-0", "shardId-1")
	src.put("shardId-0", 5)
	src.put("shardId-1", 3)
	store := memstore.New()
	var a, b events
	var onProgress []int64
	cfg := Config{
		Name: "q", Store: store, Source: src, Sink: newCollector(), SinkDescription: "Collector",
		Trigger: Trigger{Kind: KindAvailableNow}, Limits: Limits{MaxRecordsPerShard: 2},
		Listeners:  []Listener{a.listener(), b.listener(), {}}, // an empty listener is fine
		OnProgress: func(p Progress) { onProgress = append(onProgress, p.BatchID) },
	}
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	committed := q.Progress()
	if len(committed) != 3 { // ceil(5/2) batches
		t.Fatalf("%d batches, want 3", len(committed))
	}
	for _, e := range []*events{&a, &b} {
		want := []string{"started", "progress", "progress", "progress", "terminated"}
		if !slices.Equal(e.log, want) {
			t.Fatalf("events %v, want %v", e.log, want)
		}
		s := e.started[0]
		if s.ID != q.ID() || s.RunID != q.RunID() || s.Name != "q" || s.Source != "FakeSource[s]" || s.Sink != "Collector" || s.NextBatch != 0 {
			t.Errorf("started = %+v", s)
		}
		var rows int64
		for i, p := range e.progress {
			if p.BatchID != int64(i) || p.BatchID != committed[i].BatchID {
				t.Errorf("progress %d has batch %d", i, p.BatchID)
			}
			var shardRows int64
			for id, sp := range p.Sources[0].Shards {
				shardRows += sp.NumInputRows
				if sp.State == "" || sp.NumInputBytes < 0 {
					t.Errorf("batch %d shard %s: %+v", p.BatchID, id, sp)
				}
			}
			if shardRows != p.NumInputRows {
				t.Errorf("batch %d: shard rows add up to %d, numInputRows %d", p.BatchID, shardRows, p.NumInputRows)
			}
			rows += p.NumInputRows
		}
		if rows != 8 {
			t.Errorf("progress counts %d rows, want 8", rows)
		}
		if tm := e.terminated[0]; tm.Err != nil || tm.ID != q.ID() || tm.RunID != q.RunID() {
			t.Errorf("terminated = %+v", tm)
		}
	}
	if !slices.Equal(onProgress, []int64{0, 1, 2}) {
		t.Errorf("OnProgress got batches %v", onProgress)
	}

	// A failing batch: the listener gets terminated with Run's error.
	src.put("shardId-0", 1)
	sink := newCollector()
	boom := errors.New("sink is down")
	sink.fail = func(*Batch) error { return boom }
	var c events
	q2, err := New(Config{Name: "q", Store: store, Source: src, Sink: sink, Trigger: Trigger{Kind: KindOnce}, Listeners: []Listener{c.listener()}})
	if err != nil {
		t.Fatal(err)
	}
	runErr := q2.Run(t.Context())
	if !errors.Is(runErr, boom) {
		t.Fatalf("Run = %v", runErr)
	}
	if want := []string{"started", "terminated"}; !slices.Equal(c.log, want) {
		t.Fatalf("events %v, want %v", c.log, want)
	}
	if got := c.terminated[0].Err; got != runErr {
		t.Errorf("terminated with %v, want Run's error %v", got, runErr)
	}
	if c.started[0].NextBatch != 3 {
		t.Errorf("restart starts at batch %d, want 3", c.started[0].NextBatch)
	}
}

// A query that fails before it started (the checkpoint is locked) still
// reports terminated.
func TestListenerTerminatedWithoutStart(t *testing.T) {
	store := memstore.New()
	release, err := store.Lock(t.Context(), "other")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	src := newFakeSource("s", "shardId-0")
	var e events
	q, err := New(Config{Store: store, Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindOnce}, Listeners: []Listener{e.listener()}})
	if err != nil {
		t.Fatal(err)
	}
	runErr := q.Run(t.Context())
	if runErr == nil {
		t.Fatal("Run succeeded on a locked checkpoint")
	}
	if !slices.Equal(e.log, []string{"terminated"}) || e.terminated[0].Err != runErr {
		t.Fatalf("events %v %+v", e.log, e.terminated)
	}
}
