package shardflow_test

// Helpers for the resharding, retention and lineage suite
// (reshard_it_test.go): backends (an own kdsfake server per test, the
// emulators, the shared enhanced fan-out server), a producer of keyed
// records with a per-key counter, and the lineage checks. They build on
// it_helpers_test.go (itEnv, itCollector, checkExactlyOnce, ...).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// rsKdsfake is the backend name of a kdsfake server of the test's own,
// read by polling.
const rsKdsfake = "kdsfake"

// rsBackend is where a test of this suite runs: an emulator endpoint, and
// the kdsfake server when the test has one of its own.
type rsBackend struct {
	testenv.Emulator
	srv *kdsfake.Server // rsKdsfake: the test's own; kdsfakeEFO: the shared one
}

// forEachBackend runs f as a parallel subtest per named backend:
// rsKdsfake (a new kdsfake server with cfg, polled), testenv.Kinesalite,
// testenv.KinesisMock (skipped when the test script did not start them,
// failed with CI=true), and kdsfakeEFO (the package's shared server, read
// with enhanced fan-out).
func forEachBackend(t *testing.T, cfg kdsfake.Config, names []string, f func(t *testing.T, b rsBackend)) {
	t.Helper()
	envs := map[string]string{testenv.Kinesalite: testenv.EnvKinesalite, testenv.KinesisMock: testenv.EnvKinesisMock}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			switch name {
			case rsKdsfake:
				srv := kdsfake.Start(t, cfg)
				f(t, rsBackend{Emulator: testenv.Emulator{Name: rsKdsfake, Endpoint: srv.URL()}, srv: srv})
			case kdsfakeEFO:
				if efoServer == nil {
					t.Fatal("the shared kdsfake server is not running (TestMain calls setUpEFO)")
				}
				f(t, rsBackend{Emulator: testenv.Emulator{Name: kdsfakeEFO, Endpoint: efoServer.URL()}, srv: efoServer})
			default:
				ep := strings.TrimSpace(os.Getenv(envs[name]))
				if ep == "" {
					if os.Getenv("CI") == "true" {
						t.Fatalf("CI=true but %s is not set: the test script must start %s", envs[name], name)
					}
					t.Skipf("%s not set: run under scripts/emulators.sh", envs[name])
				}
				f(t, rsBackend{Emulator: testenv.Emulator{Name: name, Endpoint: ep}})
			}
		})
	}
}

// rsOptions are the options of every query of the suite, on top of
// newITEnv's: fast shard discovery, and a log long enough that the
// lineage checks can read every offsets entry.
func rsOptions(extra map[string]string) map[string]string {
	o := map[string]string{
		"kinesis.describeShardInterval":      "100ms",
		"kinesis.getRecords.fetchIntervalMs": "20",
		"kinesis.minBatchesToRetain":         "100000",
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

// Keyed records.

// keyedProducer writes records whose partition key is one of a fixed set
// of keys and whose data is "<key>:<counter>", the counter counting that
// key's records from 0. It remembers every record written.
type keyedProducer struct {
	kc     *kinesis.Client
	stream string

	mu   sync.Mutex
	keys []string
	next map[string]int
	i    int
	puts []testenv.Put
}

// newKeyedProducer returns a producer over n keys. Keys hash all over the
// key space, so every shard of a split or merge gets some.
func newKeyedProducer(e *itEnv, n int) *keyedProducer {
	p := &keyedProducer{kc: e.kc, stream: e.stream, next: map[string]int{}}
	for i := range n {
		p.keys = append(p.keys, fmt.Sprintf("key-%03d", i))
	}
	return p
}

// records returns the next n records, the keys taken round robin.
// Caller holds p.mu.
func (p *keyedProducer) records(n int) []testenv.Record {
	recs := make([]testenv.Record, n)
	for j := range recs {
		k := p.keys[p.i%len(p.keys)]
		p.i++
		recs[j] = testenv.Record{PartitionKey: k, Data: []byte(k + ":" + strconv.Itoa(p.next[k]))}
		p.next[k]++
	}
	return recs
}

// put writes n records (PutRecords calls of at most 500, in order) and
// fails the test if one is not written. Call it from the test goroutine.
func (p *keyedProducer) put(t *testing.T, n int) []testenv.Put {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	puts := testenv.PutRecords(t, p.kc, p.stream, p.records(n))
	p.puts = append(p.puts, puts...)
	return puts
}

// tryPut writes n records in one PutRecords call (n <= 500) and returns
// an error instead of failing the test, for producer goroutines. A call
// that fails leaves the producer unusable: which of its records were
// written is unknown.
func (p *keyedProducer) tryPut(ctx context.Context, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	recs := p.records(n)
	in := &kinesis.PutRecordsInput{StreamName: aws.String(p.stream)}
	for _, r := range recs {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(r.PartitionKey)})
	}
	out, err := p.kc.PutRecords(ctx, in)
	if err != nil {
		return fmt.Errorf("PutRecords to %s: %w", p.stream, err)
	}
	if n := aws.ToInt32(out.FailedRecordCount); n > 0 {
		for _, e := range out.Records {
			if e.ErrorCode != nil {
				return fmt.Errorf("PutRecords to %s: %d records failed, e.g. %s: %s", p.stream, n, aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
			}
		}
		return fmt.Errorf("PutRecords to %s: %d records failed", p.stream, n)
	}
	for i, e := range out.Records {
		p.puts = append(p.puts, testenv.Put{Record: recs[i], ShardID: aws.ToString(e.ShardId), SequenceNumber: aws.ToString(e.SequenceNumber)})
	}
	return nil
}

// produce runs a producer goroutine that writes n records every pause
// until stop is closed. The returned channel yields its error (nil if
// none) once it has stopped.
func (p *keyedProducer) produce(ctx context.Context, n int, pause time.Duration, stop <-chan struct{}) <-chan error {
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			case <-ctx.Done():
				done <- ctx.Err()
				return
			default:
			}
			if err := p.tryPut(ctx, n); err != nil {
				done <- err
				return
			}
			time.Sleep(pause) // a steady rate, not a flood
		}
	}()
	return done
}

