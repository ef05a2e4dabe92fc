package kdsfake_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/kds/kdsfake"
)

func TestStreamLifecycle(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()

	createStream(t, kc, "a", 3)
	_, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("a"), ShardCount: aws.Int32(1)})
	wantCode(t, err, "ResourceInUseException")
	_, err = kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("bad name!"), ShardCount: aws.Int32(1)})
	wantCode(t, err, "ValidationException")

	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("od")})
	if err != nil {
		t.Fatal(err)
	}
	d := sum.StreamDescriptionSummary
	if d.StreamStatus != types.StreamStatusActive || aws.ToInt32(d.OpenShardCount) != 4 || d.StreamModeDetails.StreamMode != types.StreamModeOnDemand ||
		aws.ToString(d.StreamARN) != "arn:aws:kinesis:us-east-1:000000000000:stream/od" || aws.ToInt32(d.RetentionPeriodHours) != 24 {
		t.Errorf("summary = %+v", d)
	}

	// DescribeStream pages with Limit and ExclusiveStartShardId; the hash
	// ranges cover the key space without gaps.
	desc, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamARN: d.StreamARN, Limit: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.StreamDescription.Shards) != 3 || !aws.ToBool(desc.StreamDescription.HasMoreShards) {
		t.Fatalf("page 1: %d shards, more=%v", len(desc.StreamDescription.Shards), *desc.StreamDescription.HasMoreShards)
	}
	desc2, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("od"), ExclusiveStartShardId: desc.StreamDescription.Shards[2].ShardId})
	if err != nil {
		t.Fatal(err)
	}
	shards := append(desc.StreamDescription.Shards, desc2.StreamDescription.Shards...)
	if len(shards) != 4 || aws.ToBool(desc2.StreamDescription.HasMoreShards) {
		t.Fatalf("got %d shards", len(shards))
	}
	next := big.NewInt(0)
	for _, sh := range shards {
		start, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
		end, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
		if start.Cmp(next) != 0 {
			t.Fatalf("shard %s starts at %s, want %s", *sh.ShardId, start, next)
		}
		next = end.Add(end, big.NewInt(1))
	}
	if want := new(big.Int).Lsh(big.NewInt(1), 128); next.Cmp(want) != 0 {
		t.Fatalf("hash ranges end at %s, want 2^128", next)
	}

	ls, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.StreamNames) != 1 || ls.StreamNames[0] != "a" || !aws.ToBool(ls.HasMoreStreams) {
		t.Fatalf("ListStreams page 1 = %v", ls.StreamNames)
	}
	ls, err = kc.ListStreams(ctx, &kinesis.ListStreamsInput{NextToken: ls.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.StreamNames) != 1 || ls.StreamNames[0] != "od" || aws.ToBool(ls.HasMoreStreams) || len(ls.StreamSummaries) != 1 {
		t.Fatalf("ListStreams page 2 = %v", ls.StreamNames)
	}

	// A stream with consumers is deleted only with EnforceConsumerDeletion.
	registerConsumer(t, kc, "a", "c1")
	_, err = kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("a")})
	wantCode(t, err, "ResourceInUseException")
	if _, err = kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("a"), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err = kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("a")})
	wantCode(t, err, "ResourceNotFoundException")

	// Tags.
	if _, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("od"), Tags: map[string]string{"k": "v", "a": "b"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := kc.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("od")})
	if err != nil || len(tags.Tags) != 2 || *tags.Tags[0].Key != "a" {
		t.Fatalf("tags = %+v, %v", tags, err)
	}
}

