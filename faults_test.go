package shardflow_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint/memstore"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// TestFaultStormLosesNothing reads a stream through a storm of throttles,
// 5xx answers, dropped connections and expired iterators injected by
// kdsfake: every record arrives exactly once, and the retries show in the
// progress metrics.
func TestFaultStormLosesNothing(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	c := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
		HTTPClient:   srv.Client(),
	})
	ctx := context.Background()
	const stream, total = "storm", 3000
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for lo := 0; lo < total; lo += 500 {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for i := lo; i < lo+500; i++ {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(strconv.Itoa(i)), Data: []byte(fmt.Sprint("r", i))})
		}
		out, err := c.PutRecords(ctx, in)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put: %v", err)
		}
		for _, r := range out.Records {
			want[*r.ShardId+"/"+*r.SequenceNumber] = true
		}
	}

	srv.ThrottleNext("GetRecords", 25)
	srv.ThrottleNext("GetShardIterator", 3)
	srv.FailNext("GetRecords", 503, 5)
	srv.FailNext("ListShards", 500, 2)
	srv.ResetNext("GetRecords", 3)

	cfg, err := kds.ParseSourceOptions(map[string]string{
		"kinesis.streamName":                         stream,
		"kinesis.endpointUrl":                        srv.URL(),
		"kinesis.region":                             "us-east-1",
		"kinesis.awsAccessKeyId":                     "k",
		"kinesis.awsSecretKey":                       "s",
		"kinesis.startingPosition":                   "TRIM_HORIZON",
		"kinesis.clientNumRetries":                   "20",
		"kinesis.clientRetryIntervalsMs":             "5",
		"kinesis.clientMaxRetryIntervalMs":           "50",
		"kinesis.getRecords.fetchIntervalMs":         "0",
		"kinesis.getRecords.numberOfRecordsPerFetch": "100",
		"kinesis.maxFetchRecordsPerShard":            "250",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := kds.NewSource(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var last shardflow.Progress
	sink := shardflow.ForEachBatch(func(_ context.Context, b *shardflow.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Rows {
			seen[r[5].(string)+"/"+r[3].(string)]++
		}
		return nil
	})
	// Expire every iterator in the middle of the run, once.
	var once sync.Once
	q, err := shardflow.NewQuery(shardflow.QueryConfig{
		Checkpoint: memstore.New(), Trigger: shardflow.AvailableNow(), Source: src, Sink: sink,
		OnProgress: func(p shardflow.Progress) {
			last = p
			if p.BatchID == 2 {
				once.Do(srv.ExpireIterators)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("record %s seen %d times", k, seen[k])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("read %d distinct records, want %d", len(seen), len(want))
	}
	m := last.Sources[0].Metrics
	retries, _ := strconv.Atoi(m["retries"])
	throttles, _ := strconv.Atoi(m["throttles"])
	if throttles < 28 || retries < 28+5+2+3 || m["failures"] != "0" {
		t.Errorf("progress metrics %v: want >= 28 throttles, >= 38 retries and no failure", m)
	}
	t.Logf("metrics after the storm: %v", m)
}