// all returns every record written so far.
func (p *keyedProducer) all() []testenv.Put {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.puts)
}

// parseKeyed splits "<key>:<counter>".
func parseKeyed(data string) (string, int, bool) {
	i := strings.LastIndexByte(data, ':')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(data[i+1:])
	return data[:i], n, err == nil
}

// checkPutOrder checks the producer's side of the per-key order: records
// of one key that landed on the same shard got increasing sequence
// numbers in the order they were written. If the server broke this, the
// reader's order could not be judged.
func checkPutOrder(t *testing.T, puts []testenv.Put) {
	t.Helper()
	type last struct{ shard, seq string }
	prev := map[string]last{}
	for _, p := range puts {
		if l, ok := prev[p.PartitionKey]; ok && l.shard == p.ShardID && seqCmp(l.seq, p.SequenceNumber) >= 0 {
			t.Fatalf("the server wrote %q at %s/%s, not after the key's previous record %s/%s: per-key order cannot be checked", p.Data, p.ShardID, p.SequenceNumber, l.shard, l.seq)
		}
		prev[p.PartitionKey] = last{p.ShardID, p.SequenceNumber}
	}
}

// checkKeyOrder checks that each key's counter strictly increases in the
// output order: batch id, then row order.
func checkKeyOrder(t *testing.T, batches []itBatch) {
	t.Helper()
	type seen struct {
		n     int
		batch int64
		row   itRow
	}
	last := map[string]seen{}
	bad := 0
	for _, b := range batches {
		for _, r := range b.Rows {
			key, n, ok := parseKeyed(r.Data)
			if !ok || key != r.PartitionKey {
				t.Errorf("batch %d: row %s is not a keyed record of key %q", b.ID, r, r.PartitionKey)
				continue
			}
			if l, ok := last[key]; ok && l.n >= n {
				bad++
				if bad <= 20 {
					t.Errorf("key %s out of order: %s in batch %d after %s in batch %d", key, r, b.ID, l.row, l.batch)
				}
			}
			last[key] = seen{n, b.ID, r}
		}
	}
	if bad > 20 {
		t.Errorf("... %d rows out of per-key order in all", bad)
	}
}

// checkCommitted checks that every batch the sink holds has its commit
// log entry: the rows checked are those of committed batches.
func checkCommitted(t *testing.T, e *itEnv, batches []itBatch) {
	t.Helper()
	commits := e.logIDs("commits")
	for _, b := range batches {
		if _, ok := slices.BinarySearch(commits, b.ID); !ok {
			t.Errorf("batch %d reached the sink but has no commits/%d", b.ID, b.ID)
		}
	}
}

