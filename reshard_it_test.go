package shardflow_test

// Resharding, retention and shard lineage (issue 5, DESIGN.md invariant
// 4): the Spark connector's KinesisSourceReshardItSuite 1-3 (reference
// §5.2), the §5.4 scenarios, and a regression test named after each of
// the defects A, B, E and F of reference §6.1.
//
// Every record carries a partition key and a per-key counter in its data
// ("key-007:42", see keyedProducer). What the sink holds (the last call
// for each batch id, so a replay replaces the first attempt; only
// committed batches) must hold every record written exactly once, each
// key's counter must strictly increase in output order (batch id, then
// row order), and no child shard may be read before every parent was
// read to its end and finished in a committed batch (itEnv.checkAll).
//
// Backends (forEachBackend): kdsfake, a server of the test's own read by
// polling; kinesalite for split and merge; kinesis-mock for
// UpdateShardCount; and the package's shared kdsfake server read with
// enhanced fan-out (kdsfake-efo).

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// KinesisSourceReshardItSuite 1: a 1-shard stream read from LATEST; split
// shard 0 (1 closed, 2 open), then merge the two open shards (3 closed,
// 1 open), with records before, between and after: 10, 10, 1980, 1000,
// 2000. After each step the sink holds everything written so far, exactly
// once. Unlike the Spark suite, the merge follows the 1,980 records at
// once, without waiting for them to be read, and a batch takes at most
// 200 records per shard while the readers fetch 50 at a time back to
// back: the two children hold records not yet in a committed batch when
// they close, and for some batches after their readers reached their
// ends, and the merged shard must wait for both. At the end the offsets log
// marks the three closed shards finished (the Spark suite checks that
// shard 0 left its metadata).
func TestReshardItSuite1SplitThenMergeFromLatest(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, testenv.Kinesalite, kdsfakeEFO}, func(t *testing.T, b rsBackend) {
		e := newITEnv(t, b.Emulator, 1, rsOptions(map[string]string{
			"kinesis.maxFetchRecordsPerShard":            "200",
			"kinesis.getRecords.numberOfRecordsPerFetch": "50",
			"kinesis.getRecords.fetchIntervalMs":         "0",
		}))
		p := newKeyedProducer(e, 64)
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), latestOrTrimHorizon(t, b.Emulator))
		e.waitStarted(run)
		check := func(what string) {
			t.Helper()
			all := p.all()
			e.waitRows(run, len(all))
			checkExactlyOnce(t, e.sink.rows(), all)
			if t.Failed() {
				t.Fatalf("after %s", what)
			}
		}
		s0 := itShardID(0)
		p.put(t, 10)
		check("records 1..10")
		kids := e.splitInHalf(s0)
		p.put(t, 10)
		check("the split and records 11..20")
		p.put(t, 1980)
		unread := 2000 - len(e.sink.rows())
		child := e.mergePair(kids[0], kids[1])
		p.put(t, 1000)
		check("records 21..2000, the merge and records 2001..3000")
		p.put(t, 2000)
		check("records 3001..5000")
		run.stop(t)

		t.Logf("the sink lacked %d of the children's records when they were merged", unread)
		if n := e.checkAll(p.all()); n != 5000 {
			t.Errorf("%d rows, want 5000", n)
		}
		ids := e.logIDs("offsets")
		last := e.offsets(ids[len(ids)-1])
		for _, sh := range []string{s0, kids[0], kids[1]} {
			if st := last.Shards[sh].State; st != "finished" {
				t.Errorf("offsets/%d: closed shard %s is %q, want finished", last.BatchID, sh, st)
			}
		}
		if st := last.Shards[child].State; st != "open" {
			t.Errorf("offsets/%d: the merged shard %s is %q, want open", last.BatchID, child, st)
		}
	})
}

