package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardflow/shardflow/internal/testenv"
)

// envChildArgs makes TestMain run the CLI with these args (JSON) instead of
// the tests: a real `shardflow` process for fencing and signal tests.
const envChildArgs = "SHARDFLOW_CLI_CHILD_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(envChildArgs); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			panic(err)
		}
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		// SHARDFLOW_TEST_CPUPROFILE=DIR profiles each child, for the
		// worker benchmarks.
		if dir := os.Getenv("SHARDFLOW_TEST_CPUPROFILE"); dir != "" {
			f, err := os.CreateTemp(dir, "child-*.pprof")
			if err == nil && pprof.StartCPUProfile(f) == nil {
				code := Run(args, os.Stdout, os.Stderr, sigs)
				pprof.StopCPUProfile()
				f.Close()
				os.Exit(code)
			}
		}
		os.Exit(Run(args, os.Stdout, os.Stderr, sigs))
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for a child's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// child starts the CLI in a child process.
func child(t testing.TB, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildArgs+"="+string(b))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, out
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sourceArgs(em testenv.Emulator, stream string, extra ...string) []string {
	args := []string{
		"--source-option", "kinesis.streamName=" + stream,
		"--source-option", "kinesis.endpointUrl=" + em.Endpoint,
		"--source-option", "kinesis.region=" + testenv.Region,
		"--source-option", "kinesis.awsAccessKeyId=" + testenv.AccessKeyID,
		"--source-option", "kinesis.awsSecretKey=" + testenv.SecretKey,
		"--source-option", "kinesis.getRecords.fetchIntervalMs=20",
		"--source-option", "kinesis.startingPosition=TRIM_HORIZON",
	}
	return append(args, extra...)
}

// outputRows reads the file sink's JSON Lines output.
func outputRows(t *testing.T, dir string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	slices.Sort(files)
	var rows []map[string]any
	for _, f := range files {
		rows = append(rows, jsonLines(t, f)...)
	}
	return rows
}

// jsonLines reads one JSON Lines file.
func jsonLines(t testing.TB, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		rows = append(rows, m)
	}
	return rows
}

func TestSecondProcessOnCheckpointIsRefused(t *testing.T) {
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 1)
		dir := t.TempDir()
		ckpt, out1, out2 := filepath.Join(dir, "ckpt"), filepath.Join(dir, "out1"), filepath.Join(dir, "out2")
		first, firstOut := child(t, slices.Concat([]string{"run"}, sourceArgs(em, stream),
			[]string{"--sink", "file", "--sink-option", "path=" + out1, "--checkpoint", ckpt})...)
		waitFor(t, "the first query to start", 30*time.Second, func() bool { return strings.Contains(firstOut.String(), "query started") })

		second, secondOut := child(t, slices.Concat([]string{"run"}, sourceArgs(em, stream),
			[]string{"--sink", "file", "--sink-option", "path=" + out2, "--checkpoint", ckpt})...)
		err := second.Wait()
		if code := exitCode(err); code == 0 {
			t.Fatalf("second process exited 0; output:\n%s", secondOut.String())
		}
		if !strings.Contains(secondOut.String(), "checkpoint in use") {
			t.Fatalf("second process output lacks \"checkpoint in use\":\n%s", secondOut.String())
		}
		if ents, _ := os.ReadDir(out2); len(ents) > 0 {
			t.Fatalf("refused process wrote %d files", len(ents))
		}
		// The first one still works and stops gracefully on SIGTERM.
		testenv.PutRecords(t, c, stream, []testenv.Record{{PartitionKey: "a", Data: []byte("after")}})
		waitFor(t, "the first query to write the record", 30*time.Second, func() bool { return len(outputRows(t, out1)) == 1 })
		if err := first.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := first.Wait(); err != nil {
			t.Fatalf("first process after SIGTERM: %v\n%s", err, firstOut.String())
		}
	})
}

