package kds

// Integration tests against the local Kinesis emulators (kinesalite and
// kinesis-mock); see internal/testenv for how they are found.

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/internal/testenv"
)

// countingAPI counts the calls that go through it.
type countingAPI struct {
	kinesisAPI
	lists, gets atomic.Int32
}

func (c *countingAPI) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	c.lists.Add(1)
	return c.kinesisAPI.ListShards(ctx, in, o...)
}

func (c *countingAPI) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, o ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	c.gets.Add(1)
	return c.kinesisAPI.GetRecords(ctx, in, o...)
}

func emuAWS(em testenv.Emulator) AWSConfig {
	return AWSConfig{Region: testenv.Region, EndpointURL: em.Endpoint, AccessKeyID: testenv.AccessKeyID, SecretKey: testenv.SecretKey}
}

// emuSource returns a Source on the emulator through NewSource, with its
// calls counted.
func emuSource(t *testing.T, em testenv.Emulator, stream string, mod func(*SourceConfig)) (*Source, *countingAPI) {
	t.Helper()
	cfg := SourceConfig{
		StreamName:       stream,
		AWS:              emuAWS(em),
		Retry:            RetryConfig{MaxAttempts: 5, Initial: 50 * time.Millisecond, Max: time.Second},
		StartingPosition: StartingPosition{Kind: "TRIM_HORIZON"},
		FetchInterval:    20 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	src, err := NewSource(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingAPI{kinesisAPI: src.api}
	src.api = c
	return src, c
}

// collect reads r, releasing as it goes, until done says so; it fails the
// test after 30 s.
func collect(t *testing.T, r engine.ShardReader, done func(got []engine.Record, snap engine.Snapshot) bool) []engine.Record {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var got []engine.Record
	for {
		snap := r.Peek(1 << 30)
		if snap.Err != nil {
			t.Fatalf("reader: %v", snap.Err)
		}
		got = append(got, snap.Records...)
		r.Release(len(snap.Records))
		if done(got, snap) {
			return got
		}
		select {
		case <-r.Ready():
		case <-timeout.C:
			t.Fatalf("timed out with %d records; last snapshot %+v", len(got), snap)
		}
	}
}

func atTail(_ []engine.Record, s engine.Snapshot) bool { return s.AtTail || s.Ended }

func putN(t *testing.T, c *kinesis.Client, stream, prefix string, n int) []testenv.Put {
	recs := make([]testenv.Record, n)
	for i := range recs {
		recs[i] = testenv.Record{PartitionKey: fmt.Sprintf("%s-pk-%d", prefix, i), Data: fmt.Appendf(nil, "%s-data-%d", prefix, i)}
	}
	return testenv.PutRecords(t, c, stream, recs)
}

// splitInHalf splits a shard at the middle of its hash key range.
func splitInHalf(t *testing.T, c *kinesis.Client, stream, shardID string) {
	for _, sh := range testenv.Shards(t, c, stream) {
		if awsv2.ToString(sh.ShardId) != shardID {
			continue
		}
		lo, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
		hi, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
		mid := new(big.Int).Add(lo, hi)
		mid.Rsh(mid, 1)
		mid.Add(mid, big.NewInt(1))
		testenv.SplitShard(t, c, stream, shardID, mid.String())
		return
	}
	t.Fatalf("no shard %s", shardID)
}

func seqLess(a, b string) bool {
	x, _ := new(big.Int).SetString(a, 10)
	y, _ := new(big.Int).SetString(b, 10)
	return x.Cmp(y) < 0
}

func TestEmulatorListShardsPaginationAndLineage(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 3)
		src, calls := emuSource(t, em, stream, nil)
		src.pageSize = 1

		shards, err := src.ListShards(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(shards) != 3 {
			t.Fatalf("%d shards, want 3: %+v", len(shards), shards)
		}
		if em.Name == testenv.KinesisMock && calls.lists.Load() < 3 {
			t.Errorf("%d ListShards calls for 3 shards in pages of 1: no pagination", calls.lists.Load())
		}

		parent := shards[0].ID
		splitInHalf(t, c, stream, parent)
		shards, err = src.ListShards(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(shards) != 5 {
			t.Fatalf("%d shards after a split, want 5: %+v", len(shards), shards)
		}
		var children []string
		for _, s := range shards {
			switch {
			case s.ID == parent:
				if !s.Closed {
					t.Errorf("split parent %s not closed", s.ID)
				}
			case slices.Equal(s.Parents, []string{parent}):
				children = append(children, s.ID)
				if s.Closed {
					t.Errorf("child %s closed", s.ID)
				}
			default:
				if len(s.Parents) != 0 || s.Closed {
					t.Errorf("untouched shard %+v has parents or is closed", s)
				}
			}
			if s.StartingSequenceNumber == "" || s.HashKeyStart == "" || s.HashKeyEnd == "" {
				t.Errorf("shard %+v lacks ranges", s)
			}
		}
		if len(children) != 2 {
			t.Errorf("children of %s: %v, want 2", parent, children)
		}
		if em.Name == testenv.KinesisMock && calls.lists.Load() < 8 {
			t.Errorf("%d ListShards calls in all, want pages of 1", calls.lists.Load())
		}
	})
}

func TestEmulatorReadTrimHorizon(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 2)
		n := 600
		if em.Name == testenv.KinesisMock {
			n = 200
		}
		before := time.Now().Add(-time.Second)
		puts := putN(t, c, stream, "th", n)
		after := time.Now().Add(time.Second)
		src, _ := emuSource(t, em, stream, func(c *SourceConfig) { c.RecordsPerFetch = 70 })

		byShard := map[string][]testenv.Put{}
		for _, p := range puts {
			byShard[p.ShardID] = append(byShard[p.ShardID], p)
		}
		total := 0
		for shardID, want := range byShard {
			r, err := src.OpenShard(t.Context(), shardID, engine.Start{Type: engine.TrimHorizon})
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, r, atTail)
			r.Close()
			if len(got) != len(want) {
				t.Fatalf("shard %s: %d records, want %d", shardID, len(got), len(want))
			}
			for i, g := range got {
				w := want[i]
				if g.SequenceNumber != w.SequenceNumber || g.PartitionKey != w.PartitionKey || string(g.Data) != string(w.Data) ||
					g.ShardID != shardID || g.SubSequenceNumber != 0 || g.ExplicitHashKey != "" {
					t.Fatalf("shard %s record %d: %+v, want %+v", shardID, i, g, w)
				}
				if g.ApproximateArrivalTimestamp.Before(before) || g.ApproximateArrivalTimestamp.After(after) {
					t.Errorf("record %d arrived at %v, outside the put window", i, g.ApproximateArrivalTimestamp)
				}
				if i > 0 && !seqLess(got[i-1].SequenceNumber, g.SequenceNumber) {
					t.Errorf("record %d out of order", i)
				}
			}
			total += len(got)
		}
		if total != n {
			t.Errorf("read %d records, want %d", total, n)
		}
	})
}

