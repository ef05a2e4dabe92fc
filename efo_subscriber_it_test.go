package shardflow_test

// The scenarios of the Spark connector's EfoShardSubscriberItSuite
// (reference section 5.2), run through whole queries on a kdsfake server
// of the test's own (its faults, delays and call counts are the test's
// alone), read over TLS and HTTP/2 with a short subscription lifetime.
//
// Helpers here are shared by efo_lifecycle_test.go and efo_faults_test.go.

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// efoEnv is a test's stream on a kdsfake server of its own, read with
// enhanced fan-out.
type efoEnv struct {
	*itEnv
	srv *kdsfake.Server
	efo *kinesis.Client // SDK client over TLS and HTTP/2, for consumers and subscriptions
	// polled is set by a test that polls the server on purpose.
	polled bool
}

// newEFOEnv starts a kdsfake server with cfg, which also refuses
// GetRecords and GetShardIterator (an enhanced fan-out query never polls;
// the test fails at its end if one was even tried), and creates a stream.
// opts are added to the suite's options.
func newEFOEnv(t *testing.T, cfg kdsfake.Config, shards int, opts map[string]string) *efoEnv {
	t.Helper()
	cfg.DenyActions = append(cfg.DenyActions, "GetRecords", "GetShardIterator")
	srv := kdsfake.Start(t, cfg)
	base := efoOptions()
	base["kinesis.endpointUrl"] = srv.TLSURL()
	maps.Copy(base, opts)
	e := &efoEnv{
		itEnv: newITEnv(t, testenv.Emulator{Name: "kdsfake-own", Endpoint: srv.URL()}, shards, base),
		srv:   srv,
		efo: kinesis.New(kinesis.Options{
			Region:       testenv.Region,
			BaseEndpoint: aws.String(srv.TLSURL()),
			Credentials:  credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretKey, ""),
			HTTPClient:   srv.Client(),
		}),
	}
	t.Cleanup(func() {
		if n := srv.Calls("GetRecords") + srv.Calls("GetShardIterator"); n > 0 && !e.polled {
			t.Errorf("enhanced fan-out made %d GetRecords/GetShardIterator calls", n)
		}
	})
	return e
}

// query returns a query on the env's server: as itEnv.query, with the
// server's HTTP client (which trusts its certificate).
func (e *efoEnv) query(trigger shardflow.Trigger, extra map[string]string) *shardflow.Query {
	e.t.Helper()
	o := maps.Clone(e.opts)
	maps.Copy(o, extra)
	for k, v := range o {
		if v == "" {
			delete(o, k) // "" removes an option
		}
	}
	return newITQuery(e.t, "efo-it", o, e.srv.Client(), e.ckpt, trigger, e.out, e.sink.onProgress, e.log)
}

// run runs a Once or AvailableNow query to its end.
func (e *efoEnv) run(trigger shardflow.Trigger, extra map[string]string) error {
	e.t.Helper()
	q := e.query(trigger, extra)
	ctx, cancel := context.WithTimeout(e.t.Context(), itTimeout)
	defer cancel()
	return q.Run(ctx)
}

// start runs a query in a goroutine until it is stopped.
func (e *efoEnv) start(trigger shardflow.Trigger, extra map[string]string) *itRun {
	e.t.Helper()
	return e.startCtx(e.t.Context(), trigger, extra)
}

// startCtx runs a query in a goroutine until it is stopped or ctx is
// cancelled.
func (e *efoEnv) startCtx(ctx context.Context, trigger shardflow.Trigger, extra map[string]string) *itRun {
	e.t.Helper()
	r := &itRun{q: e.query(trigger, extra), started: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = r.q.Run(ctx)
	}()
	e.t.Cleanup(func() { <-r.done })
	return r
}

// consumerName is the env's kinesis.consumerName.
func (e *efoEnv) consumerName() string { return e.opts["kinesis.consumerName"] }

// streamARN returns the stream's ARN.
func (e *efoEnv) streamARN() string {
	e.t.Helper()
	out, err := e.efo.DescribeStreamSummary(e.t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN)
}

// register registers a consumer as another program would, waits until it
// is ACTIVE and returns its ARN.
func (e *efoEnv) register(name string) string {
	e.t.Helper()
	out, err := e.efo.RegisterStreamConsumer(e.t.Context(), &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(e.streamARN()), ConsumerName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("RegisterStreamConsumer %s: %v", name, err)
	}
	arn := aws.ToString(out.Consumer.ConsumerARN)
	waitFor(e.t, nil, "consumer "+name+" ACTIVE", func() bool { return e.consumerStatus(name) == string(types.ConsumerStatusActive) })
	return arn
}

