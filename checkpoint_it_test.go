package shardflow_test

// Integration tests of the S3 and DynamoDB checkpoint stores and of AWS
// credentials (issue 6): isolation and fencing, DynamoDB throttling,
// cross-account reads through an assumed role, static session credentials,
// and that secrets never leak.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ckptopen"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
	"github.com/shardflow/shardflow/sink/memsink"
)

// accountB is the 12-digit account kdsfake selects for requests signed with
// it as access key id.
const accountB = "111122223333"

// ckptRun is one query run to the memory sink, with everything it said.
type ckptRun struct {
	rows     int
	err      error
	logs     bytes.Buffer
	progress []string
	store    checkpoint.Store
}

// runCkptQuery runs an AvailableNow query with opts (source options) and
// the checkpoint at location, opened as the CLI opens it.
func runCkptQuery(t *testing.T, location string, opts map[string]string) *ckptRun {
	t.Helper()
	r := &ckptRun{}
	log := slog.New(slog.NewJSONHandler(&r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	r.err = func() error {
		cfg, err := kds.ParseSourceOptions(opts, log)
		if err != nil {
			return err
		}
		o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, opts)
		if err != nil {
			return err
		}
		log.Info("options", "source", o)
		store, err := ckptopen.Open(ctx, location, ckptopen.FromOptions(o))
		if err != nil {
			return err
		}
		r.store = store
		src, err := kds.NewSource(ctx, cfg, log)
		if err != nil {
			return err
		}
		sink := memsink.New()
		q, err := shardflow.NewQuery(shardflow.QueryConfig{
			Name: "ckpt-it", Checkpoint: store, Trigger: shardflow.AvailableNow(), Source: src, Sink: sink, Logger: log,
			OnProgress: func(p shardflow.Progress) {
				b, _ := json.Marshal(p)
				r.progress = append(r.progress, string(b))
			},
		})
		if err != nil {
			return err
		}
		err = q.Run(ctx)
		r.rows = len(sink.Rows())
		return err
	}()
	return r
}

// fakeKinesis starts kdsfake and puts n records into a new stream of the
// default account; it returns the endpoint and stream.
func fakeKinesis(t *testing.T, n int) (string, string) {
	t.Helper()
	srv := kdsfake.Start(t, kdsfake.Config{})
	c := testenv.KinesisClient(t, srv.URL())
	stream := testenv.CreateStream(t, c, 2)
	putN(t, c, stream, n)
	return srv.URL(), stream
}

func putN(t *testing.T, c *kinesis.Client, stream string, n int) {
	t.Helper()
	recs := make([]testenv.Record, n)
	for i := range recs {
		recs[i] = testenv.Record{PartitionKey: fmt.Sprint("pk-", i), Data: fmt.Appendf(nil, `{"i":%d}`, i)}
	}
	testenv.PutRecords(t, c, stream, recs)
}

func baseOpts(endpoint, stream string) map[string]string {
	return map[string]string{
		"kinesis.streamName":                 stream,
		"kinesis.endpointUrl":                endpoint,
		"kinesis.region":                     testenv.Region,
		"kinesis.awsAccessKeyId":             testenv.AccessKeyID,
		"kinesis.awsSecretKey":               testenv.SecretKey,
		"kinesis.startingPosition":           "TRIM_HORIZON",
		"kinesis.maxFetchRecordsPerShard":    "40",
		"kinesis.getRecords.fetchIntervalMs": "10",
		"kinesis.clientRetryIntervalsMs":     "50",
	}
}

// remoteStores are the S3 (gofakes3) and DynamoDB (dynalite) settings:
// a location root and the options that select the store.
func remoteStores(t *testing.T) map[string]func(t *testing.T) (root string, opts map[string]string) {
	return map[string]func(t *testing.T) (string, map[string]string){
		"s3store": func(t *testing.T) (string, map[string]string) {
			return "s3://" + testenv.UniqueName("bucket-") + "/queries", map[string]string{
				"shardflow.s3.endpointUrl": testenv.FakeS3(t), "shardflow.checkpoint.leaseTime": "1s"}
		},
		"ddbstore": func(t *testing.T) (string, map[string]string) {
			return t.TempDir(), map[string]string{
				"kinesis.metadataCommitterType":  "DYNAMODB",
				"shardflow.dynamodb.endpointUrl": testenv.Dynalite(t),
				"kinesis.dynamodb.tableName":     testenv.UniqueName("ckpt-"),
				"shardflow.checkpoint.leaseTime": "1s"}
		},
	}
}

// TestRemoteCheckpointIsolation: two queries on one stream with the same
// table (or bucket root) both get every record; a restart reads nothing
// again; a second process on a live checkpoint is refused.
func TestRemoteCheckpointIsolation(t *testing.T) {
	for name, setup := range remoteStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const n = 300
			endpoint, stream := fakeKinesis(t, n)
			root, storeOpts := setup(t)
			opts := baseOpts(endpoint, stream)
			maps.Copy(opts, storeOpts)
			for _, q := range []string{"q1", "q2"} {
				r := runCkptQuery(t, root+"/"+q, opts)
				if r.err != nil || r.rows != n {
					t.Fatalf("%s: %d rows, %v; want %d rows", q, r.rows, r.err, n)
				}
			}
			// Restarts resume: nothing is read twice.
			r := runCkptQuery(t, root+"/q1", opts)
			if r.err != nil || r.rows != 0 {
				t.Fatalf("q1 restart: %d rows, %v; want 0", r.rows, r.err)
			}
			// A live holder (its lease renewed) refuses another run.
			release, err := r.store.Lock(t.Context(), "another live process")
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			r = runCkptQuery(t, root+"/q1", opts)
			if !errors.Is(r.err, checkpoint.ErrLocked) || !strings.Contains(r.err.Error(), "another live process") {
				t.Fatalf("run on a live checkpoint = %v, want ErrLocked naming the holder", r.err)
			}
			// q2 is not blocked by q1's holder.
			if r := runCkptQuery(t, root+"/q2", opts); r.err != nil {
				t.Fatalf("q2 while q1 is held: %v", r.err)
			}
		})
	}
}

