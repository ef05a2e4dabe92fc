package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/checkpoint/ckptopen"
	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
	"github.com/shardflow/shardflow/lease"
)

// Worker-mode tests: several `shardflow run` processes (this test binary
// re-executed, see TestMain) read one kdsfake stream and share its shards
// through a lease table in dynalite. Every record is counted at the end.

// Lease timing for the tests: short enough to keep them fast, long enough
// for a loaded 2-core machine (a renewal every 500 ms, a scan every 250 ms).
const (
	farmLeaseTime = 3 * time.Second
	farmRenew     = 500 * time.Millisecond
	farmTake      = 250 * time.Millisecond
)

type farm struct {
	t        testing.TB
	fake     *kdsfake.Server
	kc       *kinesis.Client
	ddb      *dynamodb.Client
	stream   string
	table    string
	ddbURL   string // what the workers call: dynalite, or a proxy in front of it
	ckpt     string
	out      string
	trigger  string
	extra    []string
	mu       sync.Mutex
	workers  map[string]*farmWorker
	produced map[string][]string // partition key -> values, in write order
	dumped   bool
}

type farmWorker struct {
	id  string
	cmd *exec.Cmd
	log *syncBuffer
}

func newFarm(t testing.TB, shards int) *farm {
	t.Helper()
	ddbURL := testenv.Dynalite(t)
	fake := kdsfake.Start(t, kdsfake.Config{})
	kc := testenv.KinesisClient(t, fake.URL())
	stream := testenv.CreateStream(t, kc, shards)
	dir := t.TempDir()
	return &farm{
		t: t, fake: fake, kc: kc, ddb: testenv.DynamoDBClient(t, ddbURL),
		stream: stream, table: testenv.UniqueName("leases-"), ddbURL: ddbURL,
		ckpt: filepath.Join(dir, "ckpt"), out: filepath.Join(dir, "out"), trigger: "processing-time=200ms",
		workers: map[string]*farmWorker{}, produced: map[string][]string{},
	}
}

func (f *farm) args(id string) []string {
	args := []string{"run", "--log-level", "info",
		"--source-option", "kinesis.streamName=" + f.stream,
		"--source-option", "kinesis.endpointUrl=" + f.fake.URL(),
		"--source-option", "kinesis.region=" + testenv.Region,
		"--source-option", "kinesis.awsAccessKeyId=" + testenv.AccessKeyID,
		"--source-option", "kinesis.awsSecretKey=" + testenv.SecretKey,
		"--source-option", "kinesis.getRecords.fetchIntervalMs=50",
		"--source-option", "kinesis.startingPosition=TRIM_HORIZON",
		"--source-option", "kinesis.describeShardInterval=500ms",
		"--source-option", "kinesis.maxFetchRecordsPerShard=200",
		"--source-option", "shardflow.coordination=DYNAMODB",
		"--source-option", "shardflow.lease.tableName=" + f.table,
		"--source-option", "shardflow.dynamodb.endpointUrl=" + f.ddbURL,
		"--source-option", "shardflow.lease.time=" + farmLeaseTime.String(),
		"--source-option", "shardflow.lease.renewInterval=" + farmRenew.String(),
		"--source-option", "shardflow.lease.takeInterval=" + farmTake.String(),
		"--sink", "file", "--sink-option", "path=" + f.out,
		"--checkpoint", f.ckpt, "--trigger", f.trigger, "--worker-id", id,
	}
	return append(args, f.extra...)
}

func (f *farm) start(id string) *farmWorker {
	f.t.Helper()
	cmd, out := child(f.t, f.args(id)...)
	w := &farmWorker{id: id, cmd: cmd, log: out}
	f.mu.Lock()
	f.workers[id] = w
	f.mu.Unlock()
	return w
}

// stop sends SIGTERM and waits for a clean exit.
func (f *farm) stop(w *farmWorker) {
	f.t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			f.t.Errorf("worker %s: %v\n%s", w.id, err, tail(w.log.String(), 60000))
		}
	case <-time.After(30 * time.Second):
		f.t.Fatalf("worker %s did not stop within 30 s\n%s", w.id, tail(w.log.String(), 3000))
	}
}

