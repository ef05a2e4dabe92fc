package cli

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// crashSQL projects and casts fields of the JSON records, through both of
// docs/sql.md's forms: Spark's from_json and DuckDB's json_extract_string.
const crashSQL = `SELECT json_extract_string(decode(data), '$.key') AS key, e.n AS n, e.n % 7 AS bucket, shardId, sequenceNumber
FROM (SELECT from_json(CAST(data AS STRING), 'key STRING, n BIGINT') AS e, data, shardId, sequenceNumber FROM source)`

// TestSQLCrashRecoveryExactlyOnce is the SIGKILL crash test with a SQL
// stage between the source and the file sink (issue 7, DESIGN.md invariant
// 2). Records are written before each run. `shardflow run --sql` is
// killed eight times, each time after it has committed at least one batch:
// four times as soon as a batch is between offsets/N and commits/N (read,
// in DuckDB or in the sink), four times after a random delay; it restarts
// on the same checkpoint, and a final available-now run catches up. Every record then appears exactly once in
// the output, with the fields the statement projected and cast: a replayed
// batch holds the same records and replaces its file.
func TestSQLCrashRecoveryExactlyOnce(t *testing.T) {
	const runs, perRun = 8, 2000
	srv := kdsfake.Start(t, kdsfake.Config{})
	c := testenv.KinesisClient(t, srv.URL())
	stream := testenv.CreateStream(t, c, 4)
	var puts []testenv.Put
	// put writes the next perRun records before each run, so that every
	// run has batches to read: records whose JSON has a key and a counter.
	put := func() {
		recs := make([]testenv.Record, perRun)
		for i := range recs {
			n := len(puts) + i
			recs[i] = testenv.Record{PartitionKey: "pk-" + strconv.Itoa(n), Data: fmt.Appendf(nil, `{"key": "k-%d", "n": %d}`, n%7, n)}
		}
		puts = append(puts, testenv.PutRecords(t, c, stream, recs)...)
	}

	dir := t.TempDir()
	ckpt, out := filepath.Join(dir, "ckpt"), filepath.Join(dir, "out")
	// Batches of at most 4x50 records: about 15 per run.
	args := func(trigger string) []string {
		return slices.Concat([]string{"run"}, sourceArgs(testenv.Emulator{Endpoint: srv.URL()}, stream,
			"--source-option", "kinesis.maxFetchRecordsPerShard=50"),
			[]string{"--sql", crashSQL, "--sink", "file", "--sink-option", "path=" + out,
				"--checkpoint", ckpt, "--trigger", trigger})
	}
	kill := func(p *os.Process) { _ = p.Signal(syscall.SIGKILL) }

	inWindow := 0
	for i := range runs {
		put()
		cmd, output := child(t, args("processing-time=0s")...)
		if !waitUntil(30*time.Second, func() bool { return strings.Contains(output.String(), "batch committed") }) {
			t.Fatalf("run %d committed no batch within 30s:\n%s", i+1, output.String())
		}
		if i%2 == 0 {
			// Aim between offsets/N and commits/N.
			n, ok := uncommittedBatch(ckpt, 10*time.Second)
			kill(cmd.Process)
			_ = cmd.Wait()
			if ok && fileExists(filepath.Join(ckpt, "offsets", n)) && !fileExists(filepath.Join(ckpt, "commits", n)) {
				inWindow++
			}
			continue
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		kill(cmd.Process)
		_ = cmd.Wait()
	}
	before := len(outputRows(t, out))

	final, output := child(t, args("available-now")...)
	done := make(chan error, 1)
	go func() { done <- final.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("final available-now run: %v\n%s", err, output.String())
		}
	case <-time.After(60 * time.Second):
		kill(final.Process)
		t.Fatalf("final available-now run did not finish:\n%s", output.String())
	}

	type row struct {
		key, bucket string
		n           int
	}
	seen := map[string][]row{}
	for _, r := range outputRows(t, out) {
		k := fmt.Sprint(r["shardId"], "/", r["sequenceNumber"])
		n, ok := r["n"].(float64)
		if !ok {
			t.Fatalf("row %s: n = %#v, want a number (BIGINT)", k, r["n"])
		}
		seen[k] = append(seen[k], row{key: fmt.Sprint(r["key"]), bucket: fmt.Sprint(r["bucket"]), n: int(n)})
	}
	missing, dup := 0, 0
	for i, p := range puts {
		k := p.ShardID + "/" + p.SequenceNumber
		got := seen[k]
		delete(seen, k)
		switch {
		case len(got) == 0:
			missing++
			continue
		case len(got) > 1:
			dup++
		}
		if want := (row{key: "k-" + strconv.Itoa(i%7), bucket: strconv.Itoa(i % 7), n: i}); got[0] != want {
			t.Errorf("record %s: got %+v, want %+v", k, got[0], want)
		}
	}
	if missing > 0 || dup > 0 || len(seen) > 0 {
		t.Fatalf("after %d kills: %d of %d records missing, %d written more than once, %d unexpected", runs, missing, len(puts), dup, len(seen))
	}
	if inWindow == 0 {
		// The trigger is 0s and there are always records to read, so a
		// batch is almost always planned and not yet committed.
		t.Errorf("no kill landed between offsets/N and commits/N")
	}
	t.Logf("%d records exactly once through SQL after %d kills (%d between offsets and commits; %d rows written before the final run)", len(puts), runs, inWindow, before)
}

// waitUntil polls cond until it holds or timeout has passed.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// uncommittedBatch polls a local checkpoint until some offsets/N has no
// commits/N, and returns N.
func uncommittedBatch(ckpt string, timeout time.Duration) (string, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir(filepath.Join(ckpt, "offsets"))
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			if !fileExists(filepath.Join(ckpt, "commits", e.Name())) {
				return e.Name(), true
			}
		}
		time.Sleep(time.Millisecond)
	}
	return "", false
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
