package kds

import (
	"crypto/md5"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/kds/kpl"
)

// aggRecord is a Kinesis record holding a KPL aggregate of n user
// records "<seq>-<i>", partition keys "pk-<seq>-<i>"; ehk(i) gives each
// one's explicit hash key ("" for none).
func aggRecord(seq, n int, at time.Time, ehk func(i int) string) types.Record {
	var a kpl.Aggregator
	for i := range n {
		e := ""
		if ehk != nil {
			e = ehk(i)
		}
		a.Add(fmt.Sprintf("pk-%d-%d", seq, i), e, fmt.Appendf(nil, "%d-%d", seq, i))
	}
	return types.Record{
		SequenceNumber:              aws.String(fmt.Sprint(seq)),
		PartitionKey:                aws.String("outer"),
		Data:                        a.Build(nil),
		ApproximateArrivalTimestamp: aws.Time(at),
	}
}

func subKeys(recs []engine.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%s/%d=%s", r.SequenceNumber, r.SubSequenceNumber, r.Data)
	}
	return out
}

// TestReaderDeaggregatesAndStartsInsideAggregates: the buffer turns an
// aggregate into user records with their own keys, the outer sequence
// number and arrival time and sub-sequence numbers 0..n-1; a start
// (seq, sub) resumes right after that user record.
func TestReaderDeaggregatesAndStartsInsideAggregates(t *testing.T) {
	const n = 1980
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		start     engine.Start
		firstSeq  string
		firstSub  int64
		wantCount int
	}{
		{engine.Start{Type: engine.TrimHorizon}, "4", 0, 1 + n + 1},
		{engine.Start{Type: engine.AfterSequenceNumber, Seq: "5", Sub: 0}, "5", 1, n - 1 + 1},
		{engine.Start{Type: engine.AfterSequenceNumber, Seq: "5", Sub: 699}, "5", 700, n - 700 + 1},
		{engine.Start{Type: engine.AfterSequenceNumber, Seq: "5", Sub: n - 1}, "6", 0, 1},
		{engine.Start{Type: engine.AtSequenceNumber, Seq: "5", Sub: 1000}, "5", 1000, n - 1000 + 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%s_%d", tt.start.Type, tt.start.Seq, tt.start.Sub), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var s scripted
				recs := []types.Record{kRecord(4, at), aggRecord(5, n, at, nil), kRecord(6, at)}
				if tt.start.Type != engine.TrimHorizon {
					recs = recs[1:]
				}
				s.onPage("it-0", page("", 0, recs...))
				fk := &fakeKinesis{getRecords: s.getRecords}
				src := fakeSource(t, testSourceConfig(), fk)
				r := openReader(t, src, "shardId-0", tt.start)
				synctest.Wait()
				snap := r.Peek(1 << 20)
				if snap.Err != nil {
					t.Fatal(snap.Err)
				}
				got := snap.Records
				if len(got) != tt.wantCount {
					t.Fatalf("%d records, want %d", len(got), tt.wantCount)
				}
				if got[0].SequenceNumber != tt.firstSeq || got[0].SubSequenceNumber != tt.firstSub {
					t.Fatalf("first record %s/%d, want %s/%d", got[0].SequenceNumber, got[0].SubSequenceNumber, tt.firstSeq, tt.firstSub)
				}
				for i, rec := range got {
					if rec.SequenceNumber != "5" {
						continue
					}
					want := fmt.Sprintf("5-%d", rec.SubSequenceNumber)
					if string(rec.Data) != want || rec.PartitionKey != "pk-"+want || !rec.ApproximateArrivalTimestamp.Equal(at) || rec.ShardID != "shardId-0" {
						t.Fatalf("record %d: %+v, want data %s", i, rec, want)
					}
					if i > 0 && got[i-1].SequenceNumber == "5" && got[i-1].SubSequenceNumber+1 != rec.SubSequenceNumber {
						t.Fatalf("record %d: sub %d after %d", i, rec.SubSequenceNumber, got[i-1].SubSequenceNumber)
					}
				}
				m := src.ProgressMetrics()
				if m["kplDeaggregatedRecords"] != fmt.Sprint(n) || m["kplCorruptAggregates"] != "0" {
					t.Errorf("metrics %v", m)
				}
			})
		})
	}
}

