package shardflow_test

// Helpers for the source integration suite (source_it_test.go): a throwaway
// stream on an emulator, queries on the real kds source with a local
// checkpoint, a collecting sink, and checks.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kpl"
)

// itTimeout bounds every wait of the suite. The emulators are real servers
// shared by parallel tests, so it is generous; nothing is asserted about
// how long a wait took unless a test says so.
const itTimeout = 60 * time.Second

// itEnv is one test's stream on one emulator, its checkpoint directory and
// the sink every query of the test writes to.
type itEnv struct {
	t      *testing.T
	em     testenv.Emulator
	kc     *kinesis.Client
	stream string
	ckpt   string
	opts   map[string]string
	sink   *itCollector   // collects every batch
	out    shardflow.Sink // the queries' sink: sink unless a test sets another
	log    *slog.Logger
	keys   map[string]string // shard id -> an explicit hash key routing to it
	// agg is the number of user records per KPL aggregate the put helpers
	// write (the kpl format of forEachSource); 0 writes plain records.
	agg int
}

// newITEnv creates a stream with the given number of shards and returns the
// test's environment. opts are added to (or override) the base options.
func newITEnv(t *testing.T, em testenv.Emulator, shards int, opts map[string]string) *itEnv {
	t.Helper()
	kc := testenv.KinesisClient(t, em.Endpoint)
	stream := testenv.CreateStream(t, kc, shards)
	base := map[string]string{
		"kinesis.streamName":                 stream,
		"kinesis.endpointUrl":                em.Endpoint,
		"kinesis.region":                     testenv.Region,
		"kinesis.awsAccessKeyId":             testenv.AccessKeyID,
		"kinesis.awsSecretKey":               testenv.SecretKey,
		"kinesis.getRecords.fetchIntervalMs": "20",
		"kinesis.describeShardInterval":      "200ms",
		"kinesis.clientRetryIntervalsMs":     "100",
		"kinesis.clientMaxRetryIntervalMs":   "2000",
	}
	if em.Name == kdsfakeEFO {
		maps.Copy(base, efoOptions())
	}
	maps.Copy(base, opts)
	col := &itCollector{}
	t.Cleanup(func() { col.check(t) })
	return &itEnv{
		t:      t,
		em:     em,
		kc:     kc,
		stream: stream,
		ckpt:   filepath.Join(t.TempDir(), "checkpoint"),
		opts:   base,
		sink:   col,
		out:    col,
		log:    itLogger(t),
		keys:   map[string]string{},
		agg:    itAggregation(t),
	}
}

