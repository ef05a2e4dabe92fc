package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/shardflow/shardflow/internal/awshttpfix"
)

// EnvDynalite names dynalite's endpoint (scripts/emulators.sh exports it).
const EnvDynalite = "SHARDFLOW_TEST_DYNALITE"

// FakeS3 starts gofakes3 in process on 127.0.0.1 (it honours If-None-Match
// and If-Match) and returns its endpoint. It stops when the test ends.
func FakeS3(t testing.TB) string {
	t.Helper()
	fake := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(fake.Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

// S3Client returns a path-style S3 client for endpoint with the test
// credentials and the SDK's standard retryer.
func S3Client(t testing.TB, endpoint string) *s3.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(hc.CloseIdleConnections)
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretKey, ""),
		HTTPClient:   awshttpfix.Client(hc),
	})
}

// Dynalite returns dynalite's endpoint. It skips the test when
// SHARDFLOW_TEST_DYNALITE is unset, and fails it instead with CI=true.
func Dynalite(t testing.TB) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(EnvDynalite))
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: CI=true but %s is not set: the test script must start dynalite", EnvDynalite)
		}
		t.Skipf("testenv: no dynalite: set %s (scripts/emulators.sh does)", EnvDynalite)
	}
	return v
}

// DynamoDBClient returns a client for endpoint with the test credentials
// and the SDK's standard retryer.
func DynamoDBClient(t testing.TB, endpoint string) *dynamodb.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(hc.CloseIdleConnections)
	return dynamodb.New(dynamodb.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretKey, ""),
		HTTPClient:   awshttpfix.Client(hc),
	})
}

// UniqueName returns prefix followed by random hex, for tables, buckets
// and checkpoint ids that must not collide between tests.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// CreateBucket creates a bucket on an S3 endpoint (gofakes3 also creates
// buckets on first use).
func CreateBucket(t testing.TB, c *s3.Client, bucket string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("testenv: CreateBucket %s: %v", bucket, err)
	}
}
