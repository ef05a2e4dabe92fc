package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ckptopen"
)

type runFlags struct {
	sourceOpts []string
	sinkOpts   []string
	sink       string
	checkpoint string
	trigger    string
	name       string
	// metricsAddr serves /metrics, /api/progress, health and the dashboard.
	metricsAddr string
	sql         string // --sql
	sqlFile     string // --sql-file
	workerID    string // --worker-id (worker mode)
}

func newRunCmd(e *env) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [JOB.yaml]",
		Short: "Run a query: read a Kinesis stream in micro-batches and write them to a sink",
		Long: `Run a query. Options come from a job file (see examples/) and flags; flags win.

SIGINT or SIGTERM stops gracefully: the running batch is finished and committed
and shardflow exits 0. A second signal aborts at once (exit 130); the
uncommitted batch is replayed exactly on the next start.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var job Job
			if len(args) == 1 {
				var err error
				if job, err = loadJob(args[0]); err != nil {
					return err
				}
			}
			return e.run(cmd.Context(), job, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.sourceOpts, "source-option", nil, "source option KEY=VALUE (Spark option names; repeatable)")
	fl.StringVar(&f.sink, "sink", "", "sink: console, file, memory or aws-kinesis (default console)")
	fl.StringArrayVar(&f.sinkOpts, "sink-option", nil, "sink option KEY=VALUE (repeatable)")
	fl.StringVar(&f.checkpoint, "checkpoint", "", "checkpointLocation: a local directory or s3://bucket/prefix")
	fl.StringVar(&f.trigger, "trigger", "", "processing-time=<duration> (e.g. processing-time=10s), once or available-now (default processing-time=0s)")
	fl.StringVar(&f.name, "name", "", "query name")
	fl.StringVar(&f.workerID, "worker-id", "", "worker mode (shardflow.coordination=DYNAMODB): this worker's id (default: host name, pid and a random suffix); a worker restarted with the same id resumes its leases at once")
	fl.StringVar(&f.sql, "sql", "", "SQL run on every micro-batch over the view \"source\" (docs/sql.md); overrides the job file's sql")
	fl.StringVar(&f.sqlFile, "sql-file", "", "read the SQL statement from this file")
	fl.StringVar(&f.metricsAddr, "ui-addr", "", "serve the live dashboard (and /metrics, /api/progress, health) on ADDR; the same server as --metrics-addr")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve /metrics, /api/progress, /healthz, /readyz and the dashboard on ADDR (\":9090\" binds 127.0.0.1; default off)")
	return cmd
}

// merge applies flags over the job file.
func (f runFlags) merge(job Job) (Job, error) {
	if job.Source.Options == nil {
		job.Source.Options = map[string]string{}
	}
	if job.Sink.Options == nil {
		job.Sink.Options = map[string]string{}
	}
	if err := parseKV("source-option", f.sourceOpts, job.Source.Options); err != nil {
		return job, err
	}
	if err := parseKV("sink-option", f.sinkOpts, job.Sink.Options); err != nil {
		return job, err
	}
	// checkpointLocation may also come as a source option, as in Spark.
	for k, v := range job.Source.Options {
		if strings.EqualFold(k, "checkpointLocation") {
			if job.CheckpointLocation == "" {
				job.CheckpointLocation = v
			}
			delete(job.Source.Options, k)
		}
	}
	for _, kv := range []struct {
		flag string
		dst  *string
	}{{f.sink, &job.Sink.Format}, {f.checkpoint, &job.CheckpointLocation}, {f.trigger, &job.Trigger}, {f.name, &job.Name}} {
		if kv.flag != "" {
			*kv.dst = kv.flag
		}
	}
	if job.Sink.Format == "" {
		job.Sink.Format = "console"
	}
	if job.Trigger == "" {
		job.Trigger = "processing-time=0s"
	}
	return job, nil
}

// openCheckpoint opens the checkpoint store the job names: a local
// directory, an S3 prefix, or DynamoDB (kinesis.metadataCommitterType),
// with the source's AWS settings. The source options were validated by
// buildPipeline.
func openCheckpoint(ctx context.Context, job Job) (checkpoint.Store, error) {
	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, job.Source.Options)
	if err != nil {
		return nil, err
	}
	return ckptopen.Open(ctx, job.CheckpointLocation, ckptopen.FromOptions(o))
}

func (e *env) run(ctx context.Context, job Job, f runFlags) error {
	job, err := f.merge(job)
	if err != nil {
		return err
	}
	if job, err = applySQLFlags(job, f.sql, f.sqlFile); err != nil {
		return err
	}
	log := e.logger()
	trigger, err := shardflow.ParseTrigger(job.Trigger)
	if err != nil {
		return usageError{err}
	}
	if job.CheckpointLocation == "" {
		return usage("checkpointLocation is required: pass --checkpoint DIR (or s3://bucket/prefix) or set checkpointLocation in the job file")
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wm, err := setupWorker(ctx, &job, f.workerID, log)
	if err != nil {
		return err
	}
	p, err := buildPipeline(ctx, job, e.stdout, log)
	if err != nil {
		return err
	}
	defer p.close(log)
	xf, err := buildSQL(ctx, job, p.sink, log)
	if err != nil {
		return err
	}
	var transform shardflow.Transform
	if xf != nil {
		defer xf.Close()
		transform = xf
	}
	obs, err := startObserver(f.metricsAddr, job, p, log)
	if err != nil {
		return err
	}
	defer obs.close(log)

	store, err := openCheckpoint(ctx, job)
	if err != nil {
		return usageError{err}
	}
	qc := shardflow.QueryConfig{
		Name:               job.Name,
		CheckpointLocation: job.CheckpointLocation,
		Checkpoint:         store,
		Trigger:            trigger,
		Source:             p.source,
		Sink:               p.sink,
		SinkDescription:    p.sinkDescription,
		Transform:          transform,
		Logger:             log,
		Listeners:          obs.listeners(),
	}
	if wm != nil {
		qc.Coordinator, qc.PeerLogs = wm.coord, wm.peers
	}
	q, err := shardflow.NewQuery(qc)
	if err != nil {
		return usageError{err}
	}

	aborted := make(chan struct{})
	go func() {
		select {
		case sig := <-e.signals:
			log.Info("signal received: finishing the running batch, then stopping; send it again to abort", "signal", sig.String())
			go func() { _ = q.Stop(context.Background()) }()
		case <-ctx.Done():
			return
		}
		select {
		case sig := <-e.signals:
			log.Warn("second signal: aborting", "signal", sig.String())
			close(aborted)
			cancel()
		case <-ctx.Done():
		}
	}()
	err = q.Run(ctx)
	select {
	case <-aborted:
		return errAborted
	default:
	}
	if err != nil {
		return err
	}
	if p.done != nil {
		p.done()
	}
	return nil
}