// reshardBeforeStart writes 5,000 keyed records to a 1-shard stream:
// 1,000, a split of shard 0, 2,000, a merge of the two children, 2,000.
func reshardBeforeStart(t *testing.T, e *itEnv, p *keyedProducer) {
	t.Helper()
	p.put(t, 1000)
	kids := e.splitInHalf(itShardID(0))
	p.put(t, 2000)
	e.mergePair(kids[0], kids[1])
	p.put(t, 2000)
}

// KinesisSourceReshardItSuite 2: a query started at TRIM_HORIZON after a
// split and a merge reads all 5,000 records: the two generations of closed
// shards first, each to its end (the Spark connector skips them after its
// PR #65, §6.1-A), at most 300 records per shard and batch, so each
// generation takes several batches.
func TestReshardItSuite2TrimHorizonAfterReshardsBeforeStart(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, testenv.Kinesalite, kdsfakeEFO}, func(t *testing.T, b rsBackend) {
		e := newITEnv(t, b.Emulator, 1, rsOptions(map[string]string{
			"kinesis.startingPosition":        "TRIM_HORIZON",
			"kinesis.maxFetchRecordsPerShard": "300",
		}))
		p := newKeyedProducer(e, 64)
		reshardBeforeStart(t, e, p)
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitRows(run, 5000)
		run.stop(t)
		if n := e.checkAll(p.all()); n != 5000 {
			t.Errorf("%d rows, want 5000", n)
		}
	})
}

// Suite 2 with the AvailableNow trigger: one run reads the whole lineage,
// generation after generation, and stops by itself.
func TestReshardItSuite2AvailableNow(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, testenv.Kinesalite}, func(t *testing.T, b rsBackend) {
		e := newITEnv(t, b.Emulator, 1, rsOptions(map[string]string{
			"kinesis.startingPosition":        "TRIM_HORIZON",
			"kinesis.maxFetchRecordsPerShard": "300",
		}))
		p := newKeyedProducer(e, 64)
		reshardBeforeStart(t, e, p)
		waitPastReshardStamps(b.Emulator, time.Now())
		e.mustRun(shardflow.AvailableNow(), nil)
		if n := e.checkAll(p.all()); n != 5000 {
			t.Errorf("%d rows, want 5000", n)
		}
	})
}

// Defect A (§6.1-A, §5.4): a closed parent that still holds unread data
// when the query first lists the shards is read to its end before its
// children. The parent holds 600 records, read 100 per batch (50 per
// GetRecords), so its children wait several batches. With TRIM_HORIZON
// (kdsfake, kinesalite) and with AT_TIMESTAMP (kdsfake), where only the
// records after the timestamp count, on the parent as on the children.
func TestDefectAClosedParentWithUnreadDataReadFirst(t *testing.T) {
	t.Parallel()
	slow := map[string]string{
		"kinesis.maxFetchRecordsPerShard":            "100",
		"kinesis.getRecords.numberOfRecordsPerFetch": "50",
	}
	t.Run("trim-horizon", func(t *testing.T) {
		t.Parallel()
		forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, testenv.Kinesalite}, func(t *testing.T, b rsBackend) {
			e := newITEnv(t, b.Emulator, 1, rsOptions(slow))
			p := newKeyedProducer(e, 32)
			p.put(t, 600)
			kids := e.splitInHalf(itShardID(0))
			p.put(t, 300)
			run := e.start(shardflow.ProcessingTime(50*time.Millisecond), map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
			e.waitRows(run, 900)
			run.stop(t)
			e.checkAll(p.all())
			bs := e.sink.batches()
			for _, k := range kids {
				e.checkParentsFirst(bs, k, itShardID(0))
			}
			if _, last := batchRange(bs, itShardID(0)); last < 5 {
				t.Errorf("the parent's rows end in batch %d; want at least 6 batches (100 rows each) for the test to show anything", last)
			}
		})
	})
	t.Run("at-timestamp", func(t *testing.T) {
		t.Parallel()
		forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake}, func(t *testing.T, b rsBackend) {
			e := newITEnv(t, b.Emulator, 1, rsOptions(slow))
			e.put("", "before-1", "before-2", "before-3")
			// The server runs on this machine's clock, in milliseconds.
			time.Sleep(20 * time.Millisecond)
			ts := time.Now().UTC().Format(time.RFC3339Nano)
			time.Sleep(20 * time.Millisecond)
			p := newKeyedProducer(e, 32)
			p.put(t, 600)
			kids := e.splitInHalf(itShardID(0))
			p.put(t, 300)
			run := e.start(shardflow.ProcessingTime(50*time.Millisecond), map[string]string{"kinesis.startingPosition": "AT_TIMESTAMP " + ts})
			e.waitRows(run, 900)
			run.stop(t)
			e.checkAll(p.all())
			bs := e.sink.batches()
			for _, k := range kids {
				e.checkParentsFirst(bs, k, itShardID(0))
			}
		})
	})
}

