package kds

// Unit tests of the enhanced fan-out reader (efo.go) and the consumer
// registration it relies on (consumer.go), on fake time (testing/synctest).
//
// The fake SubscribeToShard API is a kdsfake server reached through an
// in-memory HTTP transport: the real SDK client (request signing, the event
// stream decoder, typed errors) runs inside the bubble, kdsfake's clock is
// the bubble's clock, and nothing touches the network. A wrapper in front of
// the server logs every SubscribeToShard call with its fake time, shard and
// starting position, and can answer a call itself (503, ResourceInUse,
// ResourceNotFound, ...) by call number.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

const (
	efoStream = "efo"
	efoShard0 = "shardId-000000000000"
)

// subCall is one SubscribeToShard call as the fake server received it.
type subCall struct {
	at    time.Time // fake time
	shard string
	pos   string // StartingPosition.Type
	seq   string // StartingPosition.SequenceNumber
}

// answer is a scripted reply to a SubscribeToShard call: an HTTP status
// and an error type, or the zero value to let kdsfake serve the call.
type answer struct {
	status int
	code   string
	delay  time.Duration // with status 0: serve after this long, or never if the client gives up first
}

var (
	serve       = answer{}
	unavailable = answer{status: http.StatusServiceUnavailable, code: "ServiceUnavailableException"}
	inUse       = answer{status: http.StatusBadRequest, code: "ResourceInUseException"}
	notFound    = answer{status: http.StatusBadRequest, code: "ResourceNotFoundException"}
)

// efoFake is the fake Kinesis of one synctest bubble.
type efoFake struct {
	t      *testing.T
	srv    *kdsfake.Server
	client *kinesis.Client

	mu     sync.Mutex
	subs   []subCall
	script func(n int) answer // by call number, from 0; nil serves every call
}

// newEFOFake starts a kdsfake server with cfg (inside the caller's bubble)
// and creates a one-shard stream on it.
func newEFOFake(t *testing.T, cfg kdsfake.Config) *efoFake {
	t.Helper()
	srv, err := kdsfake.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f := &efoFake{t: t, srv: srv}
	f.client = kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://kdsfake.invalid"),
		Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
		HTTPClient:   &http.Client{Transport: memTransport{h: f}},
		Retryer:      aws.NopRetryer{},
	})
	if _, err := f.client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(efoStream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	return f
}

// setScript replaces the script.
func (f *efoFake) setScript(s func(n int) answer) {
	f.mu.Lock()
	f.script = s
	f.mu.Unlock()
}

// calls returns the SubscribeToShard calls so far.
func (f *efoFake) calls() []subCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.subs)
}

func (f *efoFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "Kinesis_20131202.SubscribeToShard" {
		f.srv.Handler().ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		ShardId          string
		StartingPosition struct{ Type, SequenceNumber string }
	}
	_ = json.Unmarshal(body, &in)
	f.mu.Lock()
	n := len(f.subs)
	f.subs = append(f.subs, subCall{at: time.Now(), shard: in.ShardId, pos: in.StartingPosition.Type, seq: in.StartingPosition.SequenceNumber})
	script := f.script
	f.mu.Unlock()
	if script != nil {
		a := script(n)
		if a.status == 0 && a.delay > 0 {
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
				return
			}
			a = serve
		}
		if a != serve {
			b := fmt.Appendf(nil, `{"__type":%q,"message":"scripted answer to call %d"}`, a.code, n)
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-ErrorType", a.code)
			w.WriteHeader(a.status)
			_, _ = w.Write(b)
			return
		}
	}
	f.srv.Handler().ServeHTTP(w, r)
}

// put writes n records to the stream and returns their sequence numbers.
func (f *efoFake) put(n int) []string {
	f.t.Helper()
	in := &kinesis.PutRecordsInput{StreamName: aws.String(efoStream)}
	for i := range n {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("pk", i)), Data: []byte{byte(i)}})
	}
	out, err := f.client.PutRecords(context.Background(), in)
	if err != nil {
		f.t.Fatal(err)
	}
	var seqs []string
	for _, r := range out.Records {
		seqs = append(seqs, aws.ToString(r.SequenceNumber))
	}
	return seqs
}

