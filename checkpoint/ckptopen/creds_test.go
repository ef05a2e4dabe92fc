package ckptopen_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint/ckptopen"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// proxyTo forwards to an emulator's endpoint.
func proxyTo(t *testing.T, endpoint string) http.Handler {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return httputil.NewSingleHostReverseProxy(u)
}

// kinesisFake is kdsfake checking SigV4 signatures against keys (access
// key id to secret), with a one-shard stream "s", behind a recorder.
func kinesisFake(t *testing.T, keys map[string]string) *testenv.SigningRecorder {
	t.Helper()
	fake, err := kdsfake.New(kdsfake.Config{CheckSignatures: true, Credentials: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	if err := fake.CreateStream("s", 1); err != nil {
		t.Fatal(err)
	}
	return testenv.RecordSigning(t, fake.Handler())
}

func listShards(t *testing.T, c *kinesis.Client) {
	t.Helper()
	if _, err := c.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
}

// wantSignedBy fails unless every request r saw was signed with want.
func wantSignedBy(t *testing.T, service string, r *testenv.SigningRecorder, want testenv.Signed) {
	t.Helper()
	got := r.Signed()
	if len(got) == 0 {
		t.Fatalf("%s: no request reached the endpoint", service)
	}
	for i, s := range got {
		if s != want {
			t.Fatalf("%s request %d of %d signed with %+v, want %+v", service, i+1, len(got), s, want)
		}
	}
}

// TestCredentialsProviderHook: the Go hook (the form of
// kinesis.credentialProviderClass) signs Kinesis, S3 and DynamoDB
// requests, winning over static keys, and a per-service hook overrides it
// for that service only.
func TestCredentialsProviderHook(t *testing.T) {
	provider := func(key string, n *atomic.Int64) aws.CredentialsProvider {
		return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			n.Add(1)
			return aws.Credentials{AccessKeyID: key, SecretAccessKey: key + "-secret", SessionToken: key + "-token"}, nil
		})
	}
	var hookCalls, s3HookCalls atomic.Int64
	hook := provider("AKIAHOOKSHARED", &hookCalls)
	byHook := testenv.Signed{Key: "AKIAHOOKSHARED", Token: "AKIAHOOKSHARED-token"}
	shared := kds.AWSConfig{
		Region:      testenv.Region,
		AccessKeyID: "AKIASTATICLOSES", SecretKey: "static-secret", // the hook wins
		CredentialsProvider: hook,
	}

	t.Run("Kinesis", func(t *testing.T) {
		rec := kinesisFake(t, map[string]string{"AKIAHOOKSHARED": "AKIAHOOKSHARED-secret"})
		a := shared
		a.EndpointURL = rec.URL
		c, err := kds.NewClient(t.Context(), a)
		if err != nil {
			t.Fatal(err)
		}
		listShards(t, c) // kdsfake verified the signature with the hook's secret
		wantSignedBy(t, "Kinesis", rec, byHook)
	})
	t.Run("S3", func(t *testing.T) {
		rec := testenv.RecordSigning(t, proxyTo(t, testenv.FakeS3(t)))
		s, err := ckptopen.Open(t.Context(), "s3://hook/q", ckptopen.Config{AWS: shared, S3: ckptopen.Service{EndpointURL: rec.URL}})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
		wantSignedBy(t, "S3", rec, byHook)
	})
	t.Run("S3 own hook", func(t *testing.T) {
		rec := testenv.RecordSigning(t, proxyTo(t, testenv.FakeS3(t)))
		s, err := ckptopen.Open(t.Context(), "s3://hook/q", ckptopen.Config{AWS: shared, S3: ckptopen.Service{
			EndpointURL: rec.URL, CredentialsProvider: provider("AKIAHOOKFORS3", &s3HookCalls),
		}})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
		wantSignedBy(t, "S3", rec, testenv.Signed{Key: "AKIAHOOKFORS3", Token: "AKIAHOOKFORS3-token"})
	})
	t.Run("DynamoDB", func(t *testing.T) {
		rec := testenv.RecordSigning(t, proxyTo(t, testenv.Dynalite(t)))
		s, err := ckptopen.Open(t.Context(), t.TempDir(), ckptopen.Config{
			AWS: shared, CommitterType: ckptopen.DYNAMODB, Table: testenv.UniqueName("hook-"),
			DynamoDB: ckptopen.Service{EndpointURL: rec.URL},
		})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
		wantSignedBy(t, "DynamoDB", rec, byHook)
	})
	if hookCalls.Load() == 0 || s3HookCalls.Load() == 0 {
		t.Fatalf("hooks asked %d and %d times", hookCalls.Load(), s3HookCalls.Load())
	}
}

// fakeSTS answers AssumeRole on 127.0.0.1. Call i (from 0) returns keys
// ASIAROLEKEY<i>, valid for valid[i] (the last entry for later calls).
type fakeSTS struct {
	URL   string
	valid []time.Duration
	mu    sync.Mutex
	calls []url.Values // the form of each AssumeRole
	by    []string     // the access key id that signed it
}

