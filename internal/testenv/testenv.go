// Package testenv gives tests the local Kinesis emulators started by the
// test script: their endpoints, clients, and throwaway streams.
//
// Endpoints come from environment variables (URLs such as
// http://127.0.0.1:4567):
//
//	SHARDFLOW_TEST_KINESALITE    kinesalite (polling API, split and merge)
//	SHARDFLOW_TEST_KINESIS_MOCK  kinesis-mock (kinesis-local on npm)
//
// A test that needs an emulator is skipped when its variable is unset,
// unless CI=true, where a missing emulator fails the test instead.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/awshttpfix"
)

// Environment variables naming the emulators' endpoints.
const (
	EnvKinesalite  = "SHARDFLOW_TEST_KINESALITE"
	EnvKinesisMock = "SHARDFLOW_TEST_KINESIS_MOCK"
)

// Emulator names, as in Emulator.Name.
const (
	Kinesalite  = "kinesalite"
	KinesisMock = "kinesis-mock"
)

// Static test credentials and region for emulator clients.
const (
	AccessKeyID = "AKIASHARDFLOWTEST"
	SecretKey   = "shardflow-test-secret"
	Region      = "us-east-1"
)

// Emulator is one running Kinesis emulator.
type Emulator struct {
	Name     string // Kinesalite or KinesisMock
	Endpoint string // e.g. http://127.0.0.1:4567
}

// KinesisEmulators returns the emulators whose variables are set. It skips
// the test when none is; with CI=true it fails the test when any is
// missing.
func KinesisEmulators(t testing.TB) []Emulator {
	t.Helper()
	var ems []Emulator
	var missing []string
	for _, e := range []struct{ name, env string }{{Kinesalite, EnvKinesalite}, {KinesisMock, EnvKinesisMock}} {
		if v := strings.TrimSpace(os.Getenv(e.env)); v != "" {
			ems = append(ems, Emulator{Name: e.name, Endpoint: v})
		} else {
			missing = append(missing, e.env)
		}
	}
	if len(missing) > 0 && os.Getenv("CI") == "true" {
		t.Fatalf("testenv: CI=true but %s not set: the test script must start the Kinesis emulators", strings.Join(missing, " and "))
	}
	if len(ems) == 0 {
		t.Skipf("testenv: no Kinesis emulator: set %s and/or %s", EnvKinesalite, EnvKinesisMock)
	}
	return ems
}

// ForEachKinesis runs f as a subtest per emulator (see KinesisEmulators),
// named after it.
func ForEachKinesis(t *testing.T, f func(t *testing.T, em Emulator)) {
	t.Helper()
	for _, em := range KinesisEmulators(t) {
		t.Run(em.Name, func(t *testing.T) { f(t, em) })
	}
}

// KinesisClient returns a client for endpoint with static credentials in
// us-east-1. It ignores the machine's AWS configuration and keeps the
// SDK's standard retryer, so test setup rides out an emulator's hiccups.
func KinesisClient(t testing.TB, endpoint string) *kinesis.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(hc.CloseIdleConnections)
	return kinesis.New(kinesis.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretKey, ""),
		HTTPClient:   awshttpfix.Client(hc),
	})
}

var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// CreateStream creates a stream with the given number of shards and a name
// unique to the test, waits until it is ACTIVE, and deletes it when the
// test ends.
func CreateStream(t testing.TB, c *kinesis.Client, shards int) string {
	t.Helper()
	base := nameUnsafe.ReplaceAllString(t.Name(), "-")
	if len(base) > 80 {
		base = base[len(base)-80:]
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "sf-" + strings.Trim(base, "-.") + "-" + hex.EncodeToString(rnd[:])
	CreateStreamNamed(t, c, name, shards)
	return name
}

// CreateStreamNamed is CreateStream with a name of the caller's choosing.
func CreateStreamNamed(t testing.TB, c *kinesis.Client, name string, shards int) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
		t.Fatalf("testenv: CreateStream %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)})
	})
	WaitActive(t, c, name)
}

// WaitActive waits up to 30 s until the stream is ACTIVE, e.g. after a
// split or merge.
func WaitActive(t testing.TB, c *kinesis.Client, stream string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: stream %s not ACTIVE after 30s (last error: %v)", stream, err)
		}
		time.Sleep(25 * time.Millisecond) // polling an external server; nothing to wait on
	}
}

// Record is a record to put: Data and PartitionKey, and optionally an
// ExplicitHashKey.
type Record struct {
	PartitionKey    string
	Data            []byte
	ExplicitHashKey string
}

// Put is a record as written: its shard and sequence number, and for a
// user record written in a KPL aggregate its sub-sequence number.
type Put struct {
	Record
	ShardID           string
	SequenceNumber    string
	SubSequenceNumber int64
}

// PutRecords writes records in order, in PutRecords calls of at most 500,
// and fails the test if any record is not written. It returns where each
// one went.
func PutRecords(t testing.TB, c *kinesis.Client, stream string, recs []Record) []Put {
	t.Helper()
	out := make([]Put, 0, len(recs))
	for lo := 0; lo < len(recs); lo += 500 {
		hi := min(lo+500, len(recs))
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for _, r := range recs[lo:hi] {
			e := types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(r.PartitionKey)}
			if r.ExplicitHashKey != "" {
				e.ExplicitHashKey = aws.String(r.ExplicitHashKey)
			}
			in.Records = append(in.Records, e)
		}
		res, err := c.PutRecords(context.Background(), in)
		if err != nil {
			t.Fatalf("testenv: PutRecords to %s: %v", stream, err)
		}
		if n := aws.ToInt32(res.FailedRecordCount); n > 0 {
			t.Fatalf("testenv: PutRecords to %s: %d records failed", stream, n)
		}
		for i, e := range res.Records {
			out = append(out, Put{Record: recs[lo+i], ShardID: aws.ToString(e.ShardId), SequenceNumber: aws.ToString(e.SequenceNumber)})
		}
	}
	return out
}

// Shards lists the stream's shards (every page).
func Shards(t testing.TB, c *kinesis.Client, stream string) []types.Shard {
	t.Helper()
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := c.ListShards(context.Background(), in)
		if err != nil {
			t.Fatalf("testenv: ListShards %s: %v", stream, err)
		}
		shards = append(shards, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			return shards
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// SplitShard splits a shard in two halves of its hash key range and waits
// until the stream is ACTIVE again.
func SplitShard(t testing.TB, c *kinesis.Client, stream, shardID, newStartingHashKey string) {
	t.Helper()
	_, err := c.SplitShard(context.Background(), &kinesis.SplitShardInput{
		StreamName:         aws.String(stream),
		ShardToSplit:       aws.String(shardID),
		NewStartingHashKey: aws.String(newStartingHashKey),
	})
	if err != nil {
		t.Fatalf("testenv: SplitShard %s %s: %v", stream, shardID, err)
	}
	WaitActive(t, c, stream)
}

// ReadShard reads a shard from TRIM_HORIZON until GetRecords returns an
// empty page (or the shard ends) and returns its records. It is an
// independent reader for checking what a sink wrote.
func ReadShard(t testing.TB, c *kinesis.Client, stream, shardID string) []types.Record {
	t.Helper()
	ctx := context.Background()
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("testenv: GetShardIterator %s: %v", shardID, err)
	}
	var recs []types.Record
	iter := it.ShardIterator
	for iter != nil {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
		if err != nil {
			t.Fatalf("testenv: GetRecords %s: %v", shardID, err)
		}
		recs = append(recs, out.Records...)
		if len(out.Records) == 0 {
			break
		}
		iter = out.NextShardIterator
	}
	return recs
}
