package awscfg

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardflow/shardflow/internal/testenv"
)

// isolate clears every AWS variable the SDK reads for credentials, region
// and files, and points the shared files at an empty directory.
func isolate(t *testing.T) (configFile, credsFile string) {
	t.Helper()
	for _, v := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_STS", "AWS_CA_BUNDLE",
	} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	configFile, credsFile = filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	t.Setenv("AWS_CONFIG_FILE", configFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credsFile)
	writeFile(t, configFile, "", time.Time{})
	return configFile, credsFile
}

// writeFile writes name; a non-zero mod sets its modification time.
func writeFile(t *testing.T, name, data string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(name, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

// newRecorder is an AWS endpoint on 127.0.0.1 that records what each
// request was signed with and answers "{}".
func newRecorder(t *testing.T) *testenv.SigningRecorder {
	return testenv.RecordSigning(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte("{}"))
	}))
}

// call signs and sends one Kinesis request with cfg to r.
func call(t *testing.T, cfg aws.Config, r *testenv.SigningRecorder) testenv.Signed {
	t.Helper()
	c := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(r.URL) })
	if _, err := c.ListStreams(t.Context(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatal(err)
	}
	return r.Last(t)
}

func profileKeys(profile, key, secret, token string) string {
	s := "[" + profile + "]\naws_access_key_id = " + key + "\naws_secret_access_key = " + secret + "\n"
	if token != "" {
		s += "aws_session_token = " + token + "\n"
	}
	return s
}

