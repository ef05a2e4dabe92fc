package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
)

// FormatVersion is the checkpoint format this engine writes and reads.
const FormatVersion = 1

// Object names and directories in a checkpoint (docs/checkpoint-format.md).
const (
	metadataName = "metadata"
	offsetsDir   = "offsets"
	commitsDir   = "commits"
)

// Metadata is the checkpoint's "metadata" object, written once when the
// checkpoint is created.
type Metadata struct {
	ID        string         `json:"id"`
	Format    int            `json:"format"`
	CreatedAt time.Time      `json:"createdAt"`
	Name      string         `json:"name,omitempty"`
	Source    SourceMetadata `json:"source"`
}

// SourceMetadata pins what a checkpoint was created for. The stream may not
// change under an existing checkpoint, and the starting position is
// resolved only once (invariant 5).
type SourceMetadata struct {
	Description     string          `json:"description"`
	Stream          string          `json:"stream"`
	InitialPosition InitialPosition `json:"initialPosition"`
	// InitialShards are the shards listed at the first start: only they
	// follow InitialPosition; shards found later start at TRIM_HORIZON.
	InitialShards []string `json:"initialShards,omitempty"`
	// Identity is the incarnation of the stream the checkpoint is for.
	Identity *StreamIdentity `json:"identity,omitempty"`
}

// ShardState is a shard's state in an offsets entry.
type ShardState string

// Shard states.
const (
	// StateOpen: the shard takes writes and is being read.
	StateOpen ShardState = "open"
	// StateClosed: the shard takes no writes but is not read to its end yet.
	StateClosed ShardState = "closed"
	// StateFinished: every record of the shard is in this or an earlier batch.
	StateFinished ShardState = "finished"
)

// ShardOffset is one shard's range in a batch. The batch holds the records
// after Start up to and including End; End is nil when the batch holds no
// record of the shard.
type ShardOffset struct {
	Start   Start      `json:"start"`
	End     *Position  `json:"end,omitempty"`
	State   ShardState `json:"state"`
	Parents []string   `json:"parents,omitempty"`
}

// next is where the shard resumes after the batch.
func (o ShardOffset) next() Start {
	if o.End != nil {
		return After(*o.End)
	}
	return o.Start
}

// OffsetEntry is "offsets/<N>", the write-ahead log entry of batch N. It
// lists every shard the query tracks, so the latest entry alone tells where
// every shard resumes.
type OffsetEntry struct {
	BatchID   int64                  `json:"batchId"`
	Timestamp time.Time              `json:"timestamp"`
	Shards    map[string]ShardOffset `json:"shards"`
}

// CommitEntry is "commits/<N>", written after the sink accepted batch N.
type CommitEntry struct {
	BatchID      int64     `json:"batchId"`
	CommittedAt  time.Time `json:"committedAt"`
	NumInputRows int64     `json:"numInputRows"`
	// Abandoned marks a batch that was never handed to the sink (worker
	// mode: its leases were lost before the sink ran, or the worker
	// restarted before committing it). Its records are read again by
	// whoever holds their shards.
	Abandoned bool `json:"abandoned,omitempty"`
}

// wal reads and writes a checkpoint's logs.
type wal struct {
	store checkpoint.Store
}

func entryName(dir string, id int64) string { return dir + "/" + strconv.FormatInt(id, 10) }

// ids lists the batch ids present in dir, ascending. Names that are not
// batch ids (temp files, notes) are ignored.
func (w wal) ids(ctx context.Context, dir string) ([]int64, error) {
	names, err := w.store.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s/%s: %w", w.store.Location(), dir, err)
	}
	ids := make([]int64, 0, len(names))
	for _, n := range names {
		id, err := strconv.ParseInt(n, 10, 64)
		if err != nil || id < 0 || strconv.FormatInt(id, 10) != n {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func (w wal) latest(ctx context.Context, dir string) (int64, error) {
	ids, err := w.ids(ctx, dir)
	if err != nil || len(ids) == 0 {
		return -1, err
	}
	return ids[len(ids)-1], nil
}

func (w wal) readJSON(ctx context.Context, name string, v any) error {
	b, err := w.store.Read(ctx, name)
	if err != nil {
		return fmt.Errorf("read checkpoint %s/%s: %w", w.store.Location(), name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("checkpoint %s/%s is corrupt: %w", w.store.Location(), name, err)
	}
	return nil
}

// create writes v under name if absent. Finding the object already there
// means another process writes to this checkpoint (invariant 7).
func (w wal) create(ctx context.Context, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := w.store.Create(ctx, name, b); err != nil {
		if errors.Is(err, checkpoint.ErrExist) {
			return fmt.Errorf("checkpoint in use: %s/%s was written by another process: %w", w.store.Location(), name, err)
		}
		return fmt.Errorf("write checkpoint %s/%s: %w", w.store.Location(), name, err)
	}
	return nil
}

func (w wal) readOffsets(ctx context.Context, id int64) (*OffsetEntry, error) {
	var e OffsetEntry
	name := entryName(offsetsDir, id)
	if err := w.readJSON(ctx, name, &e); err != nil {
		return nil, err
	}
	if e.BatchID != id {
		return nil, fmt.Errorf("checkpoint %s/%s is corrupt: it holds batchId %d", w.store.Location(), name, e.BatchID)
	}
	for id, s := range e.Shards {
		if err := s.validate(); err != nil {
			return nil, fmt.Errorf("checkpoint %s/%s is corrupt: shard %s: %w", w.store.Location(), name, id, err)
		}
	}
	return &e, nil
}

func (o ShardOffset) validate() error {
	switch o.Start.Type {
	case TrimHorizon:
	case AtTimestamp:
		if o.Start.Timestamp.IsZero() {
			return errors.New("AT_TIMESTAMP start without a timestamp")
		}
	case AtSequenceNumber, AfterSequenceNumber:
		if !validSeq(o.Start.Seq) {
			return fmt.Errorf("start sequence number %q is not a Kinesis sequence number", o.Start.Seq)
		}
	default:
		return fmt.Errorf("unknown start type %q", o.Start.Type)
	}
	if o.End != nil && !validSeq(o.End.Seq) {
		return fmt.Errorf("end sequence number %q is not a Kinesis sequence number", o.End.Seq)
	}
	switch o.State {
	case StateOpen, StateClosed, StateFinished:
	default:
		return fmt.Errorf("unknown state %q", o.State)
	}
	return nil
}

// validSeq reports whether s matches 0|([1-9]\d{0,128}), the API's pattern.
func validSeq(s string) bool {
	if s == "0" {
		return true
	}
	if len(s) == 0 || len(s) > 129 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// purge deletes log entries older than the newest keep batches. Failures are
// returned but never affect correctness: old entries are not read.
func (w wal) purge(ctx context.Context, latest int64, keep int) error {
	if keep <= 0 {
		return nil
	}
	var errs []error
	for _, dir := range []string{commitsDir, offsetsDir} {
		ids, err := w.ids(ctx, dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, id := range ids {
			if id > latest-int64(keep) {
				break
			}
			if err := w.store.Delete(ctx, entryName(dir, id)); err != nil && !errors.Is(err, checkpoint.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
