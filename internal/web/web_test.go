package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint/memstore"
	"github.com/shardflow/shardflow/internal/web"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
	"github.com/shardflow/shardflow/metrics/prom"
)

// Secret option values that must never reach the dashboard or the API.
const (
	secretKeyID = "AKIASHARDFLOWTESTKEY1"
	secretKey   = "s3cr3t-Value-That-Must-Not-Leak"
)

// harness is a query on kdsfake with the metrics and the web server.
type harness struct {
	fake   *kdsfake.Server
	client *kinesis.Client
	stream string
	web    *web.Server
	http   *httptest.Server
	query  *shardflow.Query
	rows   chan int // rows per batch, as the sink saw them
}

func newHarness(t *testing.T, shards int, trigger shardflow.Trigger) *harness {
	t.Helper()
	fake := kdsfake.Start(t, kdsfake.Config{})
	h := &harness{fake: fake, stream: "orders", rows: make(chan int, 10000)}
	h.client = kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(fake.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(secretKeyID, secretKey, ""),
		HTTPClient:   fake.Client(),
	})
	if _, err := h.client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(h.stream), ShardCount: aws.Int32(int32(shards))}); err != nil {
		t.Fatal(err)
	}
	opts := map[string]string{
		"kinesis.streamName":                 h.stream,
		"kinesis.endpointUrl":                fake.URL(),
		"kinesis.region":                     "us-east-1",
		"kinesis.awsAccessKeyId":             secretKeyID,
		"kinesis.awsSecretKey":               secretKey,
		"kinesis.startingPosition":           "TRIM_HORIZON",
		"kinesis.clientRetryIntervalsMs":     "5",
		"kinesis.clientMaxRetryIntervalMs":   "20",
		"kinesis.getRecords.fetchIntervalMs": "0",
		"kinesis.maxFetchRecordsPerShard":    "40",
	}
	cfg, err := kds.ParseSourceOptions(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := kds.NewSource(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := shardflow.ParseOptions(shardflow.ScopeSource, opts)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.WatchSource(src)
	h.web = web.New(web.Config{
		Info:     web.Info{Name: "orders-etl", Options: map[string]map[string]string{"source": parsed.Redacted()}},
		Gatherer: reg,
	})
	h.http = httptest.NewServer(h.web.Handler())
	t.Cleanup(h.http.Close)
	sink := shardflow.ForEachBatch(func(_ context.Context, b *shardflow.Batch) error {
		h.rows <- len(b.Rows)
		return nil
	})
	h.query, err = shardflow.NewQuery(shardflow.QueryConfig{
		Name: "orders-etl", Checkpoint: memstore.New(), Trigger: trigger, Source: src, Sink: sink,
		SinkDescription: "ForEachBatch",
		Listeners:       []shardflow.Listener{m.Listener(), h.web.Listener()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// put writes n records spread over the shards.
func (h *harness) put(t *testing.T, n int) {
	t.Helper()
	for lo := 0; lo < n; lo += 500 {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(h.stream)}
		for i := lo; i < min(n, lo+500); i++ {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{
				PartitionKey: aws.String(fmt.Sprint("key-", i, "-", time.Now().UnixNano())),
				Data:         []byte(fmt.Sprintf(`{"order":%d}`, i)),
			})
		}
		out, err := h.client.PutRecords(t.Context(), in)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put: %v", err)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

func scrape(t *testing.T, url string) []sample {
	t.Helper()
	code, body := get(t, url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		s := sample{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			for _, kv := range strings.Split(strings.TrimSuffix(s.name[i+1:], "}"), ",") {
				k, val, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(val, `"`)
			}
			s.name = s.name[:i]
		}
		out = append(out, s)
	}
	return out
}

func sum(samples []sample, name string, match map[string]string) (float64, int) {
	var total float64
	n := 0
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
		n++
	}
	return total, n
}

// TestMetricsAfterKnownWorkload runs a query on kdsfake over a known number
// of records with throttles injected, then scrapes /metrics: the record
// counters equal the records processed, each shard has its lag, and the
// throttles are counted by API call.
func TestMetricsAfterKnownWorkload(t *testing.T) {
	const shards, total = 3, 600
	h := newHarness(t, shards, shardflow.AvailableNow())
	h.put(t, total)
	h.fake.ThrottleNext("GetRecords", 2)
	if err := h.query.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(h.rows)
	processed := 0
	for n := range h.rows {
		processed += n
	}
	if processed != total {
		t.Fatalf("sink saw %d rows, want %d", processed, total)
	}
	m := scrape(t, h.http.URL)
	if got, n := sum(m, "shardflow_source_records_total", nil); got != total || n != shards {
		t.Errorf("shardflow_source_records_total adds up to %v over %d shards, want %d over %d", got, n, total, shards)
	}
	if got, _ := sum(m, "shardflow_sink_records_total", nil); got != total {
		t.Errorf("shardflow_sink_records_total = %v, want %d", got, total)
	}
	if got, _ := sum(m, "shardflow_batch_input_rows_total", nil); got != total {
		t.Errorf("shardflow_batch_input_rows_total = %v, want %d", got, total)
	}
	batches, _ := sum(m, "shardflow_batches_total", nil)
	if count, _ := sum(m, "shardflow_batch_duration_seconds_count", nil); count != batches || batches < float64(total/shards/40) {
		t.Errorf("batch duration histogram counts %v batches, shardflow_batches_total %v", count, batches)
	}
	if _, n := sum(m, "shardflow_source_millis_behind_latest", nil); n != shards {
		t.Errorf("shardflow_source_millis_behind_latest has %d shards, want %d", n, shards)
	}
	for i := range shards {
		id := fmt.Sprintf("shardId-%012d", i)
		if _, n := sum(m, "shardflow_source_millis_behind_latest", map[string]string{"shard": id}); n != 1 {
			t.Errorf("no lag for shard %s", id)
		}
		if v, _ := sum(m, "shardflow_source_records_total", map[string]string{"shard": id}); v == 0 {
			t.Errorf("no records counted for shard %s", id)
		}
	}
	if got, _ := sum(m, "shardflow_api_throttles_total", map[string]string{"side": "source", "api": "GetRecords"}); got != 2 {
		t.Errorf("GetRecords throttles = %v, want 2", got)
	}
	if got, _ := sum(m, "shardflow_api_retries_total", map[string]string{"side": "source", "api": "GetRecords"}); got < 2 {
		t.Errorf("GetRecords retries = %v, want >= 2", got)
	}
	if _, n := sum(m, "shardflow_batch_phase_duration_seconds_count", map[string]string{"phase": "addBatch"}); n != 1 {
		t.Error("no addBatch phase histogram")
	}
	if _, n := sum(m, "shardflow_checkpoint_write_seconds_count", nil); n != 1 {
		t.Error("no checkpoint write histogram")
	}
	if got, _ := sum(m, "shardflow_query_running", nil); got != 0 {
		t.Errorf("shardflow_query_running = %v after the end", got)
	}

	// /api/progress: the records, the shards, no error, secrets masked.
	code, body := get(t, h.http.URL+"/api/progress")
	if code != http.StatusOK {
		t.Fatalf("/api/progress: %d", code)
	}
	var pr web.ProgressResponse
	if err := json.Unmarshal([]byte(body), &pr); err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, p := range pr.RecentProgress {
		rows += p.NumInputRows
	}
	if rows != total || len(pr.Shards) != shards || pr.LastError != nil || pr.Query.Status != web.StatusStopped || pr.Query.ID != h.query.ID() {
		t.Errorf("/api/progress: %d rows, %d shards, error %v, status %s, id %q", rows, len(pr.Shards), pr.LastError, pr.Query.Status, pr.Query.ID)
	}
	if strings.Contains(body, secretKey) || strings.Contains(body, secretKeyID) {
		t.Error("/api/progress shows a secret option value")
	}
	if pr.Query.Options["source"]["kinesis.streamName"] != h.stream {
		t.Errorf("options = %v", pr.Query.Options)
	}
	last := pr.RecentProgress[len(pr.RecentProgress)-1].BatchID
	_, body = get(t, fmt.Sprintf("%s/api/progress?since=%d", h.http.URL, last))
	if err := json.Unmarshal([]byte(body), &pr); err != nil || len(pr.RecentProgress) != 0 {
		t.Errorf("?since=last returned %d records (%v)", len(pr.RecentProgress), err)
	}
	if code, _ := get(t, h.http.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get(t, h.http.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the end: %d, want 503", code)
	}
}
