package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/shardflow/shardflow/checkpoint"
)

// Coordinator shares a stream's shards among several processes running the
// same query (worker mode; package lease implements it on a DynamoDB lease
// table). The engine then reads only the shards it holds a lease on, runs
// its own batch loop with its own batch ids in its own checkpoint, and hands
// the positions it committed to the coordinator, which keeps them in the
// leases so that a shard moves between workers with its position.
//
// The engine calls Join once, then Sync before every plan, Unsafe right
// before every sink call, and Close once at the end of Run.
type Coordinator interface {
	// Join joins the query's shared state: the start position every worker
	// uses for new shards (invariant 5 across processes). resolve is called
	// only by the first worker of a new lease table.
	Join(ctx context.Context, resolve func(context.Context) (Shared, error)) (Shared, error)
	// Sync tells the coordinator the shards listed (nil: the same as at the
	// last call) and, for every shard the
	// engine holds, its committed state (positions the next lease renewal
	// records; finished shards are released at once; shards another worker
	// asked for are handed over with their position). It returns the shards
	// the engine may read now.
	Sync(ctx context.Context, listed []ShardInfo, mine map[string]Held) (map[string]Lease, error)
	// Unsafe returns the ids whose lease this worker can no longer be sure
	// it holds (a renewal failed or is overdue). The engine hands no record
	// of them to the sink.
	Unsafe(ids []string) []string
	// Wake receives a value when a lease is gained, lost or asked for.
	Wake() <-chan struct{}
	// Close stops renewing. When release is true it first writes the
	// positions in mine into the leases and gives them up, so that other
	// workers take them over at once with no duplicates.
	Close(ctx context.Context, release bool, mine map[string]Held) error
}

// Shared is what every worker of a query uses alike.
type Shared struct {
	Initial       InitialPosition `json:"initialPosition"`
	InitialShards []string        `json:"initialShards,omitempty"`
	Identity      *StreamIdentity `json:"identity,omitempty"`
}

// Held is the engine's committed state of a shard it holds.
type Held struct {
	// Next is where the shard resumes after the last committed batch.
	Next Start
	// Finished is true once every record of the shard is committed.
	Finished bool
	// MillisBehindLatest is the reader's last lag (-1: unknown).
	MillisBehindLatest int64
}

// Lease is a shard the worker holds.
type Lease struct {
	// Start is the position kept in the lease.
	Start Start
	Info  ShardInfo
	// PrevOwner is the worker whose log may hold a later committed position
	// than Start: the owner of a lease taken over after it expired, or this
	// worker itself resuming its leases after a restart. Empty after a
	// handoff, which writes the exact position into the lease.
	PrevOwner string
}

// PeerLogs opens another worker's checkpoint, read-only, to find the last
// position it committed for a shard it held when it died.
type PeerLogs func(ctx context.Context, worker string) (checkpoint.Store, error)

// peerLogDepth bounds how far back a worker's log is searched, past
// abandoned batches and batches without the shard, for its last committed
// batch that held the shard.
const peerLogDepth = 16

// joinShared replaces the query's own start position with the shared one.
func (q *Query) joinShared(ctx context.Context) error {
	sh, err := q.cfg.Coordinator.Join(ctx, func(ctx context.Context) (Shared, error) {
		ip, err := q.cfg.Source.ResolveInitial(ctx, q.now())
		if err != nil {
			return Shared{}, fmt.Errorf("resolve kinesis.startingPosition: %w", err)
		}
		var m Metadata
		if err := q.pinSource(ctx, &m); err != nil {
			return Shared{}, err
		}
		return Shared{Initial: ip, InitialShards: m.Source.InitialShards, Identity: m.Source.Identity}, nil
	})
	if err != nil {
		return fmt.Errorf("join the lease table: %w", err)
	}
	q.shared = sh
	return nil
}

// mine is the committed state of every held shard.
func (q *Query) mine() map[string]Held {
	m := make(map[string]Held, len(q.shards))
	for id, s := range q.shards {
		lag := int64(-1)
		if s.reader != nil {
			lag = s.reader.Peek(0).MillisBehindLatest
		}
		m[id] = Held{Next: s.next, Finished: s.state == StateFinished, MillisBehindLatest: lag}
	}
	return m
}