// itLogger logs to the test at Warn level (SHARDFLOW_IT_LOG=debug or info
// for more), and drops what comes after the test ended.
func itLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	switch strings.ToLower(os.Getenv("SHARDFLOW_IT_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	}
	w := &itLogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type itLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *itLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// query returns a query on a new kds source with the env's options plus
// extra, the env's checkpoint and sink.
func (e *itEnv) query(trigger shardflow.Trigger, extra map[string]string) *shardflow.Query {
	e.t.Helper()
	o := maps.Clone(e.opts)
	maps.Copy(o, extra)
	return newITQuery(e.t, "it", o, nil, e.ckpt, trigger, e.out, e.sink.onProgress, e.log)
}

// newITQuery builds a query of the integration suites from source options:
// the kds source (with httpClient when not nil), the checkpoint at ckpt,
// out as the sink and onProgress on every batch.
func newITQuery(t *testing.T, name string, opts map[string]string, httpClient *http.Client, ckpt string,
	trigger shardflow.Trigger, out shardflow.Sink, onProgress func(shardflow.Progress), log *slog.Logger) *shardflow.Query {
	t.Helper()
	cfg, err := kds.ParseSourceOptions(opts, log)
	if err != nil {
		t.Fatalf("options: %v", err)
	}
	if httpClient != nil {
		cfg.AWS.HTTPClient = httpClient
	}
	src, err := kds.NewSource(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("kds.NewSource: %v", err)
	}
	q, err := shardflow.NewQuery(shardflow.QueryConfig{
		Name:               name,
		CheckpointLocation: ckpt,
		Trigger:            trigger,
		Source:             src,
		Sink:               out,
		Logger:             log,
		OnProgress:         onProgress,
	})
	if err != nil {
		t.Fatalf("NewQuery: %v", err)
	}
	return q
}

// run runs a Once or AvailableNow query to its end and returns Run's error.
func (e *itEnv) run(trigger shardflow.Trigger, extra map[string]string) error {
	e.t.Helper()
	q := e.query(trigger, extra)
	ctx, cancel := context.WithTimeout(e.t.Context(), itTimeout)
	defer cancel()
	return q.Run(ctx)
}

// mustRun is run and fails the test on an error.
func (e *itEnv) mustRun(trigger shardflow.Trigger, extra map[string]string) {
	e.t.Helper()
	if err := e.run(trigger, extra); err != nil {
		e.t.Fatalf("%s run: %v", trigger, err)
	}
}

// itRun is a query running in a goroutine.
type itRun struct {
	q       *shardflow.Query
	started time.Time
	done    chan struct{}
	err     error
}

// start runs a query (typically ProcessingTime) in a goroutine until stop.
func (e *itEnv) start(trigger shardflow.Trigger, extra map[string]string) *itRun {
	e.t.Helper()
	r := &itRun{q: e.query(trigger, extra), started: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = r.q.Run(e.t.Context())
	}()
	// t.Context is cancelled before cleanups run, so Run returns even when
	// the test failed before stop.
	e.t.Cleanup(func() { <-r.done })
	return r
}

// failed returns Run's error if it has returned.
func (r *itRun) failed() error {
	select {
	case <-r.done:
		if r.err == nil {
			return fmt.Errorf("query returned before Stop")
		}
		return r.err
	default:
		return nil
	}
}

// stop stops the query gracefully and fails the test if Run failed.
func (r *itRun) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), itTimeout)
	defer cancel()
	if err := r.q.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	<-r.done
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}

