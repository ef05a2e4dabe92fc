package kdsfake_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/kds/kdsfake"
)

// registerConsumer registers an ACTIVE consumer on stream and returns its ARN.
func registerConsumer(t testing.TB, kc *kinesis.Client, stream, name string) string {
	t.Helper()
	ctx := context.Background()
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
		StreamARN: sum.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String(name),
	})
	if err != nil {
		t.Fatalf("RegisterStreamConsumer: %v", err)
	}
	return aws.ToString(out.Consumer.ConsumerARN)
}

// subscribe opens a subscription; the caller closes the stream.
func subscribe(t testing.TB, ctx context.Context, kc *kinesis.Client, consumerARN, shard string, pos types.StartingPosition) *kinesis.SubscribeToShardEventStream {
	t.Helper()
	out, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
		ConsumerARN: aws.String(consumerARN), ShardId: aws.String(shard), StartingPosition: &pos,
	})
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	return out.GetStream()
}

// transports are the ways an SDK client reaches the server for EFO.
func transports(srv *kdsfake.Server) map[string]struct {
	endpoint string
	client   *http.Client
} {
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	insecure := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	return map[string]struct {
		endpoint string
		client   *http.Client
	}{
		"tls-h2":          {srv.TLSURL(), srv.Client()},
		"tls-h2-insecure": {srv.TLSURL(), &http.Client{Transport: insecure}},
		"h2c":             {srv.URL(), &http.Client{Transport: h2c}},
		"http1":           {srv.URL(), srv.Client()},
	}
}

// TestSubscribeToShardResume reads every record of a 10,000-record shard
// over SubscribeToShard across forced ends of the subscription, resuming
// each time from the last ContinuationSequenceNumber, over each transport.
// The records are written in five parts; the subscription is ended after
// each part has arrived.
func TestSubscribeToShardResume(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	for name, tr := range transports(srv) {
		t.Run(name, func(t *testing.T) {
			kc := newClient(t, srv, clientOpts{endpoint: tr.endpoint, httpClient: tr.client})
			stream := "efo-" + name
			const shard = "shardId-000000000000"
			createStream(t, kc, stream, 1)
			arn := registerConsumer(t, kc, stream, "c")

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const n, parts = 10000, 5
			seen := make([]bool, n)
			got, subs := 0, 0
			pos := types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
			for part := 1; part <= parts; part++ {
				putRange(t, kc, stream, (part-1)*n/parts, part*n/parts, 1024)
				subs++
				es := subscribe(t, ctx, kc, arn, shard, pos)
				for ev := range es.Events() {
					e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
					if !ok {
						t.Fatalf("unexpected event %T", ev)
					}
					for _, r := range e.Value.Records {
						var i int
						if _, err := fmt.Sscanf(string(r.Data), "rec-%d ", &i); err != nil {
							t.Fatal(err)
						}
						if seen[i] {
							t.Fatalf("record %d delivered twice", i)
						}
						seen[i] = true
						got++
					}
					if e.Value.ContinuationSequenceNumber == nil {
						t.Fatal("open shard's event has no ContinuationSequenceNumber")
					}
					pos = types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: e.Value.ContinuationSequenceNumber}
					if got == part*n/parts {
						if ended := srv.EndSubscriptions(stream, shard); ended != 1 {
							t.Fatalf("EndSubscriptions ended %d subscriptions, want 1", ended)
						}
					}
				}
				if err := es.Err(); err != nil {
					t.Fatalf("event stream: %v", err)
				}
				es.Close()
				if got != part*n/parts {
					t.Fatalf("after part %d: got %d records, want %d", part, got, part*n/parts)
				}
			}
			if subs != parts {
				t.Errorf("subscriptions = %d, want %d", subs, parts)
			}
		})
	}
}

// putRange writes records "rec-<i> " for i in [from, to), padded to size,
// with partition key i.
func putRange(t testing.TB, kc *kinesis.Client, stream string, from, to, size int) {
	t.Helper()
	for i := from; i < to; i += 500 {
		var entries []types.PutRecordsRequestEntry
		for j := i; j < min(to, i+500); j++ {
			data := fmt.Appendf(nil, "rec-%d ", j)
			for len(data) < size {
				data = append(data, 'x')
			}
			entries = append(entries, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(fmt.Sprint(j))})
		}
		out, err := kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil {
			t.Fatalf("PutRecords: %v", err)
		}
		if aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %d failed", *out.FailedRecordCount)
		}
	}
}

