package shardflow_test

// The Spark connector's KinesisSourceItSuite (reference §5.2, scenarios
// 1-13) adapted to shardflow, plus scenarios from §5.4: idle shards
// (§6.1-B), a split while running (§6.1-A), and a reshard while stopped
// with LATEST (§6.1-E). Scenario numbers are this suite's; where they
// differ from the Spark suite's, the comment says so.
//
// Every test runs against kinesalite and kinesis-mock (polling) and against
// kdsfake with enhanced fan-out (efo_it_test.go), with the real kds
// source, a checkpoint in a temporary directory, and a sink that keeps
// every batch, replays included. LATEST does not work on kinesalite (see
// skipLatestOnKinesalite): the tests of LATEST itself skip there, and the
// others that start at LATEST use TRIM_HORIZON there.
//
// Records carry their value as data and "pk-<value>" as partition key;
// explicit hash keys put them on the shard a test wants. Exactly-once is
// checked on (shardId, sequenceNumber, subSequenceNumber) against what
// PutRecords returned.

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/sink/memsink"
)

var itTwoShards = []string{itShardID(0), itShardID(1)}

// skipLatestOnKinesalite skips a test of LATEST on kinesalite.
//
// kinesalite 3.3.3 never answers GetShardIterator(AT_TIMESTAMP t) when the
// shard holds no record that arrived at or after t: its
// actions/getShardIterator.js looks the record up with a lazy .head() over
// a snapshot of the shard, which never calls back on an empty result (the
// AWS CLI times out on such a call on an empty stream). shardflow resolves
// LATEST to AT_TIMESTAMP(first start) (invariant 5), so on kinesalite
// every reader of a LATEST query hangs in its first call, for good: the
// records put after the start are never read. kinesis-mock and Kinesis
// return an iterator at the tip.
func skipLatestOnKinesalite(t *testing.T, em testenv.Emulator) {
	t.Helper()
	if em.Name == testenv.Kinesalite {
		t.Skip("kinesalite never answers GetShardIterator AT_TIMESTAMP when no record arrived at or after the timestamp, and LATEST is AT_TIMESTAMP(first start): see skipLatestOnKinesalite")
	}
}

// latestOrTrimHorizon returns the options of a test whose subject is not
// LATEST itself but that starts at LATEST like its Spark counterpart: the
// default (LATEST), or TRIM_HORIZON on kinesalite, where LATEST cannot
// work (see skipLatestOnKinesalite). The test puts its records after the
// query started, so both read the same.
func latestOrTrimHorizon(t *testing.T, em testenv.Emulator) map[string]string {
	if em.Name == testenv.Kinesalite {
		t.Log("kinesalite: TRIM_HORIZON instead of LATEST (see skipLatestOnKinesalite)")
		return map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"}
	}
	return nil
}

// itLatest is scenarios 1 and 2: records put before the query's first
// start are excluded, records put after it are read.
func itLatest(e *itEnv, extra map[string]string, n int) {
	t := e.t
	e.putSpread(itTwoShards, "before-0", "before-1") // one per shard: each reader would meet one first
	// Arrival timestamps have millisecond resolution: keep these clearly
	// before the start the query resolves LATEST to.
	time.Sleep(100 * time.Millisecond)
	run := e.start(shardflow.ProcessingTime(100*time.Millisecond), extra)
	e.waitStarted(run)
	puts := e.putSpread(itTwoShards, itValues(1, n)...)
	e.waitRows(run, n)
	run.stop(t)
	rows := e.sink.rows()
	checkExactlyOnce(t, rows, puts)
	checkValues(t, "rows", rows, itValues(1, n))
	checkShardOrder(t, e.sink.batches())
}

// Scenario 1: the default starting position is LATEST.
func TestSourceITDefaultStartIsLatest(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		skipLatestOnKinesalite(t, em)
		itLatest(newITEnv(t, em, 2, nil), nil, 5)
	})
}

// Scenario 2: LATEST given explicitly.
func TestSourceITLatest(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		skipLatestOnKinesalite(t, em)
		itLatest(newITEnv(t, em, 2, nil), map[string]string{"kinesis.startingPosition": "LATEST"}, 15)
	})
}