// waitFor polls cond until it holds, failing the test after itTimeout or
// as soon as run (if not nil) has returned.
func waitFor(t *testing.T, run *itRun, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(itTimeout)
	for !cond() {
		if run != nil {
			if err := run.failed(); err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", itTimeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a query that runs against real servers
	}
}

// waitRows waits until the sink holds at least n rows (counting each batch
// id once).
func (e *itEnv) waitRows(run *itRun, n int) {
	e.t.Helper()
	waitFor(e.t, run, fmt.Sprintf("%d rows", n), func() bool { return len(e.sink.rows()) >= n })
}

// waitStarted waits until the query has created its checkpoint, which is
// when it resolved kinesis.startingPosition.
func (e *itEnv) waitStarted(run *itRun) {
	e.t.Helper()
	waitFor(e.t, run, "the checkpoint metadata", func() bool { return exists(filepath.Join(e.ckpt, "metadata")) })
}

// Writing records.

// itValues returns the decimal strings lo..hi.
func itValues(lo, hi int) []string {
	var vs []string
	for i := lo; i <= hi; i++ {
		vs = append(vs, strconv.Itoa(i))
	}
	return vs
}

// put writes one record per value (data = the value, partition key
// "pk-<value>") with the given explicit hash key ("" for none).
func (e *itEnv) put(ehk string, values ...string) []testenv.Put {
	e.t.Helper()
	recs := make([]testenv.Record, len(values))
	for i, v := range values {
		recs[i] = testenv.Record{PartitionKey: "pk-" + v, Data: []byte(v), ExplicitHashKey: ehk}
	}
	return e.putRecords(recs)
}

// putRecords writes user records, in order per shard: one Kinesis record
// each, or in the kpl format (itFormatKPL) packed like the KPL does, in
// aggregates of up to e.agg user records bound for the same open shard
// (by explicit hash key, else the MD5 of the partition key), each put
// with the explicit hash key of its first user record. It returns one Put
// per user record, with its sub-sequence number.
func (e *itEnv) putRecords(recs []testenv.Record) []testenv.Put {
	e.t.Helper()
	if e.agg <= 1 {
		return testenv.PutRecords(e.t, e.kc, e.stream, recs)
	}
	type shardRange struct {
		id string
		r  kpl.HashRange
	}
	var ranges []shardRange
	for _, sh := range testenv.Shards(e.t, e.kc, e.stream) {
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		r, _ := kpl.ParseHashRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
		ranges = append(ranges, shardRange{aws.ToString(sh.ShardId), r})
	}
	shardOf := func(k kpl.HashKey) string {
		for _, sr := range ranges {
			if sr.r.Contains(k) {
				return sr.id
			}
		}
		e.t.Fatalf("no open shard of %s holds hash key %s", e.stream, k)
		return ""
	}
	var (
		outer   []testenv.Record
		members [][]testenv.Record
		open    = map[string]int{} // shard -> index in outer of its aggregate being filled
	)
	for _, r := range recs {
		k := kpl.EffectiveHashKey(r.PartitionKey, r.ExplicitHashKey)
		sh := shardOf(k)
		i, ok := open[sh]
		if !ok || len(members[i]) == e.agg {
			i = len(outer)
			open[sh] = i
			outer = append(outer, testenv.Record{PartitionKey: r.PartitionKey, ExplicitHashKey: k.String()})
			members = append(members, nil)
		}
		members[i] = append(members[i], r)
	}
	for i, ms := range members {
		var a kpl.Aggregator
		for _, m := range ms {
			a.Add(m.PartitionKey, m.ExplicitHashKey, m.Data)
		}
		outer[i].Data = a.Build(nil)
	}
	var puts []testenv.Put
	for i, p := range testenv.PutRecords(e.t, e.kc, e.stream, outer) {
		for j, m := range members[i] {
			puts = append(puts, testenv.Put{Record: m, ShardID: p.ShardID, SequenceNumber: p.SequenceNumber, SubSequenceNumber: int64(j)})
		}
	}
	return puts
}

// putOn writes the values to one shard (an explicit hash key in its range)
// and checks they landed there.
func (e *itEnv) putOn(shardID string, values ...string) []testenv.Put {
	e.t.Helper()
	return e.putSpread([]string{shardID}, values...)
}

// putSpread writes the values round-robin over the given shards (explicit
// hash keys in their ranges) in one PutRecords call per 500, and checks
// where they landed.
func (e *itEnv) putSpread(shards []string, values ...string) []testenv.Put {
	e.t.Helper()
	recs := make([]testenv.Record, len(values))
	for i, v := range values {
		recs[i] = testenv.Record{PartitionKey: "pk-" + v, Data: []byte(v), ExplicitHashKey: e.hashKey(shards[i%len(shards)])}
	}
	shardOf := map[string]string{} // explicit hash key -> shard
	for _, sh := range shards {
		shardOf[e.hashKey(sh)] = sh
	}
	puts := e.putRecords(recs)
	for _, p := range puts {
		if want := shardOf[p.ExplicitHashKey]; p.ShardID != want {
			e.t.Fatalf("record %q went to %s, not %s", p.Data, p.ShardID, want)
		}
	}
	return puts
}

// hashKey returns the starting hash key of a shard, an explicit hash key
// that routes to it while it is open.
func (e *itEnv) hashKey(shardID string) string {
	e.t.Helper()
	if k, ok := e.keys[shardID]; ok {
		return k
	}
	for _, sh := range testenv.Shards(e.t, e.kc, e.stream) {
		if aws.ToString(sh.ShardId) == shardID {
			e.keys[shardID] = aws.ToString(sh.HashKeyRange.StartingHashKey)
			return e.keys[shardID]
		}
	}
	e.t.Fatalf("stream %s has no shard %s", e.stream, shardID)
	return ""
}

// itShardID returns the id of the stream's i-th shard at creation.
func itShardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// splitInHalf splits a shard at the middle of its hash key range and
// returns the two children, lower range first.
func (e *itEnv) splitInHalf(shardID string) [2]string {
	e.t.Helper()
	var mid *big.Int
	for _, sh := range testenv.Shards(e.t, e.kc, e.stream) {
		if aws.ToString(sh.ShardId) == shardID {
			lo, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
			hi, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
			mid = new(big.Int).Add(lo, hi)
			mid.Rsh(mid, 1)
			mid.Add(mid, big.NewInt(1))
		}
	}
	if mid == nil {
		e.t.Fatalf("no shard %s", shardID)
	}
	testenv.SplitShard(e.t, e.kc, e.stream, shardID, mid.String())
	var kids []string
	lows := map[string]*big.Int{}
	for _, sh := range testenv.Shards(e.t, e.kc, e.stream) {
		if aws.ToString(sh.ParentShardId) == shardID && sh.AdjacentParentShardId == nil {
			id := aws.ToString(sh.ShardId)
			kids = append(kids, id)
			lows[id], _ = new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
		}
	}
	if len(kids) != 2 {
		e.t.Fatalf("split of %s: children %v, want 2", shardID, kids)
	}
	slices.SortFunc(kids, func(a, b string) int { return lows[a].Cmp(lows[b]) })
	return [2]string{kids[0], kids[1]}
}

// merge merges two adjacent shards and returns the child.
func (e *itEnv) merge(shard, adjacent string) string {
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
		if aws.ToString(sh.ParentShardId) != "" && aws.ToString(sh.AdjacentParentShardId) != "" {
			return aws.ToString(sh.ShardId)
		}
	}
	e.t.Fatalf("merge of %s and %s: no child with two parents", shard, adjacent)
	return ""
}

