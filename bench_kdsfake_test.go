package shardflow_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// The server benchmarks (make bench) put kdsfake next to the emulators on
// one workload: 1 KiB records in a 4-shard stream on loopback, written and
// read by a plain aws-sdk-go-v2 loop (the same client for every server),
// and report records/s per server as BenchmarkXxxServers/<server>.
// kdsfake runs in this process, so it shares the CPU with the client, as the
// emulators do from their own processes. Goal: kdsfake serves GetRecords
// at 200,000 records/s or more, and at least 10 times kinesalite's rate.

// benchKdsfake names the in-process server among the benchmark targets.
const benchKdsfake = "kdsfake"

// benchServers are the servers compared and the records per iteration:
// kinesis-mock writes at about 1.4k records/s, so it gets fewer.
var benchServers = []struct {
	name    string
	records int
}{
	{benchKdsfake, benchRecords},
	{testenv.Kinesalite, benchRecords},
	{testenv.KinesisMock, 5000},
}

// benchServerEndpoint returns the endpoint of a benchmark target: a kdsfake
// started for b, or an emulator of the test script (scripts/emulators.sh).
// A missing emulator skips b, or fails it with CI=true (testenv).
func benchServerEndpoint(b *testing.B, name string) string {
	b.Helper()
	if name == benchKdsfake {
		return kdsfake.Start(b, kdsfake.Config{}).URL()
	}
	for _, em := range testenv.KinesisEmulators(b) {
		if em.Name == name {
			return em.Endpoint
		}
	}
	b.Skipf("%s is not running: run make bench", name)
	return ""
}

// benchPayload is one record's data: 1 KiB.
var benchPayload = bytes.Repeat([]byte("x"), 1024)

// BenchmarkGetRecordsServers reads the same stream of 1 KiB records from
// TRIM_HORIZON each iteration with plainRead (a goroutine per shard,
// GetRecords with Limit 10000 until an empty page).
func BenchmarkGetRecordsServers(b *testing.B) {
	for _, srv := range benchServers {
		b.Run(srv.name, func(b *testing.B) {
			ep := benchServerEndpoint(b, srv.name)
			c := testenv.KinesisClient(b, ep)
			stream := testenv.CreateStream(b, c, 4)
			recs := make([]testenv.Record, srv.records)
			for i := range recs {
				recs[i] = testenv.Record{PartitionKey: strconv.Itoa(i), Data: benchPayload}
			}
			testenv.PutRecords(b, c, stream, recs)
			shards := testenv.Shards(b, c, stream)

			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			b.Cleanup(hc.CloseIdleConnections)

			var wall, cpu, rawWall time.Duration
			n := 0
			for b.Loop() {
				t0, c0 := time.Now(), cpuTime()
				got := plainRead(b, c, stream, shards)
				wall += time.Since(t0)
				cpu += cpuTime() - c0
				if got != srv.records {
					b.Fatalf("read %d records, want %d", got, srv.records)
				}
				n += got

				t0 = time.Now()
				if got := rawRead(b, c, hc, ep, stream, shards); got != srv.records {
					b.Fatalf("raw read: %d records, want %d", got, srv.records)
				}
				rawWall += time.Since(t0)
			}
			b.ReportMetric(float64(n)/wall.Seconds(), "records/s")
			// This process's CPU: the client's, plus the server's for kdsfake.
			b.ReportMetric(cpu.Seconds()/float64(n)*1e6, "cpu-s/Mrec")
			b.ReportMetric(float64(n)/rawWall.Seconds(), "raw-records/s")
		})
	}
}

// rawRead is plainRead with the SDK's GetRecords replaced by signed HTTP
// requests whose responses are read but not decoded (records are counted
// by their "SequenceNumber" keys): the aws-sdk-go-v2 client spends about
// 9 µs of CPU per 1 KiB record decoding GetRecords, which caps plainRead on
// a small machine whatever the server; rawRead shows the server's own
// speed.
func rawRead(b *testing.B, c *kinesis.Client, hc *http.Client, endpoint, stream string, shards []types.Shard) int {
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testenv.AccessKeyID, SecretAccessKey: testenv.SecretKey}
	ctx := context.Background()
	var total atomic.Int64
	var wg sync.WaitGroup
	for _, sh := range shards {
		wg.Go(func() {
			it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				b.Error(err)
				return
			}
			iter := aws.ToString(it.ShardIterator)
			var buf bytes.Buffer
			for iter != "" {
				body, _ := json.Marshal(map[string]any{"ShardIterator": iter, "Limit": 10000})
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				req.Header.Set("X-Amz-Target", "Kinesis_20131202.GetRecords")
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				sum := sha256.Sum256(body)
				if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", testenv.Region, time.Now()); err != nil {
					b.Error(err)
					return
				}
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				buf.Reset()
				_, err = buf.ReadFrom(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("GetRecords: %v %d %.200s", err, resp.StatusCode, buf.Bytes())
					return
				}
				n := bytes.Count(buf.Bytes(), []byte(`"SequenceNumber"`))
				total.Add(int64(n))
				if n == 0 {
					return
				}
				iter = rawNextIterator(b, buf.Bytes())
			}
		})
	}
	wg.Wait()
	return int(total.Load())
}

// rawNextIterator returns the NextShardIterator of a GetRecords response,
// or "" if it has none.
func rawNextIterator(b *testing.B, body []byte) string {
	const key = `"NextShardIterator":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(body[i+len(key):], " ")
	end := bytes.IndexByte(rest[1:], '"') + 1 // iterators are base64: no escaped quotes
	var s string
	if err := json.Unmarshal(rest[:end+1], &s); err != nil {
		b.Errorf("NextShardIterator in %.200s: %v", rest, err)
	}
	return s
}

// BenchmarkPutRecordsServers writes the records of an iteration with
// PutRecords of 500 records from 4 concurrent callers, into one stream that
// grows across iterations.
func BenchmarkPutRecordsServers(b *testing.B) {
	const callers, batch = 4, 500
	for _, srv := range benchServers {
		b.Run(srv.name, func(b *testing.B) {
			ep := benchServerEndpoint(b, srv.name)
			c := testenv.KinesisClient(b, ep)
			stream := testenv.CreateStream(b, c, 4)
			batches := make([][]types.PutRecordsRequestEntry, srv.records/batch)
			for i := range batches {
				for j := range batch {
					batches[i] = append(batches[i], types.PutRecordsRequestEntry{Data: benchPayload, PartitionKey: aws.String(strconv.Itoa(i*batch + j))})
				}
			}
			ctx := context.Background()
			var wall, cpu time.Duration
			n := 0
			for b.Loop() {
				t0, c0 := time.Now(), cpuTime()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range callers {
					wg.Go(func() {
						for i := int(next.Add(1)) - 1; i < len(batches); i = int(next.Add(1)) - 1 {
							out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batches[i]})
							if err != nil {
								b.Error(err)
								return
							}
							if f := aws.ToInt32(out.FailedRecordCount); f != 0 {
								b.Errorf("PutRecords: %d records failed", f)
								return
							}
						}
					})
				}
				wg.Wait()
				wall += time.Since(t0)
				cpu += cpuTime() - c0
				if b.Failed() {
					b.FailNow()
				}
				n += len(batches) * batch
			}
			b.ReportMetric(float64(n)/wall.Seconds(), "records/s")
			b.ReportMetric(cpu.Seconds()/float64(n)*1e6, "cpu-s/Mrec")
		})
	}
}
