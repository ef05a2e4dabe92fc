package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// FuzzReadOffsets feeds arbitrary bytes to the offsets parser: a corrupt
// checkpoint must give an error, never a panic or an entry that fails its
// own validation.
func FuzzReadOffsets(f *testing.F) {
	golden, err := os.ReadFile("testdata/offsets-v1.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"batchId":3,"shards":{"s":{"start":{"type":"AFTER_SEQUENCE_NUMBER","seq":"01"},"state":"open"}}}`))
	f.Add([]byte(`{"batchId":3,"shards":{"s":{"start":{"type":"AT_TIMESTAMP"},"state":"open"}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		store := memstore.New()
		if err := store.Create(t.Context(), "offsets/3", b); err != nil {
			t.Fatal(err)
		}
		e, err := wal{store: store}.readOffsets(t.Context(), 3)
		if err != nil {
			return
		}
		if e.BatchID != 3 {
			t.Fatalf("accepted entry with batchId %d", e.BatchID)
		}
		for id, s := range e.Shards {
			if err := s.validate(); err != nil {
				t.Fatalf("accepted invalid shard %s: %v", id, err)
			}
		}
	})
}

// TestOffsetsGolden pins format 1: the golden file must parse into exactly
// this entry, so a format change is a deliberate, documented one.
func TestOffsetsGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/offsets-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	if err := store.Create(t.Context(), "offsets/7", b); err != nil {
		t.Fatal(err)
	}
	e, err := wal{store: store}.readOffsets(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	s0 := e.Shards["shardId-000000000000"]
	if s0.Start.Type != AfterSequenceNumber || s0.End == nil || s0.End.Seq != "49590338271490256608559692540981471095921575989136588898" || s0.State != StateOpen {
		t.Errorf("shard 0 = %+v", s0)
	}
	s2 := e.Shards["shardId-000000000002"]
	if s2.Start.Type != AtTimestamp || s2.Start.Timestamp.IsZero() || len(s2.Parents) != 1 || s2.End != nil {
		t.Errorf("shard 2 = %+v", s2)
	}
	if s0.next() != After(*s0.End) || s2.next() != s2.Start {
		t.Error("next positions wrong")
	}
	// Round trip: what the engine writes reads back the same.
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back OffsetEntry
	if err := json.Unmarshal(out, &back); err != nil || len(back.Shards) != len(e.Shards) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestCmpSeqIsNumeric(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"9", "10", -1},
		{"49590338271490256608559692538361571095921575989136588898", "4959033827149025660855969253836157109592157598913658889", 1},
		{"123", "123", 0},
		{"0", "1", -1},
	} {
		if got := cmpSeq(tc.a, tc.b); got != tc.want {
			t.Errorf("cmpSeq(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// spyStore counts the calls purge makes to a store, fails the test if it
// deletes a log entry that is still retained, and can fail deletes. It
// hides the store's checkpoint.BatchDeleter; batchSpy shows it.
type spyStore struct {
	checkpoint.Store
	t        *testing.T
	retained int64 // log entries from this id on must not be deleted
	fail     int   // deletes (or DeleteMany calls) left to fail
	lists    int
	deletes  int // Delete calls, or names given to DeleteMany
	batches  int // DeleteMany calls
}

func (s *spyStore) List(ctx context.Context, dir string) ([]string, error) {
	s.lists++
	return s.Store.List(ctx, dir)
}

func (s *spyStore) check(name string) error {
	s.t.Helper()
	dir, n, _ := strings.Cut(name, "/")
	id, err := strconv.ParseInt(n, 10, 64)
	if (dir != offsetsDir && dir != commitsDir) || err != nil {
		s.t.Errorf("purge deletes %s, not a log entry", name)
	} else if id >= s.retained {
		s.t.Errorf("purge deletes %s, retained (ids from %d on are)", name, s.retained)
	}
	if s.fail > 0 {
		s.fail--
		return errors.New("injected failure")
	}
	return nil
}

func (s *spyStore) Delete(ctx context.Context, name string) error {
	s.deletes++
	if err := s.check(name); err != nil {
		return err
	}
	return s.Store.Delete(ctx, name)
}

type batchSpy struct{ *spyStore }

func (s batchSpy) DeleteMany(ctx context.Context, names []string) error {
	s.batches++
	s.deletes += len(names)
	fail := s.fail > 0
	for _, name := range names {
		s.check(name)
	}
	if fail {
		s.fail = 0
		return errors.New("injected failure")
	}
	return s.Store.(checkpoint.BatchDeleter).DeleteMany(ctx, names)
}

// TestPurge runs purge as the engine does, over a log an earlier run left
// with gaps and an uncommitted batch, with an abandoned batch on the way:
// it lists the logs once, deletes exactly the entries that fall out of
// retention (in one call per purge with a BatchDeleter), and after a
// failed delete lists again and leaves nothing behind.
func TestPurge(t *testing.T) {
	const keep, every = 20, 2
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("BatchDeleter=%v", batch), func(t *testing.T) {
			ctx := t.Context()
			mem := memstore.New()
			spy := &spyStore{Store: mem, t: t, retained: -1}
			var store checkpoint.Store = spy
			if batch {
				store = batchSpy{spy}
			}
			put := func(dir string, id int64) {
				t.Helper()
				if err := mem.Create(ctx, entryName(dir, id), []byte("{}")); err != nil {
					t.Fatal(err)
				}
			}
			// The earlier run: entries with gaps, and batch 40 planned but
			// not committed, which this run abandons.
			for _, id := range []int64{0, 1, 2, 5, 7, 30, 31, 39} {
				put(offsetsDir, id)
				put(commitsDir, id)
			}
			put(offsetsDir, 40)
			put(commitsDir, 40) // abandoned
			w := &wal{store: store}
			direct := wal{store: mem} // for checks, unseen by spy
			purges, written := 0, 18  // entries
			run := func(from, to int64, failAt int64) {
				t.Helper()
				for id := from; id < to; id++ {
					put(offsetsDir, id)
					put(commitsDir, id)
					written += 2
					if id%every != 0 || id%17 == 0 { // abandoned batches skip the purge
						continue
					}
					if id == failAt {
						spy.fail = 1
					}
					spy.retained = id - keep + 1
					err := w.purge(ctx, id, keep)
					purges++
					if (err != nil) != (id == failAt) {
						t.Fatalf("purge after batch %d: %v", id, err)
					}
					for _, dir := range []string{offsetsDir, commitsDir} {
						ids, err := direct.ids(ctx, dir)
						if err != nil {
							t.Fatal(err)
						}
						if id != failAt && ids[0] <= id-keep {
							t.Fatalf("after the purge of batch %d, %s holds %v", id, dir, ids)
						}
						if want := min(keep, id-40+1); len(ids) < int(want) {
							t.Fatalf("after the purge of batch %d, %s holds %v", id, dir, ids)
						}
					}
				}
			}
			run(41, 200, -1)
			if spy.lists != 2 {
				t.Errorf("%d purges listed the logs %d times, want once (2 lists)", purges, spy.lists)
			}
			left := 0
			for _, dir := range []string{offsetsDir, commitsDir} {
				ids, _ := direct.ids(ctx, dir)
				left += len(ids)
			}
			if spy.deletes != written-left {
				t.Errorf("%d deletes for %d entries purged, want one each", spy.deletes, written-left)
			}
			if batch && spy.batches > purges {
				t.Errorf("%d DeleteMany calls in %d purges, want at most one each", spy.batches, purges)
			}
			if !batch && spy.batches != 0 {
				t.Errorf("DeleteMany called on a store without it")
			}

			// A failed delete: the next purge lists again and catches up.
			spy.lists = 0
			run(200, 300, 250)
			if spy.lists != 2 {
				t.Errorf("the logs were listed %d times after a failed purge, want once (2 lists)", spy.lists)
			}
			var want []int64 // the last purge was after batch 298
			for id := int64(298 - keep + 1); id < 300; id++ {
				want = append(want, id)
			}
			for _, dir := range []string{offsetsDir, commitsDir} {
				if ids, _ := direct.ids(ctx, dir); !slices.Equal(ids, want) {
					t.Errorf("%s = %v, want %v", dir, ids, want)
				}
			}
		})
	}
}
