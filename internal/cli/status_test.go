package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// copyDir copies a checkpoint fixture so the test never touches testdata.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "ckpt")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestStatusReportsUncommittedBatch inspects a checkpoint whose batch 7 is
// planned (offsets/7) but not committed: status reports it as waiting for
// replay, with each shard's resume position and pending end. The --json
// output is pinned by a golden file.
func TestStatusReportsUncommittedBatch(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "status-uncommitted"))
	var out, errOut bytes.Buffer
	if code := Run([]string{"status", "--checkpoint", dir, "--json"}, &out, &errOut, nil); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := strings.ReplaceAll(out.String(), dir, "CHECKPOINT")
	checkGolden(t, "status-uncommitted.golden.json", got)

	out.Reset()
	if code := Run([]string{"status", "--checkpoint", dir}, &out, &errOut, nil); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"query id:", "0b9d3a0e-6a0c-4c43-9d5e-5d3f1f3c2a11",
		"last committed batch:", "6 (at 2026-11-25T21:41:01Z, 120 rows)",
		"last planned batch:    7",
		"waiting for replay:    yes: batch 7",
		"shardId-000000000002  open      shardId-000000000001",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStatusErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	var out, errOut bytes.Buffer
	if code := Run([]string{"status", "--checkpoint", missing}, &out, &errOut, nil); code != ExitFailed || !strings.Contains(errOut.String(), "no checkpoint at") {
		t.Errorf("missing checkpoint: exit %d, %s", code, errOut.String())
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("status created the missing checkpoint directory")
	}
	errOut.Reset()
	if code := Run([]string{"status", "--checkpoint", t.TempDir()}, &out, &errOut, nil); code != ExitFailed || !strings.Contains(errOut.String(), "no metadata") {
		t.Errorf("empty directory: exit %d, %s", code, errOut.String())
	}
	if code := Run([]string{"status"}, &out, &errOut, nil); code != ExitUsage {
		t.Errorf("no --checkpoint: exit %d", code)
	}
}

// leaseItem is a lease table item in the layout lease/table.go writes.
func leaseItem(shard, owner string, counter int64, checkpoint string, sub int64) map[string]ddbtypes.AttributeValue {
	m := map[string]ddbtypes.AttributeValue{
		"leaseKey":                    &ddbtypes.AttributeValueMemberS{Value: shard},
		"leaseCounter":                &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(counter)},
		"checkpoint":                  &ddbtypes.AttributeValueMemberS{Value: checkpoint},
		"checkpointSubSequenceNumber": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(sub)},
	}
	if owner != "" {
		m["leaseOwner"] = &ddbtypes.AttributeValueMemberS{Value: owner}
	}
	return m
}