// TestDynamoDBCheckpointRecreated: deleting the checkpointLocation of a
// DynamoDB checkpoint starts a new checkpoint that never picks up the old
// positions.
func TestDynamoDBCheckpointRecreated(t *testing.T) {
	const n = 100
	endpoint, stream := fakeKinesis(t, n)
	root, storeOpts := remoteStores(t)["ddbstore"](t)
	opts := baseOpts(endpoint, stream)
	maps.Copy(opts, storeOpts)
	loc := root + "/q"
	if r := runCkptQuery(t, loc, opts); r.err != nil || r.rows != n {
		t.Fatalf("first run: %d rows, %v", r.rows, r.err)
	}
	if err := removeAll(loc); err != nil {
		t.Fatal(err)
	}
	if r := runCkptQuery(t, loc, opts); r.err != nil || r.rows != n {
		t.Fatalf("run on a recreated checkpoint: %d rows, %v; want all %d again", r.rows, r.err, n)
	}
}

// TestDynamoDBThrottlingRetried: a proxy in front of dynalite answers
// every third call with ProvisionedThroughputExceededException; the
// store retries and the query loses nothing.
func TestDynamoDBThrottlingRetried(t *testing.T) {
	target, err := url.Parse(testenv.Dynalite(t))
	if err != nil {
		t.Fatal(err)
	}
	var calls, throttled atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%3 == 0 {
			throttled.Add(1)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Header().Set("X-Amzn-ErrorType", "ProvisionedThroughputExceededException")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	const n = 400
	endpoint, stream := fakeKinesis(t, n)
	opts := baseOpts(endpoint, stream)
	maps.Copy(opts, map[string]string{
		"kinesis.metadataCommitterType":  "DYNAMODB",
		"shardflow.dynamodb.endpointUrl": srv.URL,
		"kinesis.dynamodb.tableName":     testenv.UniqueName("throttle-"),
	})
	r := runCkptQuery(t, t.TempDir(), opts)
	if r.err != nil || r.rows != n {
		t.Fatalf("%d rows, %v; want %d", r.rows, r.err, n)
	}
	if throttled.Load() < 5 {
		t.Fatalf("only %d throttled calls of %d", throttled.Load(), calls.Load())
	}
	t.Logf("%d DynamoDB calls, %d throttled and retried", calls.Load(), throttled.Load())
}

// fakeSTS answers AssumeRole with credentials whose access key id is
// account B's number.
type fakeSTS struct {
	*httptest.Server
	mu          sync.Mutex
	calls       int
	externalIDs []string
	secret      string
	token       string
}

func newFakeSTS(t *testing.T, secret, token string) *fakeSTS {
	f := &fakeSTS{secret: secret, token: token}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
			http.Error(w, "want a form-encoded AssumeRole", http.StatusBadRequest)
			return
		}
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "unsigned", http.StatusForbidden)
			return
		}
		f.mu.Lock()
		f.calls++
		f.externalIDs = append(f.externalIDs, r.Form.Get("ExternalId"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>%s</SecretAccessKey>
      <SessionToken>%s</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:%s</AssumedRoleId>
      <Arn>arn:aws:sts::%s:assumed-role/reader/%s</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, accountB, f.secret, f.token, time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			r.Form.Get("RoleSessionName"), accountB, r.Form.Get("RoleSessionName"))
	}))
	t.Cleanup(f.Close)
	return f
}