func (f *farm) kill(w *farmWorker) {
	_ = w.cmd.Process.Kill()
	_, _ = w.cmd.Process.Wait()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// produce writes values from..to-1 for each of keys partition keys, in
// one PutRecords call per 500 records so that each key's order holds.
func (f *farm) produce(keys, from, to int) {
	f.t.Helper()
	var recs []testenv.Record
	for n := from; n < to; n++ {
		for k := range keys {
			pk := fmt.Sprintf("k%03d", k)
			v := fmt.Sprintf("%s:%06d", pk, n)
			recs = append(recs, testenv.Record{PartitionKey: pk, Data: []byte(v)})
			f.produced[pk] = append(f.produced[pk], v)
		}
	}
	for len(recs) > 0 {
		n := min(len(recs), 500)
		testenv.PutRecords(f.t, f.kc, f.stream, recs[:n])
		recs = recs[n:]
	}
}

func (f *farm) total() int {
	n := 0
	for _, vs := range f.produced {
		n += len(vs)
	}
	return n
}

// farmRow is one output row with where it was written.
type farmRow struct {
	worker string
	batch  int64
	line   int
	shard  string
	seq    string
	sub    int64
	value  string
	mtime  time.Time
}

func (r farmRow) key() string { return r.shard + "/" + r.seq + "/" + strconv.FormatInt(r.sub, 10) }

// rows reads every worker's output, each worker's batches in order.
func (f *farm) rows() []farmRow {
	f.t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(f.out, "worker=*"))
	var rows []farmRow
	for _, d := range dirs {
		worker := strings.TrimPrefix(filepath.Base(d), "worker=")
		files, _ := filepath.Glob(filepath.Join(d, "part-*.json"))
		slices.Sort(files)
		for _, file := range files {
			batch, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "part-"), ".json"), 10, 64)
			fi, err := os.Stat(file)
			if err != nil {
				f.t.Fatal(err)
			}
			for i, m := range jsonLines(f.t, file) {
				data, err := base64.StdEncoding.DecodeString(m["data"].(string))
				if err != nil {
					f.t.Fatal(err)
				}
				sub, _ := m["subSequenceNumber"].(float64)
				rows = append(rows, farmRow{worker: worker, batch: batch, line: i, shard: m["shardId"].(string),
					seq: m["sequenceNumber"].(string), sub: int64(sub), value: string(data), mtime: fi.ModTime()})
			}
		}
	}
	return rows
}

