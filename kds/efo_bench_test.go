package kds

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"testing"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// BenchmarkEventStream compares reading a SubscribeToShard event stream
// with the SDK's reader (a goroutine and two channels per stream,
// reflection-based decoding) and with subStream (kds's reader: decoding in
// the caller's goroutine), on the same SDK client and a canned response of
// benchEvents events of one 100-byte record each, the shape of a shard
// that is not busy. The difference is the per-event cost EFO pays on top of
// the transport.
func BenchmarkEventStream(b *testing.B) {
	const benchEvents = 1000
	var body bytes.Buffer
	body.Write(frame(b, "{}", ":message-type", "event", ":event-type", "initial-response", ":content-type", "application/json"))
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, 100))
	for i := range benchEvents {
		body.Write(eventFrame(b, fmt.Sprintf(`{"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989%09d","ApproximateArrivalTimestamp":1.764072000123E9,"Data":"%s","PartitionKey":"%08d-aaaa-bbbb-cccc-dddddddddddd"}],"MillisBehindLatest":0,"ContinuationSequenceNumber":"49590338271490256608559692538361571095921575989%09d"}`, i, data, i, i)))
	}
	c, err := NewClient(context.Background(), AWSConfig{
		Region: "us-east-1", EndpointURL: "http://kinesis.invalid", AccessKeyID: "a", SecretKey: "b",
		HTTPClient: &http.Client{Transport: cannedStream{body: body.Bytes()}},
	})
	if err != nil {
		b.Fatal(err)
	}
	in := &kinesis.SubscribeToShardInput{ConsumerARN: awsv2.String("arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1"), ShardId: awsv2.String("shardId-0"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}}
	count := func(b *testing.B, n int) {
		if n != benchEvents {
			b.Fatalf("%d events, want %d", n, benchEvents)
		}
	}
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := c.SubscribeToShard(b.Context(), in)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for ev := range out.GetStream().Events() {
				if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok && len(e.Value.Records) == 1 {
					n++
				}
			}
			out.GetStream().Close()
			count(b, n)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEvents), "ns/event")
	})
	b.Run("kds", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var raw rawEventStream
			if _, err := c.SubscribeToShard(b.Context(), in, raw.option); err != nil {
				b.Fatal(err)
			}
			s, n := newSubStream(raw.body), 0
			for {
				e, err := s.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if len(e.Records) == 1 {
					n++
				}
			}
			raw.body.Close()
			count(b, n)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEvents), "ns/event")
	})
}

// cannedStream answers every call with an event-stream body.
type cannedStream struct{ body []byte }

func (c cannedStream) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header:  http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}},
		Body:    io.NopCloser(bytes.NewReader(c.body)),
		Request: req, ContentLength: -1,
	}, nil
}
