package kds

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/kds/kdsfake"
	"github.com/shardflow/shardflow/kds/kpl"
)

// fakeStream starts kdsfake with a stream of n shards and returns a client.
func fakeStream(tb testing.TB, cfg kdsfake.Config, stream string, n int) *kinesis.Client {
	tb.Helper()
	srv := kdsfake.Start(tb, cfg)
	if err := srv.CreateStream(stream, n); err != nil {
		tb.Fatal(err)
	}
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
		HTTPClient:   srv.Client(),
	})
}

// readBack reads every shard of the stream from TRIM_HORIZON with
// GetRecords, de-aggregating, and returns the user records per shard
// and the number of Kinesis records.
func readBack(t *testing.T, c *kinesis.Client, stream string) (map[string][]kpl.Record, int) {
	t.Helper()
	ctx := context.Background()
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]kpl.Record{}
	kinesisRecords := 0
	var d kpl.Deaggregator
	for _, sh := range ls.Shards {
		id := aws.ToString(sh.ShardId)
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			page, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Records {
				kinesisRecords++
				subs, st := d.Parse(r.Data)
				switch st {
				case kpl.Aggregated:
					for _, u := range subs {
						out[id] = append(out[id], kpl.Record{PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey, Data: append([]byte(nil), u.Data...)})
					}
				case kpl.Corrupt:
					t.Fatalf("corrupt aggregate in %s", id)
				default:
					out[id] = append(out[id], kpl.Record{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data})
				}
			}
			if len(page.Records) == 0 {
				break
			}
			iter = page.NextShardIterator
		}
	}
	return out, kinesisRecords
}

// TestSinkAggregationRoutesByShard writes 10,000 rows over 4 shards, with
// and without aggregation: every row arrives once, in the shard its
// explicit hash key (or the MD5 of its partition key) belongs to, in
// order per shard; aggregation uses far fewer Kinesis records.
func TestSinkAggregationRoutesByShard(t *testing.T) {
	const n = 10000
	schema := engine.Schema{{Name: "partitionKey", Type: engine.TypeString}, {Name: "data", Type: engine.TypeBytes}, {Name: "explicitHashKey", Type: engine.TypeString}}
	batchRows := make([]engine.Row, n)
	quarter := new(big.Int).Lsh(big.NewInt(1), 126)
	for i := range batchRows {
		ehk := ""
		if i%3 == 0 {
			// An explicit hash key in shard i%4's quarter of the range.
			k := new(big.Int).Mul(quarter, big.NewInt(int64(i%4)))
			ehk = k.Add(k, big.NewInt(int64(i))).String()
		}
		batchRows[i] = engine.Row{fmt.Sprintf("pk-%d", i), fmt.Appendf(nil, "data-%d", i), ehk}
	}
	for _, aggregation := range []bool{true, false} {
		t.Run(fmt.Sprintf("aggregation=%v", aggregation), func(t *testing.T) {
			const stream = "out"
			c := fakeStream(t, kdsfake.Config{}, stream, 4)
			cfg := testSinkConfig()
			cfg.Aggregation = aggregation
			s := fakeSink(t, cfg, c)
			if err := s.AddBatch(context.Background(), &engine.Batch{ID: 1, Schema: schema, Rows: batchRows}); err != nil {
				t.Fatal(err)
			}
			got, kinesisRecords := readBack(t, c, stream)
			ls, err := c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, sh := range ls.Shards {
				id := aws.ToString(sh.ShardId)
				r, _ := kpl.ParseHashRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
				last := -1
				for _, u := range got[id] {
					var i int
					fmt.Sscanf(string(u.Data), "data-%d", &i)
					want := batchRows[i]
					if u.PartitionKey != want[0] || (aggregation && u.ExplicitHashKey != want[2]) { // a plain record has no EHK when read
						t.Fatalf("%s: record %s: keys %q %q, want %q %q", id, u.Data, u.PartitionKey, u.ExplicitHashKey, want[0], want[2])
					}
					if !r.Contains(kpl.EffectiveHashKey(want[0].(string), want[2].(string))) {
						t.Fatalf("record %s in %s, outside its range", u.Data, id)
					}
					if aggregation && i <= last { // plain requests run concurrently (maxConnections)
						t.Fatalf("%s: record %d after %d", id, i, last)
					}
					last = i
				}
				total += len(got[id])
				if len(got[id]) < n/8 {
					t.Errorf("%s holds %d rows: not spread", id, len(got[id]))
				}
			}
			if total != n {
				t.Fatalf("%d rows read back, want %d", total, n)
			}
			t.Logf("%d rows in %d Kinesis records", n, kinesisRecords)
			if aggregation && kinesisRecords > 40 {
				t.Errorf("%d Kinesis records for %d rows with aggregation", kinesisRecords, n)
			}
			if !aggregation && kinesisRecords != n {
				t.Errorf("%d Kinesis records without aggregation, want %d", kinesisRecords, n)
			}
		})
	}
}

// BenchmarkSinkAggregation writes 3,000 rows of 100 bytes to a 2-shard
// stream on kdsfake with the Kinesis write quotas on (1 MiB/s and 1,000
// records/s per shard), with aggregation on and off: user records/s and
// Kinesis records per user record. Goal: aggregation >= 5× the plain
// sink's records/s.
func BenchmarkSinkAggregation(b *testing.B) {
	const n = 3000
	schema := engine.Schema{{Name: "partitionKey", Type: engine.TypeString}, {Name: "data", Type: engine.TypeBytes}}
	rs := make([]engine.Row, n)
	for i := range rs {
		rs[i] = engine.Row{fmt.Sprintf("pk-%d", i), bytes.Repeat([]byte{'x'}, 100)}
	}
	for _, aggregation := range []bool{true, false} {
		b.Run(fmt.Sprintf("aggregation=%v", aggregation), func(b *testing.B) {
			const stream = "bench"
			c := fakeStream(b, kdsfake.Config{Quotas: true}, stream, 2)
			cfg := testSinkConfig()
			cfg.StreamName = stream
			cfg.Aggregation = aggregation
			cfg.Retry = RetryConfig{MaxAttempts: 50, Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
			if err := validateSink(&cfg); err != nil {
				b.Fatal(err)
			}
			s := newSink(cfg, c, nil)
			var puts atomic.Int64
			api := &countingPuts{Client: c, n: &puts}
			s.api = api
			id := int64(0)
			for b.Loop() {
				id++
				if err := s.AddBatch(context.Background(), &engine.Batch{ID: id, Schema: schema, Rows: rs}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(puts.Load())/float64(n*b.N), "kinesis-records/record")
		})
	}
}

// countingPuts counts the Kinesis records PutRecords accepted.
type countingPuts struct {
	*kinesis.Client
	n *atomic.Int64
}

func (c *countingPuts) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out, err := c.Client.PutRecords(ctx, in, opts...)
	if err == nil {
		c.n.Add(int64(len(in.Records)) - int64(aws.ToInt32(out.FailedRecordCount)))
	}
	return out, err
}
