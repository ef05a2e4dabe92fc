package shardflow_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint/memstore"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
)

// The emulator benchmarks (make bench) read one 4-shard stream of 1 KiB
// records twice per iteration: with a plain aws-sdk-go-v2 GetRecords loop
// and with a whole shardflow query (AvailableNow, the polling source, the
// engine, a counting sink). They report records/s and CPU-seconds per
// million records for both, and the ratio, which is the number that
// matters: the server's speed is the same for both. They run on kinesalite
// and on kdsfake (in process, see bench_kdsfake_test.go), which takes the
// server off the critical path.

const benchRecords = 20000

func benchEndpoint(b *testing.B) string {
	ep := os.Getenv(testenv.EnvKinesalite)
	if ep == "" {
		b.Skip("benchmarks need kinesalite: run make bench")
	}
	return ep
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchOptions(endpoint, stream string) map[string]string {
	return map[string]string{
		"kinesis.streamName":                         stream,
		"kinesis.endpointUrl":                        endpoint,
		"kinesis.region":                             testenv.Region,
		"kinesis.awsAccessKeyId":                     testenv.AccessKeyID,
		"kinesis.awsSecretKey":                       testenv.SecretKey,
		"kinesis.startingPosition":                   "TRIM_HORIZON",
		"kinesis.getRecords.fetchIntervalMs":         "0",
		"kinesis.getRecords.numberOfRecordsPerFetch": "10000",
	}
}

func BenchmarkEmulatorRead(b *testing.B) {
	b.Run(testenv.Kinesalite, func(b *testing.B) { benchEmulatorRead(b, benchEndpoint(b)) })
	b.Run(benchKdsfake, func(b *testing.B) { benchEmulatorRead(b, benchServerEndpoint(b, benchKdsfake)) })
}

// benchEmulatorRead is BenchmarkEmulatorRead on the server at ep.
func benchEmulatorRead(b *testing.B, ep string) {
	c := testenv.KinesisClient(b, ep)
	stream := testenv.CreateStream(b, c, 4)
	payload := bytes.Repeat([]byte("x"), 1024)
	recs := make([]testenv.Record, benchRecords)
	for i := range recs {
		recs[i] = testenv.Record{PartitionKey: strconv.Itoa(i), Data: payload}
	}
	testenv.PutRecords(b, c, stream, recs)
	plainClient, err := kds.NewClient(context.Background(), kds.AWSConfig{Region: testenv.Region, EndpointURL: ep, AccessKeyID: testenv.AccessKeyID, SecretKey: testenv.SecretKey})
	if err != nil {
		b.Fatal(err)
	}
	shards := testenv.Shards(b, c, stream)

	var plainCPU, sfCPU, plainWall, sfWall time.Duration
	var n int
	for b.Loop() {
		n++
		t0, c0 := time.Now(), cpuTime()
		got := plainRead(b, plainClient, stream, shards)
		plainWall += time.Since(t0)
		plainCPU += cpuTime() - c0
		if got != benchRecords {
			b.Fatalf("plain loop read %d records, want %d", got, benchRecords)
		}

		t0, c0 = time.Now(), cpuTime()
		got = shardflowRead(b, ep, stream)
		sfWall += time.Since(t0)
		sfCPU += cpuTime() - c0
		if got != benchRecords {
			b.Fatalf("shardflow read %d records, want %d", got, benchRecords)
		}
	}
	total := float64(n * benchRecords)
	b.ReportMetric(total/plainWall.Seconds(), "plain-rec/s")
	b.ReportMetric(total/sfWall.Seconds(), "shardflow-rec/s")
	b.ReportMetric(plainCPU.Seconds()/total*1e6, "plain-cpu-s/Mrec")
	b.ReportMetric(sfCPU.Seconds()/total*1e6, "shardflow-cpu-s/Mrec")
	b.ReportMetric(sfCPU.Seconds()/plainCPU.Seconds(), "cpu-ratio")
}

// plainRead is what a user would write with the SDK alone: one goroutine
// per shard, GetShardIterator then GetRecords until an empty page.
func plainRead(b *testing.B, c *kinesis.Client, stream string, shards []types.Shard) int {
	var total atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	for _, sh := range shards {
		wg.Go(func() {
			it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: "TRIM_HORIZON"})
			if err != nil {
				b.Error(err)
				return
			}
			iter := it.ShardIterator
			for iter != nil {
				out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
				if err != nil {
					b.Error(err)
					return
				}
				total.Add(int64(len(out.Records)))
				if len(out.Records) == 0 {
					return
				}
				iter = out.NextShardIterator
			}
		})
	}
	wg.Wait()
	return int(total.Load())
}

func shardflowRead(b *testing.B, endpoint, stream string) int {
	ctx := context.Background()
	cfg, err := kds.ParseSourceOptions(benchOptions(endpoint, stream), nil)
	if err != nil {
		b.Fatal(err)
	}
	src, err := kds.NewSource(ctx, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	var rows atomic.Int64
	q, err := shardflow.NewQuery(shardflow.QueryConfig{
		Checkpoint: memstore.New(),
		Trigger:    shardflow.AvailableNow(),
		Source:     src,
		Sink: shardflow.ForEachBatch(func(_ context.Context, bt *shardflow.Batch) error {
			rows.Add(int64(len(bt.Rows)))
			return nil
		}),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := q.Run(ctx); err != nil {
		b.Fatal(err)
	}
	return int(rows.Load())
}

// BenchmarkIdleShardsMemory runs a query over streams of 4 and 100 idle
// shards and reports the heap and resident memory each idle shard adds.
// Run it in a process of its own (make bench does) so RSS is meaningful.
func BenchmarkIdleShardsMemory(b *testing.B) {
	ep := benchEndpoint(b)
	c := testenv.KinesisClient(b, ep)
	small, large := testenv.CreateStream(b, c, 4), testenv.CreateStream(b, c, 100)
	var heapPer, rssPer, heap100, rss100 float64
	for b.Loop() {
		h4, r4 := idleFootprint(b, ep, small)
		h100, r100 := idleFootprint(b, ep, large)
		heapPer = (h100 - h4) / 96
		rssPer = (r100 - r4) / 96
		heap100, rss100 = h100, r100
	}
	b.ReportMetric(heapPer, "heap-B/idle-shard")
	b.ReportMetric(rssPer, "rss-B/idle-shard")
	b.ReportMetric(heap100/(1<<20), "heap-MiB@100-idle")
	b.ReportMetric(rss100/(1<<20), "rss-MiB@100-idle")
}

// idleFootprint runs a ProcessingTime query on an idle stream for a few
// seconds and returns the live heap and RSS while it runs.
func idleFootprint(b *testing.B, endpoint, stream string) (heap, rss float64) {
	ctx := context.Background()
	opts := benchOptions(endpoint, stream)
	opts["kinesis.getRecords.fetchIntervalMs"] = "200"
	cfg, err := kds.ParseSourceOptions(opts, nil)
	if err != nil {
		b.Fatal(err)
	}
	src, err := kds.NewSource(ctx, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	q, err := shardflow.NewQuery(shardflow.QueryConfig{
		Checkpoint: memstore.New(),
		Trigger:    shardflow.ProcessingTime(time.Second),
		Source:     src,
		Sink:       shardflow.ForEachBatch(func(context.Context, *shardflow.Batch) error { return nil }),
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	time.Sleep(3 * time.Second)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap, rss = float64(ms.HeapInuse), float64(vmRSS())
	if err := q.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return heap, rss
}

func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb * 1024
		}
	}
	return 0
}