func TestEmulatorReadAtTimestamp(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 1)
		putN(t, c, stream, "a", 20)
		time.Sleep(50 * time.Millisecond) // let the server's clock move on between the two groups
		putN(t, c, stream, "b", 20)

		all := testenv.ReadShard(t, c, stream, "shardId-000000000000")
		var ts time.Time
		for _, r := range all {
			if strings.HasPrefix(*r.PartitionKey, "b-") {
				ts = *r.ApproximateArrivalTimestamp
				break
			}
		}
		var want []string
		for _, r := range all {
			if !r.ApproximateArrivalTimestamp.Before(ts) {
				want = append(want, *r.SequenceNumber)
			}
		}
		if len(want) < 20 || len(want) == len(all) {
			t.Fatalf("bad fixture: %d of %d records from %v", len(want), len(all), ts)
		}

		src, _ := emuSource(t, em, stream, nil)
		r, err := src.OpenShard(t.Context(), "shardId-000000000000", engine.Start{Type: engine.AtTimestamp, Timestamp: ts})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := seqs(collect(t, r, atTail))
		if !slices.Equal(got, want) {
			t.Errorf("AT_TIMESTAMP %v: %d records %v, want %d %v", ts, len(got), got, len(want), want)
		}
	})
}

func TestEmulatorReadAtTimestampInTheFuture(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 1)
		src, _ := emuSource(t, em, stream, nil)
		ts := time.Now().Add(500 * time.Millisecond)
		r, err := src.OpenShard(t.Context(), "shardId-000000000000", engine.Start{Type: engine.AtTimestamp, Timestamp: ts})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		early := putN(t, c, stream, "early", 1)
		time.Sleep(time.Until(ts) + 50*time.Millisecond) // the records under test must arrive after ts
		late := putN(t, c, stream, "late", 2)
		got := collect(t, r, func(got []engine.Record, _ engine.Snapshot) bool { return len(got) >= 2 })
		if fmt.Sprint(seqs(got)) != fmt.Sprint([]string{late[0].SequenceNumber, late[1].SequenceNumber}) {
			t.Errorf("got %v; want only the records after %v (not %s)", seqs(got), ts, early[0].SequenceNumber)
		}
	})
}

