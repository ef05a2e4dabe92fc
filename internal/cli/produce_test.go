package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shardflow/shardflow/internal/datagen"
	"github.com/shardflow/shardflow/internal/testenv"
)

// runProduce runs `shardflow produce args...` in process (the command is
// not in Run's list until the lead registers it).
func runProduce(t *testing.T, signals <-chan os.Signal, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	// Static credentials, and no instance metadata lookups.
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var out, errOut syncBuffer
	e := &env{stdout: &out, stderr: &errOut, signals: signals, logLevel: "info", logFormat: "text"}
	cmd := newProduceCmd(e)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func TestProduceUsageErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"--stream is required"}},
		{[]string{"--stream", "s", "--template", "x", "--template-file", "f"}, []string{"--template and --template-file are exclusive"}},
		{[]string{"--stream", "s", "--template", `{"n": {{random.numbr(5)}}}`}, []string{"--template: datagen: template line 1, column 7: random.numbr: unknown helper; did you mean random.number?"}},
		{[]string{"--stream", "s", "--template", `{{random.number({"min":9,"max":1})}}`}, []string{"random.number: min 9 is greater than max 1", "accepted:"}},
		{[]string{"--stream", "s", "--template-file", filepath.Join(dir, "missing")}, []string{"--template-file: open", "missing"}},
		{[]string{"--stream", "s", "--template-file", empty}, []string{"--template-file " + empty + " is empty"}},
		{[]string{"--stream", "s", "--partition-key", "{{name.nope}}"}, []string{"--partition-key: datagen: template line 1, column 1: name.nope: unknown helper"}},
		{[]string{"--stream", "s", "--batch-size", "501", "--rate", "-1", "--count", "-2", "--duration", "-1s"}, []string{"--batch-size 501: must be between 1 and 500", "--rate -1", "--count -2", "--duration -1s"}},
		{[]string{"--stream", "s", "--endpoint", "ftp://x", "--region", "us-east-1"}, []string{"kinesis.endpointUrl", "for produce: --region and --endpoint"}},
	} {
		_, _, err := runProduce(t, nil, c.args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: err = %v, want a usage error", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q:\n  error %q\n  lacks %q", c.args, err, w)
			}
		}
	}
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	dateRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
)

// demoEvent is a record of the default template.
type demoEvent struct {
	ID   *int   `json:"id"`
	Data string `json:"data"`
	Date string `json:"date"`
}

func (ev demoEvent) check() error {
	if ev.ID == nil || *ev.ID < 0 || *ev.ID > 100 || ev.Data == "" || !dateRE.MatchString(ev.Date) {
		return fmt.Errorf("bad event %+v", ev)
	}
	return nil
}

func TestProduceDryRun(t *testing.T) {
	out, _, err := runProduce(t, nil, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("default template, --dry-run: %d lines, want 5:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var ev demoEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if err := ev.check(); err != nil {
			t.Fatal(err)
		}
	}

	// A seed repeats the records; the template's line breaks go.
	args := []string{"--dry-run", "--count", "3", "--seed", "7", "--template", "{\n  \"u\": \"{{random.uuid}}\"\n}\n"}
	a, _, err := runProduce(t, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := runProduce(t, nil, args...)
	if a != b || strings.Count(a, "\n") != 3 || !strings.HasPrefix(a, `{  "u": "`) {
		t.Fatalf("--seed 7 twice:\n%s\n%s", a, b)
	}
	c, _, _ := runProduce(t, nil, append(args, "--keep-newlines")...)
	if strings.Count(c, "\n") != 3*4 {
		t.Fatalf("--keep-newlines:\n%s", c)
	}
}

// fakeKinesisServer answers PutRecords over HTTP like Kinesis, for the
// stream "s" only, and records what it got.
type fakeKinesisServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []int // records per request
	records  []putEntry
	got      chan struct{} // a send per request, if not nil
	hang     bool          // requests wait until the client goes away
}

type putEntry struct {
	Data         []byte
	PartitionKey string
}