// TestSharedCredentialsFileRotation: keys rewritten in the shared
// credentials file (a profile named by AWS_PROFILE) sign the requests made
// after the next check, without a new Load (the Spark connector's issue
// #85, where a long-running job kept the first keys until they expired).
func TestSharedCredentialsFileRotation(t *testing.T) {
	_, credsFile := isolate(t)
	t.Setenv("AWS_PROFILE", "rotated")
	mod := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeFile(t, credsFile, profileKeys("default", "AKIADEFAULTPROFILE", "default-secret", "")+
		profileKeys("rotated", "AKIAFIRSTKEY", "first-secret", "first-token"), mod)

	cfg, err := Load(t.Context(), Config{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	cache, ok := cfg.Credentials.(*aws.CredentialsCache)
	if !ok || !cache.IsCredentialsProvider(&sharedFiles{}) {
		t.Fatalf("credentials from a profile's static keys: provider %T, want a cache of *sharedFiles", cfg.Credentials)
	}
	r := newRecorder(t)
	first := time.Now()
	if got := call(t, cfg, r); got != (testenv.Signed{Key: "AKIAFIRSTKEY", Token: "first-token"}) {
		t.Fatalf("first request signed with %+v, want AKIAFIRSTKEY and first-token", got)
	}

	writeFile(t, credsFile, profileKeys("rotated", "AKIASECONDKEY", "second-secret", "second-token"), mod.Add(time.Minute))
	got := call(t, cfg, r)
	if time.Since(first) < SharedFilesCheckEvery/2 && got.Key != "AKIAFIRSTKEY" {
		t.Fatalf("request within the check interval signed with %q, want the cached AKIAFIRSTKEY", got.Key)
	}
	// The check interval has passed, as far as the cache is concerned.
	cache.Invalidate()
	if got := call(t, cfg, r); got != (testenv.Signed{Key: "AKIASECONDKEY", Token: "second-token"}) {
		t.Fatalf("request after the file changed signed with %+v, want AKIASECONDKEY and second-token", got)
	}
}

// TestSharedFilesChecks drives the provider with its own clock: it reads
// the files once, again only when one changed (or a minute passed), and
// keeps the last good keys while a file is half written.
func TestSharedFilesChecks(t *testing.T) {
	configFile, credsFile := isolate(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &sharedFiles{
		profile: "default", configFiles: []string{configFile}, credsFiles: []string{credsFile},
		every: SharedFilesCheckEvery, now: func() time.Time { return now },
	}
	mod := now.Add(-time.Hour)
	retrieve := func(wantKey string, wantReads int) {
		t.Helper()
		c, err := p.Retrieve(t.Context())
		if err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		if c.AccessKeyID != wantKey || p.reads != wantReads {
			t.Fatalf("Retrieve = %q after %d reads, want %q after %d", c.AccessKeyID, p.reads, wantKey, wantReads)
		}
		if !c.CanExpire || !c.Expires.Equal(now.Add(SharedFilesCheckEvery)) {
			t.Fatalf("Expires = %v (CanExpire %v), want now + %v", c.Expires, c.CanExpire, SharedFilesCheckEvery)
		}
	}

	// No keys yet: an error that names the profile, not a secret.
	writeFile(t, credsFile, "[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other-secret\n", mod)
	if _, err := p.Retrieve(t.Context()); err == nil || !strings.Contains(err.Error(), "profile default") || strings.Contains(err.Error(), "other-secret") {
		t.Fatalf("Retrieve without keys = %v, want an error naming profile default and no secret", err)
	}

	// Keys from the config file; the credentials file wins when it has some.
	writeFile(t, configFile, profileKeys("default", "AKIACONFIGFILE", "config-secret", ""), mod)
	retrieve("AKIACONFIGFILE", 2)
	now = now.Add(time.Second)
	retrieve("AKIACONFIGFILE", 2) // unchanged: two stats, no read
	writeFile(t, credsFile, profileKeys("default", "AKIACREDSFILE1", "secret-1", ""), mod)
	retrieve("AKIACREDSFILE1", 3) // the size changed

	// Half written (empty): the last keys stay in use, and every check reads
	// again until the file is whole.
	writeFile(t, credsFile, "", mod.Add(time.Second))
	writeFile(t, configFile, "", mod.Add(time.Second))
	retrieve("AKIACREDSFILE1", 4)
	retrieve("AKIACREDSFILE1", 5)
	writeFile(t, credsFile, profileKeys("default", "AKIACREDSFILE2", "secret-2", ""), mod.Add(2*time.Second))
	retrieve("AKIACREDSFILE2", 6)

	// Same size and modification time (a coarse file system): seen at the
	// latest a minute after the last read.
	writeFile(t, credsFile, profileKeys("default", "AKIACREDSFILE3", "secret-3", ""), mod.Add(2*time.Second))
	now = now.Add(30 * time.Second)
	retrieve("AKIACREDSFILE2", 6)
	now = now.Add(31 * time.Second)
	retrieve("AKIACREDSFILE3", 7)
}

// TestSharedFilesOnlyForProfileKeys: the re-reading provider replaces the
// SDK's only for static keys of a profile.
func TestSharedFilesOnlyForProfileKeys(t *testing.T) {
	hook := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIAHOOK", SecretAccessKey: "hook-secret"}, nil
	})
	for _, tc := range []struct {
		name   string
		env    map[string]string
		config string
		cfg    Config
		want   bool
	}{
		{name: "profile keys", want: true},
		{name: "AWS_PROFILE keys", env: map[string]string{"AWS_PROFILE": "other"}, want: true},
		{name: "environment keys", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}},
		{name: "kinesis.awsAccessKeyId", cfg: Config{AccessKeyID: "AKIASTATIC", SecretKey: "static-secret"}},
		{name: "CredentialsProvider", cfg: Config{CredentialsProvider: hook}},
		{
			name:   "profile role",
			env:    map[string]string{"AWS_PROFILE": "role"},
			config: "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = default\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			configFile, credsFile := isolate(t)
			writeFile(t, credsFile, profileKeys("default", "AKIAFILE", "file-secret", "")+profileKeys("other", "AKIAOTHER", "other-secret", ""), time.Time{})
			writeFile(t, configFile, tc.config, time.Time{})
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tc.cfg.Region = "us-east-1"
			cfg, err := Load(t.Context(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			cache, ok := cfg.Credentials.(*aws.CredentialsCache)
			if got := ok && cache.IsCredentialsProvider(&sharedFiles{}); got != tc.want {
				t.Fatalf("re-reading shared files = %v (provider %T), want %v", got, cfg.Credentials, tc.want)
			}
		})
	}
}