// Scenario 3: TRIM_HORIZON reads what was there before the start; the
// checkpoint survives a merge of the two shards while the query is down:
// the restart reads the parents to their ends, then the child, and every
// record exactly once.
func TestSourceITTrimHorizonAndMergeWhileStopped(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
		s0, s1 := itTwoShards[0], itTwoShards[1]
		puts := e.putOn(s0, "0")
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitStarted(run)
		puts = append(puts, e.putSpread(itTwoShards, itValues(1, 5)...)...)
		e.waitRows(run, 6)
		run.stop(t)
		checkExactlyOnce(t, e.sink.rows(), puts)

		child := e.merge(s0, s1)
		puts = append(puts, e.putOn(child, itValues(11, 20)...)...)

		run = e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitRows(run, 16)
		run.stop(t)
		batches := e.sink.batches()
		checkExactlyOnce(t, e.sink.rows(), puts)
		checkValues(t, "rows", e.sink.rows(), append(itValues(0, 5), itValues(11, 20)...))
		checkShardOrder(t, batches)
		e.checkParentsFirst(batches, child, s0, s1)
	})
}

// Scenario 4: EARLIEST is TRIM_HORIZON.
func TestSourceITEarliest(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, map[string]string{"kinesis.startingPosition": "EARLIEST"})
		puts := e.putSpread(itTwoShards, "0", "1")
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitStarted(run)
		puts = append(puts, e.putSpread(itTwoShards, itValues(1000, 2000)...)...)
		e.waitRows(run, len(puts))
		run.stop(t)
		checkExactlyOnce(t, e.sink.rows(), puts)
		checkShardOrder(t, e.sink.batches())
	})
}

// Scenario 5: AT_TIMESTAMP (RFC 3339 with fractional seconds, in the
// past): records that arrived before it are excluded; records after it
// are read, whether they were put before the query started or after.
func TestSourceITAtTimestamp(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, nil)
		e.putSpread(itTwoShards, "before-0", "before-1", "before-2", "before-3")
		// Arrival timestamps are in milliseconds and set by a server on
		// this machine: a second on each side of the timestamp keeps the
		// two groups apart.
		time.Sleep(1100 * time.Millisecond)
		ts := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		time.Sleep(1100 * time.Millisecond)
		puts := e.putSpread(itTwoShards, itValues(1, 25)...)
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), map[string]string{"kinesis.startingPosition": "AT_TIMESTAMP " + ts})
		e.waitStarted(run)
		puts = append(puts, e.putSpread(itTwoShards, itValues(26, 50)...)...)
		e.waitRows(run, 50)
		run.stop(t)
		checkExactlyOnce(t, e.sink.rows(), puts)
		checkValues(t, "rows", e.sink.rows(), itValues(1, 50))
	})
}

// Scenario 6: a restart from a committed checkpoint goes on right after
// the last batch: its first batch is exactly the records put while it was
// down, with the next batch id. With the default LATEST, as in the Spark
// suite, so the restart resumes from the checkpoint, not from LATEST; on
// kinesalite, TRIM_HORIZON (see latestOrTrimHorizon).
func TestSourceITRestoreCommitted(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, latestOrTrimHorizon(t, em))
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitStarted(run)
		puts := e.putSpread(itTwoShards, itValues(1, 5)...)
		e.waitRows(run, 5)
		run.stop(t)
		before := e.sink.batches()
		last := before[len(before)-1].ID

		puts = append(puts, e.putSpread(itTwoShards, itValues(6, 11)...)...)
		// Once waits until every shard is caught up, so its one batch
		// holds everything put while the query was down.
		e.mustRun(shardflow.Once(), nil)
		after := e.sink.batches()
		if len(after) != len(before)+1 {
			t.Fatalf("%d batches after the restart, want %d", len(after), len(before)+1)
		}
		next := after[len(after)-1]
		if next.ID != last+1 {
			t.Errorf("batch id after the restart is %d, want %d", next.ID, last+1)
		}
		checkValues(t, fmt.Sprintf("batch %d", next.ID), next.Rows, itValues(6, 11))
		if n := len(e.sink.allCalls()); n != len(after) {
			t.Errorf("%d sink calls for %d batches: a committed batch was replayed", n, len(after))
		}
		checkExactlyOnce(t, e.sink.rows(), puts)
	})
}

