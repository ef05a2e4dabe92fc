package kds

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow/internal/engine"
)

// scripted answers GetRecords by iterator; an iterator answered once is
// removed, so a repeated call fails loudly.
type scripted struct {
	mu      sync.Mutex
	answers map[string][]func() (*kinesis.GetRecordsOutput, error)
}

func (s *scripted) on(iter string, f func() (*kinesis.GetRecordsOutput, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answers == nil {
		s.answers = map[string][]func() (*kinesis.GetRecordsOutput, error){}
	}
	s.answers[iter] = append(s.answers[iter], f)
}

func (s *scripted) onPage(iter string, out *kinesis.GetRecordsOutput) {
	s.on(iter, func() (*kinesis.GetRecordsOutput, error) { return out, nil })
}

func (s *scripted) getRecords(in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := awsv2.ToString(in.ShardIterator)
	fs := s.answers[it]
	if len(fs) == 0 {
		return nil, fmt.Errorf("fake: no answer scripted for iterator %q", it)
	}
	s.answers[it] = fs[1:]
	return fs[0]()
}

func TestReaderExpiredIteratorResumesAfterLastRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		var s scripted
		s.onPage("it-0", page("it-1", 1000, kRecord(1, t0), kRecord(2, t0)))
		s.on("it-1", func() (*kinesis.GetRecordsOutput, error) {
			return nil, &types.ExpiredIteratorException{Message: awsv2.String("Iterator expired")}
		})
		s.onPage("it-after-2", page("", 0, kRecord(3, t0)))
		fk := &fakeKinesis{
			getRecords: s.getRecords,
			getShardIterator: func(in *kinesis.GetShardIteratorInput) (*kinesis.GetShardIteratorOutput, error) {
				if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber {
					return &kinesis.GetShardIteratorOutput{ShardIterator: awsv2.String("it-after-" + awsv2.ToString(in.StartingSequenceNumber))}, nil
				}
				return &kinesis.GetShardIteratorOutput{ShardIterator: awsv2.String("it-0")}, nil
			},
		}
		r := openReader(t, fakeSource(t, testSourceConfig(), fk), "shardId-000000000001", engine.Start{Type: engine.TrimHorizon})
		time.Sleep(time.Second)
		synctest.Wait()

		snap := r.Peek(100)
		if snap.Err != nil {
			t.Fatal(snap.Err)
		}
		if got := seqs(snap.Records); fmt.Sprint(got) != "[1 2 3]" {
			t.Errorf("records %v, want [1 2 3]", got)
		}
		if !snap.Ended {
			t.Error("not Ended after a page without NextShardIterator")
		}
		its := fk.iteratorCalls()
		if len(its) != 2 || its[0].ShardIteratorType != types.ShardIteratorTypeTrimHorizon ||
			its[1].ShardIteratorType != types.ShardIteratorTypeAfterSequenceNumber || awsv2.ToString(its[1].StartingSequenceNumber) != "2" {
			t.Errorf("GetShardIterator calls %+v, want TRIM_HORIZON then AFTER_SEQUENCE_NUMBER 2", its)
		}
	})
}

func TestReaderExpiredIteratorBeforeAnyRecordRestartsAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s scripted
		s.on("it-0", func() (*kinesis.GetRecordsOutput, error) { return nil, &types.ExpiredIteratorException{} })
		s.onPage("it-1", page("", 0, kRecord(5, time.Now())))
		n := 0
		fk := &fakeKinesis{
			getRecords: s.getRecords,
			getShardIterator: func(in *kinesis.GetShardIteratorInput) (*kinesis.GetShardIteratorOutput, error) {
				it := fmt.Sprintf("it-%d", n)
				n++
				return &kinesis.GetShardIteratorOutput{ShardIterator: &it}, nil
			},
		}
		r := openReader(t, fakeSource(t, testSourceConfig(), fk), "shardId-0", engine.Start{Type: engine.AtSequenceNumber, Seq: "5"})
		time.Sleep(time.Second)
		synctest.Wait()
		snap := r.Peek(10)
		if snap.Err != nil || fmt.Sprint(seqs(snap.Records)) != "[5]" {
			t.Fatalf("records %v, err %v; want [5]", seqs(snap.Records), snap.Err)
		}
		for _, in := range fk.iteratorCalls() {
			if in.ShardIteratorType != types.ShardIteratorTypeAtSequenceNumber || awsv2.ToString(in.StartingSequenceNumber) != "5" {
				t.Errorf("GetShardIterator %+v, want AT_SEQUENCE_NUMBER 5 each time", in)
			}
		}
	})
}

func TestReaderExpiredIteratorLoopFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{getRecords: func(*kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
			return nil, &types.ExpiredIteratorException{}
		}}
		r := openReader(t, fakeSource(t, testSourceConfig(), fk), "shardId-0", engine.Start{Type: engine.TrimHorizon})
		time.Sleep(time.Minute)
		synctest.Wait()
		err := r.Peek(0).Err
		if err == nil || !strings.Contains(err.Error(), "GetRecords on shardId-0") {
			t.Fatalf("err = %v, want a GetRecords error", err)
		}
		if n := len(fk.iteratorCalls()); n != 1+maxExpiredRefresh {
			t.Errorf("%d GetShardIterator calls, want %d", n, 1+maxExpiredRefresh)
		}
	})
}

func TestReaderTailAndShardEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		var s scripted
		s.onPage("it-0", page("it-1", 0, kRecord(1, t0))) // records with 0 behind: not the tail
		s.onPage("it-1", page("it-2", 5000))              // empty but behind: not the tail
		s.onPage("it-2", page("it-3", 0))                 // empty, 0 behind: tail; a closed shard may still have more
		s.onPage("it-3", page("it-4", 0, kRecord(2, t0))) // a record clears the tail
		end := page("", 0)
		end.ChildShards = []types.ChildShard{{
			ShardId:      awsv2.String("shardId-2"),
			ParentShards: []string{"shardId-0", "shardId-1"},
			HashKeyRange: &types.HashKeyRange{StartingHashKey: awsv2.String("0"), EndingHashKey: awsv2.String("99")},
		}}
		s.onPage("it-4", end)
		fk := &fakeKinesis{getRecords: s.getRecords}
		r := openReader(t, fakeSource(t, testSourceConfig(), fk), "shardId-0", engine.Start{Type: engine.TrimHorizon})

		type state struct {
			Buffered      int
			AtTail, Ended bool
			MBL           int64
			Ready         bool
		}
		want := []state{
			{1, false, false, 0, true},
			{1, false, false, 5000, false},
			{1, true, false, 0, true},
			{2, false, false, 0, true},
			{2, true, true, 0, true}, // the last page is empty with 0 behind
		}
		for i, w := range want {
			synctest.Wait()
			snap := r.Peek(10)
			if snap.Err != nil {
				t.Fatalf("page %d: %v", i, snap.Err)
			}
			ready := false
			select {
			case <-r.Ready():
				ready = true
			default:
			}
			got := state{snap.Buffered, snap.AtTail, snap.Ended, snap.MillisBehindLatest, ready}
			if got != w {
				t.Errorf("after page %d: %+v, want %+v", i, got, w)
			}
			time.Sleep(200 * time.Millisecond)
		}
		wantChildren := []engine.ShardInfo{{ID: "shardId-2", Parents: []string{"shardId-0", "shardId-1"}, HashKeyStart: "0", HashKeyEnd: "99"}}
		if diff := cmp.Diff(wantChildren, r.Peek(0).Children); diff != "" {
			t.Errorf("children (-want +got):\n%s", diff)
		}
		if n := len(fk.getCalls()); n != 5 {
			t.Errorf("%d GetRecords calls, want 5 (none after the end)", n)
		}
	})
}

func TestReaderRecordFields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
		var s scripted
		s.onPage("it-0", page("", 0, types.Record{
			SequenceNumber:              awsv2.String("49590338271490256608559692538361571095921575989136588898"),
			PartitionKey:                awsv2.String("pk"),
			Data:                        []byte("hello"),
			ApproximateArrivalTimestamp: awsv2.Time(t0),
		}))
		r := openReader(t, fakeSource(t, testSourceConfig(), &fakeKinesis{getRecords: s.getRecords}), "shardId-000000000007", engine.Start{Type: engine.TrimHorizon})
		synctest.Wait()
		want := []engine.Record{{
			Data: []byte("hello"), PartitionKey: "pk", SequenceNumber: "49590338271490256608559692538361571095921575989136588898",
			ApproximateArrivalTimestamp: t0, ShardID: "shardId-000000000007",
		}}
		if diff := cmp.Diff(want, r.Peek(10).Records); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// endless answers every GetRecords with Limit records, numbered on.