func TestEmulatorReadSequenceNumberStarts(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 1)
		puts := putN(t, c, stream, "s", 10)
		var all []string
		for _, p := range puts {
			all = append(all, p.SequenceNumber)
		}
		src, _ := emuSource(t, em, stream, nil)
		for _, tt := range []struct {
			start engine.Start
			want  []string
		}{
			{engine.Start{Type: engine.AtSequenceNumber, Seq: all[3]}, all[3:]},
			{engine.Start{Type: engine.AfterSequenceNumber, Seq: all[3]}, all[4:]},
			{engine.Start{Type: engine.AfterSequenceNumber, Seq: all[3], Sub: 2}, all[4:]},
			{engine.Start{Type: engine.AfterSequenceNumber, Seq: all[9]}, nil},
		} {
			r, err := src.OpenShard(t.Context(), "shardId-000000000000", tt.start)
			if err != nil {
				t.Fatal(err)
			}
			got := seqs(collect(t, r, atTail))
			r.Close()
			if !slices.Equal(got, tt.want) && len(got)+len(tt.want) > 0 {
				t.Errorf("%+v: %v, want %v", tt.start, got, tt.want)
			}
		}
	})
}

func TestEmulatorReaderBufferBound(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 1)
		putN(t, c, stream, "b", 50)
		src, calls := emuSource(t, em, stream, func(c *SourceConfig) {
			c.BufferRecords, c.RecordsPerFetch, c.FetchInterval = 10, 100, 0
		})
		r, err := src.OpenShard(t.Context(), "shardId-000000000000", engine.Start{Type: engine.TrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()

		// Without Release the reader fills the buffer and stops.
		for !r.Peek(0).Full {
			select {
			case <-r.Ready():
			case <-time.After(10 * time.Second):
				t.Fatalf("buffer never filled: %+v", r.Peek(0))
			}
		}
		n := calls.gets.Load()
		time.Sleep(300 * time.Millisecond) // 15 fetch intervals of an unthrottled reader
		if m := calls.gets.Load(); m != n {
			t.Errorf("%d GetRecords calls while the buffer was full", m-n)
		}
		if b := r.Peek(0).Buffered; b != 10 {
			t.Errorf("buffered %d, want 10", b)
		}

		// With Release it reads on; the bound always holds.
		got := collect(t, r, func(got []engine.Record, s engine.Snapshot) bool {
			if s.Buffered > 10 {
				t.Fatalf("buffered %d > 10", s.Buffered)
			}
			return s.AtTail && len(got) == 50
		})
		if len(got) != 50 {
			t.Errorf("read %d records, want 50", len(got))
		}
	})
}

func TestEmulatorReadClosedParentToItsEnd(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 1)
		const parent = "shardId-000000000000"
		before := putN(t, c, stream, "before", 30)
		splitInHalf(t, c, stream, parent)
		afterPuts := putN(t, c, stream, "after", 20)
		for _, p := range afterPuts {
			if p.ShardID == parent {
				t.Fatalf("record written to the closed parent")
			}
		}

		src, _ := emuSource(t, em, stream, nil)
		r, err := src.OpenShard(t.Context(), parent, engine.Start{Type: engine.TrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := collect(t, r, func(_ []engine.Record, s engine.Snapshot) bool { return s.Ended })
		var want []string
		for _, p := range before {
			want = append(want, p.SequenceNumber)
		}
		if !slices.Equal(seqs(got), want) {
			t.Errorf("parent: %d records, want %d", len(got), len(want))
		}
		snap := r.Peek(0)
		if !snap.Ended {
			t.Error("parent not Ended")
		}
		if em.Name == testenv.KinesisMock { // kinesalite sends no ChildShards
			var ids []string
			for _, ch := range snap.Children {
				ids = append(ids, ch.ID)
				if !slices.Equal(ch.Parents, []string{parent}) {
					t.Errorf("child %+v: want parent %s", ch, parent)
				}
			}
			if len(ids) != 2 {
				t.Errorf("children %v, want 2", ids)
			}
		}

		// The children hold the rest.
		shards, err := src.ListShards(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range shards {
			if len(s.Parents) == 0 {
				continue
			}
			cr, err := src.OpenShard(t.Context(), s.ID, engine.Start{Type: engine.TrimHorizon})
			if err != nil {
				t.Fatal(err)
			}
			n += len(collect(t, cr, atTail))
			cr.Close()
		}
		if n != len(afterPuts) {
			t.Errorf("children: %d records, want %d", n, len(afterPuts))
		}
	})
}