// Scenario 7: a restart after the last batch's commit was lost replays
// that batch exactly (same id, same rows in the same order, nothing put
// since), then goes on with only the new records. (LATEST, or
// TRIM_HORIZON on kinesalite, as in scenario 6.)
func TestSourceITRestoreUncommitted(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, latestOrTrimHorizon(t, em))
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitStarted(run)
		puts := e.putSpread(itTwoShards, itValues(1, 5)...)
		e.waitRows(run, 5)
		run.stop(t)
		calls := e.sink.allCalls()
		last := calls[len(calls)-1]
		if err := os.Remove(e.logPath("commits", last.ID)); err != nil {
			t.Fatal(err)
		}

		puts = append(puts, e.putSpread(itTwoShards, itValues(6, 11)...)...)
		e.mustRun(shardflow.Once(), nil)
		got := e.sink.allCalls()[len(calls):]
		if len(got) != 2 {
			t.Fatalf("restart made %d sink calls %v, want the replay of batch %d and one new batch", len(got), got, last.ID)
		}
		replay, next := got[0], got[1]
		if replay.ID != last.ID {
			t.Errorf("replayed batch id %d, want %d", replay.ID, last.ID)
		}
		if !sameRows(replay.Rows, last.Rows) {
			t.Errorf("replay of batch %d differs:\n got  %v\n want %v", last.ID, replay.Rows, last.Rows)
		}
		if next.ID != last.ID+1 {
			t.Errorf("batch after the replay has id %d, want %d", next.ID, last.ID+1)
		}
		checkValues(t, fmt.Sprintf("batch %d", next.ID), next.Rows, itValues(6, 11))
		checkExactlyOnce(t, e.sink.rows(), puts)
	})
}

func sameRows(a, b []itRow) bool {
	return slices.EqualFunc(a, b, func(x, y itRow) bool {
		return x.Arrival.Equal(y.Arrival) && x.Data == y.Data && x.Stream == y.Stream && x.PartitionKey == y.PartitionKey &&
			x.Seq == y.Seq && x.Shard == y.Shard && x.Sub == y.Sub
	})
}

// Scenario 8 (the Spark suite's 8 and 9, whose per-shard metadata has no
// counterpart: one offsets entry holds every shard): the offsets entry of
// the uncommitted last batch is gone, so the batch is planned again from
// the previous commit and takes what arrived since, losing and repeating
// nothing. A corrupt offsets entry fails the start with an error naming
// the file; for an uncommitted one the error says removing it is safe.
func TestSourceITOffsetsEntryRemovedOrCorrupt(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
		puts := e.putSpread(itTwoShards, itValues(1, 5)...)
		e.mustRun(shardflow.Once(), nil)
		puts = append(puts, e.putSpread(itTwoShards, itValues(6, 11)...)...)
		e.mustRun(shardflow.Once(), nil)
		bs := e.sink.batches()
		if len(bs) != 2 {
			t.Fatalf("%d batches, want 2", len(bs))
		}
		checkValues(t, "batch 0", bs[0].Rows, itValues(1, 5))
		checkValues(t, "batch 1", bs[1].Rows, itValues(6, 11))

		// As if the process died before offsets/1 was written.
		for _, dir := range []string{"commits", "offsets"} {
			if err := os.Remove(e.logPath(dir, 1)); err != nil {
				t.Fatal(err)
			}
		}
		puts = append(puts, e.putSpread(itTwoShards, "20", "21")...)
		e.mustRun(shardflow.Once(), nil)
		bs = e.sink.batches()
		if len(bs) != 2 {
			t.Fatalf("%d batches after re-planning batch 1, want 2", len(bs))
		}
		checkValues(t, "re-planned batch 1", bs[1].Rows, append(itValues(6, 11), "20", "21"))
		checkExactlyOnce(t, e.sink.rows(), puts)
		checkShardOrder(t, bs)

		calls := len(e.sink.allCalls())
		off1 := e.logPath("offsets", 1)
		good, err := os.ReadFile(off1)
		if err != nil {
			t.Fatal(err)
		}
		// A committed entry cut in the middle.
		if err := os.WriteFile(off1, good[:len(good)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		err = e.run(shardflow.Once(), nil)
		if err == nil || !strings.Contains(err.Error(), "offsets/1") || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("start on a corrupt committed offsets/1: %v; want an error naming offsets/1 as corrupt", err)
		} else {
			t.Logf("corrupt committed entry: %v", err)
		}
		// An uncommitted entry that is not JSON.
		if err := os.WriteFile(off1, good, 0o644); err != nil {
			t.Fatal(err)
		}
		off2 := e.logPath("offsets", 2)
		if err := os.WriteFile(off2, []byte(`{"batchId": 2, "shards": {`), 0o644); err != nil {
			t.Fatal(err)
		}
		err = e.run(shardflow.Once(), nil)
		if err == nil || !strings.Contains(err.Error(), "offsets/2") || !strings.Contains(err.Error(), "safe") {
			t.Errorf("start on a corrupt uncommitted offsets/2: %v; want an error naming offsets/2 and saying removing it is safe", err)
		} else {
			t.Logf("corrupt uncommitted entry: %v", err)
		}
		if n := len(e.sink.allCalls()); n != calls {
			t.Errorf("%d sink calls while the checkpoint was corrupt", n-calls)
		}
		// Removing it, as the error says, is enough.
		if err := os.Remove(off2); err != nil {
			t.Fatal(err)
		}
		puts = append(puts, e.putSpread(itTwoShards, "30", "31")...)
		e.mustRun(shardflow.Once(), nil)
		bs = e.sink.batches()
		if last := bs[len(bs)-1]; last.ID != 2 {
			t.Errorf("last batch %d, want 2", last.ID)
		} else {
			checkValues(t, "batch 2", last.Rows, []string{"30", "31"})
		}
		checkExactlyOnce(t, e.sink.rows(), puts)
	})
}

