package shardflow_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ckptopen"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/sink/filesink"
)

// The crash child: TestMain runs it instead of the tests when
// envCrashChild is set. It runs a query from a Kinesis stream to the file
// sink, with a sink that pauses before writing so that a kill between
// offsets/N and commits/N is easy to aim.
const (
	envCrashChild = "SHARDFLOW_CRASH_CHILD"
	envEndpoint   = "SHARDFLOW_CRASH_ENDPOINT"
	envStream     = "SHARDFLOW_CRASH_STREAM"
	envCheckpoint = "SHARDFLOW_CRASH_CHECKPOINT"
	envOut        = "SHARDFLOW_CRASH_OUT"
	envTrigger    = "SHARDFLOW_CRASH_TRIGGER"
	envSinkDelay  = "SHARDFLOW_CRASH_SINK_DELAY"
	envEFO        = "SHARDFLOW_CRASH_EFO"        // the consumer name: read with enhanced fan-out
	envStoreOpts  = "SHARDFLOW_CRASH_STORE_OPTS" // JSON source options naming the checkpoint store
)

func TestMain(m *testing.M) {
	if cert := os.Getenv(envLatencyChild); cert != "" {
		if err := latencyServerChild(cert); err != nil {
			fmt.Fprintln(os.Stderr, "latency server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(envCrashChild) != "" {
		if err := crashChild(); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	cleanup, err := setUpEFO()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kdsfake for enhanced fan-out:", err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func crashChild() error {
	ctx := context.Background()
	opts := map[string]string{
		"kinesis.streamName":                  os.Getenv(envStream),
		"kinesis.endpointUrl":                 os.Getenv(envEndpoint),
		"kinesis.region":                      testenv.Region,
		"kinesis.awsAccessKeyId":              testenv.AccessKeyID,
		"kinesis.awsSecretKey":                testenv.SecretKey,
		"kinesis.startingPosition":            "TRIM_HORIZON",
		"kinesis.maxFetchRecordsPerShard":     "500",
		"kinesis.getRecords.fetchIntervalMs":  "20",
		"kinesis.describeShardInterval":       "1s",
		"shardflow.buffer.maxRecordsPerShard": "2000",
	}
	if name := os.Getenv(envEFO); name != "" {
		opts["kinesis.consumerType"] = "SubscribeToShard"
		opts["kinesis.consumerName"] = name
		opts["kinesis.subscribeToShard.maxRetries"] = "20"
	}
	if so := os.Getenv(envStoreOpts); so != "" {
		var extra map[string]string
		if err := json.Unmarshal([]byte(so), &extra); err != nil {
			return err
		}
		maps.Copy(opts, extra)
	}
	cfg, err := kds.ParseSourceOptions(opts, nil)
	if err != nil {
		return err
	}
	store, err := openCrashStore(ctx, os.Getenv(envCheckpoint), opts)
	if err != nil {
		return err
	}
	src, err := kds.NewSource(ctx, cfg, nil)
	if err != nil {
		return err
	}
	files, err := filesink.New(filesink.Config{Path: os.Getenv(envOut)})
	if err != nil {
		return err
	}
	delay, _ := time.ParseDuration(os.Getenv(envSinkDelay))
	trigger, err := shardflow.ParseTrigger(os.Getenv(envTrigger))
	if err != nil {
		return err
	}
	q, err := shardflow.NewQuery(shardflow.QueryConfig{
		Name:       "crash",
		Checkpoint: store,
		Trigger:    trigger,
		Source:     src,
		Sink: shardflow.ForEachBatch(func(ctx context.Context, b *shardflow.Batch) error {
			time.Sleep(delay)
			return files.AddBatch(ctx, b)
		}),
	})
	if err != nil {
		return err
	}
	return q.Run(ctx)
}

// openCrashStore opens the checkpoint as the CLI does, from the location
// and the source options.
func openCrashStore(ctx context.Context, location string, opts map[string]string) (checkpoint.Store, error) {
	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, opts)
	if err != nil {
		return nil, err
	}
	return ckptopen.Open(ctx, location, ckptopen.FromOptions(o))
}

// crashStore is a checkpoint store the crash test runs on: the location
// and source options the child gets.
type crashStore struct {
	name string
	// remote stores run on fewer sources (their lease adds a wait per kill).
	remote bool
	setup  func(t *testing.T, dir, stream string) (location string, opts map[string]string)
}

// crashStores: the local directory, an S3 prefix on gofakes3 (in this
// process; the children reach it over 127.0.0.1) and DynamoDB on dynalite.
// The remote stores' lease is short so that a restart after SIGKILL waits
// little.
func crashStores() []crashStore {
	creds := map[string]string{"kinesis.awsAccessKeyId": testenv.AccessKeyID, "kinesis.awsSecretKey": testenv.SecretKey, "kinesis.region": testenv.Region}
	with := func(m map[string]string) map[string]string {
		maps.Copy(m, creds)
		return m
	}
	return []crashStore{
		{name: "fsstore", setup: func(t *testing.T, dir, stream string) (string, map[string]string) {
			return filepath.Join(dir, "checkpoint"), nil
		}},
		{name: "s3store", remote: true, setup: func(t *testing.T, dir, stream string) (string, map[string]string) {
			return "s3://crash/" + stream, with(map[string]string{"shardflow.s3.endpointUrl": testenv.FakeS3(t), "shardflow.checkpoint.leaseTime": "1500ms"})
		}},
		{name: "ddbstore", remote: true, setup: func(t *testing.T, dir, stream string) (string, map[string]string) {
			return filepath.Join(dir, "checkpoint"), with(map[string]string{
				"kinesis.metadataCommitterType": "DYNAMODB", "kinesis.dynamodb.tableName": "crash-checkpoints",
				"shardflow.dynamodb.endpointUrl": testenv.Dynalite(t), "shardflow.checkpoint.leaseTime": "1500ms"})
		}},
	}
}

// TestCrashRecoveryExactlyOnce kills a query with SIGKILL at five moments,
// at least one between offsets/N and commits/N, and checks that the file
// sink's output holds every record exactly once, for every checkpoint store.
func TestCrashRecoveryExactlyOnce(t *testing.T) {
	forEachSource(t, func(t *testing.T, em testenv.Emulator) {
		for _, st := range crashStores() {
			if !crashCombination(em.Name, itAggregation(t) > 0, st) {
				continue
			}
			t.Run(st.name, func(t *testing.T) { crashRecovery(t, em, st) })
		}
	})
}

// crashCombination keeps the suite's time in bounds: every store and
// format on kdsfake (fast, in process), the local store in both formats on
// kinesalite, and plain records on the local store on kinesis-mock (slow
// writes: 20,000 records take it about 15 s).
func crashCombination(source string, kpl bool, st crashStore) bool {
	switch source {
	case kdsfakeEFO:
		return true
	case testenv.Kinesalite:
		return !st.remote
	default:
		return !st.remote && !kpl
	}
}

func crashRecovery(t *testing.T, em testenv.Emulator, st crashStore) {
	t.Parallel()
	const total = 20000
	c := testenv.KinesisClient(t, em.Endpoint)
	stream := testenv.CreateStream(t, c, 4)
	recs := make([]testenv.Record, total)
	for i := range recs {
		recs[i] = testenv.Record{PartitionKey: "pk-" + strconv.Itoa(i), Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	// In the kpl format, aggregates of 300 user records: batches
	// (kinesis.maxFetchRecordsPerShard 500) end inside aggregates.
	e := &itEnv{t: t, kc: c, stream: stream, agg: min(itAggregation(t)*75, 300)}
	puts := e.putRecords(recs)

	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	ckpt, storeOpts := st.setup(t, dir, stream)
	storeJSON, err := json.Marshal(storeOpts)
	if err != nil {
		t.Fatal(err)
	}
	inspectOpts := map[string]string{"kinesis.streamName": stream}
	maps.Copy(inspectOpts, storeOpts)
	inspect, err := openCrashStore(t.Context(), ckpt, inspectOpts)
	if err != nil {
		t.Fatal(err)
	}
	start := func(trigger string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envEndpoint+"="+em.Endpoint, envStream+"="+stream,
			envCheckpoint+"="+ckpt, envOut+"="+out, envTrigger+"="+trigger, envSinkDelay+"=150ms", envStoreOpts+"="+string(storeJSON))
		if em.Name == kdsfakeEFO {
			// The same consumer across the kills: each restart reuses it.
			cmd.Env = append(cmd.Env, envEndpoint+"="+efoServer.TLSURL(), envEFO+"=crash-"+stream)
		}
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kill := func(cmd *exec.Cmd) {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}

	inWindow := 0
	for i := range 5 {
		cmd := start("processing-time=0s")
		if i == 1 || i == 3 {
			// Aim between offsets/N and commits/N.
			n, ok := waitUncommitted(t, inspect, 60*time.Second)
			kill(cmd)
			if ok && storeHas(inspect, "offsets/"+n) && !storeHas(inspect, "commits/"+n) {
				inWindow++
			}
			continue
		}
		time.Sleep(time.Duration(200+rand.IntN(1500)) * time.Millisecond)
		kill(cmd)
	}
	if inWindow == 0 {
		t.Fatal("no kill landed between offsets/N and commits/N")
	}
	final := start("available-now")
	done := make(chan error, 1)
	go func() { done <- final.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("final available-now run: %v", err)
		}
	case <-time.After(3 * time.Minute):
		kill(final)
		t.Fatal("final available-now run did not finish")
	}

	seen := readOutput(t, out)
	for _, p := range puts {
		k := p.ShardID + "/" + p.SequenceNumber + "/" + strconv.FormatInt(p.SubSequenceNumber, 10)
		if seen[k] != 1 {
			t.Errorf("record %s seen %d times, want 1", k, seen[k])
		}
		delete(seen, k)
	}
	if len(seen) > 0 {
		t.Errorf("%d unexpected records in the output", len(seen))
	}
	t.Logf("%s on %s: %d records exactly once after 5 kills (%d between offsets and commits)", em.Name, st.name, total, inWindow)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// storeHas reports whether the checkpoint holds the object name.
func storeHas(s checkpoint.Store, name string) bool {
	_, err := s.Read(context.Background(), name)
	return err == nil
}

// waitUncommitted polls the checkpoint until some offsets/N has no
// commits/N, and returns N.
func waitUncommitted(t *testing.T, s checkpoint.Store, timeout time.Duration) (string, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		names, _ := s.List(context.Background(), "offsets")
		for _, n := range names {
			if _, err := strconv.Atoi(n); err != nil {
				continue
			}
			if !storeHas(s, "commits/"+n) {
				return n, true
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("no uncommitted batch seen within %s", timeout)
	return "", false
}

// readOutput counts the file sink's rows by shardId/sequenceNumber.
func readOutput(t *testing.T, dir string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
		for sc.Scan() {
			var row struct {
				ShardID string `json:"shardId"`
				Seq     string `json:"sequenceNumber"`
				Sub     int64  `json:"subSequenceNumber"`
			}
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			seen[row.ShardID+"/"+row.Seq+"/"+strconv.FormatInt(row.Sub, 10)]++
		}
		if err := errors.Join(sc.Err(), fh.Close()); err != nil {
			t.Fatal(err)
		}
	}
	return seen
}
