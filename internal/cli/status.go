package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ckptopen"
	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/lease"
)

func newStatusCmd(e *env) *cobra.Command {
	var location string
	var asJSON bool
	var opts []string
	cmd := &cobra.Command{
		Use:   "status --checkpoint LOCATION",
		Short: "Inspect a checkpoint offline: query id, last committed and planned batch, shard positions",
		Long: `Inspect a checkpoint without running the query and without changing it:
the query id, the last committed and the last planned batch, where every shard
resumes, and whether a batch was planned but not committed (the next run
replays it first, with exactly the same records).

In worker mode (--source-option shardflow.coordination=DYNAMODB, with the
lease table options given to run) it reads the lease table instead: every
worker with its leases, shards, lag and last committed batch, the unowned and
finished leases, pending handoffs, and where every shard resumes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if location == "" {
				return usage("--checkpoint LOCATION is required")
			}
			job := Job{CheckpointLocation: location, Source: Format{Options: map[string]string{}}}
			if err := parseKV("source-option", opts, job.Source.Options); err != nil {
				return err
			}
			return e.status(cmd.Context(), job, asJSON)
		},
	}
	cmd.Flags().StringVar(&location, "checkpoint", "", "checkpointLocation to inspect")
	cmd.Flags().StringArrayVar(&opts, "source-option", nil, "source option KEY=VALUE for a remote checkpoint, as given to run (kinesis.metadataCommitterType, kinesis.dynamodb.tableName, shardflow.s3.endpointUrl, credentials, ...)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the format is in docs/observability.md)")
	return cmd
}

// openCheckpointForStatus opens a checkpoint with the same opener as run
// (local directory, s3://, DynamoDB by kinesis.metadataCommitterType). A
// local directory that does not exist is an error, not created.
func openCheckpointForStatus(ctx context.Context, job Job) (checkpoint.Store, error) {
	location := job.CheckpointLocation
	if !strings.Contains(location, "://") && !strings.EqualFold(job.Source.Options["kinesis.metadataCommitterType"], "DYNAMODB") {
		if _, err := os.Stat(location); err != nil {
			return nil, fmt.Errorf("no checkpoint at %s: %w", location, err)
		}
	}
	return openCheckpoint(ctx, job)
}

func (e *env) status(ctx context.Context, job Job, asJSON bool) error {
	// The stream name is required by the option registry but means
	// nothing to the checkpoint or the lease table.
	if _, ok := job.Source.Options["kinesis.streamName"]; !ok {
		job.Source.Options["kinesis.streamName"] = "status"
	}
	if ws, err := readWorkerStatus(ctx, job); ws != nil || err != nil {
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(e.stdout, ws)
		}
		printWorkerStatus(e.stdout, ws)
		return nil
	}
	store, err := openCheckpointForStatus(ctx, job)
	if err != nil {
		return err
	}
	if c, ok := store.(io.Closer); ok {
		defer c.Close()
	}
	st, err := engine.Inspect(ctx, store)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, st)
	}
	printStatus(e.stdout, st)
	return nil
}

// writeJSON writes v to w as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printStatus(w io.Writer, st *engine.CheckpointStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	batch := func(b *int64) string {
		if b == nil {
			return "none"
		}
		return fmt.Sprint(*b)
	}
	fmt.Fprintf(tw, "checkpoint:\t%s\n", st.Location)
	fmt.Fprintf(tw, "query id:\t%s\n", st.ID)
	if st.Name != "" {
		fmt.Fprintf(tw, "name:\t%s\n", st.Name)
	}
	fmt.Fprintf(tw, "stream:\t%s\n", st.Stream)
	fmt.Fprintf(tw, "created:\t%s\n", st.CreatedAt.UTC().Format(time.RFC3339))
	committed := batch(st.LastCommittedBatch)
	if st.CommittedAt != nil {
		committed += fmt.Sprintf(" (at %s, %d rows)", st.CommittedAt.UTC().Format(time.RFC3339), st.CommittedRows)
	}
	fmt.Fprintf(tw, "last committed batch:\t%s\n", committed)
	fmt.Fprintf(tw, "last planned batch:\t%s\n", batch(st.LastPlannedBatch))
	if st.PendingReplay {
		fmt.Fprintf(tw, "waiting for replay:\tyes: batch %d was planned but not committed; the next run replays it first\n", *st.PendingBatch)
	} else {
		fmt.Fprintf(tw, "waiting for replay:\tno\n")
	}
	_ = tw.Flush()
	if len(st.Shards) == 0 {
		fmt.Fprintln(w, "shards: none yet")
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tSTATE\tPARENTS\tRESUMES AT\tPENDING BATCH ENDS AT")
	for _, s := range st.Shards {
		parents := strings.Join(s.Parents, ",")
		if parents == "" {
			parents = "-"
		}
		end := "-"
		if s.PendingEnd != nil {
			end = fmt.Sprintf("%s/%d", s.PendingEnd.Seq, s.PendingEnd.Sub)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, parents, s.Next.String(), end)
	}
	_ = tw.Flush()
}

// workerModeStatus is `shardflow status --json` in worker mode
// (docs/observability.md describes it).
type workerModeStatus struct {
	Mode       string        `json:"mode"` // always "worker"
	LeaseTable string        `json:"leaseTable"`
	Stream     string        `json:"stream"`
	Shared     engine.Shared `json:"shared"`
	// Checkpoint is the job's shared checkpointLocation; each worker's own
	// checkpoint is under <checkpoint>/workers/<id>.
	Checkpoint string `json:"checkpoint"`
	// Workers are the lease owners, the workers a handoff waits for, and
	// the workers with a checkpoint directory (a local location), by id.
	Workers []workerStatus `json:"workers"`
	// Unowned and Finished are shard ids, sorted.
	Unowned  []string `json:"unowned"`
	Finished []string `json:"finished"`
	// PendingHandoffs are the leases another worker asked for.
	PendingHandoffs []leaseHandoff `json:"pendingHandoffs"`
	// Leases are every lease, sorted by shard id.
	Leases []leaseStatus `json:"leases"`
}

// workerStatus is one worker of a workerModeStatus.
type workerStatus struct {
	ID string `json:"id"`
	// Leases is the number of unfinished leases the worker holds, Shards
	// their shard ids.
	Leases int      `json:"leases"`
	Shards []string `json:"shards"`
	// Max and average MillisBehindLatest over those leases, as the worker
	// last wrote it; -1 when none is known.
	MaxMillisBehindLatest int64 `json:"maxMillisBehindLatest"`
	AvgMillisBehindLatest int64 `json:"avgMillisBehindLatest"`
	// Checkpoint is the worker's own checkpoint (as status shows it
	// outside worker mode), null when it could not be read.
	Checkpoint      *engine.CheckpointStatus `json:"checkpoint"`
	CheckpointError string                   `json:"checkpointError,omitempty"`
}

// leaseStatus is one lease of a workerModeStatus.
type leaseStatus struct {
	ShardID string `json:"shardId"`
	// State is held, unowned or finished.
	State   string `json:"state"`
	Owner   string `json:"owner,omitempty"`
	Counter int64  `json:"counter"`
	// Checkpoint is where the shard resumes; absent once finished.
	Checkpoint         *engine.Start `json:"checkpoint,omitempty"`
	Parents            []string      `json:"parents,omitempty"`
	PendingOwner       string        `json:"pendingOwner,omitempty"`
	MillisBehindLatest int64         `json:"millisBehindLatest"`
}

// leaseHandoff is a lease whose owner was asked to hand it over.
type leaseHandoff struct {
	ShardID string `json:"shardId"`
	From    string `json:"from"`
	To      string `json:"to"`
}

const (
	leaseHeld     = "held"
	leaseUnowned  = "unowned"
	leaseFinished = "finished"
)

// statusWorkerID matches the worker ids status opens a checkpoint for: the
// ids shardflow.workerId accepts, never "." or "..".
var statusWorkerID = regexp.MustCompile(`^[a-zA-Z0-9_.:=-]{1,128}$`)

// readWorkerStatus reads the lease table and every worker's checkpoint when the
// source options ask for worker mode; it returns nil, nil otherwise.
func readWorkerStatus(ctx context.Context, job Job) (*workerModeStatus, error) {
	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, job.Source.Options)
	if err != nil || o.String("shardflow.coordination") != "DYNAMODB" {
		return nil, nil // the checkpoint path reports option errors in full
	}
	table, err := leaseTableName(o)
	if err != nil {
		return nil, err
	}
	cfg := ckptopen.FromOptions(o)
	client, err := ckptopen.DynamoDBClient(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("lease table %s: %w", table, err)
	}
	lt, err := lease.ReadTable(ctx, client, table)
	if err != nil {
		return nil, err
	}
	ws := &workerModeStatus{
		Mode: "worker", LeaseTable: table, Stream: lt.Stream, Shared: lt.Shared, Checkpoint: job.CheckpointLocation,
		Workers: []workerStatus{}, Unowned: []string{}, Finished: []string{}, PendingHandoffs: []leaseHandoff{}, Leases: []leaseStatus{},
	}
	items := slices.SortedFunc(slices.Values(lt.Leases), func(a, b lease.Item) int { return strings.Compare(a.ShardID, b.ShardID) })
	byID := map[string]*workerStatus{}
	worker := func(id string) *workerStatus {
		w := byID[id]
		if w == nil {
			w = &workerStatus{ID: id, Shards: []string{}}
			byID[id] = w
		}
		return w
	}
	lagSum, lagN, lagMax := map[string]int64{}, map[string]int64{}, map[string]int64{}
	for _, it := range items {
		ls := leaseStatus{ShardID: it.ShardID, Owner: it.Owner, Counter: it.Counter, Parents: it.Parents,
			PendingOwner: it.Pending, MillisBehindLatest: it.MillisBehindLatest}
		switch {
		case it.Finished:
			ls.State = leaseFinished
			ws.Finished = append(ws.Finished, it.ShardID)
		case it.Owner == "":
			ls.State = leaseUnowned
			ws.Unowned = append(ws.Unowned, it.ShardID)
		default:
			ls.State = leaseHeld
			w := worker(it.Owner)
			w.Leases++
			w.Shards = append(w.Shards, it.ShardID)
			if it.MillisBehindLatest >= 0 {
				lagSum[it.Owner] += it.MillisBehindLatest
				lagN[it.Owner]++
				lagMax[it.Owner] = max(lagMax[it.Owner], it.MillisBehindLatest)
			}
			if it.Pending != "" {
				ws.PendingHandoffs = append(ws.PendingHandoffs, leaseHandoff{ShardID: it.ShardID, From: it.Owner, To: it.Pending})
				worker(it.Pending)
			}
		}
		if !it.Finished {
			cp := it.Checkpoint
			ls.Checkpoint = &cp
		}
		ws.Leases = append(ws.Leases, ls)
	}
	// A worker that holds no lease now still has its checkpoint directory.
	if loc := job.CheckpointLocation; !strings.Contains(loc, "://") {
		entries, _ := os.ReadDir(filepath.Join(loc, "workers"))
		for _, d := range entries {
			if d.IsDir() {
				worker(d.Name())
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		w := byID[id]
		w.MaxMillisBehindLatest, w.AvgMillisBehindLatest = -1, -1
		if n := lagN[id]; n > 0 {
			w.MaxMillisBehindLatest, w.AvgMillisBehindLatest = lagMax[id], (lagSum[id]+n/2)/n
		}
		w.Checkpoint, err = inspectWorker(ctx, job.CheckpointLocation, id, cfg)
		if err != nil {
			w.CheckpointError = err.Error()
		}
		ws.Workers = append(ws.Workers, *w)
	}
	return ws, nil
}

// inspectWorker reads a worker's own checkpoint, without creating it.
func inspectWorker(ctx context.Context, location, id string, cfg ckptopen.Config) (*engine.CheckpointStatus, error) {
	if !statusWorkerID.MatchString(id) || id == "." || id == ".." {
		return nil, fmt.Errorf("worker id %q is not one shardflow.workerId accepts: its checkpoint is not read", id)
	}
	loc := workerLocation(location, id)
	if !strings.Contains(loc, "://") {
		if _, err := os.Stat(loc); err != nil {
			return nil, fmt.Errorf("no checkpoint at %s", loc)
		}
	}
	store, err := ckptopen.Open(ctx, loc, cfg)
	if err != nil {
		return nil, err
	}
	if c, ok := store.(io.Closer); ok {
		defer c.Close()
	}
	return engine.Inspect(ctx, store)
}

func printWorkerStatus(w io.Writer, ws *workerModeStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	lag := func(ms int64) string {
		if ms < 0 {
			return "-"
		}
		return fmt.Sprint(ms)
	}
	fmt.Fprintf(tw, "mode:\tworker (lease table %s)\n", ws.LeaseTable)
	fmt.Fprintf(tw, "stream:\t%s\n", dash(ws.Stream))
	if ws.Stream != "" {
		fmt.Fprintf(tw, "initial position:\t%s\n", describeInitial(ws.Shared.Initial))
	}
	fmt.Fprintf(tw, "checkpoint:\t%s (each worker's own under workers/<id>)\n", ws.Checkpoint)
	held := len(ws.Leases) - len(ws.Unowned) - len(ws.Finished)
	fmt.Fprintf(tw, "leases:\t%d: %d held, %d unowned, %d finished\n", len(ws.Leases), held, len(ws.Unowned), len(ws.Finished))
	fmt.Fprintf(tw, "pending handoffs:\t%d\n", len(ws.PendingHandoffs))
	_ = tw.Flush()
	if ws.Stream == "" && len(ws.Leases) == 0 {
		fmt.Fprintln(w, "the lease table is empty: no worker has joined yet")
	}

	if len(ws.Workers) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKER\tLEASES\tMAX LAG (ms)\tAVG LAG (ms)\tLAST COMMITTED BATCH\tSHARDS")
		for _, wk := range ws.Workers {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", wk.ID, wk.Leases, lag(wk.MaxMillisBehindLatest), lag(wk.AvgMillisBehindLatest),
				describeLastBatch(wk), dash(strings.Join(wk.Shards, ",")))
		}
		_ = tw.Flush()
		for _, wk := range ws.Workers {
			if wk.CheckpointError != "" {
				fmt.Fprintf(w, "worker %s: %s\n", wk.ID, wk.CheckpointError)
			}
		}
	}
	if len(ws.PendingHandoffs) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HANDOFF\tFROM\tTO")
		for _, h := range ws.PendingHandoffs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", h.ShardID, h.From, h.To)
		}
		_ = tw.Flush()
	}
	if len(ws.Leases) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tSTATE\tOWNER\tCOUNTER\tLAG (ms)\tPENDING OWNER\tPARENTS\tCHECKPOINT")
	for _, l := range ws.Leases {
		cp := "SHARD_END"
		if l.Checkpoint != nil {
			cp = l.Checkpoint.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.ShardID, l.State, dash(l.Owner), l.Counter, lag(l.MillisBehindLatest),
			dash(l.PendingOwner), dash(strings.Join(l.Parents, ",")), cp)
	}
	_ = tw.Flush()
}

// describeLastBatch is a worker's last committed batch, and the batch its
// next run replays first, if any.
func describeLastBatch(w workerStatus) string {
	st := w.Checkpoint
	if st == nil {
		return "unreadable"
	}
	s := "none"
	if st.LastCommittedBatch != nil {
		s = fmt.Sprint(*st.LastCommittedBatch)
		if st.CommittedAt != nil {
			s += fmt.Sprintf(" (at %s, %d rows)", st.CommittedAt.UTC().Format(time.RFC3339), st.CommittedRows)
		}
	}
	if st.PendingReplay {
		s += fmt.Sprintf("; batch %d waits for replay", *st.PendingBatch)
	}
	return s
}

func describeInitial(p engine.InitialPosition) string {
	s := string(p.Type)
	if p.Type == engine.AtTimestamp {
		s += " " + p.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	if len(p.Shards) > 0 {
		s += fmt.Sprintf(" (%d shards with their own start)", len(p.Shards))
	}
	return s
}
