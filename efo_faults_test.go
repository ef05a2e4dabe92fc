package shardflow_test

// Faults injected with kdsfake while an enhanced fan-out query reads a
// stream that is being written: connection resets in the middle of the
// event stream, 503s on subscribe, ResourceNotFound mid-subscription. All
// records are counted afterwards: none lost, none duplicated within the
// committed batches. Every server here refuses GetRecords and
// GetShardIterator (newEFOEnv), so none of this falls back on polling.

import (
	"strings"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// efoFaultRun writes to a 2-shard stream for 7 s, 10 records every 50 ms,
// while a ProcessingTime(0) query reads it; setup (if not nil) runs before
// the query starts, and fault every 50 ms with the time since writing
// began. It returns after every record was read and checked.
func efoFaultRun(t *testing.T, setup func(e *efoEnv), fault func(e *efoEnv, since time.Duration)) *efoEnv {
	t.Helper()
	e := newEFOEnv(t, kdsfake.Config{}, 2, map[string]string{
		"kinesis.startingPosition":            "TRIM_HORIZON",
		"kinesis.subscribeToShard.maxRetries": "10",
	})
	shards := []string{itShardID(0), itShardID(1)}
	if setup != nil {
		setup(e)
	}
	run := e.start(shardflow.ProcessingTime(0), nil)
	e.waitStarted(run)
	puts := e.produceSteadily(run, shards, 7*time.Second, func(since time.Duration) {
		if fault != nil {
			fault(e, since)
		}
	})
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	checkShardOrder(t, e.sink.batches())
	if n := e.metric("failures"); n != 0 {
		t.Errorf("failures metric %d, want 0", n)
	}
	t.Logf("%d records; %d SubscribeToShard calls; metrics retries=%d throttles=%d",
		len(puts), e.srv.Calls("SubscribeToShard"), e.metric("retries"), e.metric("throttles"))
	return e
}

// produceSteadily writes 10 records every 50 ms, spread over shards, for
// d while run reads them, calling each (if not nil) after every write with
// the time since the first; it fails the test as soon as the query fails.
// It returns the records written.
func (e *itEnv) produceSteadily(run *itRun, shards []string, d time.Duration, each func(since time.Duration)) []testenv.Put {
	e.t.Helper()
	var puts []testenv.Put
	begin := time.Now()
	for i := 0; time.Since(begin) < d; i++ {
		puts = append(puts, e.putSpread(shards, itValues(10*i, 10*i+9)...)...)
		if each != nil {
			each(time.Since(begin))
		}
		if err := run.failed(); err != nil {
			e.t.Fatalf("query failed: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // a steady producer
	}
	return puts
}

// breakOnce returns a fault that, from 1 s on, breaks the running
// subscriptions once with exception ("" resets the connection), and
// counts how many it broke.
func breakOnce(exception string, broken *int) func(e *efoEnv, since time.Duration) {
	return func(e *efoEnv, since time.Duration) {
		if *broken == 0 && since >= time.Second {
			*broken = e.srv.BreakSubscriptions(e.stream, "", exception)
		}
	}
}

// TestEFOFaultsConnectionResets: a running subscription's connection
// (its HTTP/2 stream) is reset while events flow, and a subscribe call is
// reset before it was answered. Both are retried from the last position.
func TestEFOFaultsConnectionResets(t *testing.T) {
	t.Parallel()
	var broken int
	e := efoFaultRun(t, func(e *efoEnv) {
		e.srv.ResetNext("SubscribeToShard", 1)
	}, breakOnce("", &broken))
	if broken < 1 {
		t.Error("no running subscription was reset")
	}
	if n := e.metric("retries"); n < 2 {
		t.Errorf("retries metric %d, want >= 2 (a reset subscribe, a reset stream)", n)
	}
}

// TestEFOFaults503OnSubscribe: SubscribeToShard answers 503 to the first
// subscription of each shard. (An InternalFailureException ending a
// running subscription, the event stream's 5xx, is in kds's unit tests.)
func TestEFOFaults503OnSubscribe(t *testing.T) {
	t.Parallel()
	e := efoFaultRun(t, func(e *efoEnv) {
		e.srv.FailNext("SubscribeToShard", 503, 2)
	}, nil)
	if n := e.metric("retries"); n < 2 {
		t.Errorf("retries metric %d, want >= 2 (two 503s)", n)
	}
	if n := e.srv.Calls("SubscribeToShard"); n < 4 {
		t.Errorf("%d SubscribeToShard calls, want >= 4", n)
	}
}

// TestEFOFaultsResourceNotFoundMidSubscription: ResourceNotFoundException
// ends the running subscriptions; the reader backs off, re-checks the
// consumer (DescribeStreamConsumer) and the shard (ListShards), and
// resumes from the continuation, no sooner than 5 s after its last call.
func TestEFOFaultsResourceNotFoundMidSubscription(t *testing.T) {
	t.Parallel()
	var broken, describes int
	brk := breakOnce("ResourceNotFoundException", &broken)
	e := efoFaultRun(t, nil, func(e *efoEnv, since time.Duration) {
		if broken == 0 {
			describes = e.srv.Calls("DescribeStreamConsumer")
		}
		brk(e, since)
	})
	if broken < 2 {
		t.Errorf("broke %d subscriptions with ResourceNotFound, want 2", broken)
	}
	if n := e.srv.Calls("DescribeStreamConsumer"); n <= describes {
		t.Errorf("DescribeStreamConsumer calls %d -> %d: the consumer was not re-checked", describes, n)
	}
	// No hot loop: the two first subscriptions and one renewal each.
	if n := e.srv.Calls("SubscribeToShard"); n > 4 {
		t.Errorf("%d SubscribeToShard calls in 7 s on 2 shards, want 4", n)
	}
}

// TestEFONoGetRecords: an enhanced fan-out query needs no kinesis:GetRecords
// or kinesis:GetShardIterator permission: on a server that denies them it
// reads a stream with Once, AvailableNow and ProcessingTime and never
// calls them; a polling query on the same server fails on them.
func TestEFONoGetRecords(t *testing.T) {
	t.Parallel()
	e := newEFOEnv(t, kdsfake.Config{}, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
	shards := []string{itShardID(0), itShardID(1)}
	puts := e.putSpread(shards, itValues(1, 20)...)
	if err := e.run(shardflow.Once(), nil); err != nil {
		t.Fatal(err)
	}
	puts = append(puts, e.putSpread(shards, itValues(21, 40)...)...)
	if err := e.run(shardflow.AvailableNow(), nil); err != nil {
		t.Fatal(err)
	}
	puts = append(puts, e.putSpread(shards, itValues(41, 60)...)...)
	run := e.start(shardflow.ProcessingTime(0), nil)
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	for _, a := range []string{"GetRecords", "GetShardIterator"} {
		if n := e.srv.Calls(a); n != 0 {
			t.Errorf("%d %s calls in enhanced fan-out mode", n, a)
		}
	}
	// The server does deny them: the same stream polled fails.
	e.polled = true
	poll := *e
	pollIT := *e.itEnv
	poll.itEnv = &pollIT
	poll.ckpt = t.TempDir()
	poll.sink = &itCollector{}
	poll.out = poll.sink
	err := poll.run(shardflow.Once(), map[string]string{"kinesis.consumerType": "GetRecords", "kinesis.clientNumRetries": "1"})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("polling query on the denying server: %v, want AccessDenied", err)
	}
	if e.srv.Calls("GetShardIterator")+e.srv.Calls("GetRecords") == 0 {
		t.Error("the polling query made no GetShardIterator or GetRecords call")
	}
}