// waitAll waits until every produced value is in the output, and returns
// the rows.
func (f *farm) waitAll(timeout time.Duration) []farmRow {
	f.t.Helper()
	want := f.total()
	deadline := time.Now().Add(timeout)
	for {
		rows := f.rows()
		seen := map[string]bool{}
		for _, r := range rows {
			seen[r.value] = true
		}
		if len(seen) >= want {
			return rows
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d records in the output after %s; owners %v\n%s", len(seen), want, timeout, f.owners(), f.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (f *farm) logs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(f.workers)) {
		fmt.Fprintf(&b, "--- worker %s ---\n%s\n", id, tail(f.workers[id].log.String(), 4000))
	}
	return b.String()
}

// check verifies every produced value is in the output, each key's values
// in order within each worker, and returns the duplicated row keys with
// their counts.
func (f *farm) check(rows []farmRow) map[string]int {
	f.t.Helper()
	byKey := map[string]int{}
	values := map[string]int{}
	for _, r := range rows {
		byKey[r.key()]++
		values[r.value]++
	}
	for pk, vs := range f.produced {
		for _, v := range vs {
			if values[v] == 0 {
				f.t.Errorf("record %s (key %s) is missing from the output", v, pk)
			}
		}
	}
	// Per worker, in batch and line order, each key's values only grow,
	// apart from a repeat of what that worker wrote before (a restart).
	last := map[string]string{}
	for _, r := range rows {
		pk, _, _ := strings.Cut(r.value, ":")
		k := r.worker + "/" + pk
		if prev, ok := last[k]; ok && r.value < prev && values[r.value] == 1 {
			f.t.Errorf("worker %s wrote %s after %s: key %s out of order", r.worker, r.value, prev, pk)
		}
		if r.value > last[k] {
			last[k] = r.value
		}
	}
	dups := map[string]int{}
	for k, n := range byKey {
		if n > 1 {
			dups[k] = n
		}
	}
	return dups
}

// owners counts the unfinished leases per owner ("" for none).
func (f *farm) owners() map[string]int {
	f.t.Helper()
	counts := map[string]int{}
	tb, err := lease.ReadTable(context.Background(), f.ddb, f.table)
	if err != nil {
		return map[string]int{"error: " + err.Error(): 1} // not created yet
	}
	for _, l := range tb.Leases {
		if !l.Finished {
			counts[l.Owner]++
		}
	}
	return counts
}

// waitOwners waits until the unfinished leases' owners have exactly the
// given counts, and returns how long it took.
func (f *farm) waitOwners(want map[string]int, timeout time.Duration) time.Duration {
	f.t.Helper()
	return f.waitOwnersFunc(func(got map[string]int) bool { return maps.Equal(got, want) }, fmt.Sprint(want), timeout)
}

// waitOwnersFunc waits until ok holds for the owner counts.
func (f *farm) waitOwnersFunc(ok func(map[string]int) bool, want string, timeout time.Duration) time.Duration {
	f.t.Helper()
	start := time.Now()
	for {
		got := f.owners()
		if ok(got) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			f.t.Fatalf("lease owners %v after %s, want %s\n%s", got, timeout, want, f.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// uncommitted returns the shard ranges of a worker's planned but
// uncommitted batch, if it has one: the only records a crash may repeat.
func (f *farm) uncommitted(worker string) map[string][2]string {
	f.t.Helper()
	dir := filepath.Join(f.ckpt, "workers", worker)
	offs, _ := filepath.Glob(filepath.Join(dir, "offsets", "*"))
	last := int64(-1)
	for _, o := range offs {
		if n, err := strconv.ParseInt(filepath.Base(o), 10, 64); err == nil && n > last {
			last = n
		}
	}
	if last < 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "commits", strconv.FormatInt(last, 10))); err == nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "offsets", strconv.FormatInt(last, 10)))
	if err != nil {
		f.t.Fatal(err)
	}
	var e struct {
		Shards map[string]struct {
			Start struct{ Seq string }  `json:"start"`
			End   *struct{ Seq string } `json:"end"`
		} `json:"shards"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		f.t.Fatalf("offsets/%d of %s: %v", last, worker, err)
	}
	r := map[string][2]string{}
	for id, s := range e.Shards {
		if s.End != nil {
			r[id] = [2]string{s.Start.Seq, s.End.Seq}
		}
	}
	return r
}

// within reports whether a row key lies in one of the ranges (start
// exclusive, end inclusive; sequence numbers compared as numbers).
func within(key string, ranges map[string][2]string) bool {
	parts := strings.Split(key, "/")
	rg, ok := ranges[parts[0]]
	if !ok {
		return false
	}
	return cmpNum(parts[1], rg[0]) > 0 && cmpNum(parts[1], rg[1]) <= 0
}

func cmpNum(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func TestWorkersBalanceAndScaleUp(t *testing.T) {
	f := newFarm(t, 12)
	f.produce(24, 0, 20)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.start(id)
	}
	took := f.waitOwners(map[string]int{"w1": 4, "w2": 4, "w3": 4}, 60*time.Second)
	t.Logf("3 workers settled at 4/4/4 in %s", took)
	f.produce(24, 20, 40)
	f.waitAll(60 * time.Second)

	// Scale up: a fourth worker gets 3 leases through graceful handoffs.
	f.start("w4")
	took = f.waitOwners(map[string]int{"w1": 3, "w2": 3, "w3": 3, "w4": 3}, 60*time.Second)
	t.Logf("4 workers settled at 3/3/3/3 in %s after the join", took)
	f.produce(24, 40, 60)
	rows := f.waitAll(60 * time.Second)
	for _, id := range []string{"w1", "w2", "w3", "w4"} {
		f.stop(f.workers[id])
	}
	if dups := f.check(rows); len(dups) > 0 {
		t.Errorf("%d records written more than once with only graceful handoffs: %v", len(dups), dups)
	}
	// A graceful stop releases every lease with its position.
	if got := f.owners(); !maps.Equal(got, map[string]int{"": 12}) {
		t.Errorf("owners after every worker stopped: %v, want all 12 leases released", got)
	}
	t.Logf("%d records, %d rows", f.total(), len(rows))
}

// settle3 starts w1..w3 on a 12-shard stream with data flowing and waits
// for the 4/4/4 split.
func settle3(t *testing.T, trigger string) *farm {
	f := newFarm(t, 12)
	f.trigger = trigger
	f.produce(24, 0, 10)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.start(id)
	}
	f.waitOwners(map[string]int{"w1": 4, "w2": 4, "w3": 4}, 60*time.Second)
	return f
}

// flow writes rounds of records while the workers run, so that a fault
// lands in the middle of batches.
func (f *farm) flow(from, rounds int) int {
	for i := range rounds {
		f.produce(24, from+i*2, from+i*2+2)
		time.Sleep(40 * time.Millisecond)
	}
	return from + rounds*2
}

// checkDupsWithin fails unless every duplicate lies in the given ranges.
func (f *farm) checkDupsWithin(dups map[string]int, ranges map[string][2]string, why string) {
	f.t.Helper()
	where := map[string][]string{}
	for _, r := range f.rows() {
		if dups[r.key()] > 0 {
			where[r.key()] = append(where[r.key()], fmt.Sprintf("%s/%d", r.worker, r.batch))
		}
	}
	for k, n := range dups {
		if n > 2 || !within(k, ranges) {
			f.t.Logf("%s in %v", k, where[k])
			if !f.dumped {
				f.dumped = true
				shard, _, _ := strings.Cut(k, "/")
				for _, w := range f.workers {
					for _, line := range strings.Split(w.log.String(), "\n") {
						if strings.Contains(line, shard) || strings.Contains(line, "abandon") {
							f.t.Logf("%s: %.400s", w.id, line)
						}
					}
				}
			}
			f.t.Errorf("record %s written %d times; only the records of %s may repeat, once (%v)", k, n, why, ranges)
		}
	}
}

func TestWorkersCrashTakeover(t *testing.T) {
	// Batches back to back, each held up in a SQL stage for some
	// milliseconds, so that the kill most likely lands inside one.
	f := newFarm(t, 12)
	f.trigger = "processing-time=0s"
	f.extra = []string{"--sql", "SELECT * FROM source WHERE (SELECT count(*) FROM range(20000000)) > 0"}
	f.produce(24, 0, 10)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.start(id)
	}
	f.waitOwners(map[string]int{"w1": 4, "w2": 4, "w3": 4}, 60*time.Second)
	w2 := f.workers["w2"]
	// Kill in the middle of the flow, most likely during a batch.
	var killed time.Time
	timer := time.AfterFunc(300*time.Millisecond, func() { killed = time.Now(); f.kill(w2) })
	n := f.flow(10, 15)
	timer.Stop()
	inflight := f.uncommitted("w2")
	f.waitOwners(map[string]int{"w1": 6, "w3": 6}, 30*time.Second)
	took := time.Since(killed)
	// Taken over within the lease time after the last renewal (at most one
	// renewal interval before the kill), plus the scan that sees it.
	bound := farmLeaseTime + farmRenew + 2*farmTake + time.Second
	t.Logf("w2's shards taken over %s after SIGKILL (bound %s); its batch in flight: %v", took, bound, inflight)
	if took > bound {
		t.Errorf("takeover took %s, more than lease time + renewal interval (+ slack) = %s", took, bound)
	}
	f.flow(n, 5)
	rows := f.waitAll(60 * time.Second)
	f.stop(f.workers["w1"])
	f.stop(f.workers["w3"])
	dups := f.check(rows)
	f.checkDupsWithin(dups, inflight, "the killed worker's uncommitted batch")
	t.Logf("%d records, %d rows, %d repeated (all in w2's uncommitted batch); killed at %s", f.total(), len(rows), len(dups), killed.Format(time.TimeOnly))
}

func TestWorkersZombieIsFenced(t *testing.T) {
	f := settle3(t, "processing-time=200ms")
	w2 := f.workers["w2"]
	timer := time.AfterFunc(200*time.Millisecond, func() { _ = w2.cmd.Process.Signal(syscall.SIGSTOP) })
	n := f.flow(10, 10)
	timer.Stop()
	inflight := f.uncommitted("w2") // w2 is stopped: its log does not move
	f.waitOwners(map[string]int{"w1": 6, "w3": 6}, 30*time.Second)
	n = f.flow(n, 10) // read by the new owners while w2 sleeps
	if err := w2.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// w2 finds out at its next renewal, stops reading those shards and
	// hands nothing of them to the sink; then it rejoins and balances.
	f.waitOwners(map[string]int{"w1": 4, "w2": 4, "w3": 4}, 60*time.Second)
	f.flow(n, 5)
	rows := f.waitAll(60 * time.Second)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.stop(f.workers[id])
	}
	log := w2.log.String()
	if !strings.Contains(log, "lease lost") {
		t.Errorf("w2 never noticed it lost its leases:\n%s", tail(log, 4000))
	}
	dups := f.check(rows)
	f.checkDupsWithin(dups, inflight, "the batch w2 was writing when it was paused")
	t.Logf("%d records, %d rows, %d repeated; w2's batch in flight at SIGSTOP: %v", f.total(), len(rows), len(dups), inflight)
}

// midHashKey is the middle of a shard's hash key range.
func midHashKey(t *testing.T, s kinesistypes.Shard) string {
	lo, ok1 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
	hi, ok2 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
	if !ok1 || !ok2 {
		t.Fatalf("shard %s: bad hash key range", aws.ToString(s.ShardId))
	}
	return new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1).String()
}

func TestWorkersReshardKeepsOrder(t *testing.T) {
	f := newFarm(t, 4)
	f.produce(16, 0, 10)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.start(id)
	}
	f.waitAll(60 * time.Second)
	n := f.flow(10, 5)

	// A split and a merge while the three workers run.
	shards := testenv.Shards(t, f.kc, f.stream)
	testenv.SplitShard(t, f.kc, f.stream, aws.ToString(shards[0].ShardId), midHashKey(t, shards[0]))
	n = f.flow(n, 3)
	if _, err := f.kc.MergeShards(context.Background(), &kinesis.MergeShardsInput{
		StreamName: aws.String(f.stream), ShardToMerge: shards[2].ShardId, AdjacentShardToMerge: shards[3].ShardId,
	}); err != nil {
		t.Fatal(err)
	}
	f.flow(n, 8)
	rows := f.waitAll(90 * time.Second)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.stop(f.workers[id])
	}
	if dups := f.check(rows); len(dups) > 0 {
		t.Errorf("%d records written more than once: %v", len(dups), dups)
	}

	// Every key's records from a parent were written before any of its
	// records from a child, whichever workers held them.
	parents := map[string][]string{}
	for _, s := range testenv.Shards(t, f.kc, f.stream) {
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil {
				parents[aws.ToString(s.ShardId)] = append(parents[aws.ToString(s.ShardId)], *p)
			}
		}
	}
	type span struct{ first, last time.Time }
	at := map[string]span{} // key/shard -> when its rows were written
	for _, r := range rows {
		pk, _, _ := strings.Cut(r.value, ":")
		k := pk + "/" + r.shard
		s, ok := at[k]
		if !ok || r.mtime.Before(s.first) {
			s.first = r.mtime
		}
		if r.mtime.After(s.last) {
			s.last = r.mtime
		}
		at[k] = s
	}
	children := 0
	for k, s := range at {
		pk, shard, _ := strings.Cut(k, "/")
		for _, p := range parents[shard] {
			children++
			if ps, ok := at[pk+"/"+p]; ok && ps.last.After(s.first) {
				t.Errorf("key %s: child shard %s written from %s, before its parent %s was done (%s)", pk, shard, s.first.Format(time.StampMicro), p, ps.last.Format(time.StampMicro))
			}
		}
	}
	if children == 0 {
		t.Fatal("no record was read from a child shard")
	}
	var finished []string
	for _, w := range f.workers {
		for _, line := range strings.Split(w.log.String(), "\n") {
			if strings.Contains(line, "shard finished") {
				_, shard, _ := strings.Cut(line, "shard=")
				finished = append(finished, w.id+":"+strings.Fields(shard)[0])
			}
		}
	}
	slices.Sort(finished)
	t.Logf("%d records, %d rows; parents finished by %v", f.total(), len(rows), finished)
}

// quietProxy forwards to target; the errors of requests a stopping worker
// abandons are not logged (they would interleave with benchmark output).
func quietProxy(target *url.URL) *httputil.ReverseProxy {
	p := httputil.NewSingleHostReverseProxy(target)
	p.ErrorLog = log.New(io.Discard, "", 0)
	return p
}

// throttler answers a share of DynamoDB requests with
// ProvisionedThroughputExceededException, and all of them while blocked.
type throttler struct {
	next    http.Handler
	mu      sync.Mutex
	share   float64
	blocked bool
	n       int
}

func (th *throttler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	th.mu.Lock()
	hit := th.blocked || rand.Float64() < th.share
	if hit {
		th.n++
	}
	th.mu.Unlock()
	if !hit {
		th.next.ServeHTTP(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected by the test"}`)
}