func newFakeKinesisServer(t *testing.T) *fakeKinesisServer {
	f := &fakeKinesisServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"__type":"UnknownOperationException","message":"%s"}`, r.Header.Get("X-Amz-Target"))
			return
		}
		var in struct {
			StreamName string
			Records    []putEntry
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"__type":"SerializationException","message":%q}`, err.Error())
			return
		}
		if f.hang {
			if f.got != nil {
				f.got <- struct{}{}
			}
			<-r.Context().Done()
			return
		}
		if in.StreamName != "s" {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"__type":"ResourceNotFoundException","message":"Stream %s under account 000000000000 not found."}`, in.StreamName)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, len(in.Records))
		f.records = append(f.records, in.Records...)
		f.mu.Unlock()
		out := struct {
			FailedRecordCount int
			Records           []map[string]string
		}{}
		for range in.Records {
			out.Records = append(out.Records, map[string]string{"SequenceNumber": "1", "ShardId": "shardId-000000000000"})
		}
		_ = json.NewEncoder(w).Encode(out)
		if f.got != nil {
			select {
			case f.got <- struct{}{}:
			default:
			}
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeKinesisServer) snapshot() ([]int, []putEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.requests...), append([]putEntry(nil), f.records...)
}

func TestProduceToFakeKinesis(t *testing.T) {
	srv := newFakeKinesisServer(t)
	out, errOut, err := runProduce(t, nil, "--stream", "s", "--endpoint", srv.URL, "--region", "us-east-1", "--count", "120", "--batch-size", "50")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	reqs, recs := srv.snapshot()
	if fmt.Sprint(reqs) != "[50 50 20]" || len(recs) != 120 {
		t.Fatalf("requests %v, %d records; want [50 50 20], 120", reqs, len(recs))
	}
	for _, r := range recs {
		var ev demoEvent
		if err := json.Unmarshal(r.Data, &ev); err != nil {
			t.Fatalf("%s: %v", r.Data, err)
		}
		if err := ev.check(); err != nil {
			t.Fatal(err)
		}
		if !uuidRE.MatchString(r.PartitionKey) {
			t.Fatalf("partition key %q is not a UUID", r.PartitionKey)
		}
	}
	if !strings.HasPrefix(out, `produced: 120 records (`) || !strings.Contains(out, `to stream "s"`) || !strings.Contains(out, "0 failed, 0 retries, 0 errors") {
		t.Errorf("summary: %q", out)
	}
	// Not a terminal: plain log lines, no carriage returns.
	if !strings.Contains(errOut, "msg=producing") || !strings.Contains(errOut, "msg=progress") || strings.Contains(errOut, "\r") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

func TestProduceMissingStream(t *testing.T) {
	srv := newFakeKinesisServer(t)
	out, _, err := runProduce(t, nil, "--stream", "nope", "--endpoint", srv.URL, "--region", "us-east-1", "--count", "5")
	if err == nil || !strings.Contains(err.Error(), `PutRecords to stream "nope"`) || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("err = %v", err)
	}
	var ue usageError
	if errors.As(err, &ue) {
		t.Errorf("a missing stream is not a usage error")
	}
	if !strings.Contains(out, "produced: 0 records") || !strings.Contains(out, "5 failed") {
		t.Errorf("summary: %q", out)
	}
}

// TestProduceSignalStops: SIGINT stops an unbounded run gracefully, exit 0.
func TestProduceSignalStops(t *testing.T) {
	srv := newFakeKinesisServer(t)
	srv.got = make(chan struct{}, 1)
	sigs := make(chan os.Signal, 2)
	go func() {
		<-srv.got
		sigs <- syscall.SIGINT
	}()
	out, errOut, err := runProduce(t, sigs, "--stream", "s", "--endpoint", srv.URL, "--region", "us-east-1", "--rate", "200")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	_, recs := srv.snapshot()
	if want := fmt.Sprintf("stopped: %d records", len(recs)); !strings.HasPrefix(out, want) || len(recs) == 0 {
		t.Errorf("summary %q, want it to start %q", out, want)
	}
	if !strings.Contains(errOut, "finishing the request in flight") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

// TestProduceSecondSignalAborts: a second signal abandons the request in
// flight; the error is errAborted's (exit 130).
func TestProduceSecondSignalAborts(t *testing.T) {
	srv := newFakeKinesisServer(t)
	srv.got, srv.hang = make(chan struct{}), true
	sigs := make(chan os.Signal, 2)
	go func() {
		<-srv.got
		sigs <- syscall.SIGINT
		sigs <- syscall.SIGTERM
	}()
	out, errOut, err := runProduce(t, sigs, "--stream", "s", "--endpoint", srv.URL, "--region", "us-east-1")
	if !errors.Is(err, errAborted) || !strings.Contains(err.Error(), "the request in flight was abandoned") {
		t.Fatalf("err = %v\n%s", err, errOut)
	}
	if !strings.HasPrefix(out, "aborted: 0 records") {
		t.Errorf("summary %q", out)
	}
}

func TestProgressLine(t *testing.T) {
	st := datagen.Stats{Sent: 450, Errors: 3, Elapsed: 65*time.Second + 400*time.Millisecond}
	for _, c := range []struct {
		count    int64
		duration time.Duration
		failed   int64
		want     string
	}{
		{0, 0, 0, "450 records  90 rec/s  3 errors  01:05"},
		{1000, 0, 0, "[==========              ]  45%  450/1000 records  90 rec/s  3 errors  01:05"},
		{1000, 0, 50, "[============            ]  50%  450/1000 records  90 rec/s  3 errors  50 failed  01:05"},
		{0, 130 * time.Second, 0, "[============            ]  50%  450 records  90 rec/s  3 errors  01:05/02:10"},
		{100, 0, 0, "[========================] 100%  450/100 records  90 rec/s  3 errors  01:05"},
	} {
		s := st
		s.Failed = c.failed
		if got := progressLine(s, 90, c.count, c.duration); got != c.want {
			t.Errorf("count %d, duration %v:\n got %q\nwant %q", c.count, c.duration, got, c.want)
		}
	}
	// The rate is over about the last second, never less than a second.
	p := &progressView{}
	for _, c := range []struct {
		sent int64
		at   time.Duration
		want float64
	}{
		{200, 3 * time.Millisecond, 200},
		{2200, 1003 * time.Millisecond, 2000},
		{2600, 1203 * time.Millisecond, 2000},
		{2600, 3203 * time.Millisecond, 0}, // nothing for 2 s
	} {
		if got := p.rate(datagen.Stats{Sent: c.sent, Elapsed: c.at}); got != c.want {
			t.Errorf("rate at %v, %d sent: %v, want %v", c.at, c.sent, got, c.want)
		}
	}
	if isTerminal(&syncBuffer{}) {
		t.Error("a buffer is not a terminal")
	}
}

// TestProduceKinesalite writes 200 records with --count to an emulator and
// reads them all back: each one renders the template.
func TestProduceKinesalite(t *testing.T) {
	testenv.ForEachKinesis(t, func(t *testing.T, em testenv.Emulator) {
		c := testenv.KinesisClient(t, em.Endpoint)
		stream := testenv.CreateStream(t, c, 2)
		tmpl := `{"id": {{random.number(100)}}, "data": "{{address.country}}", "date": "{{date.now("YYYY-MM-DD HH:mm:ss")}}", "u": "{{random.uuid}}"}`
		out, errOut, err := runProduce(t, nil, "--stream", stream, "--endpoint", em.Endpoint, "--region", testenv.Region,
			"--count", "200", "--batch-size", "64", "--template", tmpl, "--partition-key", "user-{{random.number(20)}}")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if !strings.HasPrefix(out, "produced: 200 records") {
			t.Errorf("summary: %q", out)
		}
		seen := map[string]bool{}
		for _, sh := range testenv.Shards(t, c, stream) {
			for _, r := range testenv.ReadShard(t, c, stream, aws.ToString(sh.ShardId)) {
				var ev struct {
					demoEvent
					U string `json:"u"`
				}
				if err := json.Unmarshal(r.Data, &ev); err != nil {
					t.Fatalf("%s: %v", r.Data, err)
				}
				if err := ev.check(); err != nil || !uuidRE.MatchString(ev.U) {
					t.Fatalf("%s: %v", r.Data, err)
				}
				if pk := aws.ToString(r.PartitionKey); !regexp.MustCompile(`^user-([0-9]|1[0-9]|20)$`).MatchString(pk) {
					t.Fatalf("partition key %q", pk)
				}
				seen[ev.U] = true
			}
		}
		if len(seen) != 200 {
			t.Fatalf("read %d distinct records back, want 200", len(seen))
		}
	})
}
