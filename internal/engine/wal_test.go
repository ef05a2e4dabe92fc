package engine

import (
	"encoding/json"
	"os"
	"testing"

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
