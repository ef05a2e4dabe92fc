package shardflow_test

// KPL scenarios of the source integration suite that write their own
// aggregates (the other scenarios run in the kpl format of forEachSource):
// a 1,980-record aggregate read in batches smaller than it, corrupt
// aggregates, and the hash key range filter after a split.

import (
	"crypto/md5"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kpl"
)

// putAggregate writes one aggregate of recs as one Kinesis record with
// the given explicit hash key, and returns one Put per user record.
func (e *itEnv) putAggregate(ehk string, recs []testenv.Record) []testenv.Put {
	e.t.Helper()
	var a kpl.Aggregator
	for _, r := range recs {
		a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data)
	}
	p := testenv.PutRecords(e.t, e.kc, e.stream, []testenv.Record{{PartitionKey: recs[0].PartitionKey, ExplicitHashKey: ehk, Data: a.Build(nil)}})[0]
	puts := make([]testenv.Put, len(recs))
	for j, r := range recs {
		puts[j] = testenv.Put{Record: r, ShardID: p.ShardID, SequenceNumber: p.SequenceNumber, SubSequenceNumber: int64(j)}
	}
	return puts
}

// kplMetric returns the largest value of a source metric over the
// progress records so far.
func (e *itEnv) kplMetric(name string) int {
	n := 0
	for _, p := range e.sink.progressRecords() {
		for _, s := range p.Sources {
			v, _ := strconv.Atoi(s.Metrics[name])
			n = max(n, v)
		}
	}
	return n
}

func (c *itCollector) progressRecords() []shardflow.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]shardflow.Progress(nil), c.progress...)
}

func userRecords(prefix string, n int, ehk string) []testenv.Record {
	recs := make([]testenv.Record, n)
	for i := range recs {
		v := fmt.Sprintf("%s-%d", prefix, i)
		recs[i] = testenv.Record{PartitionKey: "pk-" + v, Data: []byte(v), ExplicitHashKey: ehk}
	}
	return recs
}

// TestSourceITKPLLargeAggregateAndCorrupt: an aggregate of 1,980 user
// records and smaller ones, read with kinesis.maxFetchRecordsPerShard 700
// so that batches end inside aggregates, over restarts: every
// (sequenceNumber, subSequenceNumber) exactly once, in order. A record
// with a corrupt MD5 and one with a truncated protobuf are emitted whole,
// as plain records, and counted.
func TestSourceITKPLLargeAggregateAndCorrupt(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON", "kinesis.maxFetchRecordsPerShard": "700"})
		s0, s1 := itTwoShards[0], itTwoShards[1]
		k0, k1 := e.hashKey(s0), e.hashKey(s1)
		var puts []testenv.Put
		puts = append(puts, e.putAggregate(k0, userRecords("big", 1980, k0))...)
		puts = append(puts, e.putAggregate(k0, userRecords("small", 30, k0))...)

		// Corrupt aggregates on shard 1, between good ones.
		var a kpl.Aggregator
		for _, r := range userRecords("x", 5, "") {
			a.Add(r.PartitionKey, "", r.Data)
		}
		good := a.Build(nil)
		badMD5 := append([]byte(nil), good...)
		badMD5[len(badMD5)-1] ^= 0xff
		pb := good[len(kpl.Magic) : len(good)-md5.Size]
		truncated := pb[:len(pb)-4]
		sum := md5.Sum(truncated)
		badProto := append(append([]byte(kpl.Magic), truncated...), sum[:]...)
		puts = append(puts, e.putAggregate(k1, userRecords("before", 3, k1))...)
		puts = append(puts, testenv.PutRecords(t, e.kc, e.stream, []testenv.Record{
			{PartitionKey: "bad-md5", ExplicitHashKey: k1, Data: badMD5},
			{PartitionKey: "bad-proto", ExplicitHashKey: k1, Data: badProto},
		})...)
		puts = append(puts, e.putAggregate(k1, userRecords("after", 3, k1))...)

		e.mustRun(shardflow.Once(), nil)
		e.mustRun(shardflow.Once(), nil) // a restart inside the big aggregate
		e.mustRun(shardflow.AvailableNow(), nil)
		bs := e.sink.batches()
		for _, b := range bs {
			for shard, n := range b.shards() {
				if n > 700 {
					t.Errorf("batch %d holds %d rows of %s, want at most 700", b.ID, n, shard)
				}
			}
		}
		for _, b := range bs {
			t.Logf("batch %d: %v", b.ID, b.shards())
		}
		if len(bs) < 3 {
			t.Errorf("%d batches, want at least 3 (2010 rows on shard 0, at most 700 per batch)", len(bs))
		}
		checkShardOrder(t, bs)
		checkExactlyOnce(t, e.sink.rows(), puts)
		if n := e.kplMetric("kplCorruptAggregates"); n < 2 {
			t.Errorf("kplCorruptAggregates = %d, want at least 2", n)
		}
		if n := e.kplMetric("kplDeaggregatedRecords"); n < 700 {
			t.Errorf("kplDeaggregatedRecords = %d, want at least 700", n)
		}
	}, itFormatKPL)
}