// lineage maps each shard of the stream to its parents (parent and
// adjacent parent), as ListShards shows them now.
func (e *itEnv) lineage() map[string][]string {
	e.t.Helper()
	m := map[string][]string{}
	for _, sh := range testenv.Shards(e.t, e.kc, e.stream) {
		var ps []string
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if aws.ToString(p) != "" {
				ps = append(ps, aws.ToString(p))
			}
		}
		m[aws.ToString(sh.ShardId)] = ps
	}
	return m
}

// finishedIn reads the offsets log once and returns, per shard, the first
// batch whose entry marks it finished.
func (e *itEnv) finishedIn() map[string]int64 {
	e.t.Helper()
	first := map[string]int64{}
	for _, id := range e.logIDs("offsets") {
		for sh, o := range e.offsets(id).Shards {
			if _, ok := first[sh]; !ok && o.State == "finished" {
				first[sh] = id
			}
		}
	}
	return first
}

// checkLineage checks invariant 4 for every shard of the stream that has
// parents and rows: every row of each parent is in an earlier batch than
// the child's first row, and the offsets log marks each parent finished
// at or before that batch (a parent whose records were all committed
// finishes without a batch of its own). A parent with no rows (an empty
// intermediate shard of UpdateShardCount) is held to the second rule only.
// It returns how many child shards it checked.
func (e *itEnv) checkLineage(batches []itBatch) int {
	e.t.Helper()
	lin := e.lineage()
	fin := e.finishedIn()
	firstRow, lastRow := map[string]int64{}, map[string]int64{}
	for _, b := range batches {
		for _, r := range b.Rows {
			if _, ok := firstRow[r.Shard]; !ok {
				firstRow[r.Shard] = b.ID
			}
			lastRow[r.Shard] = b.ID
		}
	}
	checked := 0
	for _, child := range slices.Sorted(maps.Keys(lin)) {
		first, ok := firstRow[child]
		if !ok || len(lin[child]) == 0 {
			continue
		}
		checked++
		for _, p := range lin[child] {
			if last, ok := lastRow[p]; ok && last >= first {
				e.t.Errorf("child %s read in batch %d, but its parent %s still had rows in batch %d", child, first, p, last)
			}
			switch f, ok := fin[p]; {
			case !ok:
				e.t.Errorf("child %s read in batch %d, but its parent %s is never marked finished in the offsets log", child, first, p)
			case f > first:
				e.t.Errorf("child %s read in batch %d, but its parent %s was finished only in batch %d", child, first, p, f)
			}
		}
	}
	return checked
}

// checkAll is the suite's full check of what the sink holds against what
// was written: exactly once, per-key order, per-shard order, lineage, and
// only committed batches. It returns the number of rows.
func (e *itEnv) checkAll(puts []testenv.Put) int {
	t := e.t
	t.Helper()
	checkPutOrder(t, puts)
	batches := e.sink.batches()
	var rows []itRow
	for _, b := range batches {
		rows = append(rows, b.Rows...)
	}
	checkExactlyOnce(t, rows, puts)
	checkKeyOrder(t, batches)
	checkShardOrder(t, batches)
	checkCommitted(t, e, batches)
	n := e.checkLineage(batches)
	t.Logf("%s: %d records exactly once in %d batches, per-key order kept, %d child shards read after their parents", e.em.Name, len(rows), len(batches), n)
	return len(rows)
}

// Resharding.

// openShards returns the open shards sorted by starting hash key.
func (e *itEnv) openShards() []types.Shard {
	e.t.Helper()
	var open []types.Shard
	for _, sh := range testenv.Shards(e.t, e.kc, e.stream) {
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, sh)
		}
	}
	slices.SortFunc(open, func(a, b types.Shard) int {
		return hashKeyOf(a.HashKeyRange.StartingHashKey).Cmp(hashKeyOf(b.HashKeyRange.StartingHashKey))
	})
	return open
}

func hashKeyOf(s *string) *big.Int {
	v, _ := new(big.Int).SetString(aws.ToString(s), 10)
	if v == nil {
		v = new(big.Int)
	}
	return v
}