// TestSignalFinishesRunningBatch sends SIGINT while a batch is in the sink:
// the batch is committed and the process exits 0.
func TestSignalFinishesRunningBatch(t *testing.T) {
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 2)
		recs := make([]testenv.Record, 200)
		for i := range recs {
			recs[i] = testenv.Record{PartitionKey: fmt.Sprint(i), Data: []byte(fmt.Sprint(i))}
		}
		testenv.PutRecords(t, c, stream, recs)
		dir := t.TempDir()
		ckpt, out := filepath.Join(dir, "ckpt"), filepath.Join(dir, "out")
		cmd, output := child(t, slices.Concat([]string{"run"}, sourceArgs(em, stream),
			[]string{"--sink", "file", "--sink-option", "path=" + out, "--checkpoint", ckpt, "--trigger", "processing-time=200ms"})...)
		waitFor(t, "a committed batch", 30*time.Second, func() bool { return strings.Contains(output.String(), "batch committed") })
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, output.String())
		}
		offs, _ := os.ReadDir(filepath.Join(ckpt, "offsets"))
		commits, _ := os.ReadDir(filepath.Join(ckpt, "commits"))
		if len(offs) != len(commits) {
			t.Fatalf("after a graceful stop: %d offsets, %d commits", len(offs), len(commits))
		}
		// Every committed batch reached the sink, and nothing else: the
		// rows written equal the committed offsets. A restart reads the
		// rest, exactly once.
		if n := len(outputRows(t, out)); n == 0 || n > len(recs) {
			t.Fatalf("wrote %d rows before the stop, want 1..%d", n, len(recs))
		}
		var stdout, stderr bytes.Buffer
		if code := Run(slices.Concat([]string{"run"}, sourceArgs(em, stream),
			[]string{"--sink", "file", "--sink-option", "path=" + out, "--checkpoint", ckpt, "--trigger", "available-now"}), &stdout, &stderr, nil); code != ExitOK {
			t.Fatalf("restart exit %d: %s", code, stderr.String())
		}
		seen := map[string]int{}
		for _, r := range outputRows(t, out) {
			seen[fmt.Sprint(r["shardId"], "/", r["sequenceNumber"], "/", r["subSequenceNumber"])]++
		}
		if len(seen) != len(recs) {
			t.Fatalf("after the restart %d distinct rows, want %d", len(seen), len(recs))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("row %s written %d times", k, n)
			}
		}
	})
}