// crossAccount starts kdsfake with a stream of n records in account B only.
func crossAccount(t *testing.T, n int) (endpoint, stream string) {
	srv := kdsfake.Start(t, kdsfake.Config{})
	b := kinesis.New(kinesis.Options{
		Region: testenv.Region, BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(accountB, "b-secret", ""),
	})
	stream = testenv.UniqueName("orders-b-")
	testenv.CreateStreamNamed(t, b, stream, 2)
	putN(t, b, stream, n)
	return srv.URL(), stream
}

// TestCrossAccountAssumeRole: with kinesis.stsRoleArn the query reads
// account B's stream through STS credentials; without it the stream is
// not found, with a clear error. Static keys with a session token reach
// account B directly.
func TestCrossAccountAssumeRole(t *testing.T) {
	const n = 120
	endpoint, stream := crossAccount(t, n)
	sts := newFakeSTS(t, "assumed-secret", "assumed-token")
	opts := baseOpts(endpoint, stream)

	t.Run("without role", func(t *testing.T) {
		r := runCkptQuery(t, t.TempDir(), opts)
		if r.err == nil || !strings.Contains(r.err.Error(), stream) || !strings.Contains(strings.ToLower(r.err.Error()), "not found") {
			t.Fatalf("reading account B's stream without the role = %v, want a not-found error naming the stream", r.err)
		}
	})
	t.Run("assume role", func(t *testing.T) {
		o := maps.Clone(opts)
		maps.Copy(o, map[string]string{
			"kinesis.stsRoleArn":       "arn:aws:iam::" + accountB + ":role/reader",
			"kinesis.stsSessionName":   "shardflow-it",
			"kinesis.stsEndpointUrl":   sts.URL,
			"shardflow.sts.externalId": "ext-42",
		})
		r := runCkptQuery(t, t.TempDir(), o)
		if r.err != nil || r.rows != n {
			t.Fatalf("with kinesis.stsRoleArn: %d rows, %v; want %d", r.rows, r.err, n)
		}
		sts.mu.Lock()
		defer sts.mu.Unlock()
		if sts.calls == 0 || sts.externalIDs[0] != "ext-42" {
			t.Fatalf("AssumeRole calls %d, external ids %q", sts.calls, sts.externalIDs)
		}
	})
	t.Run("static session credentials", func(t *testing.T) {
		o := maps.Clone(opts)
		maps.Copy(o, map[string]string{"kinesis.awsAccessKeyId": accountB, "kinesis.awsSecretKey": "b-secret", "kinesis.sessionToken": "b-session-token"})
		r := runCkptQuery(t, t.TempDir(), o)
		if r.err != nil || r.rows != n {
			t.Fatalf("with static session credentials: %d rows, %v; want %d", r.rows, r.err, n)
		}
	})
	t.Run("role and S3 checkpoint share credentials", func(t *testing.T) {
		o := maps.Clone(opts)
		maps.Copy(o, map[string]string{
			"kinesis.stsRoleArn":       "arn:aws:iam::" + accountB + ":role/reader",
			"kinesis.stsSessionName":   "shardflow-it",
			"kinesis.stsEndpointUrl":   sts.URL,
			"shardflow.s3.endpointUrl": testenv.FakeS3(t),
		})
		r := runCkptQuery(t, "s3://ckpt/cross-account", o)
		if r.err != nil || r.rows != n {
			t.Fatalf("%d rows, %v; want %d", r.rows, r.err, n)
		}
	})
}

