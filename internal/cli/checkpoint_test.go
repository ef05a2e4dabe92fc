package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// TestRunWithS3Checkpoint: `shardflow run --checkpoint s3://bucket/prefix`
// keeps the checkpoint in S3 (gofakes3), and a second run resumes from it.
func TestRunWithS3Checkpoint(t *testing.T) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	kc := testenv.KinesisClient(t, srv.URL())
	stream := testenv.CreateStream(t, kc, 2)
	recs := make([]testenv.Record, 30)
	for i := range recs {
		recs[i] = testenv.Record{PartitionKey: fmt.Sprint(i), Data: []byte(`{"x":1}`)}
	}
	testenv.PutRecords(t, kc, stream, recs)
	s3 := testenv.FakeS3(t)
	args := []string{"run", "--checkpoint", "s3://ckpt/cli/q1", "--trigger", "available-now", "--sink", "memory",
		"--source-option", "kinesis.streamName=" + stream,
		"--source-option", "kinesis.endpointUrl=" + srv.URL(),
		"--source-option", "kinesis.region=" + testenv.Region,
		"--source-option", "kinesis.awsAccessKeyId=" + testenv.AccessKeyID,
		"--source-option", "kinesis.awsSecretKey=" + testenv.SecretKey,
		"--source-option", "kinesis.startingPosition=TRIM_HORIZON",
		"--source-option", "shardflow.s3.endpointUrl=" + s3,
	}
	for i, want := range []string{"memory sink: 1 batches, 30 rows", "memory sink: 0 batches, 0 rows"} {
		var stdout, stderr bytes.Buffer
		if code := Run(args, &stdout, &stderr, nil); code != 0 {
			t.Fatalf("run %d: exit %d; stderr:\n%s", i, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("run %d: stdout lacks %q:\n%s", i, want, stdout.String())
		}
	}
	// `shardflow status` reads the same S3 checkpoint with the same options.
	status := []string{"status", "--json", "--checkpoint", "s3://ckpt/cli/q1"}
	for i := 3; i < len(args); i += 2 {
		if args[i] == "--source-option" {
			status = append(status, args[i], args[i+1])
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Run(status, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("status: exit %d; stderr:\n%s", code, stderr.String())
	}
	var st struct {
		LastCommitted *int64 `json:"lastCommittedBatch"`
		Pending       bool   `json:"pendingReplay"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout.String())
	}
	if st.LastCommitted == nil || *st.LastCommitted != 0 || st.Pending {
		t.Fatalf("status: last committed %v, pending %v; want batch 0 committed, nothing pending:\n%s", st.LastCommitted, st.Pending, stdout.String())
	}
	if !strings.Contains(stdout.String(), `"shardId-000000000001"`) {
		t.Fatalf("status lacks the shards:\n%s", stdout.String())
	}
}
