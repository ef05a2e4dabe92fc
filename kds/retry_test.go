package kds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// opErr wraps err as the SDK does for a call.
func opErr(err error) error {
	return &smithy.OperationError{ServiceID: "Kinesis", OperationName: "GetRecords", Err: err}
}

// httpErr is an SDK error for an HTTP answer with the given status.
func httpErr(status int, err error) error {
	return opErr(&awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      err,
		},
		RequestID: "req-1",
	})
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"provisioned throughput", httpErr(400, &types.ProvisionedThroughputExceededException{Message: str("Rate exceeded")}), true},
		{"limit exceeded", httpErr(400, &types.LimitExceededException{}), true},
		{"throttling code", httpErr(400, &smithy.GenericAPIError{Code: "ThrottlingException"}), true},
		{"kms throttling", httpErr(400, &types.KMSThrottlingException{}), true},
		{"500 internal failure", httpErr(500, &types.InternalFailureException{}), true},
		{"503 unknown body", httpErr(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"}), true},
		{"connection reset", opErr(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}), true},
		{"connection refused", opErr(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}), true},
		{"eof", opErr(&smithyhttp.RequestSendError{Err: io.EOF}), true},
		{"unexpected eof in body", opErr(&smithy.DeserializationError{Err: io.ErrUnexpectedEOF}), true},
		{"timeout", opErr(&smithyhttp.RequestSendError{Err: timeoutErr{}}), true},
		{"request deadline", opErr(context.DeadlineExceeded), true},
		{"200 whose body broke off", httpErr(200, &smithy.DeserializationError{Err: &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}}), true},
		{"200 with a malformed body", httpErr(200, &smithy.DeserializationError{Err: errors.New("invalid character")}), false},
		{"invalid argument", httpErr(400, &types.InvalidArgumentException{}), false},
		{"resource not found", httpErr(400, &types.ResourceNotFoundException{}), false},
		{"expired iterator", httpErr(400, &types.ExpiredIteratorException{}), false},
		{"access denied", httpErr(400, &types.AccessDeniedException{}), false},
		{"validation", httpErr(400, &types.ValidationException{}), false},
		{"404 with a 5xx-looking code", httpErr(404, &smithy.GenericAPIError{Code: "InternalFailure"}), false},
		{"host not found", opErr(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}}), false},
		{"plain error", errors.New("boom"), false},
		{"canceled", context.Canceled, false},
	}
	for _, tt := range tests {
		if got := isRetryable(tt.err); got != tt.want {
			t.Errorf("%s: isRetryable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func str(s string) *string { return &s }

func testRetrier(attempts int) *retrier {
	r := newRetrier(RetryConfig{MaxAttempts: attempts, Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond}, discard())
	r.jitter = func(d time.Duration) time.Duration { return d } // the ceiling, to check it
	return r
}

func TestRetryBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testRetrier(5)
		throttle := httpErr(400, &types.ProvisionedThroughputExceededException{})
		var at []time.Duration
		start := time.Now()
		err := r.do(t.Context(), "GetRecords", "s", "shardId-000000000001", func(context.Context) error {
			at = append(at, time.Since(start))
			if len(at) < 5 {
				return throttle
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Ceilings 100, 200, 300 (capped), 300 ms.
		want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, 900 * time.Millisecond}
		if fmt.Sprint(at) != fmt.Sprint(want) {
			t.Errorf("attempts at %v, want %v", at, want)
		}
	})
}

func TestRetryGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testRetrier(3)
		calls := 0
		err := r.do(t.Context(), "GetRecords", "s", "shardId-000000000001", func(context.Context) error {
			calls++
			return httpErr(400, &types.ProvisionedThroughputExceededException{Message: str("Rate exceeded for shard")})
		})
		if calls != 3 {
			t.Errorf("%d calls, want 3", calls)
		}
		want := `kds: GetRecords on shardId-000000000001 of stream "s": gave up after 3 attempts: `
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("error %q, want prefix %q", err, want)
		}
		if _, ok := errors.AsType[*types.ProvisionedThroughputExceededException](err); !ok {
			t.Errorf("error %v does not unwrap to the SDK error", err)
		}
	})
}

func TestRetryNotRetryable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testRetrier(5)
		calls := 0
		err := r.do(t.Context(), "ListShards", "s", "", func(context.Context) error {
			calls++
			return httpErr(400, &types.ResourceNotFoundException{Message: str("Stream s not found")})
		})
		if calls != 1 {
			t.Errorf("%d calls, want 1", calls)
		}
		want := `kds: ListShards of stream "s": `
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "gave up") {
			t.Fatalf("error %q, want prefix %q and no 'gave up'", err, want)
		}
	})
}

func TestRetryStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(RetryConfig{MaxAttempts: 10, Initial: time.Hour, Max: time.Hour}, discard())
		r.jitter = func(d time.Duration) time.Duration { return d }
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			time.Sleep(time.Minute)
			cancel()
		}()
		start := time.Now()
		err := r.do(ctx, "GetRecords", "s", "x", func(context.Context) error { return httpErr(503, nil) })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("returned after %v, want 1m", d)
		}
	})
}

func TestFullJitterBounds(t *testing.T) {
	t.Parallel()
	const d = 10 * time.Millisecond
	var sawLow, sawHigh bool
	for range 10000 {
		j := fullJitter(d)
		if j < 0 || j > d {
			t.Fatalf("fullJitter(%v) = %v, out of [0, %v]", d, j, d)
		}
		sawLow = sawLow || j < d/4
		sawHigh = sawHigh || j > 3*d/4
	}
	if !sawLow || !sawHigh {
		t.Errorf("jitter does not spread over [0, %v]", d)
	}
	if fullJitter(0) != 0 {
		t.Error("fullJitter(0) != 0")
	}
}

func TestZeroRetriesRejected(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ac := AWSConfig{Region: "us-east-1", EndpointURL: "http://127.0.0.1:1", AccessKeyID: "a", SecretKey: "b"}
	_, err := NewSource(ctx, SourceConfig{StreamName: "s", AWS: ac}, nil)
	if err == nil || !strings.Contains(err.Error(), "kinesis.clientNumRetries") {
		t.Errorf("NewSource with 0 retries: err = %v, want one naming kinesis.clientNumRetries", err)
	}
	_, err = NewSink(ctx, SinkConfig{StreamName: "s", AWS: ac}, nil)
	if err == nil || !strings.Contains(err.Error(), "kinesis.clientNumRetries") {
		t.Errorf("NewSink with 0 retries: err = %v, want one naming kinesis.clientNumRetries", err)
	}
	_, err = NewSource(ctx, SourceConfig{StreamName: "s", AWS: ac, Retry: RetryConfig{MaxAttempts: 1}}, nil)
	if err != nil {
		t.Errorf("NewSource with 1 attempt: %v", err)
	}
}

func TestAttemptWithoutAnswerIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(RetryConfig{MaxAttempts: 3, Initial: time.Millisecond, Max: time.Millisecond, AttemptTimeout: time.Second}, slog.New(slog.DiscardHandler))
		calls := 0
		err := r.do(t.Context(), "GetShardIterator", "s", "shardId-000000000000", func(ctx context.Context) error {
			calls++
			<-ctx.Done() // a server that never answers
			return ctx.Err()
		})
		if calls != 3 {
			t.Fatalf("%d attempts, want 3", calls)
		}
		if err == nil || !strings.Contains(err.Error(), "no answer within 1s") || !strings.Contains(err.Error(), "GetShardIterator") {
			t.Fatalf("got %v", err)
		}
	})
}
