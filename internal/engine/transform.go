package engine

import "context"

// Transform turns each batch read from the source into the batch the sink
// receives: SQL on DuckDB (package batchsql) or Go code.
type Transform interface {
	// Prepare checks the transform against the source schema when the
	// query starts, before anything is read, and returns the output
	// schema. Errors name what is wrong (a syntax error and its position,
	// an unknown column).
	Prepare(ctx context.Context, in Schema) (Schema, error)
	// Apply transforms one batch. It must be deterministic: a replayed
	// batch must give the same output. The output batch keeps in.ID.
	Apply(ctx context.Context, in *Batch) (*Batch, error)
}

// SchemaChecker is a Sink that needs certain columns (the Kinesis sink
// needs partitionKey and data). The engine calls CheckSchema with the
// output schema when the query starts, so a mismatch fails before
// anything is read.
type SchemaChecker interface {
	CheckSchema(Schema) error
}

// prepare validates the transform and the sink's schema needs before
// anything is read.
func (q *Query) prepare(ctx context.Context) error {
	out := SourceSchema()
	if q.cfg.Transform != nil {
		var err error
		if out, err = q.cfg.Transform.Prepare(ctx, out); err != nil {
			return err
		}
	}
	if sc, ok := q.cfg.Sink.(SchemaChecker); ok {
		if err := sc.CheckSchema(out); err != nil {
			return err
		}
	}
	return nil
}
