package kdsfake_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// Independent clients against kdsfake: the AWS CLI v2 (botocore) for the
// polling API and stream consumers, and the AWS SDK for JavaScript v3 for
// SubscribeToShard over HTTP/2 and TLS. Both come from the test script
// (scripts/emulators.sh): without them the tests skip, and with CI=true they
// fail.

// Environment variables the test script sets.
const (
	envAWSCLI     = "SHARDFLOW_TEST_AWS_CLI" // path of an AWS CLI v2
	envTestenvDir = "SHARDFLOW_TESTENV_DIR"  // testenv/, with node_modules
)

// clientNeed returns the value of the environment variable env; if it is
// unset the test is skipped, or with CI=true fails.
func clientNeed(t *testing.T, env, what string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is not set: the test script must provide %s", env, what)
		}
		t.Skipf("%s not set (%s): run the tests with scripts/emulators.sh", env, what)
	}
	return v
}

// clientEnv is the environment of a client process: this process's without
// any AWS setting or proxy (the client talks to 127.0.0.1 only), plus
// static test credentials, region us-east-1, and extra.
func clientEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "AWS_"), strings.HasSuffix(strings.ToUpper(k), "_PROXY"), strings.HasPrefix(k, "NODE_"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
		"NO_PROXY=127.0.0.1,localhost",
	)
	return append(env, extra...)
}