// source returns an enhanced fan-out Source on the fake, with fast call
// retries; edit changes the config before validation.
func (f *efoFake) source(edit func(*SourceConfig)) *Source {
	f.t.Helper()
	cfg := SourceConfig{
		StreamName:       efoStream,
		Retry:            RetryConfig{MaxAttempts: 3, Initial: 100 * time.Millisecond, Max: time.Second},
		ConsumerType:     SubscribeToShard,
		EFO:              EFOConfig{ConsumerName: "c", MaxRetries: 100},
		StartingPosition: StartingPosition{Kind: "TRIM_HORIZON"},
	}
	if edit != nil {
		edit(&cfg)
	}
	if err := validateSource(&cfg); err != nil {
		f.t.Fatal(err)
	}
	return newSource(cfg, f.client, discard())
}

// open opens the reader of shard 0 at from; the test closes it.
func (f *efoFake) open(src *Source, from engine.Start) *efoReader {
	f.t.Helper()
	r, err := src.OpenShard(context.Background(), efoShard0, from)
	if err != nil {
		f.t.Fatal(err)
	}
	return r.(*efoReader)
}

// drain takes every buffered record of r.
func drain(r *efoReader) (engine.Snapshot, []string) {
	snap := r.Peek(1 << 20)
	got := seqs(snap.Records)
	r.Release(len(snap.Records))
	return snap, got
}

// checkSpacing checks that no two SubscribeToShard calls came within 5 s
// of each other, and so never two in one fake second.
func checkSpacing(t *testing.T, calls []subCall) {
	t.Helper()
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].at.Sub(calls[i-1].at); gap < minResubscribe {
			t.Errorf("SubscribeToShard calls %d and %d came %v apart, want >= %v", i-1, i, gap, minResubscribe)
		}
	}
	perSecond := map[int64]int{}
	for _, c := range calls {
		perSecond[c.at.Unix()]++
		if n := perSecond[c.at.Unix()]; n > 1 {
			t.Errorf("%d SubscribeToShard calls in fake second %d", n, c.at.Unix())
		}
	}
}

// TestEFOResubscribesFromContinuationNeverWithin5s: with subscriptions
// that Kinesis ends after 1 s, the reader renews each from the last
// continuation, at most once per 5 s, and reads every record exactly once
// in order, from TRIM_HORIZON across the renewals.
func TestEFOResubscribesFromContinuationNeverWithin5s(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{SubscriptionTTL: time.Second})
		want := f.put(3)
		r := f.open(f.source(nil), engine.Start{Type: engine.TrimHorizon})
		var got []string
		for i := range 60 {
			time.Sleep(time.Second)
			if i%10 == 5 && i < 50 {
				want = append(want, f.put(2)...)
			}
			_, recs := drain(r)
			got = append(got, recs...)
		}
		r.Close()
		if !slices.Equal(got, want) {
			t.Errorf("read %v, want %v", got, want)
		}
		calls := f.calls()
		checkSpacing(t, calls)
		if len(calls) < 11 || len(calls) > 13 {
			t.Errorf("%d SubscribeToShard calls in 60 s of 1 s subscriptions, want 12 +-1 (one per 5 s)", len(calls))
		}
		if calls[0].pos != "TRIM_HORIZON" {
			t.Errorf("first subscription at %s, want TRIM_HORIZON", calls[0].pos)
		}
		for i, c := range calls[1:] {
			if c.pos != "AFTER_SEQUENCE_NUMBER" || c.seq == "" {
				t.Errorf("renewal %d at %s %q, want AFTER_SEQUENCE_NUMBER of the continuation", i+1, c.pos, c.seq)
			}
		}
		if r.Peek(0).Err != nil {
			t.Errorf("reader failed: %v", r.Peek(0).Err)
		}
	})
}