func (th *throttler) set(share float64, blocked bool) {
	th.mu.Lock()
	th.share, th.blocked = share, blocked
	th.mu.Unlock()
}

func TestWorkersLeaseTableThrottled(t *testing.T) {
	f := newFarm(t, 12)
	target, err := url.Parse(f.ddbURL)
	if err != nil {
		t.Fatal(err)
	}
	th := &throttler{next: quietProxy(target)}
	proxy := httptest.NewServer(th)
	t.Cleanup(proxy.Close)
	f.ddbURL = proxy.URL

	f.produce(24, 0, 10)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.start(id)
	}
	f.waitOwners(map[string]int{"w1": 4, "w2": 4, "w3": 4}, 60*time.Second)
	th.set(0.3, false)
	n := f.flow(10, 10)
	// A burst: every lease-table call throttled for longer than the lease
	// time, so renewals fall behind and workers must stop handing those
	// shards' records to the sink until they renew or hand over.
	th.set(0.3, true)
	blocked := time.Now()
	n = f.flow(n, 10)
	time.Sleep(time.Until(blocked.Add(farmLeaseTime + time.Second)))
	th.set(0.3, false)
	n = f.flow(n, 10)
	th.set(0, false)
	f.flow(n, 5)
	rows := f.waitAll(90 * time.Second)
	f.waitOwners(map[string]int{"w1": 4, "w2": 4, "w3": 4}, 60*time.Second)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.stop(f.workers[id])
	}
	// No split brain: no shard was read by two workers at once, which
	// would repeat records.
	if dups := f.check(rows); len(dups) > 0 {
		t.Errorf("%d records written more than once under lease-table throttling: %v", len(dups), dups)
	}
	var abandoned, lost int
	for _, w := range f.workers {
		abandoned += strings.Count(w.log.String(), "batch abandoned")
		lost += strings.Count(w.log.String(), "lease lost")
	}
	th.mu.Lock()
	t.Logf("%d records, %d rows; %d lease-table calls throttled; %d batches abandoned and %d leases lost on the way", f.total(), len(rows), th.n, abandoned, lost)
	th.mu.Unlock()
}