func newFakeSTS(t *testing.T, valid ...time.Duration) *fakeSTS {
	t.Helper()
	f := &fakeSTS{valid: valid}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
			http.Error(w, "want a form-encoded AssumeRole", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		i := len(f.calls)
		f.calls = append(f.calls, r.Form)
		f.by = append(f.by, testenv.SigningKey(r.Header.Get("Authorization")))
		f.mu.Unlock()
		key := roleKey(i)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>%s-secret</SecretAccessKey>
      <SessionToken>%s-token</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:%s</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/reader/%s</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, key, key, key, time.Now().Add(f.validity(i)).UTC().Format(time.RFC3339),
			r.Form.Get("RoleSessionName"), r.Form.Get("RoleSessionName"))
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func roleKey(i int) string { return fmt.Sprintf("ASIAROLEKEY%d", i) }

func (f *fakeSTS) validity(i int) time.Duration { return f.valid[min(i, len(f.valid)-1)] }

// TestAssumedRoleRefresh: with kinesis.stsRoleArn, kinesis.stsEndpointUrl
// and shardflow.sts.externalId, Kinesis, S3 and DynamoDB requests are
// signed with the assumed role's keys; keys about to expire are replaced by
// a new AssumeRole (with the external id, signed with the base keys) before
// the next request, and keys far from expiry are reused.
//
// The fake STS controls expiry: the first keys it issues are valid for 30 s,
// inside awscfg.RefreshBefore (2 min, less up to half as jitter), so the
// very next request must assume the role again; the second keys are valid
// for an hour and must serve every later request. No sleeps.
func TestAssumedRoleRefresh(t *testing.T) {
	const base, externalID = "AKIABASEKEY", "ext-1234"
	roleKeys := map[string]string{roleKey(0): roleKey(0) + "-secret", roleKey(1): roleKey(1) + "-secret", roleKey(2): roleKey(2) + "-secret"}
	options := func(sts *fakeSTS, more map[string]string) shardflow.Options {
		t.Helper()
		m := map[string]string{
			"kinesis.streamName":       "s",
			"kinesis.region":           testenv.Region,
			"kinesis.awsAccessKeyId":   base,
			"kinesis.awsSecretKey":     "base-secret",
			"kinesis.stsRoleArn":       "arn:aws:iam::123456789012:role/reader",
			"kinesis.stsSessionName":   "shardflow-test",
			"kinesis.stsEndpointUrl":   sts.URL,
			"shardflow.sts.externalId": externalID,
		}
		for k, v := range more {
			m[k] = v
		}
		o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, m)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	check := func(t *testing.T, service string, sts *fakeSTS, rec *testenv.SigningRecorder) {
		t.Helper()
		got := rec.Signed()
		if len(got) < 3 {
			t.Fatalf("%s: %d requests, want at least 3", service, len(got))
		}
		if want := (testenv.Signed{Key: roleKey(0), Token: roleKey(0) + "-token"}); got[0] != want {
			t.Fatalf("%s: first request signed with %+v, want the first assumed keys %+v", service, got[0], want)
		}
		for i, s := range got[1:] {
			if want := (testenv.Signed{Key: roleKey(1), Token: roleKey(1) + "-token"}); s != want {
				t.Fatalf("%s: request %d signed with %+v, want the refreshed keys %+v", service, i+2, s, want)
			}
		}
		sts.mu.Lock()
		defer sts.mu.Unlock()
		if len(sts.calls) != 2 {
			t.Fatalf("%s: %d AssumeRole calls for %d requests, want 2 (once, then once more for the expiring keys)", service, len(sts.calls), len(got))
		}
		for i, form := range sts.calls {
			if form.Get("ExternalId") != externalID || form.Get("RoleArn") != "arn:aws:iam::123456789012:role/reader" ||
				form.Get("RoleSessionName") != "shardflow-test" || sts.by[i] != base {
				t.Fatalf("%s: AssumeRole %d sent ExternalId %q, RoleArn %q, RoleSessionName %q, signed by %q",
					service, i+1, form.Get("ExternalId"), form.Get("RoleArn"), form.Get("RoleSessionName"), sts.by[i])
			}
		}
	}

	t.Run("Kinesis", func(t *testing.T) {
		sts := newFakeSTS(t, 30*time.Second, time.Hour)
		rec := kinesisFake(t, roleKeys)
		sc, err := kds.SourceConfigFrom(options(sts, map[string]string{"kinesis.endpointUrl": rec.URL}))
		if err != nil {
			t.Fatal(err)
		}
		c, err := kds.NewClient(t.Context(), sc.AWS)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			listShards(t, c) // kdsfake verifies each signature
		}
		check(t, "Kinesis", sts, rec)
	})
	t.Run("S3", func(t *testing.T) {
		sts := newFakeSTS(t, 30*time.Second, time.Hour)
		rec := testenv.RecordSigning(t, proxyTo(t, testenv.FakeS3(t)))
		cfg := ckptopen.FromOptions(options(sts, map[string]string{"shardflow.s3.endpointUrl": rec.URL}))
		s, err := ckptopen.Open(t.Context(), "s3://role/q", cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := s.Create(t.Context(), fmt.Sprintf("offsets/%d", i), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		check(t, "S3", sts, rec)
	})
	t.Run("DynamoDB", func(t *testing.T) {
		sts := newFakeSTS(t, 30*time.Second, time.Hour)
		rec := testenv.RecordSigning(t, proxyTo(t, testenv.Dynalite(t)))
		cfg := ckptopen.FromOptions(options(sts, map[string]string{
			"kinesis.metadataCommitterType":  ckptopen.DYNAMODB,
			"kinesis.dynamodb.tableName":     testenv.UniqueName("role-"),
			"shardflow.dynamodb.endpointUrl": rec.URL,
		}))
		s, err := ckptopen.Open(t.Context(), t.TempDir(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s)
		check(t, "DynamoDB", sts, rec)
	})
}
