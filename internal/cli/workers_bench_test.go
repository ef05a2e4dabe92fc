package cli

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardflow/shardflow/internal/testenv"
)

// BenchmarkWorkers runs 1, 2 and 4 worker processes over a 64-shard
// kdsfake stream, each worker writing JSON Lines files with a job's default
// polling interval (200 ms). Once the workers hold an even split, the
// benchmark writes 128,000 records of about 100 bytes at 64,000 records/s
// (500 per PutRecords call, from this process) and reports:
//   - records/s from the first write until every record is written out;
//   - cpu-s/Mrec: the workers' CPU time (user+system, from /proc) in that
//     time, per million records. Goal: 4 workers within 1.2x of 1 worker;
//   - lease-writes/s and lease-reads/s in steady state (3 s after the
//     data is drained), counted by a proxy in front of dynalite, and
//     lease-writes/lease/renewal: writes per lease per renewal interval.
//     Goal: at most 1;
//   - join-rebalance-s: from a new worker's start until the split is even
//     again (within one lease) through graceful handoffs;
//   - crash-takeover-s: from SIGKILL of a worker until the others own all
//     of its leases (lease time 3 s, renewal 500 ms).
//
// Run it with -benchtime 1x (make bench does); one iteration is the whole
// scenario.
func BenchmarkWorkers(b *testing.B) {
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for range b.N {
				benchWorkers(b, workers)
			}
		})
	}
}

const (
	benchShards  = 64
	benchRecords = 128_000
	benchRate    = 64_000 // records/s written
)

// benchTrigger is the workers' trigger; SHARDFLOW_BENCH_TRIGGER overrides
// it (each worker commits its own batches, so the per-batch cost grows
// with the number of workers at a given trigger).
var benchTrigger = cmp.Or(os.Getenv("SHARDFLOW_BENCH_TRIGGER"), "1s")

// callCounter counts DynamoDB calls by operation on their way to dynalite.
type callCounter struct {
	next http.Handler
	mu   sync.Mutex
	n    map[string]int
}

func (c *callCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndexByte(op, '.')+1:]
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

// rw returns the writes and reads counted so far.
func (c *callCounter) rw() (writes, reads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for op, n := range c.n {
		switch op {
		case "UpdateItem", "PutItem", "DeleteItem":
			writes += n
		case "Scan", "GetItem", "Query":
			reads += n
		}
	}
	return writes, reads
}

// lineCounter counts the rows of the immutable part files under a
// directory, reading each file once.
type lineCounter struct {
	dir   string
	seen  map[string]bool
	lines int
}

func (c *lineCounter) count(tb testing.TB) int {
	files, _ := filepath.Glob(filepath.Join(c.dir, "worker=*", "part-*.json"))
	for _, f := range files {
		if c.seen[f] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		c.seen[f] = true
		c.lines += bytes.Count(b, []byte("\n"))
	}
	return c.lines
}

// cpuTime is a process's user+system time so far (Linux /proc).
func cpuTime(tb testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name, which ends with the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func benchWorkers(b *testing.B, workers int) {
	b.StopTimer()
	f := newFarm(b, benchShards)
	target, err := url.Parse(f.ddbURL)
	if err != nil {
		b.Fatal(err)
	}
	calls := &callCounter{next: quietProxy(target), n: map[string]int{}}
	proxy := httptest.NewServer(calls)
	b.Cleanup(proxy.Close)
	f.ddbURL = proxy.URL
	// The defaults of a real job (the tests poll every 50 ms to be quick).
	f.trigger = "processing-time=" + benchTrigger
	f.extra = []string{"--source-option", "kinesis.maxFetchRecordsPerShard=100000", "--source-option", "kinesis.getRecords.fetchIntervalMs=200"}

	var ws []*farmWorker
	for i := range workers {
		ws = append(ws, f.start(fmt.Sprintf("w%d", i+1)))
	}
	f.waitOwnersFunc(evenSplit(workers, ws), "an even split", 2*time.Minute)

	// The workers hold their shards; the records arrive as fast as the
	// test writes them, and the CPU the workers spend until the last one
	// is written out is counted.
	var cpu0 time.Duration
	for _, w := range ws {
		cpu0 += cpuTime(b, w.cmd.Process.Pid)
	}
	b.StartTimer()
	start := time.Now()
	payload := strings.Repeat("x", 80)
	recs := make([]testenv.Record, 0, 500)
	// A steady 64,000 records/s (1,000 per shard, the write quota), not
	// as fast as this process can: a saturated 2-core machine would
	// charge the workers for each other's context switches.
	for i := range benchRecords {
		recs = append(recs, testenv.Record{PartitionKey: strconv.Itoa(i), Data: fmt.Appendf(nil, "%08d %s", i, payload)})
		if len(recs) == cap(recs) {
			testenv.PutRecords(b, f.kc, f.stream, recs)
			recs = recs[:0]
			if ahead := time.Duration(i+1)*time.Second/benchRate - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	rows := &lineCounter{dir: f.out, seen: map[string]bool{}}
	for rows.count(b) < benchRecords {
		if time.Since(start) > 3*time.Minute {
			b.Fatalf("%d of %d records after 3 minutes\n%s", rows.lines, benchRecords, f.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	wall := time.Since(start)
	cpu := -cpu0
	for _, w := range ws {
		cpu += cpuTime(b, w.cmd.Process.Pid)
	}
	b.StopTimer()
	b.ReportMetric(float64(benchRecords)/wall.Seconds(), "records/s")
	b.ReportMetric(cpu.Seconds()/(benchRecords/1e6), "cpu-s/Mrec")

	// Steady state: the data is drained, the leases are renewed.
	w0, r0 := calls.rw()
	const window = 3 * time.Second
	time.Sleep(window)
	w1, r1 := calls.rw()
	writes := float64(w1-w0) / window.Seconds()
	b.ReportMetric(writes, "lease-writes/s")
	b.ReportMetric(float64(r1-r0)/window.Seconds(), "lease-reads/s")
	b.ReportMetric(writes*farmRenew.Seconds()/benchShards, "lease-writes/lease/renewal")

	// A worker joins: graceful handoffs until the split is even.
	joined := f.start(fmt.Sprintf("w%d", workers+1))
	all := append(ws, joined)
	t0 := time.Now()
	f.waitOwnersFunc(evenSplit(workers+1, all), "an even split", 2*time.Minute)
	b.ReportMetric(time.Since(t0).Seconds(), "join-rebalance-s")

	// A worker dies: the others take its leases after they expire.
	f.kill(ws[0])
	t0 = time.Now()
	f.waitOwnersFunc(evenSplitOwnersOnly(all[1:]), "the survivors owning every lease", 2*time.Minute)
	b.ReportMetric(time.Since(t0).Seconds(), "crash-takeover-s")
	for _, w := range all[1:] {
		f.stop(w)
	}
}

// evenSplit is the owner counts of benchShards leases split evenly over
// the workers, the first ones holding one more when it does not divide.
func evenSplit(n int, ws []*farmWorker) func(map[string]int) bool {
	return func(got map[string]int) bool {
		total, lo, hi := 0, benchShards, 0
		for _, w := range ws[:n] {
			c := got[w.id]
			total += c
			lo, hi = min(lo, c), max(hi, c)
		}
		return total == benchShards && hi-lo <= 1
	}
}

// evenSplitOwnersOnly reports whether the given workers own every lease.
func evenSplitOwnersOnly(ws []*farmWorker) func(map[string]int) bool {
	return func(got map[string]int) bool {
		total := 0
		for _, w := range ws {
			total += got[w.id]
		}
		return total == benchShards
	}
}