type endless struct {
	mu   sync.Mutex
	next int
	size int // data bytes per record
}

func (e *endless) getRecords(in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := page("it", 100)
	for range awsv2.ToInt32(in.Limit) {
		rec := kRecord(e.next, time.Now())
		rec.Data = make([]byte, e.size)
		out.Records = append(out.Records, rec)
		e.next++
	}
	return out, nil
}

func TestReaderBufferBoundRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endless{}
		fk := &fakeKinesis{getRecords: src.getRecords}
		cfg := testSourceConfig()
		cfg.BufferRecords, cfg.RecordsPerFetch = 10, 4
		r := openReader(t, fakeSource(t, cfg, fk), "shardId-0", engine.Start{Type: engine.TrimHorizon})

		time.Sleep(time.Hour) // long enough for hundreds of fetches if nothing stopped them
		synctest.Wait()
		snap := r.Peek(100)
		if snap.Buffered != 10 || len(snap.Records) != 10 || !snap.Full {
			t.Fatalf("buffered %d (%d peeked), full %v; want 10, 10, true", snap.Buffered, len(snap.Records), snap.Full)
		}
		var limits []int32
		for _, in := range fk.getCalls() {
			limits = append(limits, awsv2.ToInt32(in.Limit))
		}
		if fmt.Sprint(limits) != "[4 4 2]" {
			t.Errorf("GetRecords limits %v, want [4 4 2]: never more than the room left", limits)
		}

		r.Release(3)
		time.Sleep(time.Hour)
		synctest.Wait()
		snap = r.Peek(100)
		if got := fmt.Sprint(seqs(snap.Records)); got != "[3 4 5 6 7 8 9 10 11 12]" {
			t.Errorf("after Release(3): %v", got)
		}
		if n := len(fk.getCalls()); n != 4 || awsv2.ToInt32(fk.getCalls()[3].Limit) != 3 {
			t.Errorf("after Release(3): %d calls, want 4 with the last Limit 3", n)
		}

		// Release everything, in pieces, and read on: order is kept across
		// buffer compaction.
		var all []string
		for len(all) < 100 {
			snap := r.Peek(7)
			all = append(all, seqs(snap.Records)...)
			r.Release(len(snap.Records))
			time.Sleep(time.Second)
			synctest.Wait()
		}
		for i, s := range all {
			if s != fmt.Sprint(i+3) {
				t.Fatalf("record %d is %s, want %d", i, s, i+3)
			}
		}
	})
}

func TestReaderBufferBoundBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endless{size: 1000}
		fk := &fakeKinesis{getRecords: src.getRecords}
		cfg := testSourceConfig()
		cfg.BufferRecords, cfg.RecordsPerFetch = 1000, 3
		cfg.BufferBytes = 5000 // five records of about 1.1 kB: two pages of 3
		r := openReader(t, fakeSource(t, cfg, fk), "shardId-0", engine.Start{Type: engine.TrimHorizon})
		time.Sleep(time.Hour)
		synctest.Wait()
		snap := r.Peek(100)
		if snap.Buffered != 6 || !snap.Full {
			t.Fatalf("buffered %d, full %v; want 6 (fetching stops once 5000 bytes are reached), true", snap.Buffered, snap.Full)
		}
		r.Release(2)
		time.Sleep(time.Hour)
		synctest.Wait()
		// 4 records are under the byte bound: one more page, then full again.
		if snap := r.Peek(100); snap.Buffered != 7 || !snap.Full {
			t.Errorf("after Release(2): buffered %d, full %v; want 7, true", snap.Buffered, snap.Full)
		}
	})
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name      string
		iterErr   error
		getErr    error
		wantErr   string
		wantCalls int
	}{
		{
			name:      "not retryable",
			getErr:    &types.ResourceNotFoundException{Message: awsv2.String("Shard not found")},
			wantErr:   `kds: GetRecords on shardId-000000000001 of stream "s": `,
			wantCalls: 1,
		},
		{
			name:      "throttled until retries run out",
			getErr:    &types.ProvisionedThroughputExceededException{Message: awsv2.String("Rate exceeded")},
			wantErr:   `kds: GetRecords on shardId-000000000001 of stream "s": gave up after 3 attempts: `,
			wantCalls: 3,
		},
		{
			name:    "iterator",
			iterErr: &types.InvalidArgumentException{Message: awsv2.String("bad sequence number")},
			wantErr: `kds: GetShardIterator on shardId-000000000001 of stream "s": `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := &fakeKinesis{getRecords: func(*kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) { return nil, tt.getErr }}
				if tt.iterErr != nil {
					fk.getShardIterator = func(*kinesis.GetShardIteratorInput) (*kinesis.GetShardIteratorOutput, error) { return nil, tt.iterErr }
				}
				r := openReader(t, fakeSource(t, testSourceConfig(), fk), "shardId-000000000001", engine.Start{Type: engine.AtSequenceNumber, Seq: "1"})
				time.Sleep(time.Minute)
				synctest.Wait()
				select {
				case <-r.done:
				default:
					t.Fatal("reader still running after a fatal error")
				}
				select {
				case <-r.Ready():
				default:
					t.Error("Ready not signalled for the error")
				}
				err := r.Peek(0).Err
				// A shard that no longer exists is reported as data loss,
				// wrapping the call's error.
				if dl, ok := errors.AsType[*engine.DataLossError](err); ok {
					if !dl.Gone {
						t.Fatalf("data loss %v, want Gone", dl)
					}
					err = dl.Err
				}
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Err = %v, want prefix %q", err, tt.wantErr)
				}
				var ce *CallError
				if !errors.As(err, &ce) || ce.Shard != "shardId-000000000001" {
					t.Errorf("Err %v is not a *CallError for the shard", err)
				}
				if n := len(fk.getCalls()); n != tt.wantCalls {
					t.Errorf("%d GetRecords calls, want %d", n, tt.wantCalls)
				}
			})
		})
	}
}