// TestReaderCorruptAggregatesEmittedWhole: a bad MD5 and a truncated
// protobuf are emitted whole, as plain records, and counted.
func TestReaderCorruptAggregatesEmittedWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at := time.Now()
		good := aggRecord(1, 3, at, nil)
		badMD5 := aggRecord(2, 3, at, nil)
		badMD5.Data[len(badMD5.Data)-1] ^= 1
		trunc := aggRecord(3, 3, at, nil)
		pb := trunc.Data[4 : len(trunc.Data)-16]
		pb = pb[:len(pb)-2]
		trunc.Data = withDigestForTest(pb)
		var s scripted
		s.onPage("it-0", page("", 0, good, badMD5, trunc))
		fk := &fakeKinesis{getRecords: s.getRecords}
		src := fakeSource(t, testSourceConfig(), fk)
		r := openReader(t, src, "shardId-0", engine.Start{Type: engine.TrimHorizon})
		synctest.Wait()
		got := r.Peek(100).Records
		if len(got) != 5 {
			t.Fatalf("records %v, want 3 user records and 2 whole records", subKeys(got))
		}
		if string(got[3].Data) != string(badMD5.Data) || got[3].PartitionKey != "outer" || got[3].SubSequenceNumber != 0 {
			t.Errorf("bad MD5 record not emitted whole: %+v", got[3])
		}
		if string(got[4].Data) != string(trunc.Data) || got[4].SequenceNumber != "3" {
			t.Errorf("truncated record not emitted whole: %+v", got[4])
		}
		if m := src.ProgressMetrics(); m["kplCorruptAggregates"] != "2" || m["kplDeaggregatedRecords"] != "3" {
			t.Errorf("metrics %v", m)
		}
	})
}

func withDigestForTest(pb []byte) []byte {
	sum := md5.Sum(pb)
	return append(append([]byte(kpl.Magic), pb...), sum[:]...)
}

// TestReaderHashRangeFilter: sub-records outside the shard's hash key
// range are dropped and counted, the others keep their sub-sequence
// numbers; an aggregate with every sub-record outside the range is passed
// (FLINK-29395) and reading goes on.
func TestReaderHashRangeFilter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at := time.Now()
		lo, hi := "0", "170141183460469231731687303715884105727" // the lower half
		in, out := "5", "200000000000000000000000000000000000000"
		var s scripted
		s.onPage("it-0", page("", 0,
			aggRecord(1, 4, at, func(i int) string { return map[bool]string{true: in, false: out}[i%2 == 0] }),
			aggRecord(2, 3, at, func(int) string { return out }),
			kRecord(3, at)))
		fk := &fakeKinesis{getRecords: s.getRecords}
		fk.listShards = func(*kinesis.ListShardsInput) (*kinesis.ListShardsOutput, error) {
			return &kinesis.ListShardsOutput{Shards: []types.Shard{{
				ShardId:      aws.String("shardId-0"),
				HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(lo), EndingHashKey: aws.String(hi)},
			}}}, nil
		}
		src := fakeSource(t, testSourceConfig(), fk)
		r := openReader(t, src, "shardId-0", engine.Start{Type: engine.TrimHorizon})
		synctest.Wait()
		got := subKeys(r.Peek(100).Records)
		want := []string{"1/0=1-0", "1/2=1-2", "3/0=data-3"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("records %v, want %v", got, want)
		}
		if m := src.ProgressMetrics(); m["kplFilteredSubRecords"] != "5" {
			t.Errorf("metrics %v", m)
		}
	})
}
