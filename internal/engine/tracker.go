package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// settle applies what a plan learned about shard lineage, whether or not a
// batch runs: child shards reported at a shard's end are tracked at once
// (before the next ListShards), and a shard read to its end whose records
// are all committed already is finished without a batch of its own, so a
// reshard with no new data writes no empty batch (defect F) and its
// children start on the next refresh.
func (q *Query) settle(p *planned) {
	for _, c := range p.children {
		if q.cfg.Coordinator != nil {
			// Worker mode: children are leased, not tracked; list the
			// shards again so the lease table learns them soon.
			q.relist = true
			continue
		}
		if _, ok := q.shards[c.ID]; !ok {
			q.track(c)
			q.relist = true
		}
	}
	for _, id := range p.ended {
		s := q.shards[id]
		s.state = StateFinished
		q.closeReader(s)
		q.relist = true
	}
}

// startFor is where a shard not in the offsets log begins. Shards listed at
// the query's first start follow kinesis.startingPosition, resolved once
// (invariant 5), closed ones included. A shard found later (a reshard child,
// or any shard of a reshard done while the query was down) holds only data
// that is new to the query, so it starts at TRIM_HORIZON once its parents
// are done; a timestamp would skip its records if the server's clock lags.
func (q *Query) startFor(id string) Start {
	ip := q.meta.Source.InitialPosition
	if _, ok := ip.Shards[id]; ok || q.initial[id] || q.meta.Source.InitialShards == nil {
		return ip.StartFor(id)
	}
	return Start{Type: TrimHorizon}
}

// StreamIdentity tells one incarnation of a stream from another of the same
// name: a stream deleted and created again has a new creation time.
type StreamIdentity struct {
	ARN     string    `json:"arn,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

// IdentitySource is a Source that can tell which incarnation of its stream
// it reads, so a checkpoint is never applied to a recreated stream.
type IdentitySource interface {
	Identity(ctx context.Context) (StreamIdentity, error)
}

// pinSource records, in new metadata, the shards listed at the first start
// and the stream's identity.
func (q *Query) pinSource(ctx context.Context, meta *Metadata) error {
	list, err := q.cfg.Source.ListShards(ctx)
	if err != nil {
		return fmt.Errorf("list shards: %w", err)
	}
	meta.Source.InitialShards = make([]string, 0, len(list))
	for _, s := range list {
		meta.Source.InitialShards = append(meta.Source.InitialShards, s.ID)
	}
	if is, ok := q.cfg.Source.(IdentitySource); ok {
		id, err := is.Identity(ctx)
		if err != nil {
			return fmt.Errorf("describe stream: %w", err)
		}
		meta.Source.Identity = &id
	}
	return nil
}

// checkIdentity refuses a checkpoint made for an earlier incarnation of a
// stream of the same name: its sequence numbers mean nothing now.
func (q *Query) checkIdentity(ctx context.Context) error {
	is, ok := q.cfg.Source.(IdentitySource)
	want := q.meta.Source.Identity
	if !ok || want == nil {
		return nil
	}
	got, err := is.Identity(ctx)
	if err != nil {
		return fmt.Errorf("describe stream: %w", err)
	}
	if (want.ARN != "" && got.ARN != "" && want.ARN != got.ARN) ||
		(!want.Created.IsZero() && !got.Created.IsZero() && !want.Created.Equal(got.Created)) {
		return fmt.Errorf("stream %q was deleted and created again (the checkpoint %s is for the stream %s created %s; the stream now is %s created %s): its positions do not apply; use a new checkpointLocation",
			q.meta.Source.Stream, q.cfg.Store.Location(), want.ARN, want.Created.UTC().Format(time.RFC3339), got.ARN, got.Created.UTC().Format(time.RFC3339))
	}
	return nil
}

func isDataLoss(err error) bool {
	_, ok := errors.AsType[*DataLossError](err)
	return ok
}

// dataLost applies kinesis.failOnDataLoss to a reader's data-loss report,
// once the reader's buffered records were all taken: fail naming the shard
// and the missing range, or log, count and go on from the earliest
// available position (a shard that is gone is finished).
func (q *Query) dataLost(s *shardRun, dl *DataLossError) error {
	if q.limits.FailOnDataLoss {
		return fmt.Errorf("%w (kinesis.failOnDataLoss=true)", dl)
	}
	q.log.Warn(dl.Error()+"; continuing because kinesis.failOnDataLoss=false", "shard", dl.ShardID)
	q.dataLoss++
	q.closeReader(s)
	if dl.Gone {
		s.state = StateFinished
		q.relist = true
		return nil
	}
	s.next = Start{Type: TrimHorizon} // reopened at the next refresh
	return nil
}
