package ckptopen_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ckptopen"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
)

func staticAWS() kds.AWSConfig {
	return kds.AWSConfig{Region: testenv.Region, AccessKeyID: testenv.AccessKeyID, SecretKey: testenv.SecretKey}
}

func roundTrip(t *testing.T, s checkpoint.Store) {
	t.Helper()
	if err := s.Create(t.Context(), "offsets/0", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), "offsets/0", []byte("y")); !errors.Is(err, checkpoint.ErrExist) {
		t.Fatalf("second Create = %v, want ErrExist", err)
	}
}

// TestStandardEndpointVariables: AWS_ENDPOINT_URL_S3 and
// AWS_ENDPOINT_URL_DYNAMODB reach the stores with no shardflow option, and
// S3 uses path-style addressing for an IP endpoint.
func TestStandardEndpointVariables(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", testenv.FakeS3(t))
	s, err := ckptopen.Open(t.Context(), "s3://env-bucket/q", ckptopen.Config{AWS: staticAWS()})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s)

	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", testenv.Dynalite(t))
	d, err := ckptopen.Open(t.Context(), t.TempDir(), ckptopen.Config{AWS: staticAWS(), CommitterType: ckptopen.DYNAMODB, Table: testenv.UniqueName("env-")})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, d)
}

func TestOpenErrors(t *testing.T) {
	for loc, want := range map[string]string{
		"hdfs://nn/ckpt":  "hdfs:// is not supported yet; use a local directory, a file:// URL or s3://bucket/prefix",
		"gs://bucket/x":   `scheme "gs" is not supported`,
		"s3:///no-bucket": "has no bucket",
		"":                "checkpointLocation is required",
	} {
		_, err := ckptopen.Open(t.Context(), loc, ckptopen.Config{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", loc, err, want)
		}
	}
	if _, err := ckptopen.Open(t.Context(), t.TempDir(), ckptopen.Config{CommitterType: "KAFKA"}); err == nil {
		t.Error("Open with committer type KAFKA succeeded")
	}
}
