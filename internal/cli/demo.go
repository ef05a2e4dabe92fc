package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/batchsql"
	"github.com/shardflow/shardflow/internal/datagen"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// The demo is the AWS blog's pipeline with no AWS account: events go into
// kinesis-source, a query counts them per country in every micro-batch and
// forwards each one to kinesis-sink keyed by its id.
const (
	demoSource = "kinesis-source"
	demoSink   = "kinesis-sink"
	// demoTemplate renders events like {"id": 42, "data": "Spain", "date": "2026-11-25 10:00:00"}.
	demoTemplate = `{"id": {{random.number(100)}}, "data": "{{random.arrayElement(["Spain","France","Germany","Italy","Japan","Brazil","India","Canada"])}}", "date": "{{date.now("YYYY-MM-DD HH:mm:ss")}}"}`
	// demoForwardSQL is the blog's parse-and-project query: the events go
	// to kinesis-sink keyed by their id.
	demoForwardSQL = `SELECT CAST(e.id AS STRING) AS partitionKey, to_json(e) AS data
FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING, date TIMESTAMP') AS e FROM source)`
	// demoCountSQL is the blog's groupBy("data").count() on each batch.
	demoCountSQL = `SELECT coalesce(e.data, '(malformed)') AS country, count(*) AS count
FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING, date TIMESTAMP') AS e FROM source)
GROUP BY 1 ORDER BY 1`
)

type demoFlags struct {
	duration time.Duration
	rate     float64
	trigger  time.Duration
	uiAddr   string
}

func newDemoCmd(e *env) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole pipeline on a built-in local Kinesis: no AWS account needed",
		Long: `Run the AWS blog's scenario on shardflow's built-in local Kinesis.

It starts a local Kinesis in this process with the streams kinesis-source and
kinesis-sink, writes JSON events such as {"id": 42, "data": "Spain", ...} to
kinesis-source, and runs a query that prints each micro-batch's event count
per country and forwards every event to kinesis-sink (partition key = id).
Ctrl-C stops it cleanly; --duration makes a bounded run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.duration < 0 || f.rate <= 0 || f.trigger < 0 {
				return usage("--duration and --trigger must be 0 or more and --rate more than 0")
			}
			return e.demo(cmd.Context(), f)
		},
	}
	cmd.Flags().DurationVar(&f.duration, "duration", 0, "produce events for this long, then drain and stop (0: until Ctrl-C)")
	cmd.Flags().Float64Var(&f.rate, "rate", 200, "events per second")
	cmd.Flags().DurationVar(&f.trigger, "trigger", 2*time.Second, "micro-batch interval")
	cmd.Flags().StringVar(&f.uiAddr, "ui-addr", "127.0.0.1:0", "serve the live dashboard, /metrics and /api/progress on ADDR (\"\": off)")
	return cmd
}

// demoCounts runs the demo's two SQL statements on each batch and totals
// what the query saw.
type demoCounts struct {
	forward, count *batchsql.Transform

	mu        sync.Mutex
	read      int64
	forwarded int64
	byCountry map[string]int64
}

func (e *env) demo(ctx context.Context, f demoFlags) error {
	log := e.logger()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	srv, err := kdsfake.New(kdsfake.Config{Logger: log.With("component", "kdsfake")})
	if err != nil {
		return err
	}
	defer srv.Close()
	endpoint, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	awsCfg := kds.AWSConfig{Region: "us-east-1", EndpointURL: endpoint, AccessKeyID: "demo", SecretKey: "demo"}
	client, err := kds.NewClient(ctx, awsCfg)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		name   string
		shards int32
	}{{demoSource, 4}, {demoSink, 2}} {
		if err := createStream(ctx, client, s.name, s.shards); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, `shardflow demo: a local Kinesis at %s with streams %s (4 shards) and %s (2 shards).