// TestSecretsNeverLeak runs queries with secret credentials (static keys,
// a session token, an STS external ID, and the secrets STS hands out) on
// an S3 and a DynamoDB checkpoint, and a few failing configurations; no
// secret appears in logs, errors, progress JSON, the options table, or any
// checkpoint object.
func TestSecretsNeverLeak(t *testing.T) {
	const n = 50
	secrets := []string{"SECRETsk9f8e7d6c", "SECRETtok1a2b3c4d", "SECREText4d5e6f", "SECRETassumed77", "SECRETassumedtok88"}
	endpoint, stream := crossAccount(t, n)
	sts := newFakeSTS(t, secrets[3], secrets[4])
	opts := baseOpts(endpoint, stream)
	maps.Copy(opts, map[string]string{
		"kinesis.awsAccessKeyId":   "AKIASECRETTEST",
		"kinesis.awsSecretKey":     secrets[0],
		"kinesis.sessionToken":     secrets[1],
		"kinesis.stsRoleArn":       "arn:aws:iam::" + accountB + ":role/reader",
		"kinesis.stsSessionName":   "shardflow-it",
		"kinesis.stsEndpointUrl":   sts.URL,
		"shardflow.sts.externalId": secrets[2],
	})
	var out []string
	check := func(what, text string) {
		t.Helper()
		out = append(out, text)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s leaks secret %q:\n%s", what, s, text)
			}
		}
	}
	dump := func(what string, s checkpoint.Store) {
		if s == nil {
			return
		}
		for _, dir := range []string{"", "offsets", "commits", "sources"} {
			names, _ := s.List(t.Context(), dir)
			for _, name := range names {
				if dir != "" {
					name = dir + "/" + name
				}
				b, _ := s.Read(t.Context(), name)
				check(what+" checkpoint object "+name, string(b))
			}
		}
	}
	for name, setup := range remoteStores(t) {
		root, storeOpts := setup(t)
		o := maps.Clone(opts)
		maps.Copy(o, storeOpts)
		r := runCkptQuery(t, root+"/secret", o)
		if r.err != nil || r.rows != n {
			t.Fatalf("%s: %d rows, %v", name, r.rows, r.err)
		}
		check(name+" logs", r.logs.String())
		check(name+" progress", strings.Join(r.progress, "\n"))
		dump(name, r.store)
	}
	// Failing configurations: their errors and logs.
	bad := []map[string]string{
		{"kinesis.awsAccessKeyId": ""},                                        // a secret key without its access key id
		{"kinesis.sessionToken": secrets[1], "kinesis.awsAccessKeyId": ""},    // a token without keys
		{"shardflow.sts.externalId": secrets[2], "kinesis.stsRoleArn": "bad"}, // a bad role
		{"kinesis.stsEndpointUrl": "http://127.0.0.1:1"},                      // STS unreachable
		{"kinesis.stsRoleArn": "", "kinesis.stsSessionName": ""},              // account B's stream unseen
	}
	for i, b := range bad {
		o := maps.Clone(opts)
		for k, v := range b {
			if v == "" {
				delete(o, k)
			} else {
				o[k] = v
			}
		}
		if _, ok := b["kinesis.stsRoleArn"]; ok && b["kinesis.stsRoleArn"] == "" {
			delete(o, "shardflow.sts.externalId")
			delete(o, "kinesis.stsEndpointUrl")
		}
		r := runCkptQuery(t, t.TempDir()+"/bad", o)
		if r.err == nil {
			t.Fatalf("bad configuration %d succeeded", i)
		}
		check(fmt.Sprintf("error of bad configuration %d", i), r.err.Error())
		check(fmt.Sprintf("logs of bad configuration %d", i), r.logs.String())
		if _, _, err := shardflow.ParseOptions(shardflow.ScopeSource, o); err != nil {
			check("option error", err.Error())
		}
	}
	parsed, _, err := shardflow.ParseOptions(shardflow.ScopeSource, opts)
	if err != nil {
		t.Fatal(err)
	}
	table, _ := json.Marshal(shardflow.OptionsTable())
	check("options table", string(table))
	red, _ := json.Marshal(parsed.Redacted())
	check("redacted options", string(red))
	check("options log value", parsed.LogValue().String())
	m, _ := json.Marshal(parsed.Map())
	check("options map", string(m))
	if len(strings.Join(out, "")) == 0 {
		t.Fatal("captured nothing")
	}
}

func removeAll(p string) error { return os.RemoveAll(p) }