func emuSink(t *testing.T, em testenv.Emulator, stream string) *Sink {
	t.Helper()
	s, err := NewSink(t.Context(), SinkConfig{
		StreamName:     stream,
		AWS:            emuAWS(em),
		Retry:          RetryConfig{MaxAttempts: 5, Initial: 50 * time.Millisecond, Max: time.Second},
		MaxConnections: 4,
		RecordTTL:      30 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestEmulatorSinkRoundTrip(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 4)
		n := 10000
		if em.Name == testenv.KinesisMock {
			n = 1000 // kinesis-mock writes about 1.4k records/s
		}
		sc := engine.Schema{{Name: "partitionKey", Type: engine.TypeString}, {Name: "data", Type: engine.TypeString}}
		rs := make([]engine.Row, n)
		want := map[string]string{}
		for i := range rs {
			pk, data := fmt.Sprintf("key-%d", i), fmt.Sprintf("payload-%d-%s", i, strings.Repeat("x", i%50))
			rs[i] = engine.Row{pk, data}
			want[pk] = data
		}
		if err := emuSink(t, em, stream).AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sc, Rows: rs}); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		count := 0
		for _, sh := range testenv.Shards(t, c, stream) {
			for _, r := range testenv.ReadShard(t, c, stream, *sh.ShardId) {
				got[*r.PartitionKey] = string(r.Data)
				count++
			}
		}
		if count != n {
			t.Errorf("read back %d records, want %d", count, n)
		}
		for pk, data := range want {
			if got[pk] != data {
				t.Fatalf("record %s: %q, want %q", pk, got[pk], data)
			}
		}
	})
}

func TestEmulatorSinkExplicitHashKey(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 4)
		shards := testenv.Shards(t, c, stream)
		target := shards[2]
		sc := engine.Schema{{Name: "partitionKey", Type: engine.TypeString}, {Name: "data", Type: engine.TypeBytes}, {Name: "explicitHashKey", Type: engine.TypeString}}
		var rs []engine.Row
		for i := range 20 {
			rs = append(rs, engine.Row{fmt.Sprintf("k%d", i), []byte("routed"), *target.HashKeyRange.StartingHashKey})
		}
		if err := emuSink(t, em, stream).AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sc, Rows: rs}); err != nil {
			t.Fatal(err)
		}
		for _, sh := range shards {
			n := len(testenv.ReadShard(t, c, stream, *sh.ShardId))
			want := 0
			if *sh.ShardId == *target.ShardId {
				want = 20
			}
			if n != want {
				t.Errorf("shard %s holds %d records, want %d", *sh.ShardId, n, want)
			}
		}
	})
}

func TestEmulatorSinkRejectsBeforeSending(t *testing.T) {
	t.Parallel()
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 1)
		s := emuSink(t, em, stream)
		for _, tt := range []struct {
			row  engine.Row
			want string
		}{
			{engine.Row{"pk", make([]byte, 1153434)}, "kds sink: batch 7 row 1: data is 1153434 bytes; Kinesis accepts at most 1048576"},
			{engine.Row{"", []byte("x")}, "kds sink: batch 7 row 1: partitionKey is empty"},
			{engine.Row{strings.Repeat("p", 257), []byte("x")}, "kds sink: batch 7 row 1: partitionKey is 257 characters; Kinesis accepts at most 256"},
		} {
			err := s.AddBatch(t.Context(), &engine.Batch{ID: 7, Schema: sinkSchemaBytes, Rows: []engine.Row{{"ok", []byte("ok")}, tt.row}})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v, want prefix %q", err, tt.want)
			}
		}
		if n := len(testenv.ReadShard(t, c, stream, "shardId-000000000000")); n != 0 {
			t.Errorf("%d records written by rejected batches", n)
		}
		// The limits themselves are accepted by the server.
		err := s.AddBatch(t.Context(), &engine.Batch{ID: 8, Schema: sinkSchemaBytes, Rows: []engine.Row{
			{strings.Repeat("é", 256), make([]byte, 1<<20)},
		}})
		if err != nil {
			t.Errorf("a 1 MiB record with a 256-character key: %v", err)
		}
	})
}
