package memsink_test

import (
	"context"
	"fmt"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/sink/memsink"
)

func Example() {
	sink := memsink.New()
	ctx := context.Background()
	schema := shardflow.Schema{{Name: "partitionKey", Type: shardflow.TypeString}}
	sink.AddBatch(ctx, &shardflow.Batch{ID: 0, Schema: schema, Rows: []shardflow.Row{{"a"}}})
	sink.AddBatch(ctx, &shardflow.Batch{ID: 1, Schema: schema, Rows: []shardflow.Row{{"b"}, {"c"}}})
	// A replay of batch 1 replaces it.
	sink.AddBatch(ctx, &shardflow.Batch{ID: 1, Schema: schema, Rows: []shardflow.Row{{"b"}, {"c"}}})
	fmt.Println(len(sink.Batches()), sink.Rows())
	// Output: 2 [[a] [b] [c]]
}