// Scenario 9 (Spark 10): four restarts with no new data: no error, no
// batch (empty batches are not written), nothing read twice; the batch ids
// do not move.
func TestSourceITRestartsWithoutNewData(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
		puts := e.putSpread(itTwoShards, itValues(1, 5)...)
		e.mustRun(shardflow.Once(), nil)
		calls, offs, commits := len(e.sink.allCalls()), e.logIDs("offsets"), e.logIDs("commits")
		for i := range 4 {
			run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
			// Let it list shards, open readers, reach the tails and fire
			// a few triggers: there is no event that says "nothing
			// happened".
			time.Sleep(time.Second)
			run.stop(t)
			if p := run.q.Progress(); len(p) != 0 {
				t.Errorf("restart %d: %d progress records, want none", i+1, len(p))
			}
		}
		if n := len(e.sink.allCalls()); n != calls {
			t.Errorf("%d sink calls during the restarts, want none", n-calls)
		}
		if o, c := e.logIDs("offsets"), e.logIDs("commits"); !slices.Equal(o, offs) || !slices.Equal(c, commits) {
			t.Errorf("log entries after the restarts: offsets %v commits %v; before: %v %v", o, c, offs, commits)
		}
		puts = append(puts, e.putSpread(itTwoShards, "6", "7", "8")...)
		e.mustRun(shardflow.Once(), nil)
		bs := e.sink.batches()
		if last := bs[len(bs)-1]; last.ID != int64(len(offs)) {
			t.Errorf("next batch id %d, want %d", last.ID, len(offs))
		} else {
			checkValues(t, "batch after the restarts", last.Rows, []string{"6", "7", "8"})
		}
		checkExactlyOnce(t, e.sink.rows(), puts)
	})
}

