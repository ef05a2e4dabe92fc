package shardflow_test

// The enhanced fan-out consumer lifecycle (issue "Enhanced fan-out",
// Lifecycle; reference 6.1-G): restarts while the consumer is DELETING or
// after a crash, consumers given by ARN or shared with other programs,
// two consumers on one stream, the per-stream consumer limit, and the
// registration API against kinesis-mock.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// checkCalls checks the server's call counts of the consumer API.
func (e *efoEnv) checkCalls(register, deregister int) {
	e.t.Helper()
	if n := e.srv.Calls("RegisterStreamConsumer"); n != register {
		e.t.Errorf("%d RegisterStreamConsumer calls, want %d", n, register)
	}
	if n := e.srv.Calls("DeregisterStreamConsumer"); n != deregister {
		e.t.Errorf("%d DeregisterStreamConsumer calls, want %d", n, deregister)
	}
}

// TestEFOLifecycleRestartWhileConsumerDeleting: a graceful stop
// deregisters the consumer the query registered; it stays DELETING for
// 1 s, and a restart right away waits it out, registers it again and
// reads on (the Spark connector times out here).
func TestEFOLifecycleRestartWhileConsumerDeleting(t *testing.T) {
	t.Parallel()
	e := newEFOEnv(t, kdsfake.Config{ConsumerDelay: time.Second}, 1, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
	puts := e.put("", itValues(1, 5)...)
	if err := e.run(shardflow.AvailableNow(), nil); err != nil {
		t.Fatal(err)
	}
	if st := e.consumerStatus(e.consumerName()); st != "DELETING" {
		t.Fatalf("consumer after the graceful stop: %q, want DELETING", st)
	}
	puts = append(puts, e.put("", itValues(6, 10)...)...)
	start := time.Now()
	if err := e.run(shardflow.AvailableNow(), nil); err != nil {
		t.Fatalf("restart while the consumer is DELETING: %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 20*time.Second {
		t.Errorf("the restart took %v; want the DELETING time (1 s) and the CREATING time (1 s), and no time-out", d)
	}
	checkExactlyOnce(t, e.sink.rows(), puts)
	e.checkCalls(2, 2)
}

// TestEFOLifecycleCrashReusesConsumer: a query that ends without a
// graceful stop keeps its consumer, and the restart reuses it without
// registering again; the restart's own graceful end then deregisters it,
// as the checkpoint records that this query registered it.
func TestEFOLifecycleCrashReusesConsumer(t *testing.T) {
	t.Parallel()
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		e := newEFOEnv(t, kdsfake.Config{}, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
		shards := []string{itShardID(0), itShardID(1)}
		puts := e.putSpread(shards, itValues(1, 10)...)
		ctx, cancel := context.WithCancel(t.Context())
		run := e.startCtx(ctx, shardflow.ProcessingTime(0), nil)
		e.waitRows(run, len(puts))
		cancel()
		<-run.done
		if !errors.Is(run.err, context.Canceled) {
			t.Fatalf("cancelled run: %v", run.err)
		}
		if st := e.consumerStatus(e.consumerName()); st != "ACTIVE" {
			t.Fatalf("consumer after the crash: %q, want ACTIVE", st)
		}
		e.checkCalls(1, 0)
		puts = append(puts, e.putSpread(shards, itValues(11, 20)...)...)
		if err := e.run(shardflow.AvailableNow(), nil); err != nil {
			t.Fatal(err)
		}
		checkExactlyOnce(t, e.sink.rows(), puts)
		e.checkCalls(1, 1)
	})
	t.Run("SIGKILL", func(t *testing.T) {
		t.Parallel()
		e := newEFOEnv(t, kdsfake.Config{}, 2, nil)
		recs := make([]testenv.Record, 2000)
		for i := range recs {
			recs[i] = testenv.Record{PartitionKey: "pk-" + strconv.Itoa(i), Data: fmt.Appendf(nil, `{"i":%d}`, i)}
		}
		puts := testenv.PutRecords(t, e.kc, e.stream, recs)
		dir := t.TempDir()
		ckpt, out := filepath.Join(dir, "checkpoint"), filepath.Join(dir, "out")
		// The child trusts the server's certificate through AWS_CA_BUNDLE.
		bundle := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(bundle, e.srv.CertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		start := func(trigger string) *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envCrashChild+"=1", envEndpoint+"="+e.srv.TLSURL(), envStream+"="+e.stream,
				envCheckpoint+"="+ckpt, envOut+"="+out, envTrigger+"="+trigger, envSinkDelay+"=150ms",
				envEFO+"="+e.consumerName(), "AWS_CA_BUNDLE="+bundle)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			return cmd
		}
		cmd := start("processing-time=0s")
		waitFor(t, nil, "the first commit", func() bool { return exists(filepath.Join(ckpt, "commits", "0")) })
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if st := e.consumerStatus(e.consumerName()); st != "ACTIVE" {
			t.Fatalf("consumer after SIGKILL: %q, want ACTIVE", st)
		}
		e.checkCalls(1, 0)
		final := start("available-now")
		done := make(chan error, 1)
		go func() { done <- final.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("restart after SIGKILL: %v", err)
			}
		case <-time.After(itTimeout):
			_ = final.Process.Signal(syscall.SIGKILL)
			<-done
			t.Fatal("restart after SIGKILL did not finish")
		}
		e.checkCalls(1, 1)
		// Rows by shard/sequence number (readOutput's keys may carry the
		// sub-sequence number too).
		seen := map[string]int{}
		for k, n := range readOutput(t, out) {
			parts := strings.SplitN(k, "/", 3)
			seen[parts[0]+"/"+parts[1]] += n
		}
		bad := 0
		for _, p := range puts {
			k := p.ShardID + "/" + p.SequenceNumber
			if seen[k] != 1 && bad < 10 {
				t.Errorf("record %s seen %d times, want 1", k, seen[k])
			}
			if seen[k] != 1 {
				bad++
			}
			delete(seen, k)
		}
		if bad > 0 || len(seen) > 0 {
			t.Errorf("%d records not seen exactly once, %d unexpected records in the output", bad, len(seen))
		}
	})
}