func TestStreamDelay(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Clock: clock.Now, StreamDelay: 500 * time.Millisecond})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "s", 1)
	status := func() types.StreamStatus {
		t.Helper()
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
		if err != nil {
			t.Fatal(err)
		}
		return out.StreamDescriptionSummary.StreamStatus
	}
	if got := status(); got != types.StreamStatusCreating {
		t.Fatalf("status = %s, want CREATING", got)
	}
	_, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), Data: []byte("x"), PartitionKey: aws.String("k")})
	wantCode(t, err, "ResourceNotFoundException")
	clock.Advance(500 * time.Millisecond)
	if got := status(); got != types.StreamStatusActive {
		t.Fatalf("status = %s, want ACTIVE", got)
	}
	_, err = kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")})
	if err != nil {
		t.Fatal(err)
	}
	if got := status(); got != types.StreamStatusUpdating {
		t.Fatalf("status = %s, want UPDATING", got)
	}
	_, err = kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000002")})
	wantCode(t, err, "ResourceInUseException")
	clock.Advance(time.Second)
	if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != types.StreamStatusDeleting {
		t.Fatalf("status = %s, want DELETING", got)
	}
	clock.Advance(time.Second)
	_, err = kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	wantCode(t, err, "ResourceNotFoundException")
}

// TestRouting checks that records go to the shard whose hash range holds
// the MD5 of their partition key (or their ExplicitHashKey), and that
// sequence numbers have 56 digits and increase within each shard and
// across the stream.
func TestRouting(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "r", 5)
	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("r")})
	if err != nil {
		t.Fatal(err)
	}
	shardOf := func(key *big.Int) string {
		for _, sh := range ls.Shards {
			lo, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
			hi, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
			if key.Cmp(lo) >= 0 && key.Cmp(hi) <= 0 {
				return *sh.ShardId
			}
		}
		return ""
	}
	var entries []types.PutRecordsRequestEntry
	for i := range 500 {
		e := types.PutRecordsRequestEntry{Data: []byte(fmt.Sprint(i)), PartitionKey: aws.String(fmt.Sprintf("pk-%d", i))}
		if i%10 == 0 {
			e.ExplicitHashKey = aws.String(new(big.Int).Lsh(big.NewInt(int64(i)), 118).String())
		}
		entries = append(entries, e)
	}
	out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("r"), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v", err)
	}
	prev := map[string]*big.Int{}
	last := big.NewInt(0)
	for i, r := range out.Records {
		var key *big.Int
		if e := entries[i]; e.ExplicitHashKey != nil {
			key, _ = new(big.Int).SetString(*e.ExplicitHashKey, 10)
		} else {
			sum := md5.Sum([]byte(*e.PartitionKey))
			key = new(big.Int).SetBytes(sum[:])
		}
		if want := shardOf(key); aws.ToString(r.ShardId) != want {
			t.Fatalf("record %d went to %s, want %s", i, aws.ToString(r.ShardId), want)
		}
		if len(aws.ToString(r.SequenceNumber)) != 56 {
			t.Fatalf("sequence number %q has %d digits", aws.ToString(r.SequenceNumber), len(aws.ToString(r.SequenceNumber)))
		}
		seq := seqInt(t, r.SequenceNumber)
		if p := prev[*r.ShardId]; p != nil && seq.Cmp(p) <= 0 {
			t.Fatalf("sequence numbers do not increase in %s", *r.ShardId)
		}
		if seq.Cmp(last) <= 0 {
			t.Fatalf("sequence numbers do not increase across the stream")
		}
		prev[*r.ShardId], last = seq, seq
	}
	// Every record reads back, in order, from its shard.
	total := 0
	for _, sh := range ls.Shards {
		recs, _ := readAll(t, kc, shardIterator(t, kc, "r", *sh.ShardId, types.ShardIteratorTypeTrimHorizon))
		for i := 1; i < len(recs); i++ {
			if seqInt(t, recs[i].SequenceNumber).Cmp(seqInt(t, recs[i-1].SequenceNumber)) <= 0 {
				t.Fatal("records out of order")
			}
		}
		total += len(recs)
	}
	if total != 500 {
		t.Fatalf("read %d records, want 500", total)
	}
}