// Scenario 10 (Spark 11): kinesis.maxFetchRecordsPerShard=3 on two shards
// of 10 records: Once and AvailableNow batches take exactly 3 per shard
// while there are 3 (they wait until every shard is caught up or holds a
// full batch); a restart midway goes on where the last batch ended; a
// ProcessingTime run never takes more than 3 per shard; order per shard
// is kept and the total is complete.
func TestSourceITMaxFetchRecordsPerShard(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON", "kinesis.maxFetchRecordsPerShard": "3"})
		s0, s1 := itTwoShards[0], itTwoShards[1]
		puts := e.putOn(s0, itValues(1, 10)...)
		puts = append(puts, e.putOn(s1, itValues(11, 20)...)...)

		want := [][]string{
			{"1", "2", "3", "11", "12", "13"},
			{"4", "5", "6", "14", "15", "16"},
			{"7", "8", "9", "17", "18", "19"},
			{"10", "20"},
		}
		e.mustRun(shardflow.Once(), nil)
		e.mustRun(shardflow.Once(), nil)
		// The restart midway.
		e.mustRun(shardflow.AvailableNow(), nil)
		bs := e.sink.batches()
		if len(bs) != len(want) {
			t.Errorf("%d batches, want %d", len(bs), len(want))
		}
		for i, b := range bs {
			if i < len(want) {
				checkValues(t, fmt.Sprintf("batch %d", b.ID), b.Rows, want[i])
			}
		}

		// New records while a ProcessingTime query runs.
		run := e.start(shardflow.ProcessingTime(50*time.Millisecond), nil)
		puts = append(puts, e.putOn(s0, itValues(21, 30)...)...)
		puts = append(puts, e.putOn(s1, itValues(31, 35)...)...)
		e.waitRows(run, len(puts))
		run.stop(t)
		bs = e.sink.batches()
		for _, b := range bs {
			for shard, n := range b.shards() {
				if n > 3 {
					t.Errorf("batch %d holds %d rows of %s, want at most 3", b.ID, n, shard)
				}
			}
		}
		checkShardOrder(t, bs)
		checkExactlyOnce(t, e.sink.rows(), puts)
	})
}

// Scenario 11 (Spark 12), kinesis.maxFetchTimePerShardSec. The Spark test
// (a batch that takes between 30 and 90 s) checks that a batch stops
// waiting for a shard after the limit. Here only Once and AvailableNow batches ever
// wait (for each shard to be caught up, hold a whole batch, or have a full
// buffer); ProcessingTime batches are cut from what is buffered. So this
// verifies:
//
//   - full-buffer: a shard whose buffer is full (small
//     shardflow.buffer.maxRecordsPerShard) counts as settled: a Once run
//     returns with a batch of what the buffer holds, although the reader is
//     far behind and the limit (120 s) is longer than the test's deadline.
//   - caps-once-wait: a shard that cannot catch up (GetRecords pages of one
//     record every 100 ms, 300 records behind) makes a Once run wait for
//     the limit (10 s, the minimum) and no longer: the batch is cut after
//     between 10 s and 45 s with part of the records, and a restart reads
//     the rest exactly once.
//   - processing-time-not-delayed: with the same slow shard and the same
//     limit, a ProcessingTime(200ms) query commits three batches of partial
//     data well within one limit: it never waits for the shard.
func TestSourceITMaxFetchTimePerShard(t *testing.T) {
	t.Parallel()
	slow := map[string]string{
		"kinesis.startingPosition":                   "TRIM_HORIZON",
		"kinesis.getRecords.numberOfRecordsPerFetch": "1",
		"kinesis.getRecords.fetchIntervalMs":         "100",
		"kinesis.maxFetchTimePerShardSec":            "10",
	}
	const n = 300 // at one record per 100 ms the reader needs 30 s to catch up
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		t.Run("full-buffer", func(t *testing.T) {
			t.Parallel()
			e := newITEnv(t, em, 1, map[string]string{
				"kinesis.startingPosition":            "TRIM_HORIZON",
				"shardflow.buffer.maxRecordsPerShard": "5",
				"kinesis.maxFetchTimePerShardSec":     "120",
			})
			puts := e.putOn(itShardID(0), itValues(1, 30)...)
			e.mustRun(shardflow.Once(), nil)
			e.mustRun(shardflow.Once(), nil)
			bs := e.sink.batches()
			if len(bs) != 2 {
				t.Fatalf("%d batches, want 2", len(bs))
			}
			// In the kpl format the buffer fills by whole Kinesis records
			// (pages or events of aggregates), so a full buffer holds
			// more than 5 rows; the batches still follow each other.
			n0, n1 := 5, 5
			if e.agg > 0 {
				n0, n1 = len(bs[0].Rows), len(bs[1].Rows)
			}
			if !slices.Equal(bs[0].values(), itValues(1, n0)) || !slices.Equal(bs[1].values(), itValues(n0+1, n0+n1)) || n0 >= 30 {
				t.Errorf("batches %v and %v, want 1..5 and 6..10 (a full buffer of 5)", bs[0].values(), bs[1].values())
			}
			e.mustRun(shardflow.AvailableNow(), nil)
			checkExactlyOnce(t, e.sink.rows(), puts)
			checkShardOrder(t, e.sink.batches())
		})
		t.Run("caps-once-wait", func(t *testing.T) {
			t.Parallel()
			skipOnEFO(t, em, "it slows the reader down with GetRecords options")
			e := newITEnv(t, em, 1, slow)
			// The reader is slowed to one Kinesis record per fetch; in the
			// kpl format each holds several user records.
			n := n * max(1, e.agg)
			puts := e.putOn(itShardID(0), itValues(1, n)...)
			start := time.Now()
			e.mustRun(shardflow.Once(), nil)
			took := time.Since(start)
			bs := e.sink.batches()
			if len(bs) != 1 {
				t.Fatalf("%d batches, want 1", len(bs))
			}
			got := len(bs[0].Rows)
			t.Logf("Once took %s and read %d of %d records", took.Round(time.Millisecond), got, n)
			if took < 10*time.Second || took > 45*time.Second {
				t.Errorf("Once took %s; want at least the 10 s limit, and not much more", took)
			}
			if got == 0 || got >= n {
				t.Errorf("Once batch has %d of %d records; want a part", got, n)
			}
			if !slices.Equal(bs[0].values(), itValues(1, got)) {
				t.Errorf("Once batch %v, want the first %d records", bs[0].values(), got)
			}
			// The rest, at full speed.
			e.mustRun(shardflow.AvailableNow(), map[string]string{
				"kinesis.getRecords.numberOfRecordsPerFetch": "10000",
				"kinesis.getRecords.fetchIntervalMs":         "20",
			})
			checkExactlyOnce(t, e.sink.rows(), puts)
			checkShardOrder(t, e.sink.batches())
		})
		t.Run("processing-time-not-delayed", func(t *testing.T) {
			t.Parallel()
			skipOnEFO(t, em, "it slows the reader down with GetRecords options")
			e := newITEnv(t, em, 1, slow)
			n := n * max(1, e.agg)
			e.putOn(itShardID(0), itValues(1, n)...)
			run := e.start(shardflow.ProcessingTime(200*time.Millisecond), nil)
			waitFor(t, run, "3 batches", func() bool { return len(e.sink.batches()) >= 3 })
			took := time.Since(run.started)
			run.stop(t)
			if took >= 10*time.Second {
				t.Errorf("3 ProcessingTime batches took %s: the query waited for kinesis.maxFetchTimePerShardSec", took)
			}
			rows := e.sink.rows()
			if len(rows) >= n {
				t.Errorf("%d rows: the reader was not behind, the test shows nothing", len(rows))
			}
			if !slices.Equal(rowValues(rows), itValues(1, len(rows))) {
				t.Errorf("rows %v, want the first %d records in order", rowValues(rows), len(rows))
			}
		})
	})
}