// KinesisSourceReshardItSuite 3: ten rounds of "split the last open shard,
// then merge two adjacent open shards" while a producer writes and the
// query reads: every record exactly once, per-key order kept, every child
// after its parents.
func TestReshardItSuite3TenRoundsWhileProducing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, testenv.Kinesalite}, func(t *testing.T, b rsBackend) {
		e := newITEnv(t, b.Emulator, 2, rsOptions(map[string]string{
			"kinesis.startingPosition":        "TRIM_HORIZON",
			"kinesis.maxFetchRecordsPerShard": "200",
		}))
		p := newKeyedProducer(e, 64)
		run := e.start(shardflow.ProcessingTime(50*time.Millisecond), nil)
		e.waitStarted(run)
		perPut, pause := 50, 20*time.Millisecond
		if b.Name == testenv.Kinesalite {
			perPut, pause = 20, 50*time.Millisecond // kinesalite is slower
		}
		stop := make(chan struct{})
		produced := p.produce(t.Context(), perPut, pause, stop)
		for round := range 10 {
			if err := run.failed(); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			open := e.openShards()
			e.splitInHalf(*open[len(open)-1].ShardId)
			time.Sleep(150 * time.Millisecond) // let records reach the children
			open = e.openShards()
			i := round % (len(open) - 1)
			e.mergePair(*open[i].ShardId, *open[i+1].ShardId)
			time.Sleep(150 * time.Millisecond)
		}
		close(stop)
		if err := <-produced; err != nil {
			t.Fatalf("producer: %v", err)
		}
		all := p.all()
		e.waitRows(run, len(all))
		run.stop(t)
		e.checkAll(all)
		if n := len(e.lineage()); n != 2+10*3 {
			t.Errorf("%d shards after ten rounds, want %d", n, 2+10*3)
		}
	})
}

// Defect E (§6.1-E, §5.4): the query runs from LATEST, stops; the stream
// is split and merged and written to while it is down; the restart, with
// the same options (startingPosition=LATEST), reads every record written
// during the downtime, from shards the checkpoint has never seen.
func TestDefectELatestRestartReadsDowntimeReshard(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, testenv.KinesisMock, kdsfakeEFO}, func(t *testing.T, b rsBackend) {
		opts := map[string]string{"kinesis.startingPosition": "LATEST"}
		e := newITEnv(t, b.Emulator, 2, rsOptions(opts))
		p := newKeyedProducer(e, 32)
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitStarted(run)
		p.put(t, 200)
		e.waitRows(run, 200)
		run.stop(t)

		before := len(p.all())
		kids := e.splitInHalf(itShardID(0))
		p.put(t, 200)
		child := e.mergePair(kids[0], kids[1])
		p.put(t, 200)
		// Later than every record above: LATEST resolved again at the
		// restart would skip them all.
		time.Sleep(100 * time.Millisecond)

		run = e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		all := p.all()
		e.waitRows(run, len(all))
		run.stop(t)
		e.checkAll(all)
		bs := e.sink.batches()
		for _, s := range append(kids[:], child) {
			if lo, _ := batchRange(bs, s); lo < 0 {
				t.Errorf("shard %s, created while the query was down, was not read", s)
			}
		}
		t.Logf("%d records written while the query was down, all read", len(all)-before)
	})
}

