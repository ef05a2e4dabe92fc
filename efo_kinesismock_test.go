package shardflow_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint/memstore"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
)

// TestEFOReadsKinesisMock reads a stream of kinesis-mock by enhanced
// fan-out: an event-stream writer independent of kdsfake (Scala, and one
// the SDK's own reader cannot follow, because it sends no initial-response
// event) checks kds's decoder. Every record arrives exactly once.
func TestEFOReadsKinesisMock(t *testing.T) {
	t.Parallel()
	em := kinesisMock(t)
	ctx := t.Context()
	c := testenv.KinesisClient(t, em.Endpoint)
	stream := testenv.CreateStream(t, c, 2)
	var recs []testenv.Record
	for i := range 50 {
		recs = append(recs, testenv.Record{PartitionKey: fmt.Sprintf("k%d", i), Data: []byte(fmt.Sprintf("v%d", i))})
	}
	testenv.PutRecords(t, c, stream, recs)
	cfg, err := kds.ParseSourceOptions(map[string]string{
		"kinesis.streamName":       stream,
		"kinesis.endpointUrl":      em.Endpoint,
		"kinesis.region":           testenv.Region,
		"kinesis.awsAccessKeyId":   testenv.AccessKeyID,
		"kinesis.awsSecretKey":     testenv.SecretKey,
		"kinesis.startingPosition": "TRIM_HORIZON",
		"kinesis.consumerType":     "SubscribeToShard",
		"kinesis.consumerName":     "sf-mock-read",
	}, itLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	src, err := kds.NewSource(ctx, cfg, itLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	q, err := shardflow.NewQuery(shardflow.QueryConfig{
		Name: "mock-efo", Checkpoint: memstore.New(), Trigger: shardflow.ProcessingTime(0), Source: src, Logger: itLogger(t),
		Sink: shardflow.ForEachBatch(func(_ context.Context, b *shardflow.Batch) error {
			di := b.Schema.Index("data")
			mu.Lock()
			defer mu.Unlock()
			for _, r := range b.Rows {
				seen[string(r[di].([]byte))]++
			}
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == len(recs) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("query ended with %d of %d records: %v", n, len(recs), err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records read in 30 s", n, len(recs))
		}
	}
	if err := q.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if seen[string(r.Data)] != 1 {
			t.Errorf("record %s read %d times", r.Data, seen[string(r.Data)])
		}
	}
}

// kinesisMock returns the running kinesis-mock emulator, and skips the test
// when there is none (scripts/test.sh, and so CI, always starts one).
func kinesisMock(t *testing.T) testenv.Emulator {
	t.Helper()
	for _, x := range testenv.KinesisEmulators(t) {
		if x.Name == testenv.KinesisMock {
			return x
		}
	}
	t.Skipf("kinesis-mock is not running (%s)", testenv.EnvKinesisMock)
	return testenv.Emulator{}
}
