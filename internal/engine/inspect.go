package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
)

// CheckpointStatus is what Inspect reads from a checkpoint: the query it
// belongs to, its last committed and last planned batch, and where every
// shard resumes. It is the JSON of `shardflow status --json`.
type CheckpointStatus struct {
	Location  string    `json:"location"`
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"createdAt"`
	Stream    string    `json:"stream"`
	// LastCommittedBatch is the newest commits/N, null when none.
	LastCommittedBatch *int64 `json:"lastCommittedBatch"`
	// CommittedAt and CommittedRows describe that commit.
	CommittedAt   *time.Time `json:"committedAt,omitempty"`
	CommittedRows int64      `json:"committedRows"`
	// LastPlannedBatch is the newest offsets/N, null when none.
	LastPlannedBatch *int64 `json:"lastPlannedBatch"`
	// PendingReplay is true when offsets/N has no commits/N: the next run
	// replays batch N with exactly the same records first.
	PendingReplay bool `json:"pendingReplay"`
	// PendingBatch is that batch's id, when PendingReplay.
	PendingBatch *int64 `json:"pendingBatch,omitempty"`
	// Shards are every tracked shard, sorted by id.
	Shards []ShardStatus `json:"shards"`
}

// ShardStatus is one shard of a CheckpointStatus.
type ShardStatus struct {
	ID string `json:"id"`
	// State is the shard's state in the last planned batch.
	State   ShardState `json:"state"`
	Parents []string   `json:"parents,omitempty"`
	// Next is where the next run reads the shard from, after the last
	// committed batch.
	Next Start `json:"next"`
	// PendingEnd is the last record of the shard in the batch waiting for
	// replay, if that batch holds records of the shard.
	PendingEnd *Position `json:"pendingEnd,omitempty"`
}

// Inspect reads a checkpoint without changing it. It fails when store holds
// no checkpoint.
func Inspect(ctx context.Context, store checkpoint.Store) (*CheckpointStatus, error) {
	w := wal{store: store}
	var meta Metadata
	if err := w.readJSON(ctx, metadataName, &meta); err != nil {
		if errors.Is(err, checkpoint.ErrNotExist) {
			return nil, fmt.Errorf("no checkpoint at %s (it has no metadata)", store.Location())
		}
		return nil, err
	}
	st := &CheckpointStatus{
		Location: store.Location(), ID: meta.ID, Name: meta.Name, Format: meta.Format,
		CreatedAt: meta.CreatedAt, Stream: meta.Source.Stream, Shards: []ShardStatus{},
	}
	lastOff, err := w.latest(ctx, offsetsDir)
	if err != nil {
		return nil, err
	}
	lastCommit, err := w.latest(ctx, commitsDir)
	if err != nil {
		return nil, err
	}
	if lastCommit >= 0 {
		st.LastCommittedBatch = &lastCommit
		var c CommitEntry
		if err := w.readJSON(ctx, entryName(commitsDir, lastCommit), &c); err != nil {
			return nil, err
		}
		t := c.CommittedAt
		st.CommittedAt, st.CommittedRows = &t, c.NumInputRows
	}
	if lastOff < 0 {
		return st, nil
	}
	st.LastPlannedBatch = &lastOff
	entry, err := w.readOffsets(ctx, lastOff)
	if err != nil {
		return nil, err
	}
	pending := lastOff > lastCommit
	if pending {
		st.PendingReplay, st.PendingBatch = true, &lastOff
	}
	for _, id := range slices.Sorted(maps.Keys(entry.Shards)) {
		o := entry.Shards[id]
		ss := ShardStatus{ID: id, State: o.State, Parents: o.Parents, Next: o.next()}
		if pending {
			// The batch is not committed: the shard resumes at its start.
			ss.Next, ss.PendingEnd = o.Start, o.End
		}
		st.Shards = append(st.Shards, ss)
	}
	return st, nil
}