func TestReaderAtTimestampInTheFuture(t *testing.T) {
	for _, rejectNow := range []bool{false, true} {
		t.Run(fmt.Sprintf("server clock behind=%v", rejectNow), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ts := time.Now().Add(time.Hour)
				var s scripted
				s.onPage("it-0", page("it-1", 0, kRecord(1, ts.Add(-time.Millisecond)), kRecord(2, ts), kRecord(3, ts.Add(-time.Second))))
				fk := &fakeKinesis{
					getRecords: s.getRecords,
					getShardIterator: func(in *kinesis.GetShardIteratorInput) (*kinesis.GetShardIteratorOutput, error) {
						if in.ShardIteratorType == types.ShardIteratorTypeAtTimestamp {
							if in.Timestamp.After(time.Now()) {
								t.Errorf("GetShardIterator with a future timestamp %v", in.Timestamp)
							}
							if rejectNow {
								return nil, &types.InvalidArgumentException{Message: awsv2.String("Timestamp cannot be in the future")}
							}
						}
						return &kinesis.GetShardIteratorOutput{ShardIterator: awsv2.String("it-0")}, nil
					},
				}
				r := openReader(t, fakeSource(t, testSourceConfig(), fk), "shardId-0", engine.Start{Type: engine.AtTimestamp, Timestamp: ts})
				synctest.Wait()
				snap := r.Peek(10)
				if snap.Err != nil {
					t.Fatal(snap.Err)
				}
				// Record 1 arrived before ts: dropped. Once a record at or
				// after ts is kept, later ones are all kept.
				if got := fmt.Sprint(seqs(snap.Records)); got != "[2 3]" {
					t.Errorf("records %v, want [2 3]", got)
				}
				its := fk.iteratorCalls()
				last := its[len(its)-1].ShardIteratorType
				if want := map[bool]types.ShardIteratorType{false: types.ShardIteratorTypeAtTimestamp, true: types.ShardIteratorTypeLatest}[rejectNow]; last != want {
					t.Errorf("iterator type %s, want %s", last, want)
				}
			})
		})
	}
}