// TestEFOLatestBecomesConcreteOnIdleShard: a reader started at a timestamp
// (how LATEST is resolved) on an idle shard tracks the continuation of
// empty events, so the renewal starts after it and a record written while
// no subscription ran is read.
func TestEFOLatestBecomesConcreteOnIdleShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{SubscriptionTTL: time.Second})
		f.put(2) // before the start: not read
		time.Sleep(time.Second)
		r := f.open(f.source(nil), engine.Start{Type: engine.AtTimestamp, Timestamp: time.Now()})
		defer r.Close()
		time.Sleep(2 * time.Second) // the first subscription ended (1 s); the next comes at 5 s
		synctest.Wait()
		if n := len(f.calls()); n != 1 {
			t.Fatalf("%d subscriptions after 2 s, want 1", n)
		}
		want := f.put(1) // while no subscription runs
		time.Sleep(5 * time.Second)
		_, got := drain(r)
		if !slices.Equal(got, want) {
			t.Errorf("read %v, want %v", got, want)
		}
		calls := f.calls()
		if len(calls) < 2 || calls[0].pos != "AT_TIMESTAMP" || calls[1].pos != "AFTER_SEQUENCE_NUMBER" || calls[1].seq == "" {
			t.Errorf("subscriptions %+v: want AT_TIMESTAMP, then AFTER_SEQUENCE_NUMBER of the empty events' continuation", calls)
		}
	})
}

// TestEFOFailingSubscribeFailsAfterBudget: a subscription refused every
// time (503) is retried MaxRetries times, never within 5 s of the last
// call, and then fails the reader with an error naming the call, the shard
// and the cause.
func TestEFOFailingSubscribeFailsAfterBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{})
		f.setScript(func(int) answer { return unavailable })
		src := f.source(func(c *SourceConfig) { c.EFO.MaxRetries = 4 })
		start := time.Now()
		r := f.open(src, engine.Start{Type: engine.TrimHorizon})
		defer r.Close()
		for r.Peek(0).Err == nil && time.Since(start) < 10*time.Minute {
			time.Sleep(100 * time.Millisecond)
		}
		err := r.Peek(0).Err
		var ce *CallError
		if !errors.As(err, &ce) || ce.Op != "SubscribeToShard" || ce.Shard != efoShard0 || ce.Attempts != 5 {
			t.Fatalf("reader error %v (%#v), want a SubscribeToShard CallError on %s after 5 attempts", err, ce, efoShard0)
		}
		if msg := err.Error(); !strings.Contains(msg, efoShard0) || !strings.Contains(msg, "ServiceUnavailable") {
			t.Errorf("error %q does not name the shard and the cause", msg)
		}
		calls := f.calls()
		if len(calls) != 5 {
			t.Errorf("%d SubscribeToShard calls, want 5 (1 + MaxRetries 4)", len(calls))
		}
		checkSpacing(t, calls)
		if got := src.retry.retries.Load(); got != 4 {
			t.Errorf("retries counter %d, want 4", got)
		}
		if got := src.retry.failures.Load(); got != 1 {
			t.Errorf("failures counter %d, want 1", got)
		}
	})
}

// TestEFORetryBudgetResetsAfterHealthySubscription: with MaxRetries 2, a
// pattern of two failures then one subscription that delivers events never
// fails the reader, however long it goes on: the budget counts failures
// in a row.
func TestEFORetryBudgetResetsAfterHealthySubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{SubscriptionTTL: time.Second})
		f.setScript(func(n int) answer {
			if n%3 == 2 {
				return serve
			}
			return unavailable
		})
		want := f.put(4)
		src := f.source(func(c *SourceConfig) { c.EFO.MaxRetries = 2 })
		r := f.open(src, engine.Start{Type: engine.TrimHorizon})
		var got []string
		for i := range 120 {
			time.Sleep(time.Second)
			if i%20 == 10 {
				want = append(want, f.put(1)...)
			}
			_, recs := drain(r)
			got = append(got, recs...)
			if err := r.Peek(0).Err; err != nil {
				t.Fatalf("reader failed after %d s: %v", i+1, err)
			}
		}
		r.Close()
		calls := f.calls()
		if len(calls) < 20 {
			t.Errorf("only %d SubscribeToShard calls in 120 s", len(calls))
		}
		checkSpacing(t, calls)
		if !slices.Equal(got, want) {
			t.Errorf("read %v, want %v", got, want)
		}
		if n := src.retry.retries.Load(); n < int64(len(calls)*2/3)-1 {
			t.Errorf("retries counter %d for %d calls, 2 of 3 failed", n, len(calls))
		}
	})
}