// syncLeases applies the coordinator's answer: shards gained start at the
// lease's position (or the previous owner's later committed one); shards
// lost or handed over stop being read at once.
func (q *Query) syncLeases(ctx context.Context) error {
	// A listing goes to the coordinator once: Sync runs before every
	// batch, ListShards at most every DiscoveryInterval.
	held, err := q.cfg.Coordinator.Sync(ctx, q.listing, q.mine())
	if err != nil {
		return fmt.Errorf("lease table: %w", err)
	}
	q.listing = nil
	for _, id := range slices.Sorted(maps.Keys(q.shards)) {
		if _, ok := held[id]; !ok {
			q.closeReader(q.shards[id])
			delete(q.shards, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(held)) {
		if _, ok := q.shards[id]; ok {
			continue
		}
		l := held[id]
		start, err := q.resumeFrom(ctx, id, l)
		if err != nil {
			return err
		}
		st := StateOpen
		if l.Info.Closed {
			st = StateClosed
		}
		// Only a shard this worker's own listing showed can be judged
		// vanished: the lease may come from another worker's newer list.
		q.shards[id] = &shardRun{info: l.Info, next: start, state: st, listed: q.listedIDs[id]}
		q.log.Info("lease acquired", "shard", id, "from", start.String(), "previousOwner", l.PrevOwner)
	}
	return nil
}

// resumeFrom is where a gained shard resumes: the lease's position, or a
// later one its previous owner committed but had not yet written into the
// lease (positions reach the lease at its next renewal), so that a crash
// repeats only the dead worker's uncommitted batch.
func (q *Query) resumeFrom(ctx context.Context, id string, l Lease) (Start, error) {
	if l.PrevOwner == "" || q.cfg.PeerLogs == nil {
		return l.Start, nil
	}
	st, err := q.cfg.PeerLogs(ctx, l.PrevOwner)
	if err != nil {
		q.log.Warn("cannot open the previous owner's checkpoint; resuming from the lease's position", "shard", id, "worker", l.PrevOwner, "err", err)
		return l.Start, nil
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	next, ok, err := lastCommitted(ctx, wal{store: st}, id)
	if err != nil {
		q.log.Warn("cannot read the previous owner's checkpoint; resuming from the lease's position", "shard", id, "worker", l.PrevOwner, "err", err)
		return l.Start, nil
	}
	if !ok || !laterStart(next, l.Start) {
		return l.Start, nil
	}
	return next, nil
}

// lastCommitted finds where shard id resumes after the last batch a
// worker's log committed that held the shard, within peerLogDepth batches.
func lastCommitted(ctx context.Context, w wal, id string) (Start, bool, error) {
	n, err := w.latest(ctx, commitsDir)
	if err != nil || n < 0 {
		return Start{}, false, err
	}
	for i := 0; n >= 0 && i < peerLogDepth; n, i = n-1, i+1 {
		var c CommitEntry
		if err := w.readJSON(ctx, entryName(commitsDir, n), &c); err != nil {
			if errors.Is(err, checkpoint.ErrNotExist) {
				return Start{}, false, nil // purged
			}
			return Start{}, false, err
		}
		if c.Abandoned {
			continue
		}
		e, err := w.readOffsets(ctx, n)
		if err != nil {
			return Start{}, false, err
		}
		o, ok := e.Shards[id]
		if !ok {
			// A worker that lost the shard's lease goes on committing
			// batches of its other shards: its last batch that held
			// the shard is further back. (An older one, from before the
			// shard was last taken from this worker, is never later
			// than the lease's position: resumeFrom keeps the lease's.)
			continue
		}
		return o.next(), true, nil
	}
	return Start{}, false, nil
}

// laterStart reports whether a resumes after b: both name a sequence
// number and a's is later. Any other pair keeps b, the lease's position.
func laterStart(a, b Start) bool {
	if a.Seq == "" {
		return false
	}
	if b.Seq == "" {
		return true // the lease still holds its initial position
	}
	c := cmpPos(Position{a.Seq, a.Sub}, Position{b.Seq, b.Sub})
	return c > 0 || c == 0 && a.Type == AfterSequenceNumber && b.Type == AtSequenceNumber
}

// abandon closes an offsets entry that will never be committed (worker
// mode: its shards' leases were lost, or the worker restarted), so the log
// stays whole and the batch id is not reused.
func (q *Query) abandon(ctx context.Context, id int64, why string) error {
	q.log.Warn("batch abandoned: nothing of it was handed to the sink", "batchId", id, "reason", why)
	c := CommitEntry{BatchID: id, CommittedAt: q.now().UTC(), Abandoned: true}
	if err := q.wal.create(ctx, entryName(commitsDir, id), c); err != nil {
		return fmt.Errorf("batch %d: %w", id, err)
	}
	q.nextBatch = id + 1
	return nil
}
