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

	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// lifecycleSource is a fakeSource with the Lifecycle hook. It logs Open,
// every OpenShard and Close in order, and checks at Close that every shard
// reader was closed before it.
type lifecycleSource struct {
	*fakeSource
	openErr  error
	closeErr error
	// onOpen, when set, runs in Open with the state store.
	onOpen func(ctx context.Context, st StateStore) error

	mu        sync.Mutex
	events    []string
	opened    bool
	openState StateStore
	unclosed  []string // readers still open when Close ran
}

var _ Lifecycle = (*lifecycleSource)(nil)

func newLifecycleSource(shards ...string) *lifecycleSource {
	return &lifecycleSource{fakeSource: newFakeSource("s", shards...)}
}

func (l *lifecycleSource) log(ev string) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *lifecycleSource) Open(ctx context.Context, st StateStore) error {
	l.log("open")
	l.mu.Lock()
	l.opened, l.openState = true, st
	l.mu.Unlock()
	if l.onOpen != nil {
		if err := l.onOpen(ctx, st); err != nil {
			return err
		}
	}
	return l.openErr
}

func (l *lifecycleSource) OpenShard(ctx context.Context, id string, from Start) (ShardReader, error) {
	l.mu.Lock()
	opened := l.opened
	l.mu.Unlock()
	if !opened {
		l.log("shard-before-open " + id)
	} else {
		l.log("shard " + id)
	}
	return l.fakeSource.OpenShard(ctx, id, from)
}

func (l *lifecycleSource) Close(ctx context.Context, graceful bool) error {
	l.fakeSource.mu.Lock()
	var unclosed []string
	for id, sh := range l.fakeSource.shards {
		for _, r := range sh.readers {
			if !r.closed {
				unclosed = append(unclosed, id)
			}
		}
	}
	l.fakeSource.mu.Unlock()
	l.mu.Lock()
	l.unclosed = append(l.unclosed, unclosed...)
	l.mu.Unlock()
	l.log(fmt.Sprintf("close graceful=%v", graceful))
	return l.closeErr
}

func (l *lifecycleSource) eventLog() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// checkOrder checks the event log: Open first, shards only after it, and
// exactly one Close, last, with the given gracefulness, after every reader
// was closed.
func (l *lifecycleSource) checkOrder(t *testing.T, graceful bool) {
	t.Helper()
	ev := l.eventLog()
	if len(ev) < 2 || ev[0] != "open" {
		t.Fatalf("events %q: want open first", ev)
	}
	want := fmt.Sprintf("close graceful=%v", graceful)
	if ev[len(ev)-1] != want {
		t.Errorf("events %q: want %q last", ev, want)
	}
	closes := 0
	for _, e := range ev {
		if strings.HasPrefix(e, "shard-before-open") {
			t.Errorf("events %q: a shard was opened before Open", ev)
		}
		if strings.HasPrefix(e, "close") {
			closes++
		}
	}
	if closes != 1 {
		t.Errorf("events %q: Close called %d times, want once", ev, closes)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unclosed) > 0 {
		t.Errorf("Close ran while the readers of %v were open", l.unclosed)
	}
}

func TestLifecycleGracefulEndOfAvailableNowAndOnce(t *testing.T) {
	for _, kind := range []TriggerKind{KindAvailableNow, KindOnce} {
		t.Run(Trigger{Kind: kind}.String(), func(t *testing.T) {
			src := newLifecycleSource("shardId-0", "shardId-1")
			src.put("shardId-0", 3)
			src.put("shardId-1", 2)
			sink := newCollector()
			if err := run(t, Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Kind: kind}}); err != nil {
				t.Fatal(err)
			}
			if n := len(sink.all()); n != 5 {
				t.Errorf("read %d records, want 5", n)
			}
			src.checkOrder(t, true)
			if ev := src.eventLog(); !slices.Contains(ev, "shard shardId-0") || !slices.Contains(ev, "shard shardId-1") {
				t.Errorf("events %q: want both shards opened", ev)
			}
		})
	}
}

func TestLifecycleGracefulAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newLifecycleSource("shardId-0")
		q, err := New(Config{Store: memstore.New(), Source: src, Sink: newCollector(), Trigger: Trigger{Interval: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- q.Run(t.Context()) }()
		src.put("shardId-0", 2)
		time.Sleep(3 * time.Second)
		if err := q.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		src.checkOrder(t, true)
	})
}

func TestLifecycleNotGracefulOnFailure(t *testing.T) {
	src := newLifecycleSource("shardId-0")
	src.put("shardId-0", 2)
	sink := newCollector()
	boom := errors.New("sink down")
	sink.fail = func(*Batch) error { return boom }
	err := run(t, Config{Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Kind: KindAvailableNow}})
	if !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want the sink's error", err)
	}
	src.checkOrder(t, false)
}

func TestLifecycleNotGracefulOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newLifecycleSource("shardId-0")
		q, err := New(Config{Store: memstore.New(), Source: src, Sink: newCollector(), Trigger: Trigger{Interval: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- q.Run(ctx) }()
		src.put("shardId-0", 2)
		time.Sleep(2 * time.Second)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel: %v, want context.Canceled", err)
		}
		src.checkOrder(t, false)
	})
}