// consumerStatus returns the status of the named consumer, or "" if there
// is none.
func (e *efoEnv) consumerStatus(name string) string {
	e.t.Helper()
	out, err := e.efo.DescribeStreamConsumer(e.t.Context(), &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(e.streamARN()), ConsumerName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return ""
	case err != nil:
		e.t.Fatalf("DescribeStreamConsumer %s: %v", name, err)
	}
	return string(out.ConsumerDescription.ConsumerStatus)
}

// metric returns the highest value of a source progress metric (such as
// "retries") over the progress records so far.
func (e *itEnv) metric(name string) int {
	e.sink.mu.Lock()
	defer e.sink.mu.Unlock()
	best := 0
	for _, p := range e.sink.progress {
		for _, s := range p.Sources {
			if v, err := strconv.Atoi(s.Metrics[name]); err == nil && v > best {
				best = v
			}
		}
	}
	return best
}

// waitCalls waits until the server has received at least n calls of action.
func (e *efoEnv) waitCalls(run *itRun, action string, n int) {
	e.t.Helper()
	waitFor(e.t, run, strconv.Itoa(n)+" "+action+" calls", func() bool { return e.srv.Calls(action) >= n })
}

// TestEFOSubscriberTrimHorizonAcrossResubscriptions: a query from
// TRIM_HORIZON reads what was there before it started, what comes while
// no subscription runs (they last 1 s, and are renewed 5 s after the last
// call) and what comes after the renewal, every record exactly once and in
// order per shard. (Many renewals: kds's unit tests, on fake time.)
func TestEFOSubscriberTrimHorizonAcrossResubscriptions(t *testing.T) {
	t.Parallel()
	e := newEFOEnv(t, kdsfake.Config{SubscriptionTTL: time.Second}, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
	shards := []string{itShardID(0), itShardID(1)}
	puts := e.putSpread(shards, itValues(0, 9)...)
	run := e.start(shardflow.ProcessingTime(0), nil)
	e.waitRows(run, len(puts))
	time.Sleep(1500 * time.Millisecond) // the subscriptions have expired
	puts = append(puts, e.putSpread(shards, itValues(10, 19)...)...)
	e.waitCalls(run, "SubscribeToShard", 4) // both renewed
	e.waitRows(run, len(puts))
	puts = append(puts, e.putSpread(shards, itValues(20, 29)...)...)
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	checkShardOrder(t, e.sink.batches())
}

// TestEFOSubscriberSecondSubscriptionInUse: while a subscription of a
// consumer to a shard is active, a second one gets ResourceInUseException
// ("Another active subscription exists"); a query reading with that
// consumer meets the same refusal, waits and takes the shard over, and
// reads everything.
func TestEFOSubscriberSecondSubscriptionInUse(t *testing.T) {
	t.Parallel()
	e := newEFOEnv(t, kdsfake.Config{}, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
	puts := e.putSpread([]string{itShardID(0), itShardID(1)}, itValues(1, 10)...)
	arn := e.register(e.consumerName())
	subscribe := func() (*kinesis.SubscribeToShardOutput, error) {
		return e.efo.SubscribeToShard(t.Context(), &kinesis.SubscribeToShardInput{
			ConsumerARN: aws.String(arn), ShardId: aws.String(itShardID(0)),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest},
		})
	}
	first, err := subscribe()
	if err != nil {
		t.Fatalf("first subscription: %v", err)
	}
	firstEnded := make(chan struct{})
	go func() {
		defer close(firstEnded)
		for range first.GetStream().Events() {
		}
	}()
	defer first.GetStream().Close()
	_, err = subscribe()
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "Another active subscription") {
		t.Fatalf("second concurrent subscription: %v, want ResourceInUseException", err)
	}

	run := e.start(shardflow.ProcessingTime(0), nil)
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	if n := e.metric("retries"); n < 1 {
		t.Errorf("retries metric %d: the query's subscription to %s was not refused", n, itShardID(0))
	}
	select {
	case <-firstEnded:
	case <-time.After(itTimeout):
		t.Errorf("the first subscription was not taken over")
	}
	// The consumer was registered by another program: the query's graceful
	// stop leaves it.
	if st := e.consumerStatus(e.consumerName()); st != "ACTIVE" {
		t.Errorf("consumer %s after the stop: %q, want ACTIVE", e.consumerName(), st)
	}
}