// The collecting sink.

// itRow is one row as the sink received it.
type itRow struct {
	Data         string
	Stream       string
	PartitionKey string
	Seq          string
	Arrival      time.Time
	Shard        string
	Sub          int64
}

// key is the row's unique key (invariant 3).
func (r itRow) key() string { return r.Shard + "/" + r.Seq + "/" + strconv.FormatInt(r.Sub, 10) }

func (r itRow) String() string { return fmt.Sprintf("%s@%s/%s/%d", r.Data, r.Shard, r.Seq, r.Sub) }

// itBatch is one AddBatch call.
type itBatch struct {
	ID     int64
	At     time.Time // when AddBatch was called
	Schema shardflow.Schema
	Rows   []itRow
}

func (b itBatch) String() string { return fmt.Sprintf("batch %d %v", b.ID, b.values()) }

func (b itBatch) values() []string {
	vs := make([]string, len(b.Rows))
	for i, r := range b.Rows {
		vs[i] = r.Data
	}
	return vs
}

// shards returns how many rows the batch holds per shard.
func (b itBatch) shards() map[string]int {
	m := map[string]int{}
	for _, r := range b.Rows {
		m[r.Shard]++
	}
	return m
}

// itCollector is a sink that keeps every AddBatch call, replays included,
// and every progress record.
type itCollector struct {
	mu       sync.Mutex
	calls    []itBatch
	progress []shardflow.Progress
	problems []string
}

var _ shardflow.Sink = (*itCollector)(nil)