// TestEFOResourceInUseWaitsFiveSecondsWithJitter: after
// ResourceInUseException the reader waits at least 5 s from its last call,
// plus a jitter (so two contending processes drift apart), then recovers.
func TestEFOResourceInUseWaitsFiveSecondsWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{})
		f.setScript(func(n int) answer {
			if n < 6 {
				return inUse
			}
			return serve
		})
		want := f.put(3)
		src := f.source(func(c *SourceConfig) { c.EFO.MaxRetries = 10 })
		r := f.open(src, engine.Start{Type: engine.TrimHorizon})
		defer r.Close()
		time.Sleep(time.Minute)
		_, got := drain(r)
		if !slices.Equal(got, want) {
			t.Errorf("read %v, want %v", got, want)
		}
		calls := f.calls()
		if len(calls) < 7 {
			t.Fatalf("%d calls, want >= 7", len(calls))
		}
		jittered := 0
		for i := 1; i < 7; i++ {
			gap := calls[i].at.Sub(calls[i-1].at)
			if gap < minResubscribe || gap > minResubscribe+inUseJitter {
				t.Errorf("call %d came %v after ResourceInUse, want 5 s to 6 s", i, gap)
			}
			if gap > minResubscribe {
				jittered++
			}
		}
		if jittered == 0 {
			t.Errorf("every retry after ResourceInUse came exactly 5 s later: no jitter")
		}
	})
}

// TestEFOSubscribeTimeoutIsRetried: a subscription not accepted within
// kinesis.subscribeToShard.timeoutSec is cancelled and retried.
func TestEFOSubscribeTimeoutIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{})
		f.setScript(func(n int) answer {
			if n < 2 {
				return answer{delay: 10 * time.Second}
			}
			return serve
		})
		want := f.put(2)
		src := f.source(func(c *SourceConfig) { c.EFO.SubscribeTimeout = 10 * time.Millisecond; c.EFO.MaxRetries = 3 })
		r := f.open(src, engine.Start{Type: engine.TrimHorizon})
		defer r.Close()
		time.Sleep(30 * time.Second)
		snap, got := drain(r)
		if snap.Err != nil || !slices.Equal(got, want) {
			t.Errorf("read %v (err %v), want %v", got, snap.Err, want)
		}
		calls := f.calls()
		if len(calls) < 3 {
			t.Errorf("%d calls, want >= 3 (two timed out)", len(calls))
		}
		checkSpacing(t, calls)
		if n := src.retry.retries.Load(); n != 2 {
			t.Errorf("retries counter %d, want 2", n)
		}
	})
}

