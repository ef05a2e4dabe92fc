package kds

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardflow/shardflow/internal/awshttpfix"
)

func TestRegionFromEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		endpoint string
		want     string // "" = no region
	}{
		{"https://kinesis.us-east-1.amazonaws.com", "us-east-1"},
		{"https://kinesis.eu-west-3.amazonaws.com/", "eu-west-3"},
		{"kinesis.ap-southeast-2.amazonaws.com", "ap-southeast-2"},
		{"https://kinesis.us-west-2.amazonaws.com:443", "us-west-2"},
		{"https://KINESIS.EU-CENTRAL-1.AMAZONAWS.COM", "eu-central-1"},
		{"https://kinesis.us-east-1.amazonaws.com.", "us-east-1"},
		{"https://kinesis-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"},
		{"https://kinesis-fips.us-east-2.amazonaws.com", "us-east-2"},
		{"https://kinesis.cn-north-1.amazonaws.com.cn", "cn-north-1"},
		{"https://kinesis.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1"},
		{"https://vpce-0123456789abcdef0-abcdefgh.kinesis.eu-west-1.vpce.amazonaws.com", "eu-west-1"},
		{"https://vpce-0123456789abcdef0-abcdefgh-eu-west-1a.kinesis.eu-west-1.vpce.amazonaws.com", "eu-west-1"},
		{"https://vpce-0a1b2c3d.kinesis-fips.us-east-1.vpce.amazonaws.com", "us-east-1"},
		{"https://123456789012.control-kinesis.us-east-1.amazonaws.com", "us-east-1"},
		{"https://123456789012.data-kinesis.sa-east-1.amazonaws.com", "sa-east-1"},

		// Not AWS Kinesis hosts: never guess.
		{"http://127.0.0.1:4567", ""},
		{"http://localhost:4567", ""},
		{"https://kinesis.internal.example.com", ""},
		{"https://proxy.us-east-1.example.com", ""},
		{"https://kinesis.us-east-1.example.com", ""},
		{"https://kinesis.us-east-1.amazonaws.com.evil.com", ""},
		{"https://dynamodb.us-east-1.amazonaws.com", ""},
		{"https://kinesis.amazonaws.com", ""},
		{"https://kinesis.notaregion.amazonaws.com", ""},
		{"https://foo.kinesis.us-east-1.amazonaws.com", ""},
		{"https://vpce-1.kinesis.us-east-1.amazonaws.com", ""},
		{"https://notvpce.kinesis.us-east-1.vpce.amazonaws.com", ""},
		{"https://12ab.control-kinesis.us-east-1.amazonaws.com", ""},
		{"https://s3.us-east-1.vpce.amazonaws.com", ""},
		{"", ""},
		{"://bad", ""},
	}
	for _, tt := range tests {
		got, ok := regionFromEndpoint(tt.endpoint)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("regionFromEndpoint(%q) = %q, %v; want %q", tt.endpoint, got, ok, tt.want)
		}
	}
}

// isolateAWSConfig hides the machine's AWS settings from the SDK.
func isolateAWSConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
}

