package memstore_test

import (
	"testing"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/checkpointtest"
	"github.com/shardflow/shardflow/checkpoint/memstore"
)

func TestConformance(t *testing.T) {
	checkpointtest.Run(t, func(*testing.T) checkpoint.Store { return memstore.New() })
}

func TestStaleReleaseKeepsNewLock(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	release1, err := s.Lock(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	release1()
	release2, err := s.Lock(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	release1() // a second call must not release "second"
	if _, err := s.Lock(ctx, "third"); err == nil {
		t.Fatal("Lock succeeded while \"second\" holds the lock")
	}
}
