package ddbstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/checkpointtest"
	"github.com/shardflow/shardflow/checkpoint/ddbstore"
	"github.com/shardflow/shardflow/internal/testenv"
)

func newStore(t *testing.T, cfg ddbstore.Config) *ddbstore.Store {
	t.Helper()
	s, err := ddbstore.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	c := testenv.DynamoDBClient(t, testenv.Dynalite(t))
	table := testenv.UniqueName("ckpt-")
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
		return newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: testenv.UniqueName("q-"), LeaseTime: 600 * time.Millisecond})
	})
}

// TestSharedTable: two checkpoints in one table never see each other's
// items, and each can be locked while the other is.
func TestSharedTable(t *testing.T) {
	ctx := t.Context()
	c := testenv.DynamoDBClient(t, testenv.Dynalite(t))
	table := testenv.UniqueName("ckpt-")
	a := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "s3://b/queries/a"})
	ab := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "s3://b/queries/ab"})
	for s, v := range map[*ddbstore.Store]string{a: "a", ab: "ab"} {
		if err := s.Create(ctx, "offsets/0", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for s, v := range map[*ddbstore.Store]string{a: "a", ab: "ab"} {
		got, err := s.Read(ctx, "offsets/0")
		if err != nil || string(got) != v {
			t.Fatalf("%s: Read = %q, %v; want %q", s.Location(), got, err, v)
		}
		names, err := s.List(ctx, "")
		if err != nil || len(names) != 0 {
			t.Fatalf("%s: List(\"\") = %q, %v", s.Location(), names, err)
		}
	}
	ra, err := a.Lock(ctx, "query a")
	if err != nil {
		t.Fatal(err)
	}
	defer ra()
	rab, err := ab.Lock(ctx, "query ab")
	if err != nil {
		t.Fatalf("the lock of one checkpoint blocked another in the same table: %v", err)
	}
	rab()
}

// TestNewGeneration: a checkpoint started again under a new generation
// (its location deleted and recreated) never sees the old items, while the
// lease still spans generations.
func TestNewGeneration(t *testing.T) {
	ctx := t.Context()
	c := testenv.DynamoDBClient(t, testenv.Dynalite(t))
	table := testenv.UniqueName("ckpt-")
	old := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "q", Generation: "g1"})
	if err := old.Create(ctx, "offsets/5", []byte("stale")); err != nil {
		t.Fatal(err)
	}
	release, err := old.Lock(ctx, "old run")
	if err != nil {
		t.Fatal(err)
	}
	fresh := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "q", Generation: "g2", LeaseTime: 300 * time.Millisecond})
	if _, err := fresh.Lock(ctx, "new run"); !errors.Is(err, checkpoint.ErrLocked) {
		t.Fatalf("Lock of a new generation while the old one is held = %v, want ErrLocked", err)
	}
	release()
	if _, err := fresh.Read(ctx, "offsets/5"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("new generation reads the old offsets/5: %v", err)
	}
	if err := fresh.Create(ctx, "offsets/5", []byte("new")); err != nil {
		t.Fatal(err)
	}
	// Without Config.Generation the store keeps one in the table: two
	// stores on one id agree on it.
	x := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "kept"})
	y := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "kept"})
	gx, err := x.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gy, err := y.Generation(ctx)
	if err != nil || gx != gy {
		t.Fatalf("generations %q and %q (%v), want equal", gx, gy, err)
	}
}

var _ = context.Background
