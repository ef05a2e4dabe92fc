package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

const blogSQL = `SELECT CAST(e.id AS STRING) AS partitionKey, to_json(e) AS data
FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING, date TIMESTAMP') AS e FROM source)`

// TestSQLErrorsAtStart: a bad statement fails at start with exit code 2,
// before anything is read (the endpoint is unreachable, so reading would
// fail differently).
func TestSQLErrorsAtStart(t *testing.T) {
	dir := t.TempDir()
	src := []string{"run", "--checkpoint", filepath.Join(dir, "ckpt"), "--trigger", "once",
		"--source-option", "kinesis.streamName=s", "--source-option", "kinesis.region=us-east-1",
		"--source-option", "kinesis.endpointUrl=http://127.0.0.1:1",
		"--source-option", "kinesis.awsAccessKeyId=x", "--source-option", "kinesis.awsSecretKey=y"}
	kinesisSink := []string{"--sink", "aws-kinesis", "--sink-option", "kinesis.streamName=out", "--sink-option", "kinesis.region=us-east-1",
		"--sink-option", "kinesis.endpointUrl=http://127.0.0.1:1", "--sink-option", "kinesis.awsAccessKeyId=x", "--sink-option", "kinesis.awsSecretKey=y"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"syntax error", []string{"--sql", "SELECT partitionKey, data FRM source"}, []string{"syntax error", "line 1, column 31"}},
		{"unknown column", []string{"--sql", "SELECT partitionKey, dta FROM source"}, []string{`"dta"`, "line 1, column 22"}},
		{"sql file", []string{"--sql-file", writeFile(t, dir, "q.sql", "SELECT\n  nope\nFROM source")}, []string{`"nope"`, "line 2, column 3"}},
		{"kinesis sink needs data", append([]string{"--sql", "SELECT partitionKey, CAST(data AS STRING) AS payload FROM source"}, kinesisSink...),
			[]string{`required column "data" is missing`, "partitionKey string, payload string"}},
		{"strict option without sql", []string{"--source-option", "shardflow.sql.strict=true"}, []string{"need a SQL statement"}},
		{"bad strict value", []string{"--sql", "SELECT * FROM source", "--source-option", "shardflow.sql.strict=maybe"}, []string{"shardflow.sql.strict"}},
		{"init error", []string{"--sql", "SELECT * FROM source", "--source-option", "shardflow.sql.init=CREATE TABLE t AS SELECT * FROM 'missing.csv'"}, []string{"init statement 1"}},
		{"job file", []string{writeFile(t, dir, "job.yaml", "sql: SELECT partitionKey, data FROM sourse\n")}, []string{"sourse does not exist", "line 1, column 32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := slices.Concat(src, tc.args)
			if strings.HasSuffix(tc.args[0], ".yaml") {
				args = slices.Concat([]string{"run", tc.args[0]}, src[1:])
			}
			if code := Run(args, &stdout, &stderr, nil); code != ExitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, ExitUsage, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// TestBlogPipelineEndToEnd runs the AWS blog's pipeline as a job file:
// events in kinesis-source, the blog's SQL, kinesis-sink; read back, the
// output matches the input field by field. A second query's per-batch
// counts per country (file sink) sum to the number of events.
func TestBlogPipelineEndToEnd(t *testing.T) {
	// kdsfake in process always; kinesalite and kinesis-mock when
	// scripts/emulators.sh started them.
	srv, err := kdsfake.New(kdsfake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	endpoint, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ems := []testenv.Emulator{{Name: "kdsfake", Endpoint: endpoint}}
	if os.Getenv(testenv.EnvKinesalite) != "" || os.Getenv(testenv.EnvKinesisMock) != "" {
		ems = append(ems, testenv.KinesisEmulators(t)...)
	}
	for _, em := range ems {
		t.Run(em.Name, func(t *testing.T) { testBlogPipeline(t, em) })
	}
}

func testBlogPipeline(t *testing.T, em testenv.Emulator) {
	{
		c := testenv.KinesisClient(t, em.Endpoint)
		src := testenv.CreateStream(t, c, 2)
		dst := src + "-out"
		testenv.CreateStreamNamed(t, c, dst, 1)
		countries := []string{"Spain", "France", "Zürich", "Japan"}
		type event struct {
			ID   int64  `json:"id"`
			Data string `json:"data"`
			Date string `json:"date"`
		}
		var recs []testenv.Record
		want := map[string]event{}
		wantCount := map[string]int{}
		for i := range 60 {
			ev := event{ID: int64(1000 + i), Data: countries[i%len(countries)], Date: fmt.Sprintf("2026-11-25 10:00:%02d", i)}
			b, _ := json.Marshal(ev)
			recs = append(recs, testenv.Record{PartitionKey: "pk-" + strconv.Itoa(i%5), Data: b})
			want[strconv.FormatInt(ev.ID, 10)] = ev
			wantCount[ev.Data]++
		}
		testenv.PutRecords(t, c, src, recs)

		dir := t.TempDir()
		job := writeFile(t, dir, "blog.yaml", fmt.Sprintf(`name: blog
source:
  format: aws-kinesis
  options:
    kinesis.streamName: %s
    kinesis.endpointUrl: %s
    kinesis.region: %s
    kinesis.awsAccessKeyId: %s
    kinesis.awsSecretKey: %s
    kinesis.startingPosition: TRIM_HORIZON
    kinesis.getRecords.fetchIntervalMs: 20
sink:
  format: aws-kinesis
  options:
    kinesis.streamName: %s
    kinesis.endpointUrl: %s
    kinesis.region: %s
    kinesis.awsAccessKeyId: %s
    kinesis.awsSecretKey: %s
    kinesis.sink.aggregationEnabled: false
trigger: available-now
checkpointLocation: %s
sql: |
%s
`, src, em.Endpoint, testenv.Region, testenv.AccessKeyID, testenv.SecretKey, dst, em.Endpoint, testenv.Region, testenv.AccessKeyID, testenv.SecretKey,
			filepath.Join(dir, "ckpt"), "  "+strings.ReplaceAll(blogSQL, "\n", "\n  ")))
		var stdout, stderr bytes.Buffer
		if code := Run([]string{"run", job}, &stdout, &stderr, nil); code != ExitOK {
			t.Fatalf("exit %d:\n%s", code, stderr.String())
		}
		got := map[string]event{}
		for _, sh := range testenv.Shards(t, c, dst) {
			for _, r := range testenv.ReadShard(t, c, dst, *sh.ShardId) {
				var ev event
				if err := json.Unmarshal(r.Data, &ev); err != nil {
					t.Fatalf("output %q: %v", r.Data, err)
				}
				if *r.PartitionKey != strconv.FormatInt(ev.ID, 10) {
					t.Errorf("partition key %s for id %d", *r.PartitionKey, ev.ID)
				}
				if _, dup := got[*r.PartitionKey]; dup {
					t.Errorf("id %s written twice", *r.PartitionKey)
				}
				got[*r.PartitionKey] = ev
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("sink stream:\n got %v\nwant %v", got, want)
		}

		// Per-batch counts per country, to the file sink.
		out := filepath.Join(dir, "counts")
		stderr.Reset()
		args := slices.Concat([]string{"run"}, sourceArgs(em, src), []string{
			"--sink", "file", "--sink-option", "path=" + out, "--checkpoint", filepath.Join(dir, "ckpt2"), "--trigger", "available-now",
			"--source-option", "kinesis.maxFetchRecordsPerShard=10",
			"--sql", `SELECT e.data AS country, count(*) AS n FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING') AS e FROM source) GROUP BY ALL ORDER BY 1`,
		})
		if code := Run(args, &stdout, &stderr, nil); code != ExitOK {
			t.Fatalf("count query exit %d:\n%s", code, stderr.String())
		}
		gotCount := map[string]int{}
		for _, r := range outputRows(t, out) {
			gotCount[r["country"].(string)] += int(r["n"].(float64))
		}
		if fmt.Sprint(gotCount) != fmt.Sprint(wantCount) {
			t.Errorf("counts per country summed over batches: got %v, want %v", gotCount, wantCount)
		}
	}
}