func rowValues(rows []itRow) []string {
	vs := make([]string, len(rows))
	for i, r := range rows {
		vs[i] = r.Data
	}
	return vs
}

// Scenario 12 (Spark 13): the batch schema, with the right Go types, and
// the values of every column.
func TestSourceITSchema(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 2, map[string]string{"kinesis.startingPosition": "TRIM_HORIZON"})
		ms := memsink.New()
		e.out = ms
		putAt := time.Now()
		puts := e.put("", itValues(1, 20)...) // partition keys spread them
		e.mustRun(shardflow.AvailableNow(), nil)
		now := time.Now()

		want := shardflow.Schema{
			{Name: "data", Type: shardflow.TypeBytes},
			{Name: "streamName", Type: shardflow.TypeString},
			{Name: "partitionKey", Type: shardflow.TypeString},
			{Name: "sequenceNumber", Type: shardflow.TypeString},
			{Name: "approximateArrivalTimestamp", Type: shardflow.TypeTimestamp},
			{Name: "shardId", Type: shardflow.TypeString},
			{Name: "subSequenceNumber", Type: shardflow.TypeInt64},
		}
		if !slices.Equal(shardflow.SourceSchema(), want) {
			t.Errorf("SourceSchema() = %v, want %v", shardflow.SourceSchema(), want)
		}
		byKey := map[string]testenv.Put{}
		for _, p := range puts {
			byKey[fmt.Sprintf("%s/%s/%d", p.ShardID, p.SequenceNumber, p.SubSequenceNumber)] = p
		}
		seen := map[string]bool{}
		bs := ms.Batches()
		if len(bs) == 0 {
			t.Fatal("no batch")
		}
		for _, b := range bs {
			if !slices.Equal(b.Schema, want) {
				t.Errorf("batch %d schema %v, want %v", b.ID, b.Schema, want)
				continue
			}
			for i, row := range b.Rows {
				if len(row) != len(want) {
					t.Errorf("batch %d row %d has %d values, want %d", b.ID, i, len(row), len(want))
					continue
				}
				data, ok0 := row[0].([]byte)
				stream, ok1 := row[1].(string)
				pk, ok2 := row[2].(string)
				seq, ok3 := row[3].(string)
				arrival, ok4 := row[4].(time.Time)
				shard, ok5 := row[5].(string)
				sub, ok6 := row[6].(int64)
				if !(ok0 && ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
					t.Errorf("batch %d row %d has values of types %T %T %T %T %T %T %T, want []byte string string string time.Time string int64",
						b.ID, i, row[0], row[1], row[2], row[3], row[4], row[5], row[6])
					continue
				}
				key := fmt.Sprintf("%s/%s/%d", shard, seq, sub)
				if seen[key] {
					t.Errorf("(shardId, sequenceNumber, subSequenceNumber) %s not unique", key)
				}
				seen[key] = true
				p, ok := byKey[key]
				switch {
				case !ok:
					t.Errorf("row %s: no such record was put", key)
				case string(data) != string(p.Data) || pk != p.PartitionKey:
					t.Errorf("row %s: data %q partitionKey %q, put as %q %q", key, data, pk, p.Data, p.PartitionKey)
				}
				if stream != e.stream {
					t.Errorf("row %s: streamName %q, want %q", key, stream, e.stream)
				}
				if arrival.Before(putAt.Add(-5*time.Second)) || arrival.After(now.Add(5*time.Second)) {
					t.Errorf("row %s: approximateArrivalTimestamp %v not within [%v, %v] ± 5 s", key, arrival, putAt, now)
				}
				if ok && sub != p.SubSequenceNumber {
					// 0 for a plain record, the index in the aggregate
					// in the kpl format.
					t.Errorf("row %s: subSequenceNumber %d, want %d", key, sub, p.SubSequenceNumber)
				}
			}
		}
		if len(seen) != len(puts) {
			t.Errorf("%d rows, want %d", len(seen), len(puts))
		}
	})
}