// TestEFOResourceNotFoundNoHotLoop: ResourceNotFoundException, refused at
// subscribe time or sent mid-subscription, backs off, re-checks the
// consumer and the shard, and never comes back within 5 s.
func TestEFOResourceNotFoundNoHotLoop(t *testing.T) {
	t.Run("at subscribe", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newEFOFake(t, kdsfake.Config{})
			f.setScript(func(int) answer { return notFound })
			src := f.source(nil)
			r := f.open(src, engine.Start{Type: engine.TrimHorizon})
			time.Sleep(time.Minute)
			r.Close()
			calls := f.calls()
			checkSpacing(t, calls)
			if len(calls) > 13 {
				t.Errorf("%d SubscribeToShard calls in 60 s", len(calls))
			}
			// One describe to register, then one re-check per failure.
			if n := f.srv.Calls("DescribeStreamConsumer"); n > len(calls)+3 {
				t.Errorf("%d DescribeStreamConsumer calls for %d subscriptions", n, len(calls))
			}
			if n := f.srv.Calls("ListShards"); n > len(calls)+1 {
				t.Errorf("%d ListShards calls for %d subscriptions", n, len(calls))
			}
			if err := r.Peek(0).Err; err != nil {
				t.Errorf("reader failed, but the consumer and the shard exist: %v", err)
			}
		})
	})
	t.Run("mid-subscription", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newEFOFake(t, kdsfake.Config{})
			var want, got []string
			r := f.open(f.source(nil), engine.Start{Type: engine.TrimHorizon})
			for i := range 600 {
				if i%10 == 0 {
					want = append(want, f.put(1)...)
				}
				time.Sleep(100 * time.Millisecond)
				f.srv.BreakSubscriptions(efoStream, "", "ResourceNotFoundException")
				_, recs := drain(r)
				got = append(got, recs...)
			}
			time.Sleep(2 * minResubscribe) // unbroken: the last records come
			_, recs := drain(r)
			got = append(got, recs...)
			r.Close()
			calls := f.calls()
			checkSpacing(t, calls)
			if len(calls) < 10 || len(calls) > 15 {
				t.Errorf("%d SubscribeToShard calls in 60 s of broken subscriptions, want about 12", len(calls))
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %d records %v, want %d %v", len(got), got, len(want), want)
			}
			if err := r.Peek(0).Err; err != nil {
				t.Errorf("reader failed: %v", err)
			}
		})
	})
	t.Run("consumer deleted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newEFOFake(t, kdsfake.Config{})
			src := f.source(nil)
			want := f.put(2)
			r := f.open(src, engine.Start{Type: engine.TrimHorizon})
			defer r.Close()
			time.Sleep(time.Second)
			// Someone deregisters the consumer: its subscriptions end and
			// the next one is refused (ResourceNotFound); the source
			// registers it again and goes on from the continuation.
			arn, err := src.consumer(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.client.DeregisterStreamConsumer(context.Background(), &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)}); err != nil {
				t.Fatal(err)
			}
			want = append(want, f.put(2)...)
			time.Sleep(30 * time.Second)
			snap, got := drain(r)
			if snap.Err != nil || !slices.Equal(got, want) {
				t.Errorf("read %v (err %v), want %v", got, snap.Err, want)
			}
			if n := f.srv.Calls("RegisterStreamConsumer"); n != 2 {
				t.Errorf("%d RegisterStreamConsumer calls, want 2", n)
			}
			checkSpacing(t, f.calls())
		})
	})
}

// TestEFOServerFaultEventIsRetried: an InternalFailureException sent as
// an event stream exception (the subscription was accepted with 200, so
// the error has no HTTP status) is a server fault, retried like a 5xx
// answer, not a reason to fail the query.
func TestEFOServerFaultEventIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{})
		want := f.put(2)
		src := f.source(func(c *SourceConfig) { c.EFO.MaxRetries = 3 })
		r := f.open(src, engine.Start{Type: engine.TrimHorizon})
		defer r.Close()
		for range 5 {
			time.Sleep(6 * time.Second)
			f.srv.BreakSubscriptions(efoStream, "", "InternalFailureException")
		}
		want = append(want, f.put(2)...)
		time.Sleep(10 * time.Second)
		snap, got := drain(r)
		if snap.Err != nil || !slices.Equal(got, want) {
			t.Errorf("read %v (err %v), want %v", got, snap.Err, want)
		}
		if n := src.retry.retries.Load(); n < 5 {
			t.Errorf("retries counter %d, want >= 5", n)
		}
		if !subscribeRetryable(&types.InternalFailureException{Message: aws.String("x")}) {
			t.Error("InternalFailureException is not retryable")
		}
		for _, err := range []error{&types.InvalidArgumentException{}, &types.KMSAccessDeniedException{}} {
			if subscribeRetryable(err) {
				t.Errorf("%T is retryable", err)
			}
		}
	})
}

// TestEFOBackpressureKeepsBufferBound: a reader whose buffer is full takes
// no more events; records come in as the engine releases them, across
// subscription renewals, with none lost.
func TestEFOBackpressureKeepsBufferBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{SubscriptionTTL: 2 * time.Second})
		want := f.put(40)
		r := f.open(f.source(func(c *SourceConfig) { c.BufferRecords = 3 }), engine.Start{Type: engine.TrimHorizon})
		defer r.Close()
		var got []string
		for len(got) < len(want) && len(f.calls()) < 40 {
			time.Sleep(time.Second)
			snap := r.Peek(1)
			if snap.Buffered > 3 {
				t.Fatalf("buffer holds %d records, bound 3", snap.Buffered)
			}
			got = append(got, seqs(snap.Records)...)
			r.Release(len(snap.Records))
		}
		if !slices.Equal(got, want) {
			t.Errorf("read %v, want %v", got, want)
		}
		if len(f.calls()) < 2 {
			t.Errorf("no renewal while backpressured")
		}
		checkSpacing(t, f.calls())
	})
}