// Defect F (§6.1-F): after a split and a merge with no new data the query
// writes no batch and no progress record over 20 triggers
// (ProcessingTime 200 ms); the closed shards finish without batches of
// their own, and the merged shard is read as soon as records come.
func TestDefectFIdleReshardNoEmptyBatches(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, kdsfakeEFO}, func(t *testing.T, b rsBackend) {
		e := newITEnv(t, b.Emulator, 1, rsOptions(map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"}))
		p := newKeyedProducer(e, 32)
		run := e.start(shardflow.ProcessingTime(200*time.Millisecond), nil)
		p.put(t, 100)
		e.waitRows(run, 100)
		waitFor(t, run, "the last batch's commit", func() bool { return len(run.q.Progress()) == len(e.sink.allCalls()) })
		kids := e.splitInHalf(itShardID(0))
		child := e.mergePair(kids[0], kids[1])
		calls, progress := len(e.sink.allCalls()), len(run.q.Progress())
		offs := e.logIDs("offsets")
		polls := 0
		if b.Name == rsKdsfake {
			polls = b.srv.Calls("GetRecords")
		}
		const idle = 20*200*time.Millisecond + 200*time.Millisecond // 20 triggers
		time.Sleep(idle)
		if b.Name == rsKdsfake {
			// One open shard, polled at most every 200 ms when idle; the
			// three finished shards must not be polled at all. Twice
			// Kinesis's 5 calls/s for one shard is the bound.
			polls = b.srv.Calls("GetRecords") - polls
			t.Logf("%d GetRecords calls in %s idle", polls, idle)
			if limit := int(2 * 5 * idle.Seconds()); polls > limit {
				t.Errorf("%d GetRecords calls in %s after the reshard, want at most %d: finished shards still polled?", polls, idle, limit)
			}
		}
		if err := run.failed(); err != nil {
			t.Fatal(err)
		}
		if n := len(e.sink.allCalls()) - calls; n != 0 {
			t.Errorf("%d batches over 20 triggers after an idle reshard, want none: %v", n, e.sink.allCalls()[calls:])
		}
		if n := len(run.q.Progress()) - progress; n != 0 {
			t.Errorf("%d progress records over 20 triggers after an idle reshard, want none: %s", n, progressJSON(run.q.Progress()[progress:]))
		}
		if got := e.logIDs("offsets"); len(got) != len(offs) {
			t.Errorf("offsets log %v after the idle reshard, was %v", got, offs)
		}
		p.put(t, 100)
		e.waitRows(run, 200)
		run.stop(t)
		e.checkAll(p.all())
		bs := e.sink.batches()
		if lo, _ := batchRange(bs, child); lo < 0 {
			t.Errorf("the merged shard %s was not read", child)
		}
		e.checkParentsFirst(bs, child, kids[0], kids[1])
	})
}