// mergePair merges two adjacent open shards and returns the child: the
// shard whose parents are exactly these two.
func (e *itEnv) mergePair(shard, adjacent string) string {
	e.t.Helper()
	_, err := e.kc.MergeShards(e.t.Context(), &kinesis.MergeShardsInput{
		StreamName:           aws.String(e.stream),
		ShardToMerge:         aws.String(shard),
		AdjacentShardToMerge: aws.String(adjacent),
	})
	if err != nil {
		e.t.Fatalf("MergeShards %s %s: %v", shard, adjacent, err)
	}
	testenv.WaitActive(e.t, e.kc, e.stream)
	for _, sh := range testenv.Shards(e.t, e.kc, e.stream) {
		if aws.ToString(sh.ParentShardId) == shard && aws.ToString(sh.AdjacentParentShardId) == adjacent {
			return aws.ToString(sh.ShardId)
		}
	}
	e.t.Fatalf("merge of %s and %s: no child with these parents", shard, adjacent)
	return ""
}

// updateShardCount scales the stream uniformly and waits until it is
// ACTIVE.
func (e *itEnv) updateShardCount(n int) {
	e.t.Helper()
	_, err := e.kc.UpdateShardCount(e.t.Context(), &kinesis.UpdateShardCountInput{
		StreamName:       aws.String(e.stream),
		TargetShardCount: aws.Int32(int32(n)),
		ScalingType:      types.ScalingTypeUniformScaling,
	})
	if err != nil {
		e.t.Fatalf("UpdateShardCount to %d: %v", n, err)
	}
	testenv.WaitActive(e.t, e.kc, e.stream)
	if got := len(e.openShards()); got != n {
		e.t.Fatalf("UpdateShardCount to %d: %d open shards", n, got)
	}
}

// progressMetric returns a source metric of a progress record as an int.
func progressMetric(t *testing.T, m map[string]string, name string) int {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("progress metrics %v have no %q", m, name)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("progress metric %s=%q: %v", name, v, err)
	}
	return n
}

// progressJSON renders progress records for a failure message.
func progressJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Retention.

// shiftClock is a kdsfake clock that runs with real time plus an offset a
// test moves forward, e.g. past the retention period.
type shiftClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *shiftClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// logTee keeps what a query logs at Warn and above, and passes it on to
// the test log.
type logTee struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logTee) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logTee) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// warned reports whether a line logged at level WARN mentions s.
func (l *logTee) warned(s string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// captureWarnings makes the env's later queries log warnings to the
// returned logTee as well as to the test.
func captureWarnings(e *itEnv) *logTee {
	tee := &logTee{}
	w := &itLogWriter{t: e.t}
	e.t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	e.log = slog.New(slog.NewTextHandler(io.MultiWriter(w, tee), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return tee
}

// listed reports whether ListShards shows the shard.
func (e *itEnv) listed(shardID string) bool {
	e.t.Helper()
	for _, sh := range testenv.Shards(e.t, e.kc, e.stream) {
		if aws.ToString(sh.ShardId) == shardID {
			return true
		}
	}
	return false
}

// waitFailed waits for a query that must fail to return, and returns
// Run's error. It fails the test at once if the sink gets more than
// calls batches meanwhile: the query went on instead of failing.
func waitFailed(t *testing.T, e *itEnv, r *itRun, calls int) error {
	t.Helper()
	deadline := time.Now().Add(itTimeout)
	for {
		select {
		case <-r.done:
			return r.err
		default:
		}
		if n := len(e.sink.allCalls()); n > calls {
			t.Fatalf("the query went on (%d batches: %v) instead of failing", n, e.sink.allCalls()[calls:])
		}
		if time.Now().After(deadline) {
			t.Fatalf("query still running after %s", itTimeout)
		}
		time.Sleep(20 * time.Millisecond) // polling a query against a server
	}
}

// On-demand streams.

// useOnDemandStream creates an ON_DEMAND stream (no shard count: the
// server picks it) and points the env at it instead of the stream
// newITEnv made.
func (e *itEnv) useOnDemandStream() {
	e.t.Helper()
	name := e.stream + "-od"
	_, err := e.kc.CreateStream(e.t.Context(), &kinesis.CreateStreamInput{
		StreamName:        aws.String(name),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand},
	})
	if err != nil {
		e.t.Fatalf("CreateStream %s ON_DEMAND: %v", name, err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)})
	})
	testenv.WaitActive(e.t, e.kc, name)
	sum, err := e.kc.DescribeStreamSummary(e.t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	if m := sum.StreamDescriptionSummary.StreamModeDetails; m == nil || m.StreamMode != types.StreamModeOnDemand {
		e.t.Fatalf("stream %s mode %+v, want ON_DEMAND", name, m)
	}
	e.stream = name
	e.opts["kinesis.streamName"] = name
}