func TestWorkersEnhancedFanOut(t *testing.T) {
	f := newFarm(t, 6)
	f.extra = []string{"--source-option", "kinesis.consumerType=SubscribeToShard", "--source-option", "kinesis.consumerName=workers"}
	f.produce(12, 0, 10)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.start(id)
	}
	f.waitOwners(map[string]int{"w1": 2, "w2": 2, "w3": 2}, 60*time.Second)
	f.produce(12, 10, 30)
	rows := f.waitAll(60 * time.Second)
	for _, id := range []string{"w1", "w2", "w3"} {
		f.stop(f.workers[id])
	}
	if dups := f.check(rows); len(dups) > 0 {
		t.Errorf("%d records written more than once: %v", len(dups), dups)
	}
	// The workers share one consumer, and none of them deregisters it.
	out, err := f.kc.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: f.streamARN()})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Consumers) != 1 || aws.ToString(out.Consumers[0].ConsumerName) != "workers" {
		t.Errorf("consumers after the workers stopped: %+v; want the one shared consumer left registered", out.Consumers)
	}
}

func (f *farm) streamARN() *string {
	f.t.Helper()
	out, err := f.kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(f.stream)})
	if err != nil {
		f.t.Fatal(err)
	}
	return out.StreamDescriptionSummary.StreamARN
}