// TestClientAWSCLI drives kdsfake with the AWS CLI v2: create-stream,
// put-record (binary data, base64 on the command line as CLI v2 wants),
// list-shards, get-shard-iterator, get-records and register-stream-consumer,
// and checks their JSON output.
func TestClientAWSCLI(t *testing.T) {
	t.Parallel()
	cli := clientNeed(t, envAWSCLI, "the AWS CLI v2")
	srv := kdsfake.Start(t, kdsfake.Config{ConsumerDelay: 200 * time.Millisecond})
	home := t.TempDir()

	kinesisCLI := func(out any, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args = append([]string{"--endpoint-url", srv.URL(), "--output", "json", "--no-cli-pager", "kinesis"}, args...)
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = clientEnv("HOME=" + home)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws kinesis %s: %v\nstderr: %s", strings.Join(args[6:], " "), err, stderr.String())
		}
		if out == nil {
			if s := strings.TrimSpace(stdout.String()); s != "" {
				t.Errorf("aws kinesis %s printed %q, want nothing", args[6], s)
			}
			return
		}
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("aws kinesis %s: output is not JSON (%v): %s", args[6], err, stdout.String())
		}
	}

	// create-stream prints nothing.
	kinesisCLI(nil, "create-stream", "--stream-name", "cli", "--shard-count", "2")

	var shards struct {
		Shards []struct {
			ShardId             string
			HashKeyRange        struct{ StartingHashKey, EndingHashKey string }
			SequenceNumberRange struct {
				StartingSequenceNumber string
				EndingSequenceNumber   *string
			}
		}
		NextToken *string
	}
	kinesisCLI(&shards, "list-shards", "--stream-name", "cli")
	if len(shards.Shards) != 2 || shards.Shards[0].ShardId != "shardId-000000000000" || shards.Shards[1].ShardId != "shardId-000000000001" {
		t.Fatalf("list-shards: %+v", shards)
	}
	if s := shards.Shards; s[0].HashKeyRange.StartingHashKey != "0" || s[1].HashKeyRange.EndingHashKey != confMaxHash.String() ||
		s[0].SequenceNumberRange.EndingSequenceNumber != nil || shards.NextToken != nil {
		t.Errorf("list-shards: %+v", shards)
	}

	// Records with binary data: shard 1's by ExplicitHashKey, the others
	// by partition key.
	type put struct {
		data        []byte
		pk, hashKey string
		shard, seq  string
	}
	puts := []*put{
		{data: []byte("hello, kinesis"), pk: "a"},
		{data: []byte{0, 1, 2, 0xfe, 0xff, '\n', '"'}, pk: "b"},
		{data: bytes.Repeat([]byte("0123456789"), 100), pk: "c"},
		{data: []byte(`{"id":42,"data":"Spain"}`), pk: "d", hashKey: shards.Shards[1].HashKeyRange.StartingHashKey},
	}
	for _, p := range puts {
		args := []string{"put-record", "--stream-name", "cli", "--partition-key", p.pk, "--data", base64.StdEncoding.EncodeToString(p.data)}
		if p.hashKey != "" {
			args = append(args, "--explicit-hash-key", p.hashKey)
		}
		var out struct{ ShardId, SequenceNumber, EncryptionType string }
		kinesisCLI(&out, args...)
		if !confSeqPattern.MatchString(out.SequenceNumber) {
			t.Errorf("put-record: sequence number %q", out.SequenceNumber)
		}
		want := confOwner(t, []types.Shard{
			{ShardId: &shards.Shards[0].ShardId, HashKeyRange: &types.HashKeyRange{StartingHashKey: &shards.Shards[0].HashKeyRange.StartingHashKey, EndingHashKey: &shards.Shards[0].HashKeyRange.EndingHashKey}},
			{ShardId: &shards.Shards[1].ShardId, HashKeyRange: &types.HashKeyRange{StartingHashKey: &shards.Shards[1].HashKeyRange.StartingHashKey, EndingHashKey: &shards.Shards[1].HashKeyRange.EndingHashKey}},
		}, clientHashKey(t, p.pk, p.hashKey))
		if out.ShardId != want {
			t.Errorf("put-record %s went to %s, want %s", p.pk, out.ShardId, want)
		}
		p.shard, p.seq = out.ShardId, out.SequenceNumber
	}

	// Read each shard back: data, partition keys and sequence numbers
	// round-trip.
	for _, sh := range shards.Shards {
		var it struct{ ShardIterator string }
		kinesisCLI(&it, "get-shard-iterator", "--stream-name", "cli", "--shard-id", sh.ShardId, "--shard-iterator-type", "TRIM_HORIZON")
		if it.ShardIterator == "" {
			t.Fatalf("get-shard-iterator: no ShardIterator")
		}
		var recs struct {
			Records []struct {
				SequenceNumber              string
				ApproximateArrivalTimestamp string
				Data                        string // base64
				PartitionKey                string
			}
			NextShardIterator  string
			MillisBehindLatest *int64
		}
		kinesisCLI(&recs, "get-records", "--shard-iterator", it.ShardIterator)
		var want []*put
		for _, p := range puts {
			if p.shard == sh.ShardId {
				want = append(want, p)
			}
		}
		if len(recs.Records) != len(want) {
			t.Fatalf("get-records %s: %d records, want %d", sh.ShardId, len(recs.Records), len(want))
		}
		for i, r := range recs.Records {
			data, err := base64.StdEncoding.DecodeString(r.Data)
			if err != nil {
				t.Fatalf("get-records: Data %q is not base64: %v", r.Data, err)
			}
			if !bytes.Equal(data, want[i].data) || r.PartitionKey != want[i].pk || r.SequenceNumber != want[i].seq || r.ApproximateArrivalTimestamp == "" {
				t.Errorf("get-records %s record %d = %q %s %s, want %q %s %s", sh.ShardId, i, data, r.PartitionKey, r.SequenceNumber, want[i].data, want[i].pk, want[i].seq)
			}
		}
		if recs.NextShardIterator == "" || recs.MillisBehindLatest == nil || *recs.MillisBehindLatest != 0 {
			t.Errorf("get-records %s: NextShardIterator %q, MillisBehindLatest %v; want an iterator and 0", sh.ShardId, recs.NextShardIterator, recs.MillisBehindLatest)
		}
	}

	var sum struct {
		StreamDescriptionSummary struct{ StreamARN, StreamStatus string }
	}
	kinesisCLI(&sum, "describe-stream-summary", "--stream-name", "cli")
	streamARN := sum.StreamDescriptionSummary.StreamARN
	if streamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/cli" {
		t.Errorf("StreamARN = %q", streamARN)
	}
	var reg struct {
		Consumer struct{ ConsumerName, ConsumerARN, ConsumerStatus, ConsumerCreationTimestamp string }
	}
	kinesisCLI(&reg, "register-stream-consumer", "--stream-arn", streamARN, "--consumer-name", "cli-consumer")
	c := reg.Consumer
	if !regexp.MustCompile(`^`+regexp.QuoteMeta(streamARN)+`/consumer/cli-consumer:[0-9]+$`).MatchString(c.ConsumerARN) ||
		c.ConsumerName != "cli-consumer" || c.ConsumerStatus != "CREATING" || c.ConsumerCreationTimestamp == "" {
		t.Errorf("register-stream-consumer: %+v", c)
	}
	time.Sleep(300 * time.Millisecond) // past ConsumerDelay
	var desc struct {
		ConsumerDescription struct{ ConsumerARN, ConsumerStatus, StreamARN string }
	}
	kinesisCLI(&desc, "describe-stream-consumer", "--consumer-arn", c.ConsumerARN)
	if d := desc.ConsumerDescription; d.ConsumerARN != c.ConsumerARN || d.ConsumerStatus != "ACTIVE" || d.StreamARN != streamARN {
		t.Errorf("describe-stream-consumer: %+v", d)
	}
}

