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
	// enc encodes entries, remembering each shard's JSON between batches;
	// nil remembers nothing.
	enc *entryEncoder
	// purged is what purge knows of the logs; nil until a purge listed
	// them (and again after a purge failed).
	purged *purgeState
}

// purgeState is what purge remembers between its calls, so that it lists
// the logs once per run instead of at every call.
type purgeState struct {
	// older holds, per log, the ids before next that the listing found
	// and no purge has deleted yet, ascending: entries of earlier runs,
	// with any gaps they have.
	older map[string][]int64
	// next is the oldest id that purge has not dealt with yet among the
	// ids this run writes after the listing (they follow one another;
	// both logs may hold each).
	next int64
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
	b, err := w.enc.marshal(v)
	if err != nil {
		return err
	}
	// A store keeps no slice it is given (checkpoint.Store).
	defer w.enc.release(b)
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

// purge deletes the log entries older than the newest keep batches:
// those with an id up to latest-keep, in both logs, whatever they hold
// (entries of abandoned batches are ordinary entries). Failures are
// returned but never affect correctness: old entries are not read.
//
// Only the first purge that has something to delete lists the logs, to find
// the entries of earlier runs (with their gaps); it remembers them and the
// id after latest, from which on this run writes its batches one after
// another. Later purges delete exactly the ids that fell out of retention
// since the last one, without listing: with the default
// kinesis.minBatchesToRetain a purge on S3 or DynamoDB is one delete call
// (checkpoint.BatchDeleter) and no reads. After a failure the next purge
// lists again, so nothing it left is forgotten.
//
// purge keeps its state in w: call it on the query's own wal, never a copy.
func (w *wal) purge(ctx context.Context, latest int64, keep int) error {
	if keep <= 0 {
		return nil
	}
	last := latest - int64(keep) // the newest id to delete
	if last < 0 {
		return nil
	}
	if w.purged == nil {
		st := &purgeState{older: map[string][]int64{}, next: latest + 1}
		for _, dir := range []string{commitsDir, offsetsDir} {
			ids, err := w.ids(ctx, dir)
			if err != nil {
				return err
			}
			// Ids from next on are this run's, not written yet.
			st.older[dir] = ids[:sortedCut(ids, st.next)]
		}
		w.purged = st
	}
	st := w.purged
	var names []string
	for _, dir := range []string{commitsDir, offsetsDir} {
		ids := st.older[dir]
		n := sortedCut(ids, last+1)
		for _, id := range ids[:n] {
			names = append(names, entryName(dir, id))
		}
		st.older[dir] = ids[n:]
	}
	for id := st.next; id <= last; id++ {
		names = append(names, entryName(commitsDir, id), entryName(offsetsDir, id))
	}
	st.next = max(st.next, last+1)
	if err := w.deleteAll(ctx, names); err != nil {
		w.purged = nil // some may remain: list again next time
		return err
	}
	return nil
}

// sortedCut returns the number of ids (ascending) below id.
func sortedCut(ids []int64, id int64) int {
	n, _ := slices.BinarySearch(ids, id)
	return n
}

// deleteAll deletes the named objects, missing ones included, in as few
// calls as the store allows.
func (w *wal) deleteAll(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if bd, ok := w.store.(checkpoint.BatchDeleter); ok {
		if err := bd.DeleteMany(ctx, names); err != nil {
			return fmt.Errorf("purge %s: %w", w.store.Location(), err)
		}
		return nil
	}
	var errs []error
	for _, name := range names {
		if err := w.store.Delete(ctx, name); err != nil && !errors.Is(err, checkpoint.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