// TestAWSCLIRecordsAreRead writes records with the AWS CLI, an independent
// client, and reads them with `shardflow run`.
func TestAWSCLIRecordsAreRead(t *testing.T) {
	aws := os.Getenv("SHARDFLOW_TEST_AWS_CLI")
	if aws == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but SHARDFLOW_TEST_AWS_CLI is not set: the test script installs the AWS CLI v2")
		}
		t.Skip("SHARDFLOW_TEST_AWS_CLI not set")
	}
	endpoint := os.Getenv(testenv.EnvKinesalite)
	if endpoint == "" {
		testenv.KinesisEmulators(t) // skips, or fails in CI
		t.Skip("kinesalite not running")
	}
	c := testenv.KinesisClient(t, endpoint)
	stream := testenv.CreateStream(t, c, 2)
	awsRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"kinesis", "--endpoint-url", endpoint, "--region", testenv.Region, "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testenv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+testenv.SecretKey, "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
	}
	var want []string
	for i := range 5 {
		data := fmt.Sprintf("put-record %d ünïcödé", i)
		want = append(want, data)
		awsRun("put-record", "--stream-name", stream, "--partition-key", fmt.Sprint("k", i), "--data", base64.StdEncoding.EncodeToString([]byte(data)))
	}
	var entries []map[string]string
	for i := range 20 {
		data := fmt.Sprintf("put-records %d", i)
		want = append(want, data)
		entries = append(entries, map[string]string{"PartitionKey": fmt.Sprint("p", i), "Data": base64.StdEncoding.EncodeToString([]byte(data))})
	}
	b, _ := json.Marshal(entries)
	file := filepath.Join(t.TempDir(), "records.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	awsRun("put-records", "--stream-name", stream, "--records", "file://"+file)

	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := Run(slices.Concat([]string{"run"}, sourceArgs(testenv.Emulator{Endpoint: endpoint}, stream),
		[]string{"--sink", "file", "--sink-option", "path=" + out, "--checkpoint", filepath.Join(dir, "ckpt"), "--trigger", "available-now"}),
		&stdout, &stderr, nil)
	if code != 0 {
		t.Fatalf("shardflow run exited %d:\n%s", code, stderr.String())
	}
	var got []string
	for _, r := range outputRows(t, out) {
		data, err := base64.StdEncoding.DecodeString(r["data"].(string))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(data))
		if r["streamName"] != stream {
			t.Errorf("streamName = %v", r["streamName"])
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("read %q\nwant %q", got, want)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown option", []string{"run", "--checkpoint", dir, "--source-option", "kinesis.streamName=s", "--source-option", "kinesis.client.numRetries=3"}, `did you mean "kinesis.clientNumRetries"`},
		{"zero retries", []string{"run", "--checkpoint", dir, "--source-option", "kinesis.streamName=s", "--source-option", "kinesis.clientNumRetries=0"}, "kinesis.clientNumRetries"},
		{"bad trigger", []string{"run", "--checkpoint", dir, "--source-option", "kinesis.streamName=s", "--trigger", "continuous"}, "use processing-time=<duration>"},
		{"no checkpoint", []string{"run", "--source-option", "kinesis.streamName=s"}, "checkpointLocation is required"},
		{"bad sink", []string{"run", "--checkpoint", dir, "--source-option", "kinesis.streamName=s", "--sink", "kafka"}, `sink "kafka" is not supported`},
		{"bad file format", []string{"run", "--checkpoint", dir, "--source-option", "kinesis.streamName=s", "--sink", "file", "--sink-option", "path=" + dir, "--sink-option", "format=parquet"}, "parquet"},
		{"bad kv", []string{"run", "--checkpoint", dir, "--source-option", "novalue"}, "expected KEY=VALUE"},
		{"hdfs", []string{"run", "--checkpoint", "hdfs://nn/x", "--source-option", "kinesis.streamName=s", "--source-option", "kinesis.region=us-east-1"}, "hdfs:// is not supported"},
		{"bad job key", []string{"run", writeFile(t, dir, "job.yaml", "name: x\nsorce: {}\n")}, "sorce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(tc.args, &stdout, &stderr, nil)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJobFileAndFlagsOverride(t *testing.T) {
	dir := t.TempDir()
	job := writeFile(t, dir, "job.yaml", `name: from-file
source:
  format: aws-kinesis
  options:
    kinesis.streamName: s
    kinesis.maxFetchRecordsPerShard: 7
    kinesis.failOnDataLoss: true
sink:
  format: console
  options:
    numRows: 5
trigger: once
checkpointLocation: /tmp/x
`)
	j, err := loadJob(job)
	if err != nil {
		t.Fatal(err)
	}
	f := runFlags{name: "from-flag", trigger: "available-now", sourceOpts: []string{"KINESIS.STREAMNAME=t"}}
	j, err = f.merge(j)
	if err != nil {
		t.Fatal(err)
	}
	if j.Name != "from-flag" || j.Trigger != "available-now" || j.CheckpointLocation != "/tmp/x" || j.Sink.Format != "console" {
		t.Errorf("merged job = %+v", j)
	}
	want := map[string]string{"KINESIS.STREAMNAME": "t", "kinesis.maxFetchRecordsPerShard": "7", "kinesis.failOnDataLoss": "true"}
	if fmt.Sprint(j.Source.Options) != fmt.Sprint(want) || j.Sink.Options["numRows"] != "5" {
		t.Errorf("options = %v / %v", j.Source.Options, j.Sink.Options)
	}
}

func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		j, err := loadJob(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p, err := buildPipeline(context.Background(), j, &bytes.Buffer{}, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p.close(nil)
	}
}

// TestKinesisToKinesisForwardsAndRetriesFailedBatch runs a Kinesis-to-Kinesis
// job whose sink stream does not exist yet: the batch fails and nothing is
// committed. Once the stream exists, the rerun replays the batch and every
// record arrives with its partition key and data.
func TestKinesisToKinesisForwardsAndRetriesFailedBatch(t *testing.T) {
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		c := testenv.KinesisClient(t, em.Endpoint)
		src := testenv.CreateStream(t, c, 2)
		var recs []testenv.Record
		for i := range 100 {
			recs = append(recs, testenv.Record{PartitionKey: fmt.Sprint("key-", i%7), Data: []byte(fmt.Sprint("payload-", i))})
		}
		testenv.PutRecords(t, c, src, recs)
		dir := t.TempDir()
		ckpt := filepath.Join(dir, "ckpt")
		dst := src + "-out"
		args := slices.Concat([]string{"run"}, sourceArgs(em, src), []string{
			"--sink", "aws-kinesis",
			"--sink-option", "kinesis.streamName=" + dst,
			"--sink-option", "kinesis.endpointUrl=" + em.Endpoint,
			"--sink-option", "kinesis.region=" + testenv.Region,
			"--sink-option", "kinesis.awsAccessKeyId=" + testenv.AccessKeyID,
			"--sink-option", "kinesis.awsSecretKey=" + testenv.SecretKey,
			"--sink-option", "kinesis.clientNumRetries=1",
			// Read back below record by record, without de-aggregation.
			"--sink-option", "kinesis.sink.aggregationEnabled=false",
			"--checkpoint", ckpt, "--trigger", "available-now",
		})
		var stdout, stderr bytes.Buffer
		if code := Run(args, &stdout, &stderr, nil); code != ExitFailed {
			t.Fatalf("exit %d with a missing sink stream, want %d:\n%s", code, ExitFailed, stderr.String())
		}
		if !strings.Contains(stderr.String(), "batch 0") || !strings.Contains(stderr.String(), "ResourceNotFound") {
			t.Errorf("error does not name the batch and cause:\n%s", stderr.String())
		}
		if _, err := os.Stat(filepath.Join(ckpt, "commits", "0")); err == nil {
			t.Fatal("commits/0 written for a failed batch")
		}

		testenv.CreateStreamNamed(t, c, dst, 1)
		stderr.Reset()
		if code := Run(args, &stdout, &stderr, nil); code != ExitOK {
			t.Fatalf("rerun exit %d:\n%s", code, stderr.String())
		}
		var got, want []string
		for _, r := range recs {
			want = append(want, r.PartitionKey+"="+string(r.Data))
		}
		for _, sh := range testenv.Shards(t, c, dst) {
			for _, r := range testenv.ReadShard(t, c, dst, *sh.ShardId) {
				got = append(got, *r.PartitionKey+"="+string(r.Data))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("sink stream holds %d records, want %d exactly once:\n%v", len(got), len(want), got)
		}
	})
}