// TestEFOLifecycleConsumersNotOwnedAreKept: shardflow deregisters only a
// consumer its checkpoint registered, with kinesis.consumerRegistration
// auto: never one given by kinesis.consumerARN, nor with register-only,
// nor one that another program registered.
func TestEFOLifecycleConsumersNotOwnedAreKept(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		preexist   bool // registered by another program first
		opts       func(e *efoEnv, arn string) map[string]string
		registered int // RegisterStreamConsumer calls in all
	}{
		{"consumerARN", true, func(e *efoEnv, arn string) map[string]string {
			return map[string]string{"kinesis.consumerName": "", "kinesis.consumerARN": arn}
		}, 1},
		{"register-only", false, func(*efoEnv, string) map[string]string {
			return map[string]string{"kinesis.consumerRegistration": "register-only"}
		}, 1},
		{"auto, registered by another program", true, func(*efoEnv, string) map[string]string { return nil }, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEFOEnv(t, kdsfake.Config{}, 1, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
			var arn string
			if c.preexist {
				arn = e.register(e.consumerName())
			}
			puts := e.put("", itValues(1, 5)...)
			extra := c.opts(e, arn)
			for range 2 {
				if err := e.run(shardflow.AvailableNow(), extra); err != nil {
					t.Fatal(err)
				}
			}
			checkExactlyOnce(t, e.sink.rows(), puts)
			e.checkCalls(c.registered, 0)
			if st := e.consumerStatus(e.consumerName()); st != "ACTIVE" {
				t.Errorf("consumer after two graceful stops: %q, want ACTIVE", st)
			}
		})
	}
	t.Run("consumerARN missing", func(t *testing.T) {
		t.Parallel()
		e := newEFOEnv(t, kdsfake.Config{}, 1, nil)
		arn := e.streamARN() + "/consumer/nobody:1700000000"
		err := e.run(shardflow.Once(), map[string]string{"kinesis.consumerName": "", "kinesis.consumerARN": arn})
		if err == nil || !strings.Contains(err.Error(), "no such consumer") {
			t.Fatalf("Run with an unknown consumerARN: %v, want a clear error", err)
		}
		e.checkCalls(0, 0)
	})
}

// TestEFOLifecycleTwoConsumersReadIndependently: two queries with
// different consumer names (and checkpoints) read one stream at the same
// time, each getting every record once, and neither disturbs the other
// (no ResourceInUse, no retry).
func TestEFOLifecycleTwoConsumersReadIndependently(t *testing.T) {
	t.Parallel()
	a := newEFOEnv(t, kdsfake.Config{SubscriptionTTL: 3 * time.Second}, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
	b := *a
	bIT := *a.itEnv
	b.itEnv = &bIT
	b.ckpt = filepath.Join(t.TempDir(), "checkpoint-b")
	b.sink = &itCollector{}
	b.out = b.sink
	b.opts = maps.Clone(a.opts)
	b.opts["kinesis.consumerName"] = a.consumerName() + "-b"
	shards := []string{itShardID(0), itShardID(1)}
	puts := a.putSpread(shards, itValues(0, 99)...)
	ra := a.start(shardflow.ProcessingTime(0), nil)
	rb := b.start(shardflow.ProcessingTime(0), nil)
	a.waitRows(ra, 100)
	puts = append(puts, a.putSpread(shards, itValues(100, 399)...)...)
	a.waitRows(ra, len(puts))
	b.waitRows(rb, len(puts))
	ra.stop(t)
	rb.stop(t)
	for _, e := range []*efoEnv{a, &b} {
		checkExactlyOnce(t, e.sink.rows(), puts)
		if n := e.metric("retries"); n != 0 {
			t.Errorf("query of consumer %s retried %d times", e.consumerName(), n)
		}
	}
	a.checkCalls(2, 2)
}

// TestEFOLifecycleConsumerLimit: with the stream's 20 consumers taken,
// the query fails at start with an error that says so and how to fix it.
func TestEFOLifecycleConsumerLimit(t *testing.T) {
	t.Parallel()
	e := newEFOEnv(t, kdsfake.Config{}, 1, nil)
	for i := range 20 {
		e.register(fmt.Sprintf("other-%d", i))
	}
	err := e.run(shardflow.Once(), nil)
	if err == nil {
		t.Fatal("Run registered a 21st consumer")
	}
	for _, want := range []string{"limit of registered consumers", e.stream, e.consumerName(), "kinesis.consumerARN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// efoMemState is an engine.StateStore in memory.
type efoMemState struct {
	mu sync.Mutex
	b  []byte
}

func (m *efoMemState) Read(_ context.Context, v any) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b == nil {
		return false, nil
	}
	return true, json.Unmarshal(m.b, v)
}

func (m *efoMemState) Write(_ context.Context, v any) error {
	b, err := json.Marshal(v)
	m.mu.Lock()
	m.b = b
	m.mu.Unlock()
	return err
}

func (m *efoMemState) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.b)
}

