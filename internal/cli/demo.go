package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/sink/console"
)

type demoFlags struct {
	endpoint string
	records  int
	shards   int
}

// newDemoCmd runs the whole pipeline on a local Kinesis: it creates a
// stream, writes JSON events to it and reads them back with a query that
// prints each micro-batch. Until shardflow's built-in local Kinesis lands,
// the endpoint is a local emulator (make demo starts kinesalite).
func newDemoCmd(e *env) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a query end to end on a local Kinesis (make demo starts one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.endpoint == "" {
				f.endpoint = os.Getenv("SHARDFLOW_TEST_KINESALITE")
			}
			if f.endpoint == "" {
				return usage("demo needs a local Kinesis: run `make demo`, which starts one, or pass --endpoint http://127.0.0.1:PORT")
			}
			if f.records < 1 || f.shards < 1 {
				return usage("--records and --shards must be at least 1")
			}
			return e.demo(cmd.Context(), f)
		},
	}
	cmd.Flags().StringVar(&f.endpoint, "endpoint", "", "a local Kinesis endpoint (default $SHARDFLOW_TEST_KINESALITE)")
	cmd.Flags().IntVar(&f.records, "records", 1000, "events to write")
	cmd.Flags().IntVar(&f.shards, "shards", 4, "shards of the demo stream")
	return cmd
}

func (e *env) demo(ctx context.Context, f demoFlags) error {
	log := e.logger()
	awsCfg := kds.AWSConfig{Region: "us-east-1", EndpointURL: f.endpoint, AccessKeyID: "demo", SecretKey: "demo"}
	client, err := kds.NewClient(ctx, awsCfg)
	if err != nil {
		return err
	}
	stream := fmt.Sprintf("shardflow-demo-%d", time.Now().Unix())
	if err := createDemoStream(ctx, client, stream, f.shards); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "created stream %s with %d shards at %s\n", stream, f.shards, f.endpoint)
	if err := putDemoEvents(ctx, client, stream, f.records); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d events; reading them back in micro-batches of at most 100 records per shard\n", f.records)

	src, err := kds.ParseSourceOptions(map[string]string{
		"kinesis.streamName":              stream,
		"kinesis.endpointUrl":             f.endpoint,
		"kinesis.region":                  "us-east-1",
		"kinesis.awsAccessKeyId":          "demo",
		"kinesis.awsSecretKey":            "demo",
		"kinesis.startingPosition":        "TRIM_HORIZON",
		"kinesis.maxFetchRecordsPerShard": "100",
	}, log)
	if err != nil {
		return err
	}
	source, err := kds.NewSource(ctx, src, log)
	if err != nil {
		return err
	}
	out, err := console.New(e.stdout, console.Config{NumRows: 5})
	if err != nil {
		return err
	}
	ckpt, err := os.MkdirTemp("", "shardflow-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ckpt)
	var rows int64
	q, err := shardflow.NewQuery(shardflow.QueryConfig{
		Name:               "demo",
		CheckpointLocation: filepath.Join(ckpt, "checkpoint"),
		Trigger:            shardflow.AvailableNow(),
		Source:             source,
		Sink:               out,
		SinkDescription:    "ConsoleSink",
		Logger:             slog.New(slog.DiscardHandler),
		OnProgress:         func(p shardflow.Progress) { rows += p.NumInputRows },
	})
	if err != nil {
		return err
	}
	if err := q.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "done: %d batches, %d rows read, %d written\n", len(q.Progress()), rows, f.records)
	if rows != int64(f.records) {
		return fmt.Errorf("demo read %d rows, want %d", rows, f.records)
	}
	return nil
}

func createDemoStream(ctx context.Context, c *kinesis.Client, stream string, shards int) error {
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(shards))}); err != nil {
		return fmt.Errorf("create demo stream: %w", err)
	}
	for range 300 {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			return fmt.Errorf("describe demo stream: %w", err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("demo stream did not become ACTIVE in 30s")
}

func putDemoEvents(ctx context.Context, c *kinesis.Client, stream string, n int) error {
	countries := []string{"DE", "FR", "US", "JP", "BR", "IN"}
	for lo := 0; lo < n; lo += 500 {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for i := lo; i < min(lo+500, n); i++ {
			data := fmt.Sprintf(`{"id":%d,"country":%q,"date":%q}`, i, countries[i%len(countries)], time.Now().UTC().Format(time.RFC3339))
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: []byte(data), PartitionKey: aws.String(strconv.Itoa(i))})
		}
		out, err := c.PutRecords(ctx, in)
		if err != nil {
			return fmt.Errorf("put demo events: %w", err)
		}
		if aws.ToInt32(out.FailedRecordCount) > 0 {
			return fmt.Errorf("put demo events: %d records failed", aws.ToInt32(out.FailedRecordCount))
		}
	}
	return nil
}
