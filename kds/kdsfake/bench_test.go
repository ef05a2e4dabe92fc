package kdsfake_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/kds/kdsfake"
)

// rawCall posts one JSON request and returns the body.
func rawCall(b testing.TB, hc *http.Client, url, action string, body []byte, buf *bytes.Buffer) []byte {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+action)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := io.Copy(buf, resp.Body); err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d %s", action, resp.StatusCode, buf.Bytes())
	}
	return buf.Bytes()
}

// putRecordsBody is a PutRecords request of n records of size bytes.
func putRecordsBody(stream string, n, size int) []byte {
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), size))
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"StreamName":%q,"Records":[`, stream)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"Data":%q,"PartitionKey":"pk-%d"}`, data, i)
	}
	sb.WriteString("]}")
	return []byte(sb.String())
}

// nextIterator extracts NextShardIterator from a GetRecords response.
func nextIterator(b testing.TB, body []byte) string {
	const key = `"NextShardIterator":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		b.Fatalf("no NextShardIterator in %.200s", body)
	}
	rest := body[i+len(key):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

// BenchmarkGetRecords measures the server: GetRecords of 10,000 records of
// 1 KiB each over loopback HTTP/1.1, with a plain HTTP client that reads
// the whole response (about 14 MB) but does not decode it.
func BenchmarkGetRecords(b *testing.B) {
	srv := kdsfake.Start(b, kdsfake.Config{})
	kc := newClient(b, srv, clientOpts{})
	createStream(b, kc, "bench", 1)
	hc := srv.Client()
	var buf bytes.Buffer
	put := putRecordsBody("bench", 500, 1024)
	const total = 100000
	for range total / 500 {
		rawCall(b, hc, srv.URL(), "PutRecords", put, &buf)
	}
	startIt := func() string {
		body := rawCall(b, hc, srv.URL(), "GetShardIterator", []byte(`{"StreamName":"bench","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`), &buf)
		s := string(body)
		return s[strings.Index(s, `":"`)+3 : strings.LastIndex(s, `"`)]
	}
	it := startIt()
	records := 0
	b.SetBytes(10000 * 1024)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		body := rawCall(b, hc, srv.URL(), "GetRecords", []byte(`{"ShardIterator":"`+it+`","Limit":10000}`), &buf)
		n := bytes.Count(body, []byte(`"SequenceNumber"`))
		records += n
		if n == 0 {
			it = startIt()
			continue
		}
		it = nextIterator(b, body)
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkGetRecordsSDK is BenchmarkGetRecords with the aws-sdk-go-v2
// client, which decodes every record: the client, not the server, is the
// limit here.
func BenchmarkGetRecordsSDK(b *testing.B) {
	srv := kdsfake.Start(b, kdsfake.Config{})
	kc := newClient(b, srv, clientOpts{})
	createStream(b, kc, "bench", 1)
	var buf bytes.Buffer
	put := putRecordsBody("bench", 500, 1024)
	for range 100000 / 500 {
		rawCall(b, srv.Client(), srv.URL(), "PutRecords", put, &buf)
	}
	ctx := context.Background()
	it := shardIterator(b, kc, "bench", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon)
	records := 0
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(10000)})
		if err != nil {
			b.Fatal(err)
		}
		records += len(out.Records)
		it = out.NextShardIterator
		if len(out.Records) == 0 {
			it = shardIterator(b, kc, "bench", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon)
		}
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkPutRecords measures PutRecords of 500 records of 1 KiB each
// over loopback HTTP/1.1, with a pre-encoded request body.
func BenchmarkPutRecords(b *testing.B) {
	srv := kdsfake.Start(b, kdsfake.Config{})
	kc := newClient(b, srv, clientOpts{})
	createStream(b, kc, "bench", 4)
	hc := srv.Client()
	var buf bytes.Buffer
	put := putRecordsBody("bench", 500, 1024)
	records := 0
	b.SetBytes(500 * 1024)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		body := rawCall(b, hc, srv.URL(), "PutRecords", put, &buf)
		if !bytes.HasPrefix(body, []byte(`{"FailedRecordCount":0`)) {
			b.Fatalf("failed records: %.100s", body)
		}
		records += 500
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
}