func TestPutValidation(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "v", 1)
	put := func(data []byte, pk string, ehk *string) error {
		_, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("v"), Data: data, PartitionKey: aws.String(pk), ExplicitHashKey: ehk})
		return err
	}
	if err := put(make([]byte, 1<<20-1), "k", nil); err != nil {
		t.Fatalf("1 MiB - 1: %v", err)
	}
	wantCode(t, put(make([]byte, 1<<20+1), "k", nil), "ValidationException")
	wantCode(t, put(make([]byte, 1<<20), "kk", nil), "InvalidArgumentException")
	if err := put([]byte("x"), strings.Repeat("p", 256), nil); err != nil {
		t.Fatalf("256-character key: %v", err)
	}
	wantCode(t, put([]byte("x"), strings.Repeat("p", 257), nil), "ValidationException")
	wantCode(t, put([]byte("x"), "k", aws.String("340282366920938463463374607431768211456")), "InvalidArgumentException")
	_, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("nope"), Data: []byte("x"), PartitionKey: aws.String("k")})
	wantCode(t, err, "ResourceNotFoundException")

	entries := make([]types.PutRecordsRequestEntry, 501)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{Data: []byte("x"), PartitionKey: aws.String("k")}
	}
	_, err = kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("v"), Records: entries})
	wantCode(t, err, "ValidationException")
	big := make([]types.PutRecordsRequestEntry, 6)
	for i := range big {
		big[i] = types.PutRecordsRequestEntry{Data: make([]byte, 1<<20-10), PartitionKey: aws.String("k")}
	}
	_, err = kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("v"), Records: big})
	wantCode(t, err, "InvalidArgumentException")

	_, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: shardIterator(t, kc, "v", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon), Limit: aws.Int32(10001)})
	wantCode(t, err, "ValidationException")
	_, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("bogus")})
	wantCode(t, err, "InvalidArgumentException")
}

func TestIteratorTypes(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Clock: clock.Now})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	const shard = "shardId-000000000000"
	createStream(t, kc, "it", 1)
	var seqs []string
	var times []time.Time
	for i := range 10 {
		out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("it"), Data: []byte(fmt.Sprint(i)), PartitionKey: aws.String("k")})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, *out.SequenceNumber)
		times = append(times, clock.Now())
		clock.Advance(time.Second)
	}
	first := func(in kinesis.GetShardIteratorInput) string {
		t.Helper()
		in.StreamName, in.ShardId = aws.String("it"), aws.String(shard)
		it, err := kc.GetShardIterator(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		recs, _ := readAll(t, kc, it.ShardIterator)
		if len(recs) == 0 {
			return "none"
		}
		return string(recs[0].Data)
	}
	tests := []struct {
		name string
		in   kinesis.GetShardIteratorInput
		want string
	}{
		{"TRIM_HORIZON", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon}, "0"},
		{"LATEST", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeLatest}, "none"},
		{"AT_SEQUENCE_NUMBER", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: &seqs[4]}, "4"},
		{"AFTER_SEQUENCE_NUMBER", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: &seqs[4]}, "5"},
		{"AT_TIMESTAMP", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(times[7])}, "7"},
		{"AT_TIMESTAMP between", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(times[7].Add(-300 * time.Millisecond))}, "7"},
		{"AT_TIMESTAMP past", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(times[0].Add(-time.Hour))}, "0"},
		{"AT_TIMESTAMP now", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(clock.Now())}, "none"},
	}
	for _, tt := range tests {
		if got := first(tt.in); got != tt.want {
			t.Errorf("%s: first record %s, want %s", tt.name, got, tt.want)
		}
	}

	// LATEST sees a record written after the iterator.
	it := shardIterator(t, kc, "it", shard, types.ShardIteratorTypeLatest)
	if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("it"), Data: []byte("new"), PartitionKey: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if recs, _ := readAll(t, kc, it); len(recs) != 1 || string(recs[0].Data) != "new" {
		t.Errorf("LATEST then put: %d records", len(recs))
	}

	_, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("it"), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(clock.Now().Add(time.Minute))})
	wantCode(t, err, "InvalidArgumentException")
	_, err = kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("it"), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("12345")})
	wantCode(t, err, "InvalidArgumentException")
	_, err = kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("it"), ShardId: aws.String("shardId-000000000009"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestIteratorExpiry(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Clock: clock.Now})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "e", 1)
	it := shardIterator(t, kc, "e", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon)
	clock.Advance(5 * time.Minute)
	out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	if err != nil {
		t.Fatalf("iterator at exactly 5 minutes: %v", err)
	}
	clock.Advance(5*time.Minute + time.Millisecond)
	_, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, "ExpiredIteratorException")
	// The NextShardIterator was issued later, but is now also too old.
	_, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator})
	wantCode(t, err, "ExpiredIteratorException")

	it = shardIterator(t, kc, "e", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon)
	srv.ExpireIterators()
	_, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, "ExpiredIteratorException")
}

