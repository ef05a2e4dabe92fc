package shardflow_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint/memstore"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// TestTrimmedCheckpointPositionIsDataLoss: a checkpointed position whose
// following records were trimmed by retention before the query read them
// (the shard is still listed) is data loss: an error naming the shard and
// the missing range with failOnDataLoss=true; a warning, the dataLossEvents
// metric and reading on from the earliest record with false.
func TestTrimmedCheckpointPositionIsDataLoss(t *testing.T) {
	for _, failOnDataLoss := range []bool{true, false} {
		t.Run(fmt.Sprint("failOnDataLoss=", failOnDataLoss), func(t *testing.T) {
			srv := kdsfake.Start(t, kdsfake.Config{})
			c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), HTTPClient: srv.Client(),
				Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
			if err := srv.CreateStream("trim", 1); err != nil {
				t.Fatal(err)
			}
			put := func(from, n int) {
				t.Helper()
				in := &kinesis.PutRecordsInput{StreamName: aws.String("trim")}
				for i := from; i < from+n; i++ {
					in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte(strconv.Itoa(i))})
				}
				if out, err := c.PutRecords(context.Background(), in); err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
					t.Fatalf("put: %v", err)
				}
			}
			store := memstore.New()
			var mu sync.Mutex
			var got []string
			var last shardflow.Progress
			runQuery := func() error {
				cfg, err := kds.ParseSourceOptions(map[string]string{
					"kinesis.streamName": "trim", "kinesis.endpointUrl": srv.URL(), "kinesis.region": "us-east-1",
					"kinesis.awsAccessKeyId": "k", "kinesis.awsSecretKey": "s",
					"kinesis.startingPosition": "TRIM_HORIZON", "kinesis.getRecords.fetchIntervalMs": "0",
					"kinesis.failOnDataLoss": strconv.FormatBool(failOnDataLoss),
				}, nil)
				if err != nil {
					t.Fatal(err)
				}
				src, err := kds.NewSource(context.Background(), cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				q, err := shardflow.NewQuery(shardflow.QueryConfig{Checkpoint: store, Trigger: shardflow.AvailableNow(), Source: src,
					Sink: shardflow.ForEachBatch(func(_ context.Context, b *shardflow.Batch) error {
						mu.Lock()
						defer mu.Unlock()
						for _, r := range b.Rows {
							got = append(got, string(r[0].([]byte)))
						}
						return nil
					}),
					OnProgress: func(p shardflow.Progress) { last = p },
				})
				if err != nil {
					t.Fatal(err)
				}
				return q.Run(context.Background())
			}
			put(0, 100)
			if err := runQuery(); err != nil || len(got) != 100 {
				t.Fatalf("first run: %v, %d rows", err, len(got))
			}
			put(100, 100) // never read: trimmed while the query is down
			if err := srv.Trim("trim", "", time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			put(200, 50)
			err := runQuery()
			if failOnDataLoss {
				if err == nil || !strings.Contains(err.Error(), "data loss on shard shardId-000000000000") || !strings.Contains(err.Error(), "trimmed") {
					t.Fatalf("got %v, want a data-loss error naming the shard and range", err)
				}
				if len(got) != 100 {
					t.Fatalf("read %d rows past a data loss", len(got)-100)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 150 || got[100] != "200" || got[149] != "249" {
				t.Fatalf("after the loss read %d rows (%v...), want the 50 written after the trim", len(got)-100, got[100:min(len(got), 103)])
			}
			if last.Sources[0].Metrics["dataLossEvents"] != "1" {
				t.Fatalf("dataLossEvents = %q", last.Sources[0].Metrics["dataLossEvents"])
			}
		})
	}
}