// TestEFOLifecycleKinesisMock registers and deregisters a consumer on
// kinesis-mock (reading from it is TestEFOReadsKinesisMock) through the
// source's Open and Close: registration, deregistration on a
// graceful stop, a restart while DELETING, no deregistration after a
// failure, and a consumer given by ARN left alone.
func TestEFOLifecycleKinesisMock(t *testing.T) {
	t.Parallel()
	em := kinesisMock(t)
	ctx := t.Context()
	c := testenv.KinesisClient(t, em.Endpoint)
	stream := testenv.CreateStream(t, c, 1)
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	streamARN := aws.ToString(sum.StreamDescriptionSummary.StreamARN)
	const name = "sf-lifecycle"
	status := func() string {
		out, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return ""
		}
		if err != nil {
			t.Fatalf("DescribeStreamConsumer: %v", err)
		}
		return string(out.ConsumerDescription.ConsumerStatus)
	}
	source := func(extra map[string]string) *kds.Source {
		o := map[string]string{
			"kinesis.streamName":             stream,
			"kinesis.endpointUrl":            em.Endpoint,
			"kinesis.region":                 testenv.Region,
			"kinesis.awsAccessKeyId":         testenv.AccessKeyID,
			"kinesis.awsSecretKey":           testenv.SecretKey,
			"kinesis.consumerType":           "subscribetoshard", // case-insensitive
			"kinesis.consumerName":           name,
			"kinesis.clientRetryIntervalsMs": "100",
		}
		for k, v := range extra {
			if v == "" {
				delete(o, k)
			} else {
				o[k] = v
			}
		}
		cfg, err := kds.ParseSourceOptions(o, itLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		src, err := kds.NewSource(ctx, cfg, itLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	state := &efoMemState{}

	// First start: registered, recorded as this query's.
	src := source(nil)
	if err := src.Open(ctx, state); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if st := status(); st != "ACTIVE" {
		t.Fatalf("consumer after Open: %q, want ACTIVE", st)
	}
	if !strings.Contains(state.String(), `"registered":true`) {
		t.Errorf("state after registering: %s", state)
	}
	// Graceful stop: deregistered.
	if err := src.Close(ctx, true); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := status(); st != "" && st != "DELETING" {
		t.Fatalf("consumer after a graceful Close: %q, want DELETING or gone", st)
	}
	// Restart at once: waits DELETING out and registers again.
	src = source(nil)
	if err := src.Open(ctx, state); err != nil {
		t.Fatalf("Open right after a graceful stop: %v", err)
	}
	if st := status(); st != "ACTIVE" {
		t.Fatalf("consumer after the restart: %q, want ACTIVE", st)
	}
	// A failure: the consumer is kept for the next run.
	if err := src.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
	if st := status(); st != "ACTIVE" {
		t.Fatalf("consumer after Close(graceful=false): %q, want ACTIVE", st)
	}
	// A consumer given by ARN is never deregistered, with a fresh state.
	out, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	byARN := source(map[string]string{"kinesis.consumerName": "", "kinesis.consumerARN": aws.ToString(out.ConsumerDescription.ConsumerARN)})
	if err := byARN.Open(ctx, &efoMemState{}); err != nil {
		t.Fatalf("Open with consumerARN: %v", err)
	}
	if err := byARN.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	if st := status(); st != "ACTIVE" {
		t.Fatalf("consumer given by ARN after a graceful Close: %q, want ACTIVE", st)
	}
	// The first query's state still owns it: its graceful stop deregisters.
	src = source(nil)
	if err := src.Open(ctx, state); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nil, "the consumer deregistered", func() bool { return status() != "ACTIVE" })
}