// TestSourceITKPLHashRangeAfterSplit: a producer with a stale shard map
// (the KPL's) writes aggregates packed for the parent's range into a
// child after a split; the user records that belong to the other child
// land there too (the KPL's "wrong shard" retry). Reading both children,
// the hash key range filter drops the copies outside each child's range
// and counts them: each user record is emitted once. One aggregate holds
// only records of the other child (FLINK-29395): reading goes on past it.
func TestSourceITKPLHashRangeAfterSplit(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 1, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON", "kinesis.maxFetchRecordsPerShard": "5"})
		parent := itShardID(0)
		var want []string
		before := userRecords("parent", 6, "")
		e.putAggregate(e.hashKey(parent), before)
		for _, r := range before {
			want = append(want, string(r.Data))
		}
		kids := e.splitInHalf(parent)
		split := time.Now()
		k0, k1 := e.hashKey(kids[0]), e.hashKey(kids[1])

		// Stale aggregates into child 0: records for both children.
		lo, hi := userRecords("lo", 4, k0), userRecords("hi", 4, k1)
		var mixed []testenv.Record
		for i := range lo {
			mixed = append(mixed, lo[i], hi[i])
		}
		e.putAggregate(k0, mixed)
		// FLINK-29395: every sub-record belongs to child 1.
		allOut := userRecords("out", 5, k1)
		e.putAggregate(k0, allOut)
		// The retries of the wrong-shard records, into child 1.
		var retried []testenv.Record
		for _, r := range append(mixed, allOut...) {
			if r.ExplicitHashKey == k1 {
				retried = append(retried, r)
			}
		}
		e.putAggregate(k1, retried)
		// A later record on child 0: the reader must get past the
		// all-filtered aggregate.
		last := testenv.PutRecords(t, e.kc, e.stream, []testenv.Record{{PartitionKey: "last", ExplicitHashKey: k0, Data: []byte("last")}})
		if last[0].ShardID != kids[0] {
			t.Fatalf("record went to %s, not %s", last[0].ShardID, kids[0])
		}
		for _, r := range append(mixed, allOut...) {
			want = append(want, string(r.Data))
		}
		want = append(want, "last")

		e.mustRun(shardflow.Once(), nil)
		waitPastReshardStamps(em, split)
		e.mustRun(shardflow.AvailableNow(), nil)
		rows := e.sink.rows()
		checkValues(t, "rows", rows, want)
		checkShardOrder(t, e.sink.batches())
		for _, r := range rows {
			if r.Shard == kids[0] && len(r.Data) > 3 && r.Data[:3] == "hi-" {
				t.Errorf("row %s of child 1's range read from child 0", r)
			}
		}
		if n := e.kplMetric("kplFilteredSubRecords"); n < 9 {
			t.Errorf("kplFilteredSubRecords = %d, want at least 9 (4 + 5 records outside child 0's range)", n)
		}
	}, itFormatKPL)
}