// clientHashKey is the hash key of a record: explicit, or the MD5 of its
// partition key.
func clientHashKey(t *testing.T, pk, explicit string) *big.Int {
	t.Helper()
	if explicit != "" {
		return confBig(t, &explicit)
	}
	return confMD5(pk)
}

// TestClientJavaScript subscribes to a shard with the AWS SDK for
// JavaScript v3 (NodeHttp2Handler, TLS with the server's self-signed
// certificate trusted through NODE_EXTRA_CA_CERTS), from TRIM_HORIZON:
// it gets the records written before and while it runs, in order, and
// exits 0.
func TestClientJavaScript(t *testing.T) {
	t.Parallel()
	dir := clientNeed(t, envTestenvDir, "testenv/ with @aws-sdk/client-kinesis and @smithy/node-http-handler")
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no node on PATH: %v", err)
		}
		t.Skipf("no node on PATH: %v", err)
	}
	for _, m := range []string{"@aws-sdk/client-kinesis", "@smithy/node-http-handler"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m, "package.json")); err != nil {
			t.Fatalf("%s is not installed in %s: %v (scripts/install-deps.sh npm)", m, dir, err)
		}
	}
	script, err := filepath.Abs(filepath.Join("testdata", "subscribe.mjs"))
	if err != nil {
		t.Fatal(err)
	}

	srv := kdsfake.Start(t, kdsfake.Config{ConsumerDelay: 100 * time.Millisecond})
	kc := testenv.KinesisClient(t, srv.URL())
	ctx := context.Background()
	const stream, shard = "js", "shardId-000000000000"
	testenv.CreateStreamNamed(t, kc, stream, 1)
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: sum.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String("js")})
	if err != nil {
		t.Fatal(err)
	}
	consumerARN := aws.ToString(reg.Consumer.ConsumerARN)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(consumerARN)})
		if err != nil {
			t.Fatal(err)
		}
		if out.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer still %s after 10s", out.ConsumerDescription.ConsumerStatus)
		}
		time.Sleep(20 * time.Millisecond) // waiting out ConsumerDelay
	}

	const before, during = 300, 200
	var recs []testenv.Record
	for i := range before + during {
		recs = append(recs, testenv.Record{PartitionKey: fmt.Sprintf("pk-%d", i), Data: fmt.Appendf(nil, "js-%d é\x00", i)})
	}
	puts := testenv.PutRecords(t, kc, stream, recs[:before])

	pem := filepath.Join(t.TempDir(), "kdsfake-ca.pem")
	if err := os.WriteFile(pem, srv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, node, script, srv.TLSURL(), consumerARN, shard, fmt.Sprint(before+during))
	cmd.Dir = dir
	cmd.Env = clientEnv("NODE_EXTRA_CA_CERTS="+pem, envTestenvDir+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	type record struct{ Seq, Pk, Data, Arrival string }
	var got []record
	events := 0
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Event *struct {
				Records            int
				Continuation       *string
				MillisBehindLatest *int64
			}
			Record *record
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("script printed %q: %v", sc.Text(), err)
		}
		switch {
		case line.Event != nil:
			events++
			if line.Event.Continuation == nil || line.Event.MillisBehindLatest == nil {
				t.Errorf("event without ContinuationSequenceNumber or MillisBehindLatest: %s", sc.Text())
			}
		case line.Record != nil:
			got = append(got, *line.Record)
			if len(got) == before {
				// The backlog has arrived: write more while subscribed.
				puts = append(puts, testenv.PutRecords(t, kc, stream, recs[before:])...)
			}
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node subscribe.mjs: %v (after %d records)\nstderr:\n%s", err, len(got), stderr.String())
	}
	if len(got) != len(puts) {
		t.Fatalf("got %d records, want %d", len(got), len(puts))
	}
	for i, r := range got {
		p := puts[i]
		if r.Seq != p.SequenceNumber || r.Pk != p.PartitionKey || r.Data != string(p.Data) || r.Arrival == "" {
			t.Fatalf("record %d = %+v, want seq %s pk %s data %q", i, r, p.SequenceNumber, p.PartitionKey, p.Data)
		}
	}
	if !slices.IsSortedFunc(got, func(a, b record) int { return confBig(t, &a.Seq).Cmp(confBig(t, &b.Seq)) }) {
		t.Error("records out of sequence-number order")
	}
	t.Logf("%d records in %d events", len(got), events)
}
