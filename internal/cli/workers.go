package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ckptopen"
	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/lease"
)

// workerMode is a job's worker-mode setup (shardflow.coordination=DYNAMODB).
type workerMode struct {
	coord *lease.Coordinator
	// peers opens another worker's checkpoint, read-only.
	peers engine.PeerLogs
}

// workerLocation is a worker's own checkpoint under the job's shared one.
func workerLocation(location, id string) string {
	if strings.Contains(location, "://") {
		return strings.TrimRight(location, "/") + "/workers/" + id
	}
	return filepath.Join(location, "workers", id)
}

// defaultWorkerID is the host name, the process id and a random suffix:
// unique across restarts, readable in logs and the lease table.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-", r) {
			return r
		}
		return '-'
	}, host)
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%.80s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// setupWorker applies worker mode to the job when its source options ask
// for it: the worker's id, its checkpoint under <checkpointLocation>/workers/<id>,
// a file sink's per-worker subdirectory, and the lease coordinator. It
// returns nil for a job in the default mode.
func setupWorker(ctx context.Context, job *Job, flagID string, log *slog.Logger) (*workerMode, error) {
	if flagID != "" {
		// --worker-id is the option shardflow.workerId: the registry
		// checks it (it names a directory), and buildPipeline reports it.
		if err := parseKV("worker-id", []string{"shardflow.workerId=" + flagID}, job.Source.Options); err != nil {
			return nil, err
		}
	}
	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, job.Source.Options)
	if err != nil {
		return nil, nil // buildPipeline reports option errors in full
	}
	if o.String("shardflow.coordination") != "DYNAMODB" {
		if flagID != "" {
			return nil, usage("--worker-id %q needs worker mode: set the source option shardflow.coordination=DYNAMODB", flagID)
		}
		return nil, nil
	}
	id := o.String("shardflow.workerId")
	if id == "" {
		id = defaultWorkerID()
	}
	table, err := leaseTableName(o)
	if err != nil {
		return nil, err
	}
	shared := job.CheckpointLocation
	job.CheckpointLocation = workerLocation(shared, id)
	if strings.EqualFold(job.Sink.Format, "file") {
		for k, v := range job.Sink.Options {
			if strings.EqualFold(k, "path") {
				job.Sink.Options[k] = filepath.Join(v, "worker="+id)
			}
		}
	}
	ccfg := ckptopen.FromOptions(o)
	client, err := ckptopen.DynamoDBClient(ctx, ccfg)
	if err != nil {
		return nil, fmt.Errorf("lease table %s: %w", table, err)
	}
	coord, err := lease.New(lease.Config{
		Client:         client,
		Table:          table,
		WorkerID:       id,
		Stream:         o.String("kinesis.streamName"),
		Checkpoint:     shared,
		LeaseTime:      o.Duration("shardflow.lease.time"),
		RenewInterval:  o.Duration("shardflow.lease.renewInterval"),
		TakeInterval:   o.Duration("shardflow.lease.takeInterval"),
		MaxSteals:      o.Int("shardflow.lease.maxStealsAtOneTime"),
		ImportKCLTable: o.String("shardflow.lease.importKclTable"),
		Logger:         log,
	})
	if err != nil {
		return nil, usageError{err}
	}
	peers := func(ctx context.Context, worker string) (checkpoint.Store, error) {
		return ckptopen.Open(ctx, workerLocation(shared, worker), ccfg)
	}
	log.Info("worker mode", "workerId", id, "leaseTable", table, "checkpoint", job.CheckpointLocation)
	return &workerMode{coord: coord, peers: peers}, nil
}

// leaseTableName is the worker-mode lease table the options name:
// shardflow.lease.tableName, else kinesis.dynamodb.tableName + "-leases".
func leaseTableName(o shardflow.Options) (string, error) {
	table := o.String("shardflow.lease.tableName")
	if table == "" && o.Has("kinesis.dynamodb.tableName") {
		table = o.String("kinesis.dynamodb.tableName") + "-leases"
	}
	if table == "" {
		return "", usage("worker mode (shardflow.coordination=DYNAMODB) needs a lease table: set shardflow.lease.tableName (or kinesis.dynamodb.tableName, whose name with \"-leases\" appended is then used)")
	}
	return table, nil
}
