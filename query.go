package shardflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/fsstore"
	"github.com/shardflow/shardflow/internal/engine"
)

// Source is a Kinesis stream a query reads; kds.NewSource returns one.
type Source = engine.Source

// Transform turns each batch read from the source into the batch the sink
// receives (SQL with package batchsql, or Go code). Prepare runs when the
// query starts, before anything is read.
type Transform = engine.Transform

// Progress is a batch's progress record, in the JSON shape of Spark's
// StreamingQueryProgress.
type Progress = engine.Progress

// ShardProgress is one shard's part of a progress record (rows, bytes,
// lag, state and parents).
type ShardProgress = engine.ShardProgress

// Listener receives a query's events, like Spark's StreamingQueryListener:
// QueryStarted, QueryProgress after every committed batch, and
// QueryTerminated with Run's error. Any field may be nil; the functions run
// on the query's goroutine and must be fast.
type Listener = engine.Listener

// QueryStarted is the event a Listener receives when a query starts.
type QueryStarted = engine.QueryStarted

// QueryTerminated is the event a Listener receives when Run returns; Err is
// Run's error.
type QueryTerminated = engine.QueryTerminated

// Trigger says when batches run. The zero value is ProcessingTime(0).
type Trigger = engine.Trigger

// ProcessingTime runs a batch every interval. With 0 the next batch starts as
// soon as the previous one is committed and data is buffered.
func ProcessingTime(interval time.Duration) Trigger {
	return Trigger{Kind: engine.KindProcessingTime, Interval: interval}
}

// Once runs one batch with the data available at start, then stops.
func Once() Trigger { return Trigger{Kind: engine.KindOnce} }

// AvailableNow reads everything up to each shard's tail at start, in as many
// batches as kinesis.maxFetchRecordsPerShard needs, then stops.
func AvailableNow() Trigger { return Trigger{Kind: engine.KindAvailableNow} }

// ParseTrigger parses the CLI and job-file syntax: "processing-time=10s",
// "once" or "available-now".
func ParseTrigger(s string) (Trigger, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch {
	case v == "once":
		return Once(), nil
	case v == "available-now" || v == "availablenow":
		return AvailableNow(), nil
	case strings.HasPrefix(v, "processing-time="):
		d, err := time.ParseDuration(strings.TrimPrefix(v, "processing-time="))
		if err != nil || d < 0 {
			return Trigger{}, fmt.Errorf("trigger %q: the interval must be a Go duration of 0 or more, such as 10s or 500ms", s)
		}
		return ProcessingTime(d), nil
	}
	return Trigger{}, fmt.Errorf("trigger %q is not supported; use processing-time=<duration> (e.g. processing-time=10s), once or available-now", s)
}

// BatchLimits are the per-batch limits a source carries from its options
// (kinesis.maxFetchRecordsPerShard and friends).
type BatchLimits = engine.Limits

// QueryConfig configures a Query, like Spark's DataStreamWriter.
type QueryConfig struct {
	// Name is the query's name (queryName).
	Name string
	// CheckpointLocation is a local directory (or file:// URL). For an S3
	// prefix (s3://bucket/prefix) or a DynamoDB checkpoint, open the store
	// with package checkpoint/ckptopen and set Checkpoint.
	CheckpointLocation string
	// Checkpoint overrides CheckpointLocation with a store of your own. It
	// must keep checkpoint.Store's contract, never keeping a slice it is
	// given: the query reuses the buffer of one log entry for the next.
	Checkpoint checkpoint.Store
	// Trigger defaults to ProcessingTime(0).
	Trigger Trigger
	// Source is read; Sink receives every batch (see ForEachBatch).
	Source Source
	Sink   Sink
	// Transform, when set, runs on every batch between source and sink.
	Transform Transform
	// SinkDescription names the sink in progress records.
	SinkDescription string
	// Limits defaults to what the source carries (a source with a
	// BatchLimits() method, such as kds.Source), else to Spark's defaults.
	Limits *BatchLimits
	// Logger receives progress at INFO and warnings; nil discards.
	Logger *slog.Logger
	// OnProgress is called after every committed batch (after the
	// Listeners' QueryProgress). It is shorthand for a Listener with only
	// QueryProgress.
	OnProgress func(Progress)
	// Listeners receive the query's started, progress and terminated
	// events; several may be attached, and each gets every event.
	Listeners []Listener
	// Coordinator, when set, runs the query as one worker of several that
	// share the stream's shards (worker mode; package lease implements it
	// on DynamoDB). Checkpoint is then this worker's own checkpoint. A
	// worker runs continuously: only ProcessingTime triggers are accepted.
	Coordinator Coordinator
	// PeerLogs opens another worker's checkpoint in worker mode, so that a
	// shard taken over from a dead worker resumes after its last commit.
	PeerLogs PeerLogs
}

