// Package memsink is a sink that keeps every batch in memory, for tests and
// examples.
package memsink

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/shardflow/shardflow"
)

// Sink keeps a deep copy of each batch it receives. A batch with the ID of
// an earlier one replaces it, as a replay after a crash must. It is safe
// for concurrent use; the zero value is not usable (call New).
type Sink struct {
	mu      sync.Mutex
	batches map[int64]shardflow.Batch
}

var _ shardflow.Sink = (*Sink)(nil)

// New returns an empty sink.
func New() *Sink {
	return &Sink{batches: make(map[int64]shardflow.Batch)}
}

// AddBatch stores a copy of b (its row values are only valid during the
// call), replacing any earlier batch with the same ID.
func (s *Sink) AddBatch(ctx context.Context, b *shardflow.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := clone(*b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches[b.ID] = c
	return nil
}

// Batches returns copies of the batches kept, in ID order.
func (s *Sink) Batches() []shardflow.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]shardflow.Batch, 0, len(s.batches))
	for _, b := range s.batches {
		out = append(out, clone(b))
	}
	slices.SortFunc(out, func(a, b shardflow.Batch) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Rows returns copies of the rows of all batches, in batch ID order.
func (s *Sink) Rows() []shardflow.Row {
	var rows []shardflow.Row
	for _, b := range s.Batches() {
		rows = append(rows, b.Rows...)
	}
	return rows
}

// clone deep-copies a batch. Byte slices are the only mutable values a row
// holds (strings, numbers, bools and times are values).
func clone(b shardflow.Batch) shardflow.Batch {
	out := shardflow.Batch{ID: b.ID, Schema: slices.Clone(b.Schema)}
	if b.Rows == nil {
		return out
	}
	out.Rows = make([]shardflow.Row, len(b.Rows))
	for i, row := range b.Rows {
		r := make(shardflow.Row, len(row))
		for j, v := range row {
			if p, ok := v.([]byte); ok && p != nil {
				v = slices.Clone(p)
			}
			r[j] = v
		}
		out.Rows[i] = r
	}
	return out
}
