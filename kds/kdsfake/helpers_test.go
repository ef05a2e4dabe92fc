package kdsfake_test

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardflow/shardflow/internal/awshttpfix"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// fakeClock is a settable clock for Config.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// clientOpts tune newClient.
type clientOpts struct {
	endpoint   string // default srv.URL()
	accessKey  string // default "AKIDEXAMPLE"
	secret     string
	httpClient *http.Client
	retries    bool // keep the SDK's retries (off by default, so faults show)
}

// newClient returns an SDK client for srv. It builds aws.Config directly
// rather than with config.LoadDefaultConfig, so AWS_CA_BUNDLE and the
// environment's credentials play no part.
func newClient(t testing.TB, srv *kdsfake.Server, o clientOpts) *kinesis.Client {
	t.Helper()
	if o.endpoint == "" {
		o.endpoint = srv.URL()
	}
	if o.accessKey == "" {
		o.accessKey = "AKIDEXAMPLE"
	}
	if o.secret == "" {
		o.secret = "secret"
	}
	if o.httpClient == nil {
		o.httpClient = srv.Client()
	}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(o.accessKey, o.secret, ""),
		HTTPClient:  awshttpfix.Client(o.httpClient), // aws-sdk-go-v2 issue 2737 (srv.Client() has it already)
	}
	return kinesis.NewFromConfig(cfg, func(ko *kinesis.Options) {
		ko.BaseEndpoint = aws.String(o.endpoint)
		if !o.retries {
			ko.RetryMaxAttempts = 1
		}
	})
}

// errCode returns the AWS error code of err, or "".
func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wantCode fails the test unless err has the AWS error code code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := errCode(err); got != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
}

// createStream creates a provisioned stream with n shards.
func createStream(t testing.TB, kc *kinesis.Client, name string, n int32) {
	t.Helper()
	_, err := kc.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(n)})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
}

// shardIterator returns a TRIM_HORIZON (or other typ) iterator.
func shardIterator(t testing.TB, kc *kinesis.Client, stream, shard string, typ types.ShardIteratorType) *string {
	t.Helper()
	out, err := kc.GetShardIterator(context.Background(), &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: typ,
	})
	if err != nil {
		t.Fatalf("GetShardIterator(%s, %s): %v", shard, typ, err)
	}
	return out.ShardIterator
}

// readAll reads a shard from it until a page is empty at the tip or the
// shard ends, and returns the records and the last response.
func readAll(t testing.TB, kc *kinesis.Client, it *string) ([]types.Record, *kinesis.GetRecordsOutput) {
	t.Helper()
	var recs []types.Record
	for {
		out, err := kc.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		recs = append(recs, out.Records...)
		if out.NextShardIterator == nil || len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			return recs, out
		}
		it = out.NextShardIterator
	}
}

// seqInt parses a sequence number.
func seqInt(t testing.TB, s *string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(aws.ToString(s), 10)
	if !ok {
		t.Fatalf("bad sequence number %q", aws.ToString(s))
	}
	return v
}