// writeLeaseTable creates a lease table in dynalite as the lease package
// does (hash key leaseKey) and writes items into it.
func writeLeaseTable(t *testing.T, c *dynamodb.Client, table string, items ...map[string]ddbtypes.AttributeValue) {
	t.Helper()
	ctx := t.Context()
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddbtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatusWorkerMode writes a lease table (three workers, a pending
// handoff, an unowned and a finished lease) and the workers' checkpoints,
// and checks what status shows of them, as text and as JSON (pinned by
// testdata/status-workers.golden.json). It writes nothing: the worker
// without a checkpoint directory still has none afterwards.
func TestStatusWorkerMode(t *testing.T) {
	ddbURL := testenv.Dynalite(t)
	table := testenv.UniqueName("leases-")
	dir := filepath.Join(t.TempDir(), "job")
	// w1 has a checkpoint, w2 none here, and w3, which holds no lease, a
	// directory without metadata yet.
	if err := os.MkdirAll(filepath.Join(dir, "workers", "w3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(copyDir(t, filepath.Join("testdata", "status-uncommitted")), filepath.Join(dir, "workers", "w1")); err != nil {
		t.Fatal(err)
	}
	const seq = "49590338271490256608559692538361571095921575989136588898"
	s0 := leaseItem("shardId-000000000000", "w1", 17, seq, 0)
	s0["millisBehindLatest"] = &ddbtypes.AttributeValueMemberN{Value: "1500"}
	s1 := leaseItem("shardId-000000000001", "w1", 9, "TRIM_HORIZON", 0)
	s1["millisBehindLatest"] = &ddbtypes.AttributeValueMemberN{Value: "501"}
	s1["pendingOwner"] = &ddbtypes.AttributeValueMemberS{Value: "w2"}
	s2 := leaseItem("shardId-000000000002", "w2", 4, seq, 3) // no lag written yet
	s3 := leaseItem("shardId-000000000003", "", 30, "SHARD_END", 0)
	s4 := leaseItem("shardId-000000000004", "", 2, "TRIM_HORIZON", 0)
	s4["parentShardIds"] = &ddbtypes.AttributeValueMemberSS{Value: []string{"shardId-000000000003"}}
	meta := map[string]ddbtypes.AttributeValue{
		"leaseKey":           &ddbtypes.AttributeValueMemberS{Value: "#shardflow"},
		"stream":             &ddbtypes.AttributeValueMemberS{Value: "orders"},
		"shared":             &ddbtypes.AttributeValueMemberS{Value: `{"initialPosition":{"type":"TRIM_HORIZON"}}`},
		"format":             &ddbtypes.AttributeValueMemberN{Value: "1"},
		"checkpointLocation": &ddbtypes.AttributeValueMemberS{Value: dir},
	}
	writeLeaseTable(t, testenv.DynamoDBClient(t, ddbURL), table, meta, s0, s1, s2, s3, s4)

	args := []string{"status", "--checkpoint", dir,
		"--source-option", "shardflow.coordination=DYNAMODB",
		"--source-option", "shardflow.lease.tableName=" + table,
		"--source-option", "shardflow.dynamodb.endpointUrl=" + ddbURL,
		"--source-option", "kinesis.region=" + testenv.Region,
		"--source-option", "kinesis.awsAccessKeyId=" + testenv.AccessKeyID,
		"--source-option", "kinesis.awsSecretKey=" + testenv.SecretKey,
	}
	var out, errOut bytes.Buffer
	if code := Run(append(args, "--json"), &out, &errOut, nil); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var parsed map[string]any
	if err := json.Unmarshal(out.Bytes(), &parsed); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out.String())
	}
	got := strings.NewReplacer(dir, "CHECKPOINT", table, "LEASES").Replace(out.String())
	checkGolden(t, "status-workers.golden.json", got)

	out.Reset()
	if code := Run(args, &out, &errOut, nil); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	text := out.String()
	for _, want := range []string{
		"mode:              worker (lease table " + table + ")",
		"stream:            orders",
		"initial position:  TRIM_HORIZON",
		"leases:            5: 3 held, 1 unowned, 1 finished",
		"pending handoffs:  1",
		// w1: two leases, lag max 1500 and average 1001 (rounded), its
		// checkpoint's last commit and the batch waiting for replay.
		"w1      2       1500          1001          6 (at 2026-11-25T21:41:01Z, 120 rows); batch 7 waits for replay  shardId-000000000000,shardId-000000000001",
		"w2      1       -             -             unreadable",
		"w3      0       -             -             unreadable",
		"worker w2: no checkpoint at " + filepath.Join(dir, "workers", "w2") + "\n",
		"worker w3: no checkpoint at " + filepath.Join(dir, "workers", "w3") + " (it has no metadata)",
		"shardId-000000000001  w1    w2",
		"shardId-000000000000  held      w1     17       1500      -              -                     AFTER_SEQUENCE_NUMBER " + seq + "/0",
		"shardId-000000000002  held      w2     4        -         -              -                     AFTER_SEQUENCE_NUMBER " + seq + "/3",
		"shardId-000000000003  finished  -      30       -         -              -                     SHARD_END",
		"shardId-000000000004  unowned   -      2        -         -              shardId-000000000003  TRIM_HORIZON",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status output lacks %q:\n%s", want, text)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "workers", "w2")); err == nil {
		t.Error("status created the checkpoint directory of w2")
	}
}

// TestStatusWorkerModeErrors: a missing lease table and missing lease
// table options are reported, not shown as an empty status.
func TestStatusWorkerModeErrors(t *testing.T) {
	ddbURL := testenv.Dynalite(t)
	base := []string{"status", "--checkpoint", t.TempDir(),
		"--source-option", "shardflow.coordination=DYNAMODB",
		"--source-option", "shardflow.dynamodb.endpointUrl=" + ddbURL,
		"--source-option", "kinesis.region=" + testenv.Region,
		"--source-option", "kinesis.awsAccessKeyId=" + testenv.AccessKeyID,
		"--source-option", "kinesis.awsSecretKey=" + testenv.SecretKey,
	}
	var out, errOut bytes.Buffer
	if code := Run(base, &out, &errOut, nil); code != ExitUsage || !strings.Contains(errOut.String(), "needs a lease table") {
		t.Errorf("no lease table option: exit %d, %s", code, errOut.String())
	}
	errOut.Reset()
	missing := testenv.UniqueName("missing-")
	if code := Run(append(base, "--source-option", "kinesis.dynamodb.tableName="+missing), &out, &errOut, nil); code != ExitFailed || !strings.Contains(errOut.String(), missing+"-leases") {
		t.Errorf("missing lease table: exit %d, %s", code, errOut.String())
	}
}

// checkGolden compares got with testdata/name (rewritten first with
// -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("status --json differs from %s (-want +got):\n%s", golden, diff)
	}
}