func TestNewClientRegion(t *testing.T) {
	isolateAWSConfig(t)
	ctx := t.Context()
	tests := []struct {
		name      string
		cfg       AWSConfig
		envRegion string
		want      string
		wantErr   string
	}{
		{name: "explicit", cfg: AWSConfig{Region: "eu-west-1", EndpointURL: "https://kinesis.us-east-1.amazonaws.com"}, want: "eu-west-1"},
		{name: "environment before endpoint", cfg: AWSConfig{EndpointURL: "https://kinesis.us-east-1.amazonaws.com"}, envRegion: "ap-south-1", want: "ap-south-1"},
		{name: "from endpoint", cfg: AWSConfig{EndpointURL: "https://kinesis.eu-north-1.amazonaws.com"}, want: "eu-north-1"},
		{name: "from vpc endpoint", cfg: AWSConfig{EndpointURL: "https://vpce-0ab.kinesis.us-west-1.vpce.amazonaws.com"}, want: "us-west-1"},
		{name: "emulator without region", cfg: AWSConfig{EndpointURL: "http://127.0.0.1:4567"}, wantErr: "set kinesis.region"},
		{name: "nothing", cfg: AWSConfig{}, wantErr: "set kinesis.region"},
		{name: "key without secret", cfg: AWSConfig{Region: "us-east-1", AccessKeyID: "a"}, wantErr: "kinesis.awsAccessKeyId and kinesis.awsSecretKey"},
		{name: "bad endpoint", cfg: AWSConfig{Region: "us-east-1", EndpointURL: "ftp://x"}, wantErr: "kinesis.endpointUrl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_REGION", tt.envRegion)
			c, err := NewClient(ctx, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Options().Region; got != tt.want {
				t.Errorf("region %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewClientOptions(t *testing.T) {
	isolateAWSConfig(t)
	c, err := NewClient(t.Context(), AWSConfig{Region: "us-east-1", AccessKeyID: "AKID", SecretKey: "secret", SessionToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	o := c.Options()
	if _, ok := o.Retryer.(awsv2.NopRetryer); !ok || o.Retryer.MaxAttempts() != 1 {
		t.Errorf("retryer %T with %d attempts, want aws.NopRetryer (kds retries itself)", o.Retryer, o.Retryer.MaxAttempts())
	}
	hc, ok := o.HTTPClient.(interface{ Unwrap() awshttpfix.Doer })
	if !ok {
		t.Fatalf("HTTP client %T does not carry the aws-sdk-go-v2 issue 2737 workaround", o.HTTPClient)
	}
	bc, ok := hc.Unwrap().(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client %T, want *awshttp.BuildableClient", o.HTTPClient)
	}
	if tr := bc.GetTransport(); tr.MaxIdleConnsPerHost != maxIdleConnsPerHost || tr.MaxIdleConns != maxIdleConns {
		t.Errorf("pool: MaxIdleConns %d, MaxIdleConnsPerHost %d; want %d, %d", tr.MaxIdleConns, tr.MaxIdleConnsPerHost, maxIdleConns, maxIdleConnsPerHost)
	}
	if tr := bc.GetTransport(); !tr.ForceAttemptHTTP2 || tr.HTTP2 == nil || tr.HTTP2.SendPingTimeout != h2ReadIdleTimeout {
		t.Errorf("HTTP/2: ForceAttemptHTTP2 %v, HTTP2 %+v; want HTTP/2 with health-check pings (SubscribeToShard)", tr.ForceAttemptHTTP2, tr.HTTP2)
	}
	creds, err := o.Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "AKID" || creds.SecretAccessKey != "secret" || creds.SessionToken != "tok" {
		t.Errorf("credentials %+v, want the static ones", creds)
	}
}

// recordingServer answers every Kinesis call with body and records the
// X-Amz-Target of each request.
type recordingServer struct {
	*httptest.Server
	mu      sync.Mutex
	targets []string
}

func newRecordingServer(t *testing.T, body func(target string, req []byte) string) *recordingServer {
	s := &recordingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		req, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.targets = append(s.targets, target)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, body(target, req))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recordingServer) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.targets...)
}

func TestNewClientUsesEndpoint(t *testing.T) {
	isolateAWSConfig(t)
	srv := newRecordingServer(t, func(string, []byte) string { return `{"Shards":[]}` })
	c, err := NewClient(t.Context(), AWSConfig{Region: "us-east-1", EndpointURL: srv.URL, AccessKeyID: "a", SecretKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: awsv2.String("s")}); err != nil {
		t.Fatal(err)
	}
	if got := srv.calls(); len(got) != 1 || got[0] != "Kinesis_20131202.ListShards" {
		t.Errorf("server saw %q, want one ListShards", got)
	}
}

// TestEFOStreamWindow: an enhanced fan-out source's HTTP/2 stream window
// is a quarter of its shard buffer's byte bound, within 256 KiB and 4 MiB.
func TestEFOStreamWindow(t *testing.T) {
	for _, tc := range []struct{ buffer, want int }{
		{1 << 20, 256 << 10},   // the smallest maxBytesPerShard: the floor
		{2 << 20, 512 << 10},   // a quarter
		{8 << 20, 2 << 20},     // a quarter
		{16 << 20, 4 << 20},    // the default buffer keeps Go's 4 MiB
		{64 << 20, 4 << 20},    // the ceiling
		{512 << 10, 256 << 10}, // below the option's minimum (NewSource takes any): the floor
	} {
		if got := efoStreamWindow(tc.buffer); got != tc.want {
			t.Errorf("efoStreamWindow(%d) = %d, want %d", tc.buffer, got, tc.want)
		}
	}
}
