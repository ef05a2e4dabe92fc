package kds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Retry defaults, used for zero fields of RetryConfig other than
// MaxAttempts (a zero MaxAttempts is an error, as in the Spark connector,
// where 0 makes every call fail). They are the Spark connector's defaults.
const (
	defaultRetryInitial = time.Second
	// defaultAttemptTimeout bounds one attempt of a Kinesis call.
	defaultAttemptTimeout = 30 * time.Second
	defaultRetryMax       = 10 * time.Second
)

// CallError is a Kinesis call that failed for good: the error was not
// retryable, or every attempt failed. Its message names the call, the shard
// (when there is one) and the stream, e.g.
//
//	kds: GetRecords on shardId-000000000001 of stream "s": ...
type CallError struct {
	Op       string // API call: GetRecords, GetShardIterator, ListShards, PutRecords
	Stream   string
	Shard    string // empty for stream-level calls
	Attempts int    // attempts made
	Err      error  // the last error
}

// Error implements error.
func (e *CallError) Error() string {
	where := fmt.Sprintf("kds: %s", e.Op)
	if e.Shard != "" {
		where += " on " + e.Shard
	}
	where += fmt.Sprintf(" of stream %q", e.Stream)
	if e.Attempts > 1 && isRetryable(e.Err) {
		return fmt.Sprintf("%s: gave up after %d attempts: %v", where, e.Attempts, e.Err)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

// Unwrap returns the last error, so errors.As finds the SDK's typed errors.
func (e *CallError) Unwrap() error { return e.Err }

// retrier is kds's one retry layer (the SDK's retryer is off): up to
// MaxAttempts attempts with full-jitter exponential backoff between them.
type retrier struct {
	maxAttempts int
	initial     time.Duration
	max         time.Duration
	timeout     time.Duration // per attempt
	log         *slog.Logger
	// Counters for progress records, shared by every call of a source or sink.
	retries   atomic.Int64 // attempts that were retried
	throttles atomic.Int64 // attempts refused by a throughput quota
	failures  atomic.Int64 // calls that failed for good
	calls     callCounters // the same, by API call (stats.go)
	// jitter returns a random duration in [0, d]; tests replace it.
	jitter func(d time.Duration) time.Duration
}

// validateRetry checks a RetryConfig; the message names the Spark options.
func validateRetry(c RetryConfig) error {
	if c.MaxAttempts < 1 {
		return fmt.Errorf("kds: kinesis.clientNumRetries is %d: it is the number of attempts per Kinesis call and must be at least 1", c.MaxAttempts)
	}
	if c.Initial < 0 {
		return fmt.Errorf("kds: kinesis.clientRetryIntervalsMs is %v: must not be negative", c.Initial)
	}
	if c.Max < 0 {
		return fmt.Errorf("kds: kinesis.clientMaxRetryIntervalMs is %v: must not be negative", c.Max)
	}
	return nil
}

func newRetrier(c RetryConfig, log *slog.Logger) *retrier {
	r := &retrier{
		maxAttempts: c.MaxAttempts,
		initial:     c.Initial,
		max:         c.Max,
		timeout:     c.AttemptTimeout,
		log:         log,
		jitter:      fullJitter,
	}
	if r.initial == 0 {
		r.initial = defaultRetryInitial
	}
	if r.max == 0 {
		r.max = defaultRetryMax
	}
	if r.timeout <= 0 {
		r.timeout = defaultAttemptTimeout
	}
	if r.max < r.initial {
		r.max = r.initial
	}
	return r
}

func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// backoff returns the sleep before retry number attempt (0 for the first
// retry): a random duration in [0, min(max, initial*2^attempt)].
func (r *retrier) backoff(attempt int) time.Duration {
	ceiling := r.initial
	for i := 0; i < attempt && ceiling < r.max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, r.max)
	return r.jitter(ceiling)
}

// do calls fn until it succeeds, fails with an error that is not
// retryable, or MaxAttempts attempts failed. The final error is a
// *CallError. It returns ctx's error, unwrapped, when ctx ends.
func (r *retrier) do(ctx context.Context, op, stream, shard string, fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		// A server that never answers must not stall a reader forever
		// (kinesalite never answers some AT_TIMESTAMP iterators): each
		// attempt has a deadline, and missing it is retried like a
		// network error.
		actx, cancel := context.WithTimeout(ctx, r.timeout)
		err := fn(actx)
		timedOut := actx.Err() == context.DeadlineExceeded
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if timedOut {
			err = &attemptTimeoutError{after: r.timeout, err: err}
		}
		if isThrottle(err) {
			r.countThrottle(op)
		}
		if !isRetryable(err) || attempt >= r.maxAttempts {
			if _, ok := errors.AsType[*types.ExpiredIteratorException](err); !ok {
				r.countFailure(op) // an expired iterator is renewed, not a failure
			}
			return &CallError{Op: op, Stream: stream, Shard: shard, Attempts: attempt, Err: err}
		}
		r.countRetry(op)
		d := r.backoff(attempt - 1)
		r.log.Warn("kinesis call failed, retrying", "api", op, "shard_id", shard,
			"attempt", attempt, "backoff", d, "err", err)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// attemptTimeoutError is an attempt that got no answer in time. It is
// retryable: the next attempt may reach a server that answers.
type attemptTimeoutError struct {
	after time.Duration
	err   error
}

func (e *attemptTimeoutError) Error() string {
	return fmt.Sprintf("no answer within %s: %v", e.after, e.err)
}

func (e *attemptTimeoutError) Unwrap() error { return e.err }

// sleep waits for d or until ctx ends. Under testing/synctest the timer
// runs on the bubble's fake clock, so tests never sleep for real.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isThrottle reports whether a throughput quota refused the call.
func isThrottle(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "ProvisionedThroughputExceededException", "LimitExceededException",
		"ThrottlingException", "Throttling", "KMSThrottlingException":
		return true
	}
	return false
}

// metrics returns the counters as progress-record metrics.
func (r *retrier) metrics() map[string]string {
	return map[string]string{
		"retries":   strconv.FormatInt(r.retries.Load(), 10),
		"throttles": strconv.FormatInt(r.throttles.Load(), 10),
		"failures":  strconv.FormatInt(r.failures.Load(), 10),
	}
}

// isRetryable is the retry classifier for Kinesis calls. Retried:
//
//   - throttling (ProvisionedThroughputExceeded, LimitExceeded, Throttling,
//     KMSThrottling): the call is valid and will succeed once the quota
//     refills, which is what the backoff waits for;
//   - HTTP 5xx: the service failed, not the request;
//   - network errors (connection reset or refused, timeouts, EOF): the
//     request may never have reached the service.
//
// Everything else is returned at once: a retry cannot fix a bad argument,
// a missing stream or denied access. ExpiredIteratorException is not
// retried here: the reader gets a new iterator instead.
func isRetryable(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*attemptTimeoutError](err); ok {
		return true
	}
	if isThrottle(err) {
		return true
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		code := status.HTTPStatusCode()
		if code >= 500 && code <= 599 {
			return true
		}
		if code >= 400 && code <= 499 {
			// A 4xx answer came from the service: the request itself is
			// wrong (throttles were matched above by error code).
			return false
		}
		// A 2xx whose body could not be read (the connection broke
		// mid-response) is a transport failure, classified below.
	}
	return isNetworkError(err)
}

// isNetworkError reports transport failures worth another attempt.
func isNetworkError(err error) bool {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, net.ErrClosed):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		// A per-request timeout (the caller's ctx is checked before this).
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		// A missing host stays missing; a failed or slow resolver may recover.
		return !dnsErr.IsNotFound && (dnsErr.IsTimeout || dnsErr.IsTemporary)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}