// TestEFOShardEndReportsChildren: at a closed shard's end the reader
// reports the end and the child shards, and subscribes no more.
func TestEFOShardEndReportsChildren(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newEFOFake(t, kdsfake.Config{SubscriptionTTL: time.Second})
		want := f.put(2)
		if _, err := f.client.SplitShard(context.Background(), &kinesis.SplitShardInput{
			StreamName: aws.String(efoStream), ShardToSplit: aws.String(efoShard0),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
		}); err != nil {
			t.Fatal(err)
		}
		r := f.open(f.source(nil), engine.Start{Type: engine.TrimHorizon})
		defer r.Close()
		time.Sleep(30 * time.Second)
		snap, got := drain(r)
		if !slices.Equal(got, want) || !snap.Ended || snap.Err != nil {
			t.Fatalf("read %v ended %v err %v, want %v then the end", got, snap.Ended, snap.Err, want)
		}
		if len(snap.Children) != 2 {
			t.Errorf("children %+v, want 2", snap.Children)
		}
		for _, c := range snap.Children {
			if !slices.Equal(c.Parents, []string{efoShard0}) {
				t.Errorf("child %s has parents %v", c.ID, c.Parents)
			}
		}
		if n := len(f.calls()); n != 1 {
			t.Errorf("%d subscriptions, want 1 (none after the end)", n)
		}
	})
}

// memTransport serves HTTP requests with a handler in memory: each request
// runs the handler in a goroutine of its own and the response body is a
// pipe, so an event stream flows as the handler writes it and stops when
// the client closes the body. A handler that panics (http.ErrAbortHandler,
// kdsfake's connection reset) breaks the response.
type memTransport struct{ h http.Handler }

var errMemReset = errors.New("memTransport: connection reset by the handler")

func (m memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(req.Context())
	sreq := req.Clone(ctx)
	sreq.Body = io.NopCloser(bytes.NewReader(body))
	sreq.ContentLength = int64(len(body))
	sreq.RemoteAddr = "127.0.0.1:1"
	sreq.RequestURI = req.URL.RequestURI()
	pr, pw := io.Pipe()
	w := &memResponse{header: http.Header{}, pw: pw, started: make(chan struct{})}
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				w.abort()
				return
			}
			w.WriteHeader(http.StatusOK)
			pw.Close()
		}()
		m.h.ServeHTTP(w, sreq)
	}()
	select {
	case <-w.started:
	case <-req.Context().Done():
		cancel()
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	if w.err != nil {
		pr.Close()
		return nil, w.err
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          &memBody{pr: pr, cancel: cancel},
		ContentLength: -1,
		Request:       req,
	}, nil
}

// memResponse is the handler's side of a memTransport response.
type memResponse struct {
	header  http.Header
	pw      *io.PipeWriter
	once    sync.Once
	started chan struct{} // closed by WriteHeader or abort
	status  int
	sent    http.Header
	err     error
}

func (w *memResponse) Header() http.Header { return w.header }

func (w *memResponse) WriteHeader(code int) {
	w.once.Do(func() {
		w.status, w.sent = code, w.header.Clone()
		close(w.started)
	})
}

func (w *memResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(p)
}

func (w *memResponse) Flush() {}

func (w *memResponse) abort() {
	w.once.Do(func() {
		w.err = errMemReset
		close(w.started)
	})
	w.pw.CloseWithError(errMemReset)
}

// memBody is a memTransport response body; closing it ends the handler's
// request context.
type memBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
}

func (b *memBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

func (b *memBody) Close() error {
	b.cancel()
	return b.pr.Close()
}
