package kdsfake_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/shardflow/shardflow/kds/kdsfake"
)

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestFaults(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "f", 1)
	it := shardIterator(t, kc, "f", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon)
	get := func() error {
		_, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		return err
	}

	srv.ThrottleNext("GetRecords", 2)
	before := srv.Calls("GetRecords")
	wantCode(t, get(), "ProvisionedThroughputExceededException")
	wantCode(t, get(), "ProvisionedThroughputExceededException")
	if err := get(); err != nil {
		t.Fatalf("after 2 throttled calls: %v", err)
	}
	if n := srv.Calls("GetRecords") - before; n != 3 {
		t.Errorf("Calls = %d, want 3", n)
	}

	srv.ThrottleNext("ListShards", 1)
	_, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("f")})
	wantCode(t, err, "LimitExceededException")

	srv.FailNext("GetRecords", 500, 1)
	err = get()
	if errCode(err) != "InternalFailure" || httpStatus(err) != 500 {
		t.Errorf("FailNext 500: %v", err)
	}
	srv.FailNext("GetRecords", 503, 1)
	err = get()
	if errCode(err) != "ServiceUnavailable" || httpStatus(err) != 503 {
		t.Errorf("FailNext 503: %v", err)
	}

	srv.ResetNext("GetRecords", 1)
	if err := get(); err == nil || errCode(err) != "" {
		t.Errorf("ResetNext: %v, want a transport error", err)
	}
	if err := get(); err != nil {
		t.Errorf("after reset: %v", err)
	}

	srv.DelayNext("GetRecords", 200*time.Millisecond, 1)
	start := time.Now()
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("DelayNext: took %v", d)
	}

	// A throttled PutRecords fails every record, with a 200 response.
	srv.ThrottleNext("PutRecords", 1)
	entries := []types.PutRecordsRequestEntry{{Data: []byte("a"), PartitionKey: aws.String("a")}, {Data: []byte("b"), PartitionKey: aws.String("b")}}
	out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("f"), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 2 || aws.ToString(out.Records[0].ErrorCode) != "ProvisionedThroughputExceededException" {
		t.Fatalf("throttled PutRecords: %+v %v", out, err)
	}
	out, err = kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("f"), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords after: %+v %v", out, err)
	}

	// An empty action matches every action.
	srv.FailNext("", 503, 1)
	_, err = kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("f")})
	wantCode(t, err, "ServiceUnavailable")
}

// TestFaultsWithSDKRetries shows that the SDK's own retries absorb
// throttling and 5xx, and that Calls counts the retries.
func TestFaultsWithSDKRetries(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{retries: true})
	createStream(t, kc, "r", 1)
	srv.FailNext("ListShards", 503, 2)
	before := srv.Calls("ListShards")
	if _, err := kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("r")}); err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls("ListShards") - before; n != 3 {
		t.Errorf("Calls = %d, want 3 (two retries)", n)
	}
}

func TestQuotas(t *testing.T) {
	clock := newFakeClock()
	srv := kdsfake.Start(t, kdsfake.Config{Clock: clock.Now, Quotas: true})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "q", 1)

	// Writes: 1,000 records/s per shard.
	failed := 0
	for i := 0; i < 1200; i += 400 {
		var entries []types.PutRecordsRequestEntry
		for j := range 400 {
			entries = append(entries, types.PutRecordsRequestEntry{Data: []byte("x"), PartitionKey: aws.String(fmt.Sprint(i + j))})
		}
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("q"), Records: entries})
		if err != nil {
			t.Fatal(err)
		}
		failed += int(aws.ToInt32(out.FailedRecordCount))
		for _, r := range out.Records {
			if r.ErrorCode != nil && *r.ErrorMessage != "Rate exceeded for shard shardId-000000000000 in stream q under account 000000000000." {
				t.Fatalf("message %q", *r.ErrorMessage)
			}
		}
	}
	if failed != 200 {
		t.Errorf("failed records = %d, want 200 of 1200 in one second", failed)
	}
	// Writes: 1 MiB/s per shard.
	clock.Advance(time.Second)
	_, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("q"), Data: make([]byte, 700<<10), PartitionKey: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("q"), Data: make([]byte, 700<<10), PartitionKey: aws.String("k")})
	wantCode(t, err, "ProvisionedThroughputExceededException")

	// Reads: 5 GetRecords calls/s per shard.
	clock.Advance(time.Second)
	it := shardIterator(t, kc, "q", "shardId-000000000000", types.ShardIteratorTypeLatest)
	for i := range 5 {
		if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	wantCode(t, err, "ProvisionedThroughputExceededException")
	clock.Advance(200 * time.Millisecond)
	if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it}); err != nil {
		t.Fatalf("after 200 ms: %v", err)
	}

	// Reads: 2 MiB/s per shard; a big read blocks the next ones.
	for range 4 {
		clock.Advance(time.Second)
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("q"), Data: make([]byte, 900<<10), PartitionKey: aws.String("k")}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	it = shardIterator(t, kc, "q", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon)
	out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator})
	wantCode(t, err, "ProvisionedThroughputExceededException")
	clock.Advance(2 * time.Second)
	if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); err != nil {
		t.Fatalf("after the debt is paid: %v", err)
	}
}

// TestDropConnections: the server counts the connections it accepts and
// closes the open ones on DropConnections; a client then works on a new
// connection.
func TestDropConnections(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := newClient(t, srv, clientOpts{})
	ctx := context.Background()
	createStream(t, kc, "d", 1)
	if n := srv.Connections(); n != 1 {
		t.Fatalf("%d connections accepted, want 1 (keep-alive)", n)
	}
	if n := srv.DropConnections(); n != 1 {
		t.Fatalf("DropConnections closed %d, want 1", n)
	}
	// A client with a pool of its own: the first one may still hold the
	// dropped connection as idle and fail on it once, as any client would.
	kc = newClient(t, srv, clientOpts{httpClient: &http.Client{Transport: &http.Transport{}}})
	if _, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("d")}); err != nil {
		t.Fatalf("ListShards after the drop: %v", err)
	}
	if n := srv.Connections(); n != 2 {
		t.Errorf("%d connections accepted, want 2", n)
	}
	if n := srv.DropConnections(); n != 1 {
		t.Errorf("DropConnections closed %d, want 1 (the dropped one is gone)", n)
	}
}