func TestMillisBehindLatest(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Clock: clock.Now})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "m", 1)
	for i := range 3 {
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("m"), Data: []byte{byte(i)}, PartitionKey: aws.String("k")}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second)
	}
	it := shardIterator(t, kc, "m", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon)
	var behind []int64
	for range 4 {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		behind = append(behind, aws.ToInt64(out.MillisBehindLatest))
		it = out.NextShardIterator
	}
	// Records arrived at 0s, 10s and 20s; it is now 30s. After reading the
	// first, the next unread arrived 20 s ago; after the third, the reader
	// is at the tip.
	if want := []int64{20000, 10000, 0, 0}; fmt.Sprint(behind) != fmt.Sprint(want) {
		t.Errorf("MillisBehindLatest = %v, want %v", behind, want)
	}
}

func TestReshardingChildShards(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "rs", 2)
	putRange(t, kc, "rs", 0, 200, 0)
	half := new(big.Int).Lsh(big.NewInt(1), 126).String() // inside shard 0
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("rs"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half)}); err != nil {
		t.Fatal(err)
	}
	_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("rs"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half)})
	wantCode(t, err, "InvalidArgumentException")
	_, err = kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("rs"), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
	wantCode(t, err, "InvalidArgumentException") // 2 and 1 are not adjacent
	if _, err := kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("rs"), ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	putRange(t, kc, "rs", 200, 300, 0)

	// The split parent ends with ChildShards 2 and 3 and no iterator.
	recs, last := readAll(t, kc, shardIterator(t, kc, "rs", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon))
	if last.NextShardIterator != nil || len(last.ChildShards) != 2 {
		t.Fatalf("split parent end: next=%v children=%+v", last.NextShardIterator, last.ChildShards)
	}
	if len(recs) == 0 {
		t.Fatal("split parent has no records")
	}
	// Shard 1 was merged with 3 into 4.
	_, last = readAll(t, kc, shardIterator(t, kc, "rs", "shardId-000000000001", types.ShardIteratorTypeTrimHorizon))
	if last.NextShardIterator != nil || len(last.ChildShards) != 1 || *last.ChildShards[0].ShardId != "shardId-000000000004" ||
		strings.Join(last.ChildShards[0].ParentShards, ",") != "shardId-000000000003,shardId-000000000001" {
		t.Fatalf("merge parent end: %+v", last.ChildShards)
	}
	// A LATEST iterator on a closed shard is at its end at once.
	out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: shardIterator(t, kc, "rs", "shardId-000000000003", types.ShardIteratorTypeLatest)})
	if err != nil || out.NextShardIterator != nil || len(out.ChildShards) != 1 {
		t.Fatalf("LATEST on closed shard: %+v %v", out, err)
	}

	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("rs")})
	if err != nil {
		t.Fatal(err)
	}
	var lineage []string
	total := 0
	for _, sh := range ls.Shards {
		l := *sh.ShardId + "<" + aws.ToString(sh.ParentShardId) + "," + aws.ToString(sh.AdjacentParentShardId)
		if sh.SequenceNumberRange.EndingSequenceNumber != nil {
			l += " closed"
		}
		lineage = append(lineage, l)
		r, _ := readAll(t, kc, shardIterator(t, kc, "rs", *sh.ShardId, types.ShardIteratorTypeTrimHorizon))
		total += len(r)
	}
	want := "shardId-000000000000<, closed|shardId-000000000001<, closed|shardId-000000000002<shardId-000000000000,|" +
		"shardId-000000000003<shardId-000000000000, closed|shardId-000000000004<shardId-000000000003,shardId-000000000001"
	if got := strings.Join(lineage, "|"); got != want {
		t.Errorf("lineage:\n got %s\nwant %s", got, want)
	}
	if total != 300 {
		t.Errorf("read %d records over all shards, want 300", total)
	}
}