// Defect B (§6.1-B, §5.4): with LATEST, a shard that gets no record for
// the first seconds of the query, while others do and batches run, is
// read when records come, without a restart. (TestSourceITIdleShards runs
// the longer scenario on the emulators and kdsfake-efo; this is the named
// regression test on kdsfake read by polling.)
func TestDefectBIdleShardAtLatestReadLater(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake}, func(t *testing.T, b rsBackend) {
		e := newITEnv(t, b.Emulator, 4, rsOptions(map[string]string{"kinesis.startingPosition": "LATEST"}))
		run := e.start(shardflow.ProcessingTime(200*time.Millisecond), nil)
		e.waitStarted(run)
		var puts []testenv.Put
		for i := range 15 { // 3 s of records on shard 0 only
			puts = append(puts, e.putOn(itShardID(0), prefixed("a", i, i)...)...)
			time.Sleep(200 * time.Millisecond)
		}
		e.waitRows(run, len(puts))
		busy := len(e.sink.batches())
		puts = append(puts, e.putOn(itShardID(3), prefixed("b", 1, 10)...)...)
		e.waitRows(run, len(puts))
		run.stop(t)
		checkExactlyOnce(t, e.sink.rows(), puts)
		if busy < 3 {
			t.Errorf("%d batches while shard 3 was idle, want several", busy)
		}
		if lo, _ := batchRange(e.sink.batches(), itShardID(3)); lo < int64(busy) {
			t.Errorf("shard 3 first read in batch %d, want after the %d batches of its idle time", lo, busy)
		}
	})
}

// Retention: shard 0 is split after the query read part of it, then
// trimmed (kdsfake's Trim, as the retention period would) before the
// query read the rest; a closed shard left without records no longer
// appears in ListShards. With kinesis.failOnDataLoss=true the restart
// fails, naming the shard. With false, on the same checkpoint, it logs
// a warning, counts the loss in the progress metric dataLossEvents, and
// goes on: the children are read, and nothing else is lost.
func TestRetentionTrimmedUnfinishedShard(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, kdsfakeEFO}, func(t *testing.T, b rsBackend) {
		e := newITEnv(t, b.Emulator, 1, rsOptions(map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"}))
		s0 := itShardID(0)
		p := newKeyedProducer(e, 32)
		p.put(t, 100)
		e.mustRun(shardflow.Once(), nil)
		read := p.all()
		checkExactlyOnce(t, e.sink.rows(), read)

		lost := p.put(t, 50) // never read: trimmed below
		e.splitInHalf(s0)
		time.Sleep(5 * time.Millisecond) // Trim takes records that arrived before its time
		if err := b.srv.Trim(e.stream, s0, time.Now()); err != nil {
			t.Fatal(err)
		}
		if e.listed(s0) {
			t.Fatalf("%s still listed after Trim", s0)
		}
		kept := p.put(t, 50) // on the children

		calls := len(e.sink.allCalls())
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), map[string]string{"kinesis.failOnDataLoss": "true"})
		err := waitFailed(t, e, run, calls)
		if err == nil || !strings.Contains(err.Error(), s0) || !strings.Contains(err.Error(), "failOnDataLoss") {
			t.Fatalf("failOnDataLoss=true: Run returned %v; want an error naming %s and kinesis.failOnDataLoss", err, s0)
		}
		t.Logf("failOnDataLoss=true: %v", err)
		if n := len(e.sink.allCalls()) - calls; n != 0 {
			t.Errorf("%d batches before the failure", n)
		}

		warnings := captureWarnings(e)
		run = e.start(shardflow.ProcessingTime(100*time.Millisecond), map[string]string{"kinesis.failOnDataLoss": "false"})
		e.waitRows(run, len(read)+len(kept))
		run.stop(t)
		want := append(read, kept...)
		checkExactlyOnce(t, e.sink.rows(), want)
		checkKeyOrder(t, e.sink.batches())
		if !warnings.warned(s0) {
			t.Errorf("no warning naming %s; logged:\n%s", s0, warnings)
		}
		pr := run.q.Progress()
		if len(pr) == 0 {
			t.Fatal("no progress record")
		}
		if n := progressMetric(t, pr[len(pr)-1].Sources[0].Metrics, "dataLossEvents"); n < 1 {
			t.Errorf("dataLossEvents = %d, want >= 1", n)
		}
		t.Logf("failOnDataLoss=false: %d records lost to the trim, %d read after it", len(lost), len(kept))
	})
}

