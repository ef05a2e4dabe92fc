package engine

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// TestDefectFNoEmptyBatchesAfterIdleReshard: a reshard with no new data
// (the parent's records all committed) produces no batch over 20 triggers,
// and the children are read as soon as data comes.
func TestDefectFNoEmptyBatchesAfterIdleReshard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource("s", "shardId-0")
		sink := newCollector()
		q, err := New(Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Interval: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- q.Run(t.Context()) }()
		time.Sleep(500 * time.Millisecond)
		src.put("shardId-0", 3)
		time.Sleep(time.Second)
		synctest.Wait()
		before := len(sink.order)
		src.split("shardId-0", "shardId-1", "shardId-2")
		time.Sleep(20 * time.Second) // 20 triggers
		synctest.Wait()
		if n := len(sink.order); n != before {
			t.Fatalf("%d batches after an idle reshard, want none", n-before)
		}
		child := keysOf("shardId-2", src.put("shardId-2", 2))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := sink.batches[sink.order[len(sink.order)-1]]; !slices.Equal(got, child) {
			t.Fatalf("child records: got %v want %v", got, child)
		}
		if err := q.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestLaterShardsStartAtTrimHorizon: with LATEST resolved to a timestamp at
// the first start, a child created later (here while the query was down,
// defect E) is read from its start even when its records carry earlier
// arrival times (a server clock behind ours).
func TestLaterShardsStartAtTrimHorizon(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	t0 := time.Now().Add(-10 * time.Minute) // LATEST resolved at the first start
	src.hasInitial, src.initial = true, InitialPosition{Type: AtTimestamp, Timestamp: t0}
	src.now = func() time.Time { return t0.Add(-time.Hour) }
	src.put("shardId-0", 2) // before t0: excluded by LATEST
	src.now = func() time.Time { return t0.Add(time.Millisecond) }
	parent := keysOf("shardId-0", src.put("shardId-0", 2))
	store := memstore.New()
	sink := newCollector()
	cfg := Config{Store: store, Source: src, Sink: sink, Trigger: Trigger{Kind: KindAvailableNow}}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	// Down: the stream is split and written to; the server's clock lags.
	src.split("shardId-0", "shardId-1", "shardId-2")
	src.now = func() time.Time { return t0.Add(-time.Minute) }
	child := keysOf("shardId-1", src.put("shardId-1", 3))
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := sink.all(), slices.Concat(parent, child); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestAvailableNowEndsWhenParentHoldsOnlyLaterData: a child whose parent's
// next record arrived after the AvailableNow cutoff cannot be read in this
// run; the run still ends.
func TestAvailableNowEndsWhenParentHoldsOnlyLaterData(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.now = func() time.Time { return time.Now().Add(time.Hour) } // written "after" the cutoff
	src.put("shardId-0", 2)
	src.split("shardId-0", "shardId-1", "shardId-2")
	done := make(chan error, 1)
	go func() {
		done <- run(t, Config{Store: memstore.New(), Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindAvailableNow}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("AvailableNow did not end")
	}
}

// TestChildShardsFromReaderAreReadBeforeListShardsShowsThem: the children
// a reader reports at its shard's end are tracked at once.
func TestChildShardsFromReaderAreReadBeforeListShardsShowsThem(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	parent := keysOf("shardId-0", src.put("shardId-0", 2))
	src.split("shardId-0", "shardId-1", "shardId-2")
	src.hidden = map[string]bool{"shardId-1": true, "shardId-2": true}
	child := keysOf("shardId-2", src.put("shardId-2", 2))
	sink := newCollector()
	if err := run(t, Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Kind: KindAvailableNow}}); err != nil {
		t.Fatal(err)
	}
	if got, want := sink.all(), slices.Concat(parent, child); !slices.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

// TestRecreatedStreamIsRefused: a checkpoint made for a stream that was
// deleted and created again under the same name is refused.
func TestRecreatedStreamIsRefused(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.identity = StreamIdentity{ARN: "arn:aws:kinesis:us-east-1:000000000000:stream/s", Created: time.Unix(1000, 0)}
	store := memstore.New()
	cfg := Config{Store: store, Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindOnce}}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	src.identity.Created = time.Unix(2000, 0)
	err := run(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "deleted and created again") {
		t.Fatalf("got %v", err)
	}
}

// TestVanishedShardIsDataLoss: a shard trimmed away before it was read to
// its end fails the query with failOnDataLoss, and is counted and skipped
// without it.
func TestVanishedShardIsDataLoss(t *testing.T) {
	for _, fail := range []bool{true, false} {
		src := newFakeSource("s", "shardId-0", "shardId-1")
		src.put("shardId-0", 2)
		src.bufferRecords = 1
		store := memstore.New()
		var last Progress
		cfg := Config{Store: store, Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindOnce},
			Limits: Limits{FailOnDataLoss: fail}, OnProgress: func(p Progress) { last = p }}
		if err := run(t, cfg); err != nil {
			t.Fatal(err)
		}
		src.mu.Lock()
		src.hidden = map[string]bool{"shardId-0": true} // trimmed by retention
		src.mu.Unlock()
		src.put("shardId-1", 1)
		err := run(t, cfg)
		if fail {
			if err == nil || !strings.Contains(err.Error(), "shardId-0 vanished") {
				t.Fatalf("failOnDataLoss=true: got %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("failOnDataLoss=false: %v", err)
		}
		if last.Sources[0].Metrics["dataLossEvents"] != "1" {
			t.Fatalf("dataLossEvents = %q", last.Sources[0].Metrics["dataLossEvents"])
		}
	}
}

// TestChildWaitsForAParentNotListedYet: a child known only from one
// parent's ChildShards names another parent this query has not seen (not
// listed yet): it is read only once a listing shows that parent and the
// parent was read to its end.
func TestChildWaitsForAParentNotListedYet(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	a := keysOf("shardId-0", src.put("shardId-0", 2))
	src.addShard(ShardInfo{ID: "shardId-1"})
	b := keysOf("shardId-1", src.put("shardId-1", 3))
	src.mu.Lock()
	src.addShard(ShardInfo{ID: "shardId-2", Parents: []string{"shardId-0", "shardId-1"}})
	for _, id := range []string{"shardId-0", "shardId-1"} {
		src.shards[id].closed, src.shards[id].info.Closed = true, true
	}
	src.shards["shardId-0"].children = []ShardInfo{src.shards["shardId-2"].info}
	src.hidden = map[string]bool{"shardId-1": true, "shardId-2": true}
	src.mu.Unlock()
	c := keysOf("shardId-2", src.put("shardId-2", 2))

	sink := newCollector()
	q, err := New(Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Kind: KindProcessingTime},
		Limits: Limits{DiscoveryInterval: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Run(t.Context()) }()
	waitRows := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for len(sink.all()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d rows, want %d: %v", len(sink.all()), n, sink.all())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitRows(len(a))
	time.Sleep(100 * time.Millisecond) // many discoveries: the child must still wait
	if got := sink.all(); !slices.Equal(got, a) {
		t.Fatalf("before the other parent was listed, read %v; want only %v", got, a)
	}
	src.mu.Lock()
	src.hidden = nil
	src.mu.Unlock()
	waitRows(len(a) + len(b) + len(c))
	if err := q.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := sink.all(), slices.Concat(a, b, c); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v: the child after both parents", got, want)
	}
}