func TestUpdateShardCount(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "u", 4)
	for _, target := range []int32{3, 6, 4, 2} {
		out, err := kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("u"), TargetShardCount: aws.Int32(target), ScalingType: types.ScalingTypeUniformScaling})
		if err != nil {
			t.Fatalf("to %d: %v", target, err)
		}
		if aws.ToInt32(out.TargetShardCount) != target {
			t.Fatalf("TargetShardCount = %d", *out.TargetShardCount)
		}
		ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("u"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ls.Shards) != int(target) {
			t.Fatalf("open shards = %d, want %d", len(ls.Shards), target)
		}
	}
	_, err := kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("u"), TargetShardCount: aws.Int32(5), ScalingType: types.ScalingTypeUniformScaling})
	wantCode(t, err, "LimitExceededException")

	// Every shard's ancestors cover its hash range: each child's parents
	// (and theirs, through intermediate shards) overlap exactly its range.
	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]types.Shard{}
	for _, sh := range ls.Shards {
		byID[*sh.ShardId] = sh
	}
	num := func(s *string) *big.Int { v, _ := new(big.Int).SetString(*s, 10); return v }
	for _, sh := range ls.Shards {
		if sh.ParentShardId == nil {
			continue
		}
		lo, hi := num(sh.HashKeyRange.StartingHashKey), num(sh.HashKeyRange.EndingHashKey)
		var covered []*big.Int
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if p == nil {
				continue
			}
			ps := byID[*p]
			covered = append(covered, num(ps.HashKeyRange.StartingHashKey), num(ps.HashKeyRange.EndingHashKey))
		}
		sort.Slice(covered, func(i, j int) bool { return covered[i].Cmp(covered[j]) < 0 })
		if covered[0].Cmp(lo) > 0 || covered[len(covered)-1].Cmp(hi) < 0 {
			t.Errorf("shard %s [%s, %s] not covered by its parents %v", *sh.ShardId, lo, hi, covered)
		}
	}
}

func TestListShardsFilters(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Clock: clock.Now})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "f", 2)
	t0 := clock.Now()
	clock.Advance(time.Hour)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("f"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	t1 := clock.Now()
	clock.Advance(time.Hour)

	ids := func(in *kinesis.ListShardsInput) string {
		t.Helper()
		var out []string
		for {
			page, err := kc.ListShards(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, sh := range page.Shards {
				out = append(out, strings.TrimPrefix(*sh.ShardId, "shardId-00000000000"))
			}
			if page.NextToken == nil {
				return strings.Join(out, ",")
			}
			in = &kinesis.ListShardsInput{NextToken: page.NextToken, MaxResults: in.MaxResults}
		}
	}
	name := aws.String("f")
	tests := []struct {
		filter *types.ShardFilter
		want   string
	}{
		{nil, "0,1,2,3"},
		{&types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, "1,2,3"},
		{&types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, "0,1"},
		{&types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, "0,1,2,3"},
		{&types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000001")}, "2,3"},
		{&types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(t0.Add(time.Minute))}, "0,1"},
		{&types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(t1.Add(time.Minute))}, "1,2,3"},
		{&types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(t1.Add(time.Minute))}, "1,2,3"},
		{&types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(t0)}, "0,1,2,3"},
	}
	for _, tt := range tests {
		for _, max := range []int32{1, 1000} {
			if got := ids(&kinesis.ListShardsInput{StreamName: name, ShardFilter: tt.filter, MaxResults: aws.Int32(max)}); got != tt.want {
				t.Errorf("filter %+v, MaxResults %d: %s, want %s", tt.filter, max, got, tt.want)
			}
		}
	}
	if got := ids(&kinesis.ListShardsInput{StreamName: name, ExclusiveStartShardId: aws.String("shardId-000000000000")}); got != "1,2,3" {
		t.Errorf("ExclusiveStartShardId: %s", got)
	}
	page, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, MaxResults: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, NextToken: page.NextToken})
	wantCode(t, err, "InvalidArgumentException")
	clock.Advance(301 * time.Second)
	_, err = kc.ListShards(ctx, &kinesis.ListShardsInput{NextToken: page.NextToken})
	wantCode(t, err, "ExpiredNextTokenException")
	// ARN only works too.
	if got := ids(&kinesis.ListShardsInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/f")}); got != "0,1,2,3" {
		t.Errorf("by ARN: %s", got)
	}
}