func TestWorkerIDIsChecked(t *testing.T) {
	base := []string{"run", "--source-option", "kinesis.streamName=s", "--source-option", "kinesis.region=" + testenv.Region,
		"--checkpoint", t.TempDir(), "--trigger", "once"}
	for _, c := range []struct {
		args []string
		want string
	}{
		// The id names a directory under the checkpoint: no path in it.
		{[]string{"--source-option", "shardflow.coordination=DYNAMODB", "--source-option", "shardflow.lease.tableName=leases", "--worker-id", "../escape"}, `shardflow.workerId`},
		{[]string{"--worker-id", "w1"}, `--worker-id "w1" needs worker mode`},
		{[]string{"--source-option", "shardflow.coordination=DYNAMODB"}, "needs a lease table"},
		// A worker sees only its own shards: "once" means nothing there.
		{[]string{"--source-option", "shardflow.coordination=DYNAMODB", "--source-option", "shardflow.lease.tableName=leases", "--worker-id", "w1"}, "use a processing-time trigger"},
	} {
		var stdout, stderr strings.Builder
		if code := Run(append(slices.Clone(base), c.args...), &stdout, &stderr, nil); code != ExitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr.String(), ExitUsage, c.want)
		}
	}
}

// TestWorkersS3Checkpoint runs worker mode as on several machines: the
// job's checkpoint in S3 (gofakes3), so that a worker taking over a dead
// worker's shards reads the dead worker's log from S3.
func TestWorkersS3Checkpoint(t *testing.T) {
	f := newFarm(t, 6)
	s3URL := testenv.FakeS3(t)
	f.ckpt = "s3://" + testenv.UniqueName("ckpt-") + "/job"
	f.trigger = "processing-time=0s"
	f.extra = []string{"--source-option", "shardflow.s3.endpointUrl=" + s3URL,
		"--sql", "SELECT * FROM source WHERE (SELECT count(*) FROM range(20000000)) > 0"}
	f.produce(12, 0, 10)
	w1, w2 := f.start("w1"), f.start("w2")
	f.waitOwners(map[string]int{"w1": 3, "w2": 3}, 60*time.Second)
	timer := time.AfterFunc(300*time.Millisecond, func() { f.kill(w2) })
	n := f.flow(10, 15)
	timer.Stop()
	f.waitOwners(map[string]int{"w1": 6}, 30*time.Second)
	f.flow(n, 5)
	rows := f.waitAll(60 * time.Second)
	f.stop(w1)

	store, err := ckptopen.Open(context.Background(), f.ckpt+"/workers/w2", ckptopen.Config{
		AWS: kds.AWSConfig{Region: testenv.Region, AccessKeyID: testenv.AccessKeyID, SecretKey: testenv.SecretKey},
		S3:  ckptopen.Service{EndpointURL: s3URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := engine.Inspect(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastCommittedBatch == nil {
		t.Fatal("w2 committed no batch to S3 before it was killed")
	}
	inflight := map[string][2]string{}
	for _, s := range st.Shards {
		if st.PendingBatch != nil && s.PendingEnd != nil {
			inflight[s.ID] = [2]string{s.Next.Seq, s.PendingEnd.Seq}
		}
	}
	dups := f.check(rows)
	f.checkDupsWithin(dups, inflight, "w2's uncommitted batch")
	t.Logf("%d records, %d rows, %d repeated; w2 committed up to batch %d in S3, in flight: %v", f.total(), len(rows), len(dups), *st.LastCommittedBatch, inflight)
}