// TestEFOSubscriberTinySubscribeTimeout: SubscribeToShard calls not
// accepted within kinesis.subscribeToShard.timeoutSec are cancelled and
// retried.
func TestEFOSubscriberTinySubscribeTimeout(t *testing.T) {
	t.Parallel()
	e := newEFOEnv(t, kdsfake.Config{}, 2, map[string]string{
		"kinesis.startingPosition":            "TRIM_HORIZON",
		"kinesis.subscribeToShard.timeoutSec": "300ms",
	})
	puts := e.putSpread([]string{itShardID(0), itShardID(1)}, itValues(1, 10)...)
	// The first call is answered after 3 s. (One delay at a time: a call
	// that gives up during its delay takes every delay queued by then,
	// as kdsfake applies them in turn.)
	e.srv.DelayNext("SubscribeToShard", 3*time.Second, 1)
	run := e.start(shardflow.ProcessingTime(0), nil)
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	if n := e.metric("retries"); n < 1 {
		t.Errorf("retries metric %d, want >= 1 (a timed-out subscription)", n)
	}
	if n := e.srv.Calls("SubscribeToShard"); n < 3 {
		t.Errorf("%d SubscribeToShard calls, want >= 3", n)
	}
}

// TestEFOSubscriberSlowConsumerLosesNothing: a sink that sleeps up to
// 100 ms per batch and 10-record shard buffers hold the subscriptions back
// (the reader takes no event while its buffer is full); they expire
// meanwhile and are renewed; every record arrives exactly once.
func TestEFOSubscriberSlowConsumerLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEFOEnv(t, kdsfake.Config{SubscriptionTTL: time.Second}, 2, map[string]string{
		"kinesis.startingPosition":            "TRIM_HORIZON",
		"shardflow.buffer.maxRecordsPerShard": "10",
		"kinesis.maxFetchRecordsPerShard":     "10",
	})
	e.out = shardflow.ForEachBatch(func(ctx context.Context, b *shardflow.Batch) error {
		time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
		return e.sink.AddBatch(ctx, b)
	})
	shards := []string{itShardID(0), itShardID(1)}
	puts := e.putSpread(shards, itValues(0, 499)...)
	run := e.start(shardflow.ProcessingTime(0), nil)
	// The first events hold 250 records each, taken 10 at a time: the
	// subscriptions expire (1 s) while the readers still deliver them.
	e.waitCalls(run, "SubscribeToShard", 4) // renewed
	puts = append(puts, e.putSpread(shards, itValues(500, 799)...)...)
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	checkShardOrder(t, e.sink.batches())
	if n := e.srv.Calls("SubscribeToShard"); n < 4 {
		t.Errorf("%d SubscribeToShard calls: the subscriptions were not renewed under backpressure", n)
	}
	for _, b := range e.sink.batches() {
		for sh, n := range b.shards() {
			if n > 10 {
				t.Errorf("batch %d took %d records from %s, limit 10", b.ID, n, sh)
			}
		}
	}
}

// TestEFOSubscriberExpiresMidStream: records are written without pause
// while the subscriptions expire (after 2 s; renewed 5 s after the last
// call); each renewal resumes from the last continuation, and received ==
// sent.
func TestEFOSubscriberExpiresMidStream(t *testing.T) {
	t.Parallel()
	e := newEFOEnv(t, kdsfake.Config{SubscriptionTTL: 2 * time.Second}, 2, nil)
	run := e.start(shardflow.ProcessingTime(0), nil)
	e.waitStarted(run)
	e.waitCalls(run, "SubscribeToShard", 2)
	shards := []string{itShardID(0), itShardID(1)}
	var puts []testenv.Put
	for i, end := 0, time.Now().Add(6*time.Second); time.Now().Before(end); i++ {
		puts = append(puts, e.putSpread(shards, itValues(10*i, 10*i+9)...)...)
		time.Sleep(50 * time.Millisecond) // a steady producer
	}
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	checkShardOrder(t, e.sink.batches())
	if n := e.srv.Calls("SubscribeToShard"); n < 4 {
		t.Errorf("%d SubscribeToShard calls in 6 s of 2 s subscriptions, want >= 4", n)
	}
	t.Logf("%d records, %d subscriptions", len(puts), e.srv.Calls("SubscribeToShard"))
}
