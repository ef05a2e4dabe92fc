package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// checkEncoder checks that enc (nil: one that remembers nothing) writes
// exactly what json.MarshalIndent writes: the checkpoint format is
// encoding/json's.
func checkEncoder(t *testing.T, enc *entryEncoder, v any) {
	t.Helper()
	got, err := enc.marshal(v)
	want, werr := json.MarshalIndent(v, "", "  ")
	if (err != nil) != (werr != nil) {
		t.Fatalf("encoder(%+v): error %v, encoding/json's %v", v, err, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoder(%+v):\n%s\nwant:\n%s", v, got, want)
	}
}

func TestMarshalEntryIsMarshalIndent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "shardId-000000000001", "49590338271490256608559692538361571095921575989136588898", "a\"b", "<&>", "é", "\x00", "x\u2028"}
	str := func() string { return strs[rng.IntN(len(strs))] }
	times := []time.Time{{}, time.Date(2026, 11, 26, 3, 4, 5, 123456789, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", -(23*3600+59*60+30)))}
	tm := func() time.Time { return times[rng.IntN(len(times))] }
	enc := &entryEncoder{}
	for range 2000 {
		e := OffsetEntry{BatchID: rng.Int64N(1<<40) - 5, Timestamp: tm()}
		if rng.IntN(8) > 0 {
			e.Shards = map[string]ShardOffset{}
		}
		for range rng.IntN(4) {
			o := ShardOffset{
				Start: Start{Type: []StartType{TrimHorizon, AtTimestamp, AtSequenceNumber, AfterSequenceNumber}[rng.IntN(4)], Seq: str(), Sub: rng.Int64N(3), Timestamp: tm()},
				State: []ShardState{StateOpen, StateClosed, StateFinished}[rng.IntN(3)],
			}
			if rng.IntN(2) == 0 {
				o.End = &Position{Seq: str(), Sub: rng.Int64N(3)}
			}
			switch rng.IntN(3) {
			case 1:
				o.Parents = []string{}
			case 2:
				o.Parents = []string{str(), str()}
			}
			if e.Shards != nil {
				e.Shards[str()] = o
			}
		}
		checkEncoder(t, nil, e)
		checkEncoder(t, enc, e)
		checkEncoder(t, nil, CommitEntry{BatchID: e.BatchID, CommittedAt: tm(), NumInputRows: rng.Int64N(100), Abandoned: rng.IntN(2) == 0})
	}
	checkEncoder(t, nil, Metadata{ID: "x"}) // other types go through encoding/json
}

func FuzzMarshalEntry(f *testing.F) {
	f.Add(int64(3), "shardId-1", "49590", int64(2), "parent", int64(1700000000123))
	f.Fuzz(func(t *testing.T, id int64, shard, seq string, sub int64, parent string, ms int64) {
		ts := time.UnixMilli(ms).UTC()
		checkEncoder(t, nil, OffsetEntry{BatchID: id, Timestamp: ts, Shards: map[string]ShardOffset{
			shard:       {Start: After(Position{Seq: seq, Sub: sub}), End: &Position{Seq: seq, Sub: sub}, State: StateOpen, Parents: []string{parent}},
			shard + "x": {Start: Start{Type: AtTimestamp, Timestamp: ts}, State: StateFinished},
		}})
		checkEncoder(t, nil, CommitEntry{BatchID: id, CommittedAt: ts, NumInputRows: sub})
	})
}

// A stream's entries from batch to batch: a few shards change each time,
// shards come and go, parents are edited in place by the caller after the
// write: each entry through one caching encoder equals MarshalIndent.
func TestEntryEncoderAcrossBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	enc := &entryEncoder{}
	shards := map[string]ShardOffset{}
	ts := time.Date(2026, 11, 26, 3, 4, 5, 0, time.UTC)
	for i := range 40 {
		shards[fmt.Sprintf("shardId-%012d", i)] = ShardOffset{Start: Start{Type: TrimHorizon}, State: StateOpen}
	}
	for batch := range int64(500) {
		next := maps.Clone(shards)
		for range rng.IntN(4) {
			id := fmt.Sprintf("shardId-%012d", rng.IntN(50))
			o := next[id]
			switch rng.IntN(6) {
			case 0:
				delete(next, id)
				continue
			case 1:
				o.End = &Position{Seq: strconv.Itoa(rng.IntN(1000)), Sub: rng.Int64N(2)}
			case 2:
				o.Start = After(Position{Seq: strconv.Itoa(rng.IntN(1000))})
				o.End = nil
			case 3:
				o.State = StateFinished
			case 4:
				o.Start = Start{Type: AtTimestamp, Timestamp: ts.Add(time.Duration(rng.IntN(3)) * time.Second).In(time.FixedZone("z", 3600*rng.IntN(2)))}
			case 5:
				o.Parents = []string{"p" + strconv.Itoa(rng.IntN(3))}
			}
			if o.Start.Type == "" {
				o.Start.Type = TrimHorizon
			}
			if o.State == "" {
				o.State = StateOpen
			}
			next[id] = o
		}
		e := OffsetEntry{BatchID: batch, Timestamp: ts.Add(time.Duration(batch) * time.Millisecond), Shards: next}
		checkEncoder(t, enc, e)
		for id, o := range next {
			if len(o.Parents) > 0 && rng.IntN(4) == 0 {
				o.Parents[0] = "edited" // after the write, as a caller may
				next[id] = o
			}
		}
		shards = next
	}
	if len(enc.cache) == 0 {
		t.Fatal("the encoder cached nothing")
	}
}
