package kds

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardflow/shardflow/internal/engine"
)

// The polling benchmarks compare the shard reader with a plain GetRecords
// loop on the same SDK client and a canned HTTP response (no network), so
// both pay the same SDK cost and the difference is the reader's own:
// pacing, buffering, hand-off to the consumer. The goal is at most 1.3x
// the CPU per record of the plain loop.

const benchPageRecords = 1000

// cannedGetRecords returns a GetRecords response body of n records of size
// bytes each, shaped like the service's.
func cannedGetRecords(n, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, size))
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"SequenceNumber":"49590338271490256608559692538361571095921575989%09d","ApproximateArrivalTimestamp":1.764072000123E9,"Data":"%s","PartitionKey":"%08d-aaaa-bbbb-cccc-dddddddddddd"}`, i, data, i)
	}
	fmt.Fprintf(&b, `],"NextShardIterator":"%s","MillisBehindLatest":0}`, strings.Repeat("A", 280))
	return b.Bytes()
}

type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	target := req.Header.Get("X-Amz-Target")
	body := c.body
	if strings.HasSuffix(target, ".GetShardIterator") {
		body = []byte(`{"ShardIterator":"it"}`)
	}
	return &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

// benchClient is a real SDK client (built by NewClient) on the canned
// transport.
func benchClient(tb testing.TB, recordSize int) *kinesis.Client {
	tb.Helper()
	c, err := NewClient(context.Background(), AWSConfig{
		Region: "us-east-1", EndpointURL: "http://kinesis.invalid", AccessKeyID: "a", SecretKey: "b",
		HTTPClient: &http.Client{Transport: cannedTransport{body: cannedGetRecords(benchPageRecords, recordSize)}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// plainLoop reads pages with GetRecords as a minimal consumer would.
type plainLoop struct {
	c    *kinesis.Client
	iter *string
	sink int
}

func (p *plainLoop) page(ctx context.Context) {
	out, err := p.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: p.iter, Limit: awsv2.Int32(benchPageRecords)})
	if err != nil {
		panic(err)
	}
	for i := range out.Records {
		p.sink += len(out.Records[i].Data)
	}
	p.iter = out.NextShardIterator
}

// readerLoop consumes a shard reader page by page.
type readerLoop struct {
	r    engine.ShardReader
	sink int
}

func newReaderLoop(tb testing.TB, ctx context.Context, c *kinesis.Client) *readerLoop {
	cfg := SourceConfig{
		StreamName: "bench", Retry: RetryConfig{MaxAttempts: 1},
		RecordsPerFetch: benchPageRecords, BufferRecords: 2 * benchPageRecords, BufferBytes: 1 << 30,
	}
	if err := validateSource(&cfg); err != nil {
		tb.Fatal(err)
	}
	r, err := newSource(cfg, c, nil).OpenShard(ctx, "shardId-000000000000", engine.Start{Type: engine.TrimHorizon})
	if err != nil {
		tb.Fatal(err)
	}
	l := &readerLoop{r: r}
	l.waitFull()
	return l
}

func (l *readerLoop) page() {
	for {
		snap := l.r.Peek(benchPageRecords)
		if snap.Err != nil {
			panic(snap.Err)
		}
		if len(snap.Records) == benchPageRecords {
			for i := range snap.Records {
				l.sink += len(snap.Records[i].Data)
			}
			l.r.Release(benchPageRecords)
			return
		}
		<-l.r.Ready()
	}
}

// waitFull waits until the reader has refilled its buffer and stopped, so
// none of its work spills into the next measurement.
func (l *readerLoop) waitFull() {
	for !l.r.Peek(0).Full {
		<-l.r.Ready()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkPolling(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("plain/%dB", size), func(b *testing.B) {
			p := &plainLoop{c: benchClient(b, size), iter: awsv2.String("it")}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				p.page(b.Context())
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N*benchPageRecords), "cpu-ns/record")
		})
		b.Run(fmt.Sprintf("reader/%dB", size), func(b *testing.B) {
			l := newReaderLoop(b, b.Context(), benchClient(b, size))
			defer l.r.Close()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				l.page()
			}
			l.waitFull()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N*benchPageRecords), "cpu-ns/record")
		})
	}
}

// cpuRatio measures the reader's CPU per record over the plain loop's in
// interleaved slices of pages and returns the median of the per-slice
// ratios, which is stable on a noisy machine where separate runs are not.
func cpuRatio(tb testing.TB, slicesN, pagesPerSlice, recordSize int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &plainLoop{c: benchClient(tb, recordSize), iter: awsv2.String("it")}
	l := newReaderLoop(tb, ctx, benchClient(tb, recordSize))
	defer l.r.Close()
	for range pagesPerSlice { // warm up both
		p.page(ctx)
		l.page()
	}
	l.waitFull()
	ratios := make([]float64, 0, slicesN)
	for range slicesN {
		c0 := cpuTime()
		for range pagesPerSlice {
			p.page(ctx)
		}
		c1 := cpuTime()
		for range pagesPerSlice {
			l.page()
		}
		l.waitFull()
		c2 := cpuTime()
		ratios = append(ratios, float64(c2-c1)/float64(c1-c0))
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/2]
}

func BenchmarkPollingCPURatio(b *testing.B) {
	var r float64
	for b.Loop() {
		r = cpuRatio(b, 15, 20, 100)
	}
	b.ReportMetric(r, "reader/plain-cpu")
}
