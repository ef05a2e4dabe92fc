package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shardflow/shardflow/checkpoint"
)

// sourceStateName is the checkpoint object a Lifecycle source keeps its
// state in (docs/checkpoint-format.md). "0" is the source's index, as in
// Spark's checkpoint layout; a query has one source.
const sourceStateName = "sources/0"

// Lifecycle is an optional interface of a Source that owns resources
// outliving one run, such as an enhanced fan-out consumer it registered.
//
// The engine calls Open once per Run, after it holds the checkpoint lock
// and has read or created the checkpoint metadata, before any shard is
// opened. It calls Close once after Open succeeded, when Run ends and every
// shard reader is closed: graceful is true only when Run returns nil (after
// Stop, or at the end of a Once or AvailableNow trigger; invariant 9), and
// false on a failure or a cancelled context, when the source must leave its
// resources for the next run to reuse.
type Lifecycle interface {
	Open(ctx context.Context, state StateStore) error
	Close(ctx context.Context, graceful bool) error
}

// StateStore is a source's small JSON object in the checkpoint, under
// "sources/0". Only the source writes it; the engine never reads it.
type StateStore interface {
	// Read decodes the object into v. It reports false, with no error,
	// when the object does not exist yet.
	Read(ctx context.Context, v any) (bool, error)
	// Write replaces the object with v encoded as JSON. It is durable when
	// it returns.
	Write(ctx context.Context, v any) error
}

// storeState is the StateStore on a checkpoint.Store.
type storeState struct {
	store checkpoint.Store
	name  string
}

func (s storeState) Read(ctx context.Context, v any) (bool, error) {
	b, err := s.store.Read(ctx, s.name)
	if errors.Is(err, checkpoint.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read checkpoint %s/%s: %w", s.store.Location(), s.name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("checkpoint %s/%s is corrupt: %w", s.store.Location(), s.name, err)
	}
	return true, nil
}

func (s storeState) Write(ctx context.Context, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := s.store.Put(ctx, s.name, b); err != nil {
		return fmt.Errorf("write checkpoint %s/%s: %w", s.store.Location(), s.name, err)
	}
	return nil
}