func TestLifecycleOpenFailureStopsBeforeShards(t *testing.T) {
	src := newLifecycleSource("shardId-0")
	src.put("shardId-0", 2)
	src.openErr = errors.New("consumer limit reached")
	sink := newCollector()
	err := run(t, Config{Name: "q", Store: memstore.New(), Source: src, Sink: sink, Trigger: Trigger{Kind: KindAvailableNow}})
	if err == nil || !strings.Contains(err.Error(), "open source") || !strings.Contains(err.Error(), "consumer limit reached") {
		t.Fatalf("Run: %v, want an error naming the source's Open failure", err)
	}
	if ev := src.eventLog(); !slices.Equal(ev, []string{"open"}) {
		t.Errorf("events %q: want Open only (no shard, no Close after a failed Open)", ev)
	}
	if n := len(sink.all()); n != 0 {
		t.Errorf("sink got %d records", n)
	}
}

func TestLifecycleCloseErrorDoesNotFailRun(t *testing.T) {
	src := newLifecycleSource("shardId-0")
	src.put("shardId-0", 1)
	src.closeErr = errors.New("deregister failed")
	if err := run(t, Config{Store: memstore.New(), Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindAvailableNow}}); err != nil {
		t.Fatalf("Run: %v, want nil (a Close error is logged)", err)
	}
	src.checkOrder(t, true)
}

func TestLifecycleNotOpenedWhenCheckpointLocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memstore.New()
		first := newLifecycleSource("shardId-0")
		q1, err := New(Config{Store: store, Source: first, Sink: newCollector()})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- q1.Run(t.Context()) }()
		synctest.Wait()
		second := newLifecycleSource("shardId-0")
		if err := run(t, Config{Store: store, Source: second, Sink: newCollector()}); err == nil {
			t.Fatal("second query on a locked checkpoint ran")
		}
		if ev := second.eventLog(); len(ev) != 0 {
			t.Errorf("refused query: events %q, want none (Open comes after the lock)", ev)
		}
		if err := q1.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// runsState is a source's state object in the tests below.
type runsState struct {
	Runs     int    `json:"runs"`
	Consumer string `json:"consumer"`
}

func TestLifecycleStateRoundTrip(t *testing.T) {
	store := memstore.New()
	var seen []int
	for i := range 3 {
		src := newLifecycleSource("shardId-0")
		src.onOpen = func(ctx context.Context, st StateStore) error {
			var s runsState
			found, err := st.Read(ctx, &s)
			if err != nil {
				return err
			}
			if found != (i > 0) {
				t.Errorf("run %d: Read found=%v", i, found)
			}
			seen = append(seen, s.Runs)
			return st.Write(ctx, runsState{Runs: s.Runs + 1, Consumer: "c"})
		}
		if err := run(t, Config{Store: store, Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindOnce}}); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if !slices.Equal(seen, []int{0, 1, 2}) {
		t.Errorf("state read by each run: %v, want [0 1 2]", seen)
	}
	b, err := store.Read(t.Context(), sourceStateName)
	if err != nil {
		t.Fatalf("the state is not at %s: %v", sourceStateName, err)
	}
	if s := string(b); !strings.Contains(s, `"runs": 3`) || !strings.Contains(s, `"consumer": "c"`) {
		t.Errorf("%s holds %s", sourceStateName, s)
	}
}

func TestLifecycleStateStore(t *testing.T) {
	ctx := t.Context()
	store := memstore.New()
	st := storeState{store: store, name: sourceStateName}
	var s runsState
	if found, err := st.Read(ctx, &s); found || err != nil {
		t.Fatalf("Read of a missing state: %v %v, want false nil", found, err)
	}
	if err := st.Write(ctx, runsState{Runs: 7}); err != nil {
		t.Fatal(err)
	}
	if found, err := st.Read(ctx, &s); !found || err != nil || s.Runs != 7 {
		t.Fatalf("Read after Write: %v %v %+v", found, err, s)
	}
	if err := st.Write(ctx, runsState{Runs: 8}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Read(ctx, &s); err != nil || s.Runs != 8 {
		t.Fatalf("Write does not replace: %v %+v", err, s)
	}
	if err := store.Put(ctx, sourceStateName, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	_, err := st.Read(ctx, &s)
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), sourceStateName) {
		t.Errorf("Read of a corrupt state: %v, want an error naming %s as corrupt", err, sourceStateName)
	}
	// A corrupt state fails the query at Open, before any shard.
	src := newLifecycleSource("shardId-0")
	src.onOpen = func(ctx context.Context, st StateStore) error {
		var s runsState
		_, err := st.Read(ctx, &s)
		return err
	}
	if err := run(t, Config{Store: store, Source: src, Sink: newCollector(), Trigger: Trigger{Kind: KindOnce}}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Run on a corrupt state: %v", err)
	}
}