// Scenario 13, idle shards (reference §6.1-B, §5.4): with LATEST, a shard
// that gets no data for a while is still read when data comes, without a
// restart, and batches keep coming meanwhile. Four shards; 3 s of records on shard 0
// only, then 3 s on shard 3 only. On kinesalite, where LATEST cannot work,
// the shards start at TRIM_HORIZON of an empty stream instead (see
// latestOrTrimHorizon): the same idle shards, without the LATEST part.
func TestSourceITIdleShards(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		e := newITEnv(t, em, 4, latestOrTrimHorizon(t, em))
		run := e.start(shardflow.ProcessingTime(500*time.Millisecond), nil)
		e.waitStarted(run)
		var puts []testenv.Put
		phase := func(shard, prefix string) (from, to time.Time) {
			from = time.Now()
			for i := 0; time.Since(from) < 3*time.Second; i++ {
				if err := run.failed(); err != nil {
					t.Fatal(err)
				}
				puts = append(puts, e.putOn(shard, fmt.Sprintf("%s-%d", prefix, i))...)
				time.Sleep(100 * time.Millisecond) // a steady trickle
			}
			return from, time.Now()
		}
		from1, to1 := phase(itShardID(0), "a")
		from2, to2 := phase(itShardID(3), "b")
		e.waitRows(run, len(puts))
		run.stop(t)
		checkExactlyOnce(t, e.sink.rows(), puts)

		// The progress records (trigger time, rows, end offset per shard
		// read) show batches during each phase, each reading the shard
		// written in that phase.
		during := func(shard string, from, to time.Time) int {
			n := 0
			for _, p := range run.q.Progress() {
				at, err := time.Parse(time.RFC3339Nano, p.Timestamp)
				if err != nil {
					t.Fatalf("progress timestamp %q: %v", p.Timestamp, err)
				}
				if p.NumInputRows > 0 && p.Sources[0].EndOffset[shard] != nil &&
					!at.Before(from.Truncate(time.Millisecond)) && !at.After(to) {
					n++
				}
			}
			return n
		}
		n1, n2 := during(itShardID(0), from1, to1), during(itShardID(3), from2, to2)
		t.Logf("batches reading shard 0 while it was written: %d; reading shard 3 while it was written: %d", n1, n2)
		if n1 < 2 || n2 < 2 {
			t.Errorf("batches reading shard 0 during phase 1: %d, shard 3 during phase 2: %d; want at least 2 in each (a 3 s phase with a 500 ms trigger)", n1, n2)
		}
	})
}

