package lease_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/fsstore"
	"github.com/shardflow/shardflow/lease"
)

// A query in worker mode from Go: the coordinator shares the stream's
// shards with the other workers of the job, and the query keeps its own
// checkpoint under the job's shared one. (shardflow run does this wiring
// for shardflow.coordination=DYNAMODB.)
func Example() {
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	const shared, worker = "/var/lib/orders-job", "worker-1"
	coord, err := lease.New(lease.Config{
		Client:     dynamodb.NewFromConfig(awsCfg),
		Table:      "orders-leases",
		WorkerID:   worker,
		Stream:     "orders",
		Checkpoint: shared,
		LeaseTime:  10 * time.Second,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	var source shardflow.Source // a kds.Source for the stream "orders"
	_, err = shardflow.NewQuery(shardflow.QueryConfig{
		Name:               "orders",
		CheckpointLocation: shared + "/workers/" + worker,
		Source:             source,
		Sink:               shardflow.ForEachBatch(func(ctx context.Context, b *shardflow.Batch) error { return nil }),
		Coordinator:        coord,
		PeerLogs: func(ctx context.Context, other string) (checkpoint.Store, error) {
			return fsstore.Open(shared + "/workers/" + other)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
}