func TestReaderSequenceNumberStarts(t *testing.T) {
	tests := []struct {
		start    engine.Start
		wantType types.ShardIteratorType
		want     string
	}{
		{engine.Start{Type: engine.AtSequenceNumber, Seq: "5"}, types.ShardIteratorTypeAtSequenceNumber, "[5 6]"},
		{engine.Start{Type: engine.AtSequenceNumber, Seq: "5", Sub: 1}, types.ShardIteratorTypeAtSequenceNumber, "[6]"},
		{engine.Start{Type: engine.AfterSequenceNumber, Seq: "5"}, types.ShardIteratorTypeAtSequenceNumber, "[6]"},
		{engine.Start{Type: engine.AfterSequenceNumber, Seq: "5", Sub: 2}, types.ShardIteratorTypeAtSequenceNumber, "[6]"},
		{engine.Start{Type: engine.TrimHorizon}, types.ShardIteratorTypeTrimHorizon, "[5 6]"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%s_%d", tt.start.Type, tt.start.Seq, tt.start.Sub), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var s scripted
				s.onPage("it-0", page("", 0, kRecord(5, time.Now()), kRecord(6, time.Now())))
				fk := &fakeKinesis{getRecords: s.getRecords}
				r := openReader(t, fakeSource(t, testSourceConfig(), fk), "shardId-0", tt.start)
				synctest.Wait()
				snap := r.Peek(10)
				if got := fmt.Sprint(seqs(snap.Records)); got != tt.want || snap.Err != nil {
					t.Errorf("records %v (err %v), want %s", got, snap.Err, tt.want)
				}
				in := fk.iteratorCalls()[0]
				if in.ShardIteratorType != tt.wantType || (tt.start.Seq != "" && awsv2.ToString(in.StartingSequenceNumber) != tt.start.Seq) {
					t.Errorf("GetShardIterator %s %v, want %s %s", in.ShardIteratorType, awsv2.ToString(in.StartingSequenceNumber), tt.wantType, tt.start.Seq)
				}
			})
		})
	}
}

func TestReaderPacing(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		empty    bool
		want     time.Duration // between calls
	}{
		{"records at FetchInterval", time.Second, false, time.Second},
		{"records back to back with 0", 0, false, 0},
		{"empty pages with 0 pause", 0, true, emptyPagePause},
		{"empty pages at a longer FetchInterval", 2 * time.Second, true, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var at []time.Time
				n := 0
				fk := &fakeKinesis{getRecords: func(*kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
					mu.Lock()
					defer mu.Unlock()
					at = append(at, time.Now())
					n++
					if len(at) == 5 {
						return page("", 0), nil
					}
					if tt.empty {
						return page("it", 0), nil
					}
					return page("it", 0, kRecord(n, time.Now())), nil
				}}
				cfg := testSourceConfig()
				cfg.FetchInterval = tt.interval
				r := openReader(t, fakeSource(t, cfg, fk), "shardId-0", engine.Start{Type: engine.TrimHorizon})
				time.Sleep(time.Minute)
				synctest.Wait()
				if !r.Peek(0).Ended {
					t.Fatal("not ended")
				}
				for i := 1; i < len(at); i++ {
					if d := at[i].Sub(at[i-1]); d != tt.want {
						t.Errorf("call %d came %v after the previous, want %v", i, d, tt.want)
					}
				}
			})
		})
	}
}

func TestReaderCloseStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endless{}
		fk := &fakeKinesis{getRecords: src.getRecords}
		cfg := testSourceConfig()
		r, err := fakeSource(t, cfg, fk).OpenShard(t.Context(), "shardId-0", engine.Start{Type: engine.TrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		r.Close()
		r.Close() // idempotent
		n := len(fk.getCalls())
		time.Sleep(time.Minute)
		synctest.Wait()
		if m := len(fk.getCalls()); m != n {
			t.Errorf("%d GetRecords calls after Close", m-n)
		}
		if err := r.Peek(0).Err; err != nil {
			t.Errorf("Close left an error: %v", err)
		}
	})
}

func TestReaderAtTimestampOtherInvalidArgumentIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{getShardIterator: func(in *kinesis.GetShardIteratorInput) (*kinesis.GetShardIteratorOutput, error) {
			if in.ShardIteratorType == types.ShardIteratorTypeLatest {
				t.Error("fell back to LATEST for an unrelated InvalidArgumentException: records would be skipped")
			}
			return nil, &types.InvalidArgumentException{Message: awsv2.String("Invalid ShardId")}
		}}
		r := openReader(t, fakeSource(t, testSourceConfig(), fk), "shardId-0", engine.Start{Type: engine.AtTimestamp, Timestamp: time.Now()})
		synctest.Wait()
		if err := r.Peek(0).Err; err == nil || !strings.Contains(err.Error(), "GetShardIterator on shardId-0") {
			t.Errorf("Err = %v, want a GetShardIterator error", err)
		}
	})
}