func TestRetention(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Clock: clock.Now})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "ret", 1)
	retention := func(inc bool, h int32) error {
		var err error
		if inc {
			_, err = kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("ret"), RetentionPeriodHours: aws.Int32(h)})
		} else {
			_, err = kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("ret"), RetentionPeriodHours: aws.Int32(h)})
		}
		return err
	}
	wantCode(t, retention(true, 8761), "InvalidArgumentException")
	wantCode(t, retention(false, 23), "InvalidArgumentException")
	wantCode(t, retention(false, 48), "InvalidArgumentException") // longer than 24
	if err := retention(true, 48); err != nil {
		t.Fatal(err)
	}
	wantCode(t, retention(true, 30), "InvalidArgumentException") // shorter than 48

	putRange(t, kc, "ret", 0, 10, 0)
	clock.Advance(30 * time.Hour)
	putRange(t, kc, "ret", 10, 20, 0)
	recs, _ := readAll(t, kc, shardIterator(t, kc, "ret", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon))
	if len(recs) != 20 {
		t.Fatalf("48 h retention: %d records, want 20", len(recs))
	}
	if err := retention(false, 24); err != nil {
		t.Fatal(err)
	}
	recs, _ = readAll(t, kc, shardIterator(t, kc, "ret", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon))
	if len(recs) != 10 || string(recs[0].Data) != "rec-10 " {
		t.Fatalf("24 h retention: %d records, want the last 10", len(recs))
	}

	// Trim now, and a closed shard whose records are all past retention
	// disappears from ListShards.
	if err := srv.Trim("ret", "shardId-000000000000", clock.Now().Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	recs, _ = readAll(t, kc, shardIterator(t, kc, "ret", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon))
	if len(recs) != 0 {
		t.Fatalf("after Trim: %d records", len(recs))
	}
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("ret"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("ret")})
		if err != nil {
			t.Fatal(err)
		}
		return len(ls.Shards)
	}
	if n := count(); n != 3 {
		t.Fatalf("shards after split: %d", n)
	}
	clock.Advance(24*time.Hour + time.Second)
	if n := count(); n != 2 {
		t.Fatalf("shards a retention period after the split: %d, want 2", n)
	}
	_, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("ret"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestAccounts(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	ctx := context.Background()
	a := newClient(t, srv, clientOpts{accessKey: "111111111111"})
	b := newClient(t, srv, clientOpts{accessKey: "222222222222"})
	def := newClient(t, srv, clientOpts{})
	createStream(t, a, "same", 1)
	createStream(t, b, "same", 2)
	sa, err := a.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("same")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(sa.StreamDescriptionSummary.StreamARN) != "arn:aws:kinesis:us-east-1:111111111111:stream/same" || *sa.StreamDescriptionSummary.OpenShardCount != 1 {
		t.Errorf("account a: %+v", sa.StreamDescriptionSummary)
	}
	sb, err := b.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("same")})
	if err != nil || *sb.StreamDescriptionSummary.OpenShardCount != 2 {
		t.Errorf("account b: %v", err)
	}
	_, err = def.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("same")})
	wantCode(t, err, "ResourceNotFoundException")
	// A stream ARN names its account.
	if _, err := def.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: sb.StreamDescriptionSummary.StreamARN}); err != nil {
		t.Errorf("by ARN from another account: %v", err)
	}
}

