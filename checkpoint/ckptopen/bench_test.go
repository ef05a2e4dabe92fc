package ckptopen_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ddbstore"
	"github.com/shardflow/shardflow/checkpoint/fsstore"
	"github.com/shardflow/shardflow/checkpoint/s3store"
	"github.com/shardflow/shardflow/internal/testenv"
)

// counter counts a store's calls by kind.
type counter struct {
	next          http.RoundTripper
	writes, reads atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	write := false
	if t := r.Header.Get("X-Amz-Target"); t != "" { // DynamoDB
		op := t[strings.LastIndex(t, ".")+1:]
		write = op == "PutItem" || op == "DeleteItem" || op == "UpdateItem"
	} else { // S3
		write = r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPost
	}
	if write {
		c.writes.Add(1)
	} else {
		c.reads.Add(1)
	}
	return c.next.RoundTrip(r)
}

// emptyBatch is what the engine does for a batch with no records: write
// offsets/N and commits/N (create-if-absent), then, every keep/10 batches,
// purge the entries older than the newest keep (list both logs, delete).
func emptyBatch(ctx context.Context, s checkpoint.Store, n int64, keep int64) error {
	off := fmt.Appendf(nil, `{"batchId":%d,"timestamp":"%s","shards":{"shardId-000000000000":{"start":{"type":"AFTER_SEQUENCE_NUMBER","seq":"49650000000000000000000000000000000000000000000000000000"},"state":"open"}}}`, n, time.Now().UTC().Format(time.RFC3339Nano))
	if err := s.Create(ctx, "offsets/"+strconv.FormatInt(n, 10), off); err != nil {
		return err
	}
	if err := s.Create(ctx, "commits/"+strconv.FormatInt(n, 10), fmt.Appendf(nil, `{"batchId":%d,"numInputRows":0}`, n)); err != nil {
		return err
	}
	// The engine purges every keep/10 batches (internal/engine purgeEvery).
	if n%max(1, keep/10) != 0 {
		return nil
	}
	for _, dir := range []string{"commits", "offsets"} {
		names, err := s.List(ctx, dir)
		if err != nil {
			return err
		}
		for _, name := range names {
			id, _ := strconv.ParseInt(name, 10, 64)
			if id <= n-keep {
				if err := s.Delete(ctx, dir+"/"+name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// BenchmarkEmptyBatchLoop: the checkpoint I/O of one empty batch (plan:
// no I/O; write offsets; commit; purge with kinesis.minBatchesToRetain
// 100) on each store, in steady state (after 100 batches). It reports p50
// and p99 latency and the store calls per batch.
func BenchmarkEmptyBatchLoop(b *testing.B) {
	const keep = 100
	stores := []struct {
		name string
		open func(b *testing.B, c *counter) checkpoint.Store
	}{
		{"fsstore", func(b *testing.B, c *counter) checkpoint.Store {
			s, err := fsstore.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"s3store-gofakes3", func(b *testing.B, c *counter) checkpoint.Store {
			client := s3.New(s3.Options{
				Region: testenv.Region, BaseEndpoint: aws.String(testenv.FakeS3(b)), UsePathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretKey, ""),
				HTTPClient:  &http.Client{Transport: c},
			})
			testenv.CreateBucket(b, client, "bench")
			s, err := s3store.New(s3store.Config{Client: client, Bucket: "bench", Prefix: "q"})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"ddbstore-dynalite", func(b *testing.B, c *counter) checkpoint.Store {
			client := dynamodb.New(dynamodb.Options{
				Region: testenv.Region, BaseEndpoint: aws.String(testenv.Dynalite(b)),
				Credentials: credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretKey, ""),
				HTTPClient:  &http.Client{Transport: c},
			})
			s, err := ddbstore.New(b.Context(), ddbstore.Config{Client: client, Table: "bench-checkpoints", CheckpointID: testenv.UniqueName("bench-")})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			c := &counter{next: &http.Transport{MaxIdleConnsPerHost: 16}}
			s := st.open(b, c)
			ctx := b.Context()
			var n int64
			for ; n < keep; n++ { // steady state: the purge deletes
				if err := emptyBatch(ctx, s, n, keep); err != nil {
					b.Fatal(err)
				}
			}
			w0, r0 := c.writes.Load(), c.reads.Load()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				if err := emptyBatch(ctx, s, n, keep); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				n++
			}
			b.StopTimer()
			slices.Sort(lat)
			batches := float64(len(lat))
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(c.writes.Load()-w0)/batches, "writes/batch")
			b.ReportMetric(float64(c.reads.Load()-r0)/batches, "reads/batch")
		})
	}
}