func (c *itCollector) AddBatch(ctx context.Context, b *shardflow.Batch) error {
	got := itBatch{ID: b.ID, At: time.Now(), Schema: slices.Clone(b.Schema)}
	var problems []string
	idx := func(name string) int {
		i := b.Schema.Index(name)
		if i < 0 {
			problems = append(problems, fmt.Sprintf("batch %d: no column %s", b.ID, name))
		}
		return i
	}
	cols := []int{idx("data"), idx("streamName"), idx("partitionKey"), idx("sequenceNumber"),
		idx("approximateArrivalTimestamp"), idx("shardId"), idx("subSequenceNumber")}
	for n, row := range b.Rows {
		var r itRow
		bad := func(col int, want string) {
			problems = append(problems, fmt.Sprintf("batch %d row %d: column %d is %T, want %s", b.ID, n, col, row[col], want))
		}
		for k, col := range cols {
			if col < 0 || col >= len(row) {
				continue
			}
			v := row[col]
			var ok bool
			switch k {
			case 0:
				var p []byte
				p, ok = v.([]byte)
				r.Data = string(p)
			case 1:
				r.Stream, ok = v.(string)
			case 2:
				r.PartitionKey, ok = v.(string)
			case 3:
				r.Seq, ok = v.(string)
			case 4:
				r.Arrival, ok = v.(time.Time)
			case 5:
				r.Shard, ok = v.(string)
			case 6:
				r.Sub, ok = v.(int64)
			}
			if !ok {
				bad(col, b.Schema[col].Type.String())
			}
		}
		got.Rows = append(got.Rows, r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, got)
	c.problems = append(c.problems, problems...)
	return ctx.Err()
}

func (c *itCollector) onProgress(p shardflow.Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress = append(c.progress, p)
}

// allCalls returns every AddBatch call in order, replays included.
func (c *itCollector) allCalls() []itBatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// batches returns the last call for each batch id, in id order: what an
// idempotent sink holds.
func (c *itCollector) batches() []itBatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	byID := map[int64]itBatch{}
	for _, b := range c.calls {
		byID[b.ID] = b
	}
	out := slices.Collect(maps.Values(byID))
	slices.SortFunc(out, func(a, b itBatch) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// rows returns the rows of batches(), in batch order.
func (c *itCollector) rows() []itRow {
	var rows []itRow
	for _, b := range c.batches() {
		rows = append(rows, b.Rows...)
	}
	return rows
}

// check fails the test if a row had a value of the wrong type.
func (c *itCollector) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.problems {
		t.Error(p)
	}
}

// Checks.

// checkExactlyOnce checks that rows hold each put exactly once, with its
// data, and nothing else.
func checkExactlyOnce(t *testing.T, rows []itRow, puts []testenv.Put) {
	t.Helper()
	want := map[string]testenv.Put{}
	for _, p := range puts {
		want[p.ShardID+"/"+p.SequenceNumber+"/"+strconv.FormatInt(p.SubSequenceNumber, 10)] = p
	}
	seen := map[string]int{}
	for _, r := range rows {
		k := r.key()
		seen[r.key()]++
		if seen[r.key()] == 2 {
			t.Errorf("row %s read more than once", r)
		}
		p, ok := want[k]
		switch {
		case !ok:
			t.Errorf("unexpected row %s", r)
		case string(p.Data) != r.Data || p.PartitionKey != r.PartitionKey:
			t.Errorf("row %s: data %q pk %q, put as %q %q", r, r.Data, r.PartitionKey, p.Data, p.PartitionKey)
		}
	}
	for k, p := range want {
		if seen[k] == 0 {
			t.Errorf("record %q (%s) was not read", p.Data, k)
		}
	}
}

// checkValues checks the multiset of row data against want (any order).
func checkValues(t *testing.T, what string, rows []itRow, want []string) {
	t.Helper()
	got := make([]string, len(rows))
	for i, r := range rows {
		got[i] = r.Data
	}
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s: got %d values %v, want %d values %v", what, len(got), got, len(want), want)
	}
}