func TestSignatures(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{CheckSignatures: true, Credentials: map[string]string{"AKIDGOOD": "right", "333333333333": "s3"}})
	ctx := context.Background()
	good := newClient(t, srv, clientOpts{accessKey: "AKIDGOOD", secret: "right"})
	createStream(t, good, "sig", 1)
	if _, err := good.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("sig"), Data: []byte("x"), PartitionKey: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	tls := newClient(t, srv, clientOpts{endpoint: srv.TLSURL(), accessKey: "AKIDGOOD", secret: "right"})
	if _, err := tls.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("sig")}); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	acct := newClient(t, srv, clientOpts{accessKey: "333333333333", secret: "s3"})
	createStream(t, acct, "sig", 1) // another account
	bad := newClient(t, srv, clientOpts{accessKey: "AKIDGOOD", secret: "wrong"})
	_, err := bad.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("sig")})
	wantCode(t, err, "InvalidSignatureException")
	unknown := newClient(t, srv, clientOpts{accessKey: "AKIDNOPE", secret: "x"})
	_, err = unknown.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("sig")})
	wantCode(t, err, "UnrecognizedClientException")
}

func TestConsumers(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Clock: clock.Now, ConsumerDelay: time.Second})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "cs", 1)
	streamARN := aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/cs")
	reg, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	arn := reg.Consumer.ConsumerARN
	if reg.Consumer.ConsumerStatus != types.ConsumerStatusCreating || !strings.HasPrefix(*arn, *streamARN+"/consumer/c:") {
		t.Fatalf("registered %+v", reg.Consumer)
	}
	_, err = kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String("c")})
	wantCode(t, err, "ResourceInUseException")
	// Not yet ACTIVE: no subscription.
	_, err = kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: arn, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	wantCode(t, err, "ResourceInUseException")
	clock.Advance(time.Second)
	d, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: arn})
	if err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive || *d.ConsumerDescription.StreamARN != *streamARN {
		t.Fatalf("describe by ARN: %+v %v", d, err)
	}
	d, err = kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String("c")})
	if err != nil || *d.ConsumerDescription.ConsumerARN != *arn {
		t.Fatalf("describe by name: %v", err)
	}
	// At most 20 consumers; at most 5 CREATING at once.
	for i := 1; i < 20; i++ {
		if i%5 == 0 {
			clock.Advance(time.Second)
		}
		if _, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String(fmt.Sprint("c", i))}); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
	}
	clock.Advance(time.Second)
	_, err = kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String("c20")})
	wantCode(t, err, "LimitExceededException")
	var names []string
	p := kinesis.NewListStreamConsumersPaginator(kc, &kinesis.ListStreamConsumersInput{StreamARN: streamARN, MaxResults: aws.Int32(7)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Consumers {
			names = append(names, *c.ConsumerName)
		}
	}
	if len(names) != 20 {
		t.Fatalf("listed %d consumers, want 20", len(names))
	}
	if _, err := kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: arn}); err != nil {
		t.Fatal(err)
	}
	d, err = kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: arn})
	if err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusDeleting {
		t.Fatalf("after deregister: %+v %v", d, err)
	}
	clock.Advance(time.Second)
	_, err = kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: arn})
	wantCode(t, err, "ResourceNotFoundException")
	if _, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String("c")}); err != nil {
		t.Fatalf("register again after deletion: %v", err)
	}
}
