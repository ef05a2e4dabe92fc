package shardflow_test

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
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

// BenchmarkReshardUnderLoad produces at a steady rate into a 16-shard
// stream on kdsfake, reads it with ProcessingTime(200ms), splits every shard
// in the middle of the run, and reports batch duration (p50, p99) and
// throughput before, during and after the reshard, and the longest time a
// child shard waited, after its parent's last batch, for its own first
// batch (in trigger intervals). Goals: no batch during the reshard over 2×
// the steady p99; no child waiting over one trigger interval.
func BenchmarkReshardUnderLoad(b *testing.B) {
	const (
		shards   = 16
		rate     = 4000 // records per second
		trigger  = 200 * time.Millisecond
		phaseDur = 3 * time.Second
	)
	for b.Loop() {
		srv := kdsfake.Start(b, kdsfake.Config{})
		c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), HTTPClient: srv.Client(),
			Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
		if err := srv.CreateStream("reshard", shards); err != nil {
			b.Fatal(err)
		}
		cfg, err := kds.ParseSourceOptions(map[string]string{
			"kinesis.streamName": "reshard", "kinesis.endpointUrl": srv.URL(), "kinesis.region": "us-east-1",
			"kinesis.awsAccessKeyId": "k", "kinesis.awsSecretKey": "s", "kinesis.startingPosition": "TRIM_HORIZON",
			"kinesis.getRecords.fetchIntervalMs": "50", "kinesis.describeShardInterval": "100ms",
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		src, err := kds.NewSource(context.Background(), cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		type batchInfo struct {
			at     time.Time
			dur    time.Duration
			rows   int64
			shards map[string]bool
		}
		var mu sync.Mutex
		var batches []batchInfo
		q, err := shardflow.NewQuery(shardflow.QueryConfig{
			Checkpoint: memstore.New(), Trigger: shardflow.ProcessingTime(trigger), Source: src,
			Sink: shardflow.ForEachBatch(func(_ context.Context, bt *shardflow.Batch) error {
				seen := map[string]bool{}
				for _, r := range bt.Rows {
					seen[r[5].(string)] = true
				}
				mu.Lock()
				batches = append(batches, batchInfo{at: time.Now(), rows: int64(len(bt.Rows)), shards: seen})
				mu.Unlock()
				return nil
			}),
			OnProgress: func(p shardflow.Progress) {
				mu.Lock()
				if n := len(batches); n > 0 {
					batches[n-1].dur = time.Duration(p.DurationMs["triggerExecution"]) * time.Millisecond
				}
				mu.Unlock()
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- q.Run(ctx) }()

		var produced atomic.Int64
		stopProducing := make(chan struct{})
		var prodWG sync.WaitGroup
		prodWG.Go(func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			i := 0
			for {
				select {
				case <-stopProducing:
					return
				case <-tick.C:
				}
				in := &kinesis.PutRecordsInput{StreamName: aws.String("reshard")}
				for range rate / 20 {
					in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(strconv.Itoa(i)), Data: []byte("x")})
					i++
				}
				if out, err := c.PutRecords(context.Background(), in); err == nil {
					produced.Add(int64(len(in.Records)) - int64(aws.ToInt32(out.FailedRecordCount)))
				}
			}
		})

		start := time.Now()
		time.Sleep(phaseDur)
		reshardStart := time.Now()
		list, err := c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("reshard")})
		if err != nil {
			b.Fatal(err)
		}
		parentOf := map[string]string{}
		for _, sh := range list.Shards {
			lo, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
			hi, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
			mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
			if _, err := c.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String("reshard"),
				ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
				b.Fatal(err)
			}
		}
		reshardEnd := time.Now()
		after, _ := c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("reshard")})
		for _, sh := range after.Shards {
			if sh.ParentShardId != nil {
				parentOf[*sh.ShardId] = *sh.ParentShardId
			}
		}
		time.Sleep(2 * phaseDur)
		close(stopProducing)
		prodWG.Wait()
		cancel()
		<-done
		end := time.Now()

		mu.Lock()
		phase := func(from, to time.Time) (p50, p99 time.Duration, rowsPerSec float64) {
			var durs []time.Duration
			var rows int64
			for _, bi := range batches {
				if bi.at.After(from) && !bi.at.After(to) {
					durs = append(durs, bi.dur)
					rows += bi.rows
				}
			}
			if len(durs) == 0 {
				return 0, 0, 0
			}
			slices.Sort(durs)
			return durs[len(durs)/2], durs[(len(durs)*99)/100], float64(rows) / to.Sub(from).Seconds()
		}
		// During = from the first split to 1 s after the last one.
		s50, s99, sRate := phase(start, reshardStart)
		d50, d99, dRate := phase(reshardStart, reshardEnd.Add(time.Second))
		_, a99, aRate := phase(reshardEnd.Add(time.Second), end)
		// The longest wait of a child, from its parent's last batch to its
		// own first one, in trigger intervals.
		lastOf, firstOf := map[string]time.Time{}, map[string]time.Time{}
		for _, bi := range batches {
			for sh := range bi.shards {
				lastOf[sh] = bi.at
				if _, ok := firstOf[sh]; !ok {
					firstOf[sh] = bi.at
				}
			}
		}
		var maxWait time.Duration
		for child, parent := range parentOf {
			if f, ok := firstOf[child]; ok {
				maxWait = max(maxWait, f.Sub(lastOf[parent]))
			}
		}
		mu.Unlock()
		b.ReportMetric(float64(s99.Milliseconds()), "steady-p99-ms")
		b.ReportMetric(float64(s50.Milliseconds()), "steady-p50-ms")
		b.ReportMetric(float64(d99.Milliseconds()), "reshard-p99-ms")
		b.ReportMetric(float64(d50.Milliseconds()), "reshard-p50-ms")
		b.ReportMetric(float64(a99.Milliseconds()), "after-p99-ms")
		b.ReportMetric(sRate, "steady-rows/s")
		b.ReportMetric(dRate, "reshard-rows/s")
		b.ReportMetric(aRate, "after-rows/s")
		b.ReportMetric(maxWait.Seconds()/trigger.Seconds(), "max-child-wait-triggers")
		b.Logf("produced %d; batches steady p50/p99 %s/%s, reshard %s/%s, after p99 %s; rows/s %.0f / %.0f / %.0f; longest child wait %s (%s)",
			produced.Load(), s50, s99, d50, d99, a99, sRate, dRate, aRate, maxWait, fmt.Sprint(len(parentOf), " children"))
	}
}