// Scenario 14, split while running (§5.4): records on shard 0, a split,
// records on both children (and on shard 1 throughout): everything is read
// exactly once, and no child is read before its parent was read to its
// end.
func TestSourceITSplitWhileRunning(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		// Slow reads (2 records per 100 ms): the parent's 40 records take
		// 2 s to read, so the split and the discovery of the children
		// (describeShardInterval 200 ms) happen while the parent still
		// holds unread records (§6.1-A).
		e := newITEnv(t, em, 2, map[string]string{
			"kinesis.startingPosition":                   "TRIM_HORIZON",
			"kinesis.getRecords.numberOfRecordsPerFetch": "2",
			"kinesis.getRecords.fetchIntervalMs":         "100",
		})
		s0, s1 := itTwoShards[0], itTwoShards[1]
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitStarted(run)
		puts := e.putOn(s0, prefixed("p", 1, 40)...)
		puts = append(puts, e.putOn(s1, prefixed("q", 1, 3)...)...)
		kids := e.splitInHalf(s0)
		puts = append(puts, e.putOn(kids[0], prefixed("c0", 1, 10)...)...)
		puts = append(puts, e.putOn(kids[1], prefixed("c1", 1, 10)...)...)
		puts = append(puts, e.putOn(s1, prefixed("q", 4, 6)...)...)
		e.waitRows(run, len(puts))
		run.stop(t)
		bs := e.sink.batches()
		checkExactlyOnce(t, e.sink.rows(), puts)
		checkShardOrder(t, bs)
		for _, k := range kids {
			e.checkParentsFirst(bs, k, s0)
		}
	})
}

// Scenario 15 (§5.4, §6.1-E; beyond the Spark suite): stop, split, keep
// producing, restart with LATEST: the children, which the checkpoint does
// not know yet, start at the LATEST resolved at the first start
// (invariant 5), so the records written to them while the query was down
// are read. Not on kinesalite (see skipLatestOnKinesalite).
func TestSourceITLatestReshardWhileStopped(t *testing.T) {
	t.Parallel()
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		skipLatestOnKinesalite(t, em)
		e := newITEnv(t, em, 2, nil)
		s0, s1 := itTwoShards[0], itTwoShards[1]
		run := e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitStarted(run)
		puts := e.putSpread(itTwoShards, itValues(1, 4)...)
		e.waitRows(run, 4)
		run.stop(t)

		kids := e.splitInHalf(s0)
		puts = append(puts, e.putOn(kids[0], prefixed("c0", 1, 5)...)...)
		puts = append(puts, e.putOn(kids[1], prefixed("c1", 1, 5)...)...)
		puts = append(puts, e.putOn(s1, prefixed("q", 1, 3)...)...)
		// Later than any record above: LATEST resolved now would skip them.
		time.Sleep(100 * time.Millisecond)

		run = e.start(shardflow.ProcessingTime(100*time.Millisecond), nil)
		e.waitRows(run, len(puts))
		run.stop(t)
		bs := e.sink.batches()
		checkExactlyOnce(t, e.sink.rows(), puts)
		checkShardOrder(t, bs)
		for _, k := range kids {
			e.checkParentsFirst(bs, k, s0)
		}
	})
}

func prefixed(prefix string, lo, hi int) []string {
	vs := itValues(lo, hi)
	for i := range vs {
		vs[i] = prefix + "-" + vs[i]
	}
	return vs
}