Events like {"id": 42, "data": "Spain", "date": "..."} go into %s at %.0f/s; a query reads
them in micro-batches every %s, prints the count per country of each batch, and
forwards every event to %s with its id as partition key. %s
`, endpoint, demoSource, demoSink, demoSource, f.rate, f.trigger, demoSink, stopHint(f.duration))

	src, sink, err := demoPipeline(ctx, awsCfg, log)
	if err != nil {
		return err
	}
	defer sink.Close()
	ckpt, err := os.MkdirTemp("", "shardflow-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ckpt)

	forward, count, err := demoSQL(ctx, sink, log)
	if err != nil {
		return err
	}
	defer forward.Close()
	defer count.Close()
	counts := &demoCounts{byCountry: map[string]int64{}, forward: forward, count: count}
	obs, err := startObserver(f.uiAddr, Job{Name: "demo", CheckpointLocation: ckpt}, &pipeline{source: src, sink: sink}, log)
	if err != nil {
		return err
	}
	defer obs.close(log)
	if obs != nil {
		fmt.Fprintf(e.stdout, "Dashboard: %s (metrics at %smetrics)\n", obs.url, obs.url)
	}
	q, err := shardflow.NewQuery(shardflow.QueryConfig{
		Listeners:          obs.listeners(),
		Name:               "demo",
		CheckpointLocation: filepath.Join(ckpt, "checkpoint"),
		Trigger:            shardflow.ProcessingTime(f.trigger),
		Source:             src,
		Sink:               shardflow.ForEachBatch(func(ctx context.Context, b *shardflow.Batch) error { return counts.batch(ctx, b, sink, e.stdout) }),
		Logger:             log,
	})
	if err != nil {
		return err
	}
	queryDone := make(chan error, 1)
	go func() { queryDone <- q.Run(ctx) }()

	tmpl, err := datagen.Parse(demoTemplate)
	if err != nil {
		return err
	}
	stopProducing := make(chan struct{})
	produced := make(chan datagen.Stats, 1)
	var produceErr error
	go func() {
		st, err := datagen.Produce(ctx, datagen.Config{
			Client: client, Stream: demoSource, Record: tmpl,
			Rate: f.rate, Duration: f.duration, Stop: stopProducing, Logger: log,
		})
		produceErr = err
		produced <- st
	}()

	var st datagen.Stats
	select {
	case st = <-produced:
	case sig := <-e.signals:
		fmt.Fprintf(e.stdout, "\n%s: stopping the producer, then the query once it has read every event (again to abort)\n", sig)
		close(stopProducing)
		st = <-produced
	case err := <-queryDone:
		return fmt.Errorf("demo query stopped early: %w", err)
	}
	if produceErr != nil {
		return fmt.Errorf("demo producer: %w", produceErr)
	}
	// Drain: the query reads what was produced, then stops gracefully.
	deadline := time.After(60 * time.Second)
	for counts.total() < st.Sent {
		select {
		case err := <-queryDone:
			return fmt.Errorf("demo query stopped early: %w", err)
		case <-deadline:
			return fmt.Errorf("demo query read %d of %d events in 60s", counts.total(), st.Sent)
		case sig := <-e.signals:
			cancel()
			return fmt.Errorf("%s: %w", sig, errAborted)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := q.Stop(context.Background()); err != nil {
		return err
	}
	if err := <-queryDone; err != nil {
		return err
	}
	counts.summary(e.stdout, st.Sent)
	if counts.read != st.Sent {
		return fmt.Errorf("demo: produced %d events but the query read %d", st.Sent, counts.read)
	}
	return nil
}

func stopHint(d time.Duration) string {
	if d > 0 {
		return fmt.Sprintf("It stops after %s.", d)
	}
	return "Ctrl-C stops it."
}

// demoPipeline builds the source on kinesis-source and the sink on
// kinesis-sink.
func demoPipeline(ctx context.Context, awsCfg kds.AWSConfig, log *slog.Logger) (*kds.Source, *kds.Sink, error) {
	opts := map[string]string{
		"kinesis.streamName":                 demoSource,
		"kinesis.endpointUrl":                awsCfg.EndpointURL,
		"kinesis.region":                     awsCfg.Region,
		"kinesis.awsAccessKeyId":             awsCfg.AccessKeyID,
		"kinesis.awsSecretKey":               awsCfg.SecretKey,
		"kinesis.startingPosition":           "TRIM_HORIZON",
		"kinesis.getRecords.fetchIntervalMs": "100",
	}
	srcCfg, err := kds.ParseSourceOptions(opts, log)
	if err != nil {
		return nil, nil, err
	}
	src, err := kds.NewSource(ctx, srcCfg, log)
	if err != nil {
		return nil, nil, err
	}
	sinkOpts := map[string]string{"kinesis.streamName": demoSink}
	for _, k := range []string{"kinesis.endpointUrl", "kinesis.region", "kinesis.awsAccessKeyId", "kinesis.awsSecretKey"} {
		sinkOpts[k] = opts[k]
	}
	sinkCfg, err := kds.ParseSinkOptions(sinkOpts, log)
	if err != nil {
		return nil, nil, err
	}
	sink, err := kds.NewSink(ctx, sinkCfg, log)
	if err != nil {
		return nil, nil, err
	}
	return src, sink, nil
}

// demoSQL prepares the demo's statements: the forward query is checked
// against the Kinesis sink's column needs, as `shardflow run --sql` does.
func demoSQL(ctx context.Context, sink *kds.Sink, log *slog.Logger) (forward, count *batchsql.Transform, err error) {
	forward, err = batchsql.New(batchsql.Config{SQL: demoForwardSQL, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	out, err := forward.Prepare(ctx, shardflow.SourceSchema())
	if err == nil {
		err = sink.CheckSchema(out)
	}
	if err == nil {
		count, err = batchsql.New(batchsql.Config{SQL: demoCountSQL, Logger: log})
	}
	if err == nil {
		_, err = count.Prepare(ctx, shardflow.SourceSchema())
	}
	if err != nil {
		forward.Close()
		if count != nil {
			count.Close()
		}
		return nil, nil, err
	}
	return forward, count, nil
}

// batch runs the blog's two statements on one batch, like Spark's
// foreachBatch: the per-country count (groupBy("data").count()), which it
// prints, and the projection forwarded to the sink keyed by id. Malformed
// events are counted as "(malformed)", never dropped.
func (c *demoCounts) batch(ctx context.Context, b *shardflow.Batch, sink *kds.Sink, w io.Writer) error {
	out, err := c.forward.Apply(ctx, b)
	if err != nil {
		return err
	}
	byCountry, err := c.count.Apply(ctx, b)
	if err != nil {
		return err
	}
	if err := sink.AddBatch(ctx, out); err != nil {
		return err
	}
	counts := map[string]int64{}
	for _, r := range byCountry.Rows {
		country, _ := r[0].(string)
		n, _ := r[1].(int64)
		counts[country] += n
	}
	fmt.Fprintf(w, "\nBatch %d: %d events\n", b.ID, len(b.Rows))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  country\tcount")
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(tw, "  %s\t%d\n", k, counts[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A replayed batch (same id) would be counted twice here; the demo's
	// query runs on a fresh checkpoint, so there is no replay.
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read += int64(len(b.Rows))
	c.forwarded += int64(len(out.Rows))
	for k, n := range counts {
		c.byCountry[k] += n
	}
	return nil
}

func (c *demoCounts) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read
}

func (c *demoCounts) summary(w io.Writer, produced int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c.byCountry)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c.byCountry[k]))
	}
	fmt.Fprintf(w, "\nDone: produced %d events; the query read %d and forwarded %d to %s.\nTotals per country: %s\n",
		produced, c.read, c.forwarded, demoSink, strings.Join(parts, " "))
}

// createStream creates a stream and waits until it is ACTIVE.
func createStream(ctx context.Context, c *kinesis.Client, stream string, shards int32) error {
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)}); err != nil {
		return fmt.Errorf("create stream %s: %w", stream, err)
	}
	for range 300 {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			return fmt.Errorf("describe stream %s: %w", stream, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("stream " + stream + " did not become ACTIVE in 30s")
}