// expireWhileRunning: shard 0 of a 1-shard stream holds 200 records, read
// 10 per batch. The sink holds the first batch while shard 0 is split and
// kdsfake's clock jumps 25 h, past the 24 h retention period: shard 0,
// closed longer than the retention period, leaves ListShards (and its
// records are gone) before the query read it to its end. The sink then
// holds the batch for hold more. The children get 50 records after the
// jump. With failOnDataLoss the query must fail with an error naming
// shard 0 and kinesis.failOnDataLoss; without, it must log a warning
// naming shard 0, count the loss in dataLossEvents, and read the
// children.
func expireWhileRunning(t *testing.T, failOnDataLoss bool, hold time.Duration) {
	clk := &shiftClock{}
	forEachBackend(t, kdsfake.Config{Clock: clk.Now}, []string{rsKdsfake}, func(t *testing.T, b rsBackend) {
		e := newITEnv(t, b.Emulator, 1, rsOptions(map[string]string{
			"kinesis.startingPosition":                   "TRIM_HORIZON",
			"kinesis.maxFetchRecordsPerShard":            "10",
			"kinesis.getRecords.numberOfRecordsPerFetch": "10",
			"shardflow.buffer.maxRecordsPerShard":        "10",
			"kinesis.failOnDataLoss":                     strconv.FormatBool(failOnDataLoss),
		}))
		warnings := captureWarnings(e)
		s0 := itShardID(0)
		p := newKeyedProducer(e, 8)
		p.put(t, 200)
		entered, release := make(chan struct{}), make(chan struct{})
		first := true
		e.out = shardflow.ForEachBatch(func(ctx context.Context, bt *shardflow.Batch) error {
			if first { // only the engine's goroutine calls the sink
				first = false
				close(entered)
				<-release
			}
			return e.sink.AddBatch(ctx, bt)
		})
		run := e.start(shardflow.ProcessingTime(50*time.Millisecond), nil)
		<-entered
		e.splitInHalf(s0)
		clk.Advance(25 * time.Hour)
		if e.listed(s0) {
			t.Fatalf("%s still listed 25 h after it closed", s0)
		}
		kept := p.put(t, 50) // on the children, after the jump
		time.Sleep(hold)
		close(release)
		if failOnDataLoss {
			err := waitFailed(t, e, run, 1)
			if err == nil || !strings.Contains(err.Error(), s0) || !strings.Contains(err.Error(), "failOnDataLoss") {
				t.Fatalf("Run returned %v; want an error naming %s and kinesis.failOnDataLoss", err, s0)
			}
			t.Logf("failOnDataLoss=true: %v", err)
			return
		}
		waitFor(t, run, "batch 0", func() bool { return len(e.sink.batches()) > 0 })
		batch0 := e.sink.batches()[0]
		e.waitRows(run, len(batch0.Rows)+len(kept))
		run.stop(t)
		// Batch 0 holds the first records of shard 0, the rest of shard 0
		// is lost, and the children's records all come after.
		checkExactlyOnce(t, batch0.Rows, p.all()[:len(batch0.Rows)])
		var after []itRow
		for _, bt := range e.sink.batches()[1:] {
			after = append(after, bt.Rows...)
		}
		checkExactlyOnce(t, after, kept)
		checkKeyOrder(t, e.sink.batches())
		if !warnings.warned(s0) {
			t.Errorf("no warning naming %s; logged:\n%s", s0, warnings)
		}
		pr := run.q.Progress()
		if n := progressMetric(t, pr[len(pr)-1].Sources[0].Metrics, "dataLossEvents"); n < 1 {
			t.Errorf("dataLossEvents = %d, want >= 1", n)
		}
	})
}

// Retention by time, noticed by ListShards: the sink holds the first
// batch 1.5 s after the jump, longer than the engine's 1 s between two
// listings, so the listing after the batch is the first to see shard 0
// gone.
func TestRetentionExpiredWhileRunning(t *testing.T) {
	t.Parallel()
	t.Run("fail-on-data-loss", func(t *testing.T) { t.Parallel(); expireWhileRunning(t, true, 1500*time.Millisecond) })
	t.Run("continue", func(t *testing.T) { t.Parallel(); expireWhileRunning(t, false, 1500*time.Millisecond) })
}