// TestSubscribeToShardChildShards subscribes to a shard that is then split:
// the subscription delivers the records, then an event with ChildShards and
// no continuation, and ends.
func TestSubscribeToShardChildShards(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{endpoint: srv.TLSURL()})
	ctx := context.Background()
	createStream(t, kc, "split", 1)
	putRange(t, kc, "split", 0, 100, 0)
	arn := registerConsumer(t, kc, "split", "c")
	es := subscribe(t, ctx, kc, arn, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	defer es.Close()

	got := 0
	var last *types.SubscribeToShardEvent
	for ev := range es.Events() {
		e := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value
		got += len(e.Records)
		last = &e
		if got == 100 && len(e.ChildShards) == 0 {
			_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{
				StreamName: aws.String("split"), ShardToSplit: aws.String("shardId-000000000000"),
				NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := es.Err(); err != nil {
		t.Fatal(err)
	}
	if got != 100 {
		t.Fatalf("got %d records, want 100", got)
	}
	if last == nil || last.ContinuationSequenceNumber != nil || len(last.ChildShards) != 2 {
		t.Fatalf("last event = %+v, want ChildShards of 2 and no continuation", last)
	}
	var ids []string
	for _, c := range last.ChildShards {
		ids = append(ids, aws.ToString(c.ShardId)+"<"+strings.Join(c.ParentShards, ","))
	}
	if want := "shardId-000000000001<shardId-000000000000 shardId-000000000002<shardId-000000000000"; strings.Join(ids, " ") != want {
		t.Errorf("children = %v, want %s", ids, want)
	}
}

// TestSubscribeToShardLive checks that records written after subscribing
// are pushed promptly, that a second subscription for the same consumer and
// shard gets ResourceInUseException, and that the subscription ends after
// SubscriptionTTL.
func TestSubscribeToShardLive(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{SubscriptionTTL: 2 * time.Second})
	kc := newClient(t, srv, clientOpts{endpoint: srv.TLSURL()})
	ctx := context.Background()
	createStream(t, kc, "live", 1)
	arn := registerConsumer(t, kc, "live", "c")
	const shard = "shardId-000000000000"
	start := time.Now()
	es := subscribe(t, ctx, kc, arn, shard, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	defer es.Close()

	_, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String(shard),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	wantCode(t, err, "ResourceInUseException")

	first := true
	var pushed time.Time
	got := 0
	for ev := range es.Events() {
		e := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value
		if first {
			// The first event comes at once, empty, at the tip.
			first = false
			if len(e.Records) != 0 || aws.ToInt64(e.MillisBehindLatest) != 0 || e.ContinuationSequenceNumber == nil {
				t.Fatalf("first event %+v", e)
			}
			pushed = time.Now()
			putRange(t, kc, "live", 0, 3, 0)
			continue
		}
		got += len(e.Records)
		if got == 3 && len(e.Records) > 0 {
			if d := time.Since(pushed); d > time.Second {
				t.Errorf("records pushed after %v", d)
			}
		}
	}
	if err := es.Err(); err != nil {
		t.Fatal(err)
	}
	if got != 3 {
		t.Errorf("got %d records, want 3", got)
	}
	if d := time.Since(start); d < 2*time.Second || d > 5*time.Second {
		t.Errorf("subscription lasted %v, want about 2s", d)
	}
}

// TestSubscribeToShardDeregister ends a subscription when its consumer is
// deregistered, and refuses unknown consumers and shards.
func TestSubscribeToShardDeregister(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{endpoint: srv.TLSURL()})
	ctx := context.Background()
	createStream(t, kc, "dereg", 1)
	arn := registerConsumer(t, kc, "dereg", "c")
	_, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000007"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn + "0"), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	wantCode(t, err, "ResourceNotFoundException")

	es := subscribe(t, ctx, kc, arn, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	defer es.Close()
	<-es.Events()
	if _, err := kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range es.Events() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still open after DeregisterStreamConsumer")
	}
}

// TestSubscribeToShardQuota checks that with Config.Quotas a subscription
// pushes at most about 2 MiB/s after a 2 MiB burst.
func TestSubscribeToShardQuota(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Quotas: true, Clock: clock.Now})
	kc := newClient(t, srv, clientOpts{endpoint: srv.TLSURL()})
	ctx := context.Background()
	createStream(t, kc, "q", 1)
	for range 5 {
		clock.Advance(time.Second) // the write quota is 1 MiB/s
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("q"), Data: make([]byte, 900<<10), PartitionKey: aws.String("k")}); err != nil {
			t.Fatal(err)
		}
	}
	arn := registerConsumer(t, kc, "q", "c")
	start := time.Now()
	es := subscribe(t, ctx, kc, arn, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	defer es.Close()
	got := 0
	for ev := range es.Events() {
		got += len(ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value.Records)
		if got == 5 {
			break
		}
	}
	// 4.4 MiB: a 2 MiB burst, then events at 2 MiB/s; the last event
	// (0.9 MiB) goes out when the one before it is paid for.
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("5 records of 900 KiB pushed in %v, want at least 0.75s", d)
	}
}
