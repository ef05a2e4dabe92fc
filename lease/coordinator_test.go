package lease

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/internal/testenv"
)

// The coordinator's rules, driven step by step against dynalite: the
// background loop is not started, takePass and renewAll are called by the
// test, and the clock is the test's.

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type rig struct {
	t     *testing.T
	api   API
	table string
	clk   *clock
}

func newRig(t *testing.T) *rig {
	return &rig{t: t, api: testenv.DynamoDBClient(t, testenv.Dynalite(t)), table: testenv.UniqueName("lease-"), clk: &clock{t: time.Unix(1_700_000_000, 0)}}
}

func (r *rig) worker(id string, listed ...engine.ShardInfo) *Coordinator {
	r.t.Helper()
	c, err := New(Config{Client: r.api, Table: r.table, WorkerID: id, Stream: "s", Checkpoint: "ckpt", LeaseTime: 3 * time.Second, Now: r.clk.now})
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := c.join(context.Background(), func(context.Context) (engine.Shared, error) {
		return engine.Shared{Initial: engine.InitialPosition{Type: engine.TrimHorizon}}, nil
	}); err != nil {
		r.t.Fatal(err)
	}
	c.listed = map[string]engine.ShardInfo{}
	for _, s := range listed {
		c.listed[s.ID] = s
	}
	return c
}