// Retention by time, noticed by the reader: the sink lets the first batch
// go right after the jump, so shard 0's reader, resuming after the batch,
// is the first to find the shard gone (its iterator expired, and
// GetShardIterator answers ResourceNotFoundException), well before the
// engine lists the shards again. That is data loss like a shard that
// vanished from ListShards, and kinesis.failOnDataLoss must decide.
func TestRetentionExpiredSeenByReaderFirst(t *testing.T) {
	t.Parallel()
	t.Run("fail-on-data-loss", func(t *testing.T) { t.Parallel(); expireWhileRunning(t, true, 0) })
	t.Run("continue", func(t *testing.T) { t.Parallel(); expireWhileRunning(t, false, 0) })
}

// On-Demand: a stream created in ON_DEMAND mode (4 shards) is scaled
// with UpdateShardCount while a producer writes and the query reads:
// 4 → 8 → 4 → 7 → 4 on kdsfake, where 7 → 4 makes new shards that overlap
// three old ones, which kdsfake chains through closed, empty intermediate
// shards (Kinesis records two parents at most); 4 → 8 → 4 with a little
// data on kinesis-mock (it writes about 1.4k records/s). Nothing is lost,
// per-key order is kept, every child is read after its parents.
func TestOnDemandUpdateShardCount(t *testing.T) {
	t.Parallel()
	forEachBackend(t, kdsfake.Config{}, []string{rsKdsfake, testenv.KinesisMock}, func(t *testing.T, b rsBackend) {
		steps, perPut, pause := []int{8, 4}, 10, 50*time.Millisecond
		if b.Name == rsKdsfake {
			steps, perPut, pause = []int{8, 4, 7, 4}, 50, 20*time.Millisecond
		}
		e := newITEnv(t, b.Emulator, 1, rsOptions(map[string]string{
			"kinesis.startingPosition":        "TRIM_HORIZON",
			"kinesis.maxFetchRecordsPerShard": "200",
		}))
		e.useOnDemandStream()
		if n := len(e.openShards()); n != 4 {
			t.Fatalf("a new ON_DEMAND stream has %d shards, want 4", n)
		}
		p := newKeyedProducer(e, 64)
		run := e.start(shardflow.ProcessingTime(50*time.Millisecond), nil)
		e.waitStarted(run)
		stop := make(chan struct{})
		produced := p.produce(t.Context(), perPut, pause, stop)
		for _, n := range steps {
			time.Sleep(400 * time.Millisecond)
			if err := run.failed(); err != nil {
				t.Fatal(err)
			}
			e.updateShardCount(n)
		}
		time.Sleep(400 * time.Millisecond)
		close(stop)
		if err := <-produced; err != nil {
			t.Fatalf("producer: %v", err)
		}
		all := p.all()
		e.waitRows(run, len(all))
		run.stop(t)
		e.checkAll(all)
	})
}

// waitPastReshardStamps waits, on kinesalite, until the records written
// into the children of a reshard that completed at reshard no longer
// arrived in the future. kinesalite dates a child shard's creation one
// second after the split or merge, in whole seconds (splitShard.js and
// mergeShards.js: shardCreateTime: now + 1000), and gives a record
// written into the child before that time this date as its
// ApproximateArrivalTimestamp (putRecords.js: Math.max(Date.now(),
// shardCreateTime)): up to 1 s ahead of the clock. An AvailableNow run
// reads the records that arrived up to its start, so one started in that
// second leaves the children's records for a later run and ends after
// the parents. The other backends stamp the time of the write.
func waitPastReshardStamps(em testenv.Emulator, reshard time.Time) {
	if em.Name == testenv.Kinesalite {
		time.Sleep(time.Until(reshard.Add(time.Second + 10*time.Millisecond)))
	}
}