// Coordinator shares a stream's shards among worker processes; see
// internal/engine.Coordinator for the contract and package lease for the
// DynamoDB implementation.
type Coordinator = engine.Coordinator

// PeerLogs opens another worker's checkpoint, read-only.
type PeerLogs = engine.PeerLogs

// Query is a running streaming query.
type Query struct {
	q *engine.Query
}

// NewQuery checks cfg and returns a query. It opens the checkpoint store but
// does no Kinesis I/O; Run does.
func NewQuery(cfg QueryConfig) (*Query, error) {
	store := cfg.Checkpoint
	if store == nil {
		if cfg.CheckpointLocation == "" {
			return nil, errors.New("checkpointLocation is required: a local directory where the query keeps its offsets and commits")
		}
		var err error
		if store, err = OpenCheckpoint(cfg.CheckpointLocation); err != nil {
			return nil, err
		}
	}
	var limits engine.Limits
	switch {
	case cfg.Limits != nil:
		limits = *cfg.Limits
	default:
		if lp, ok := cfg.Source.(interface{ BatchLimits() engine.Limits }); ok {
			limits = lp.BatchLimits()
		}
	}
	desc := cfg.SinkDescription
	if desc == "" && cfg.Sink != nil {
		desc = fmt.Sprintf("%T", cfg.Sink)
	}
	q, err := engine.New(engine.Config{
		Name:            cfg.Name,
		Store:           store,
		Source:          cfg.Source,
		Sink:            cfg.Sink,
		Transform:       cfg.Transform,
		SinkDescription: desc,
		Trigger:         cfg.Trigger,
		Limits:          limits,
		Logger:          cfg.Logger,
		OnProgress:      cfg.OnProgress,
		Listeners:       cfg.Listeners,
		Coordinator:     cfg.Coordinator,
		PeerLogs:        cfg.PeerLogs,
	})
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", cfg.Name, err)
	}
	return &Query{q: q}, nil
}

// OpenCheckpoint opens the store for a checkpointLocation: a local path or a
// file:// URL. This package stays free of the AWS SDK: S3 prefixes
// (s3://bucket/prefix) and DynamoDB checkpoints are opened by
// checkpoint/ckptopen.Open, whose store goes in QueryConfig.Checkpoint.
// hdfs:// is not supported.
func OpenCheckpoint(location string) (checkpoint.Store, error) {
	u, err := url.Parse(location)
	if err == nil && u.Scheme != "" && len(u.Scheme) > 1 { // "C:" is a drive, not a scheme
		switch strings.ToLower(u.Scheme) {
		case "file":
			return fsstore.Open(location)
		case "hdfs":
			return nil, fmt.Errorf("checkpointLocation %q: hdfs:// is not supported yet; use a local directory, a file:// URL, or s3://bucket/prefix (opened by package checkpoint/ckptopen, as the CLI does)", location)
		case "s3", "s3a", "s3n":
			return nil, fmt.Errorf("checkpointLocation %q: open S3 checkpoints with checkpoint/ckptopen.Open and pass the store in QueryConfig.Checkpoint (the shardflow package does not link the AWS SDK)", location)
		default:
			return nil, fmt.Errorf("checkpointLocation %q: scheme %q is not supported; use a local directory, a file:// URL or s3://bucket/prefix", location, u.Scheme)
		}
	}
	return fsstore.Open(location)
}

// Run runs the query. It returns nil after Stop or when a Once or
// AvailableNow trigger is done, an error wrapping ctx.Err() when ctx is
// cancelled (the running batch is replayed by the next run), or the error
// that failed the query.
func (q *Query) Run(ctx context.Context) error { return q.q.Run(ctx) }

// Stop lets the running batch finish and commit, then makes Run return nil.
// It returns ctx.Err() if ctx ends first.
func (q *Query) Stop(ctx context.Context) error { return q.q.Stop(ctx) }

// Progress returns the most recent progress records (up to 100), oldest first.
func (q *Query) Progress() []Progress { return q.q.Progress() }

// ID returns the query id kept in the checkpoint (empty before Run read it).
func (q *Query) ID() string { return q.q.ID() }

// RunID returns this run's id.
func (q *Query) RunID() string { return q.q.RunID() }