// checkShardOrder checks that each shard's rows come in increasing
// sequence number order across the batches.
func checkShardOrder(t *testing.T, batches []itBatch) {
	// Order is by (sequenceNumber, subSequenceNumber): the user records of
	// a KPL aggregate share its sequence number.
	t.Helper()
	last := map[string]itRow{}
	for _, b := range batches {
		for _, r := range b.Rows {
			if p, ok := last[r.Shard]; ok && cmp.Or(seqCmp(p.Seq, r.Seq), cmp.Compare(p.Sub, r.Sub)) >= 0 {
				t.Errorf("shard %s: row %s (batch %d) after %s", r.Shard, r, b.ID, p)
			}
			last[r.Shard] = r
		}
	}
}

// seqCmp compares sequence numbers as unsigned integers.
func seqCmp(a, b string) int {
	x, ok1 := new(big.Int).SetString(a, 10)
	y, ok2 := new(big.Int).SetString(b, 10)
	if !ok1 || !ok2 {
		return strings.Compare(a, b)
	}
	return x.Cmp(y)
}

// batchRange returns the lowest and highest batch id holding rows of the
// shard, or -1, -1.
func batchRange(batches []itBatch, shardID string) (lo, hi int64) {
	lo, hi = -1, -1
	for _, b := range batches {
		if b.shards()[shardID] > 0 {
			if lo < 0 {
				lo = b.ID
			}
			hi = b.ID
		}
	}
	return lo, hi
}

// The checkpoint, read the way docs/checkpoint-format.md describes it.

type itOffsets struct {
	BatchID int64 `json:"batchId"`
	Shards  map[string]struct {
		End *struct {
			Seq string `json:"seq"`
			Sub int64  `json:"sub"`
		} `json:"end"`
		State   string   `json:"state"`
		Parents []string `json:"parents"`
	} `json:"shards"`
}

// logIDs returns the batch ids in offsets/ or commits/, ascending.
func (e *itEnv) logIDs(dir string) []int64 {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.ckpt, dir))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	var ids []int64
	for _, ent := range ents {
		if id, err := strconv.ParseInt(ent.Name(), 10, 64); err == nil && strconv.FormatInt(id, 10) == ent.Name() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// offsets reads offsets/<id>.
func (e *itEnv) offsets(id int64) itOffsets {
	e.t.Helper()
	b, err := os.ReadFile(e.logPath("offsets", id))
	if err != nil {
		e.t.Fatal(err)
	}
	var o itOffsets
	if err := json.Unmarshal(b, &o); err != nil {
		e.t.Fatalf("offsets/%d: %v", id, err)
	}
	return o
}

func (e *itEnv) logPath(dir string, id int64) string {
	return filepath.Join(e.ckpt, dir, strconv.FormatInt(id, 10))
}

// firstFinished returns the first batch whose offsets entry marks the
// shard finished, or -1.
func (e *itEnv) firstFinished(shardID string) int64 {
	e.t.Helper()
	for _, id := range e.logIDs("offsets") {
		if s, ok := e.offsets(id).Shards[shardID]; ok && s.State == "finished" {
			return id
		}
	}
	return -1
}

// checkParentsFirst checks invariant 4 for a child shard: its first row is
// in a later batch than every row of its parents, and than the batch that
// marked each parent finished.
func (e *itEnv) checkParentsFirst(batches []itBatch, child string, parents ...string) {
	e.t.Helper()
	first, _ := batchRange(batches, child)
	if first < 0 {
		e.t.Errorf("child %s: no rows", child)
		return
	}
	for _, p := range parents {
		if _, last := batchRange(batches, p); last >= first {
			e.t.Errorf("child %s read in batch %d, but parent %s still had rows in batch %d", child, first, p, last)
		}
		switch f := e.firstFinished(p); {
		case f < 0:
			e.t.Errorf("parent %s never marked finished in the offsets log", p)
		case f > first:
			// A parent whose records were all committed earlier finishes
			// without a batch of its own (no empty batches after a
			// reshard), so the child's first batch may be the first entry
			// that records it; its rows are all in earlier batches (above).
			e.t.Errorf("child %s read in batch %d, but parent %s was finished only in batch %d", child, first, p, f)
		}
	}
}