func pass(t *testing.T, cs ...*Coordinator) {
	t.Helper()
	for _, c := range cs {
		if err := c.takePass(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func sync1(t *testing.T, c *Coordinator, mine map[string]engine.Held) map[string]engine.Lease {
	t.Helper()
	got, err := c.Sync(context.Background(), nil, mine)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func after(seq string) engine.Start { return engine.Start{Type: engine.AfterSequenceNumber, Seq: seq} }

func TestHandoffCarriesTheExactPosition(t *testing.T) {
	r := newRig(t)
	shards := []engine.ShardInfo{{ID: "shardId-0"}, {ID: "shardId-1"}}
	w1 := r.worker("w1", shards...)
	pass(t, w1)
	if got := w1.Held(); len(got) != 2 {
		t.Fatalf("a lone worker holds %v, want both shards", got)
	}
	w2 := r.worker("w2", shards...)
	pass(t, w2) // below an even share: asks w1 for one lease
	if len(w2.requested) != 1 {
		t.Fatalf("w2 asked for %d leases, want 1", len(w2.requested))
	}
	asked := slices.Collect(func(yield func(string) bool) {
		for id := range w2.requested {
			yield(id)
		}
	})[0]
	w1.renewAll(context.Background()) // sees the request
	mine := map[string]engine.Held{"shardId-0": {Next: after("100")}, "shardId-1": {Next: after("200")}}
	held := sync1(t, w1, mine) // hands it over with its committed position
	if _, still := held[asked]; still || len(held) != 1 {
		t.Fatalf("w1 holds %v after the handoff of %s", held, asked)
	}
	pass(t, w2)
	got := sync1(t, w2, nil)
	l, ok := got[asked]
	if !ok || l.Start != mine[asked].Next || l.PrevOwner != "" {
		t.Fatalf("w2 holds %v, want %s at %v from a handoff (no previous owner to consult)", got, asked, mine[asked].Next)
	}
}

func TestExpiryIsJudgedByTheObserversClock(t *testing.T) {
	r := newRig(t)
	s := engine.ShardInfo{ID: "shardId-0"}
	w1 := r.worker("w1", s)
	pass(t, w1)
	w2 := r.worker("w2", s)
	// However old the lease's last write, w2 starts timing when it first
	// sees the counter.
	r.clk.add(time.Hour)
	pass(t, w2)
	if len(w2.Held()) != 0 {
		t.Fatal("w2 took a lease it had seen for no time at all")
	}
	r.clk.add(2900 * time.Millisecond)
	pass(t, w2)
	if len(w2.Held()) != 0 {
		t.Fatal("w2 took a lease before it saw it unchanged for the lease time")
	}
	if bad := w1.Unsafe([]string{"shardId-0"}); len(bad) != 1 {
		t.Fatal("w1 still trusts a lease it has not renewed for an hour")
	}
	r.clk.add(200 * time.Millisecond)
	pass(t, w2)
	got := sync1(t, w2, nil)
	if l, ok := got["shardId-0"]; !ok || l.PrevOwner != "w1" {
		t.Fatalf("w2 holds %v, want shardId-0 taken over from w1 (whose log it then reads)", got)
	}
	// Fencing: w1's next write is refused and it lets the shard go.
	w1.renewAll(context.Background())
	if len(w1.Held()) != 0 || w1.lost.Load() != 1 {
		t.Fatalf("w1 holds %v (lost %d) after the takeover", w1.Held(), w1.lost.Load())
	}
	if got := sync1(t, w1, map[string]engine.Held{"shardId-0": {Next: after("999")}}); len(got) != 0 {
		t.Fatalf("w1 still reads %v", got)
	}
	tb, err := ReadTable(context.Background(), r.api, r.table)
	if err != nil {
		t.Fatal(err)
	}
	if it := tb.Leases[0]; it.Owner != "w2" || it.Checkpoint.Seq != "" {
		t.Fatalf("lease after the zombie's attempt: %+v; want owner w2 and the position untouched", it)
	}
}

func TestChildrenWaitForEveryParent(t *testing.T) {
	r := newRig(t)
	shards := []engine.ShardInfo{{ID: "shardId-0"}, {ID: "shardId-1"}, {ID: "shardId-2", Parents: []string{"shardId-0", "shardId-1"}}}
	w1 := r.worker("w1", shards...)
	pass(t, w1)
	if got := w1.Held(); !slices.Equal(got, []string{"shardId-0", "shardId-1"}) {
		t.Fatalf("held %v, want only the parents", got)
	}
	sync1(t, w1, map[string]engine.Held{"shardId-0": {Finished: true}, "shardId-1": {Next: after("5")}})
	pass(t, w1)
	if got := w1.Held(); !slices.Equal(got, []string{"shardId-1"}) {
		t.Fatalf("held %v with one parent still open, want [shardId-1]", got)
	}
	sync1(t, w1, map[string]engine.Held{"shardId-1": {Finished: true}})
	pass(t, w1)
	if got := w1.Held(); !slices.Equal(got, []string{"shardId-2"}) {
		t.Fatalf("held %v after both parents finished, want [shardId-2]", got)
	}
}

func TestRestartedWorkerResumesItsLeases(t *testing.T) {
	r := newRig(t)
	s := engine.ShardInfo{ID: "shardId-0"}
	w1 := r.worker("w1", s)
	pass(t, w1)
	sync1(t, w1, map[string]engine.Held{"shardId-0": {Next: after("42")}})
	w1.renewAll(context.Background()) // the position reaches the lease
	again := r.worker("w1", s)        // the same id after a crash
	pass(t, again)
	got := sync1(t, again, nil)
	if l := got["shardId-0"]; l.Start != after("42") || l.PrevOwner != "w1" {
		t.Fatalf("restarted w1 holds %v; want shardId-0 at once, from 42, reading its own log for a later commit", got)
	}
}

func TestTableOfAnotherJobIsRefused(t *testing.T) {
	r := newRig(t)
	r.worker("w1")
	c, err := New(Config{Client: r.api, Table: r.table, WorkerID: "x", Stream: "s", Checkpoint: "other", Now: r.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.join(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), `checkpointLocation "ckpt"`) {
		t.Fatalf("join with another checkpointLocation: %v", err)
	}
}

func TestImportFromKCLTable(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	kcl := testenv.UniqueName("kcl-")
	if err := ensureTable(ctx, r.api, kcl, time.Minute); err != nil {
		t.Fatal(err)
	}
	kclItems := []map[string]types.AttributeValue{
		{attrKey: str("shardId-000000000000"), attrCheckpoint: str("49650000000000000000000123"), attrSub: num(2), attrOwner: str("kcl-worker"), attrCounter: num(77)},
		{attrKey: str("shardId-000000000001"), attrCheckpoint: str("SHARD_END"), attrCounter: num(3)},
		{attrKey: str("shardId-000000000002"), attrCheckpoint: str("TRIM_HORIZON"), attrCounter: num(1), attrParents: &types.AttributeValueMemberSS{Value: []string{"shardId-000000000001"}}},
		{attrKey: str("123456789012:s:1700000000:shardId-000000000003"), attrCheckpoint: str("LATEST"), attrCounter: num(1)},
	}
	for _, it := range kclItems {
		if _, err := r.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(kcl), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c, err := New(Config{Client: r.api, Table: r.table, WorkerID: "w1", Stream: "s", Checkpoint: "ckpt", ImportKCLTable: kcl, Now: r.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.join(ctx, func(context.Context) (engine.Shared, error) {
		return engine.Shared{Initial: engine.InitialPosition{Type: engine.AtTimestamp, Timestamp: ts}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	c.listed = map[string]engine.ShardInfo{}
	for i := range 4 {
		id := fmt.Sprintf("shardId-%012d", i)
		c.listed[id] = engine.ShardInfo{ID: id}
	}
	pass(t, c)
	got := sync1(t, c, nil)
	want := map[string]engine.Start{
		"shardId-000000000000": {Type: engine.AfterSequenceNumber, Seq: "49650000000000000000000123", Sub: 2},
		"shardId-000000000002": {Type: engine.AtTimestamp, Timestamp: ts}, // not started by the KCL
		"shardId-000000000003": {Type: engine.AtTimestamp, Timestamp: ts},
	}
	if len(got) != len(want) {
		t.Fatalf("held %v, want %v (shardId-000000000001 finished under the KCL)", got, want)
	}
	for id, w := range want {
		if l := got[id]; !l.Start.Timestamp.Equal(w.Timestamp) || l.Start.Type != w.Type || l.Start.Seq != w.Seq || l.Start.Sub != w.Sub {
			t.Errorf("%s starts at %+v, want %+v", id, l.Start, w)
		}
	}
	// The KCL table is only read.
	raw, _, err := scanTable(ctx, r.api, kcl)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(kclItems) {
		t.Fatalf("the KCL table has %d items, want %d", len(raw), len(kclItems))
	}
	for _, m := range raw {
		if getS(m, attrOwner) == "w1" {
			t.Fatalf("the KCL table was written: %v", m)
		}
	}
}

func TestTrimmedShardsLeasesAreDeleted(t *testing.T) {
	r := newRig(t)
	parent, child := engine.ShardInfo{ID: "shardId-0"}, engine.ShardInfo{ID: "shardId-1", Parents: []string{"shardId-0"}}
	closed := engine.ShardInfo{ID: "shardId-2"}
	w1 := r.worker("w1", parent, child, closed)
	pass(t, w1)
	sync1(t, w1, map[string]engine.Held{"shardId-0": {Finished: true}, "shardId-2": {Finished: true}})
	pass(t, w1)
	if got := w1.Held(); !slices.Equal(got, []string{"shardId-1"}) {
		t.Fatalf("held %v, want the child", got)
	}
	// The parent leaves the listing (trimmed); shardId-2 stays listed.
	if _, err := w1.Sync(context.Background(), []engine.ShardInfo{child, closed}, nil); err != nil {
		t.Fatal(err)
	}
	leases := func() []string {
		tb, err := ReadTable(context.Background(), r.api, r.table)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, l := range tb.Leases {
			ids = append(ids, l.ShardID)
		}
		slices.Sort(ids)
		return ids
	}
	pass(t, w1)
	r.clk.add(59 * time.Minute)
	pass(t, w1)
	if got := leases(); len(got) != 3 {
		t.Fatalf("leases %v after 59 minutes unlisted, want all 3 kept", got)
	}
	r.clk.add(2 * time.Minute)
	pass(t, w1)
	if got := leases(); !slices.Equal(got, []string{"shardId-1", "shardId-2"}) {
		t.Fatalf("leases %v, want the trimmed parent's deleted and the finished but listed shard's kept", got)
	}
	if got := w1.Held(); !slices.Equal(got, []string{"shardId-1"}) {
		t.Fatalf("held %v after the cleanup, want the child still", got)
	}
}
