package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/shardflow/shardflow/checkpoint/memstore"
)

// upper keeps only shardId and sequenceNumber, upper-casing the shard id.
type upper struct{ prepared int }

func (u *upper) Prepare(_ context.Context, in Schema) (Schema, error) {
	u.prepared++
	if in.Index(ColShardID) < 0 {
		return nil, errors.New("no shardId")
	}
	return Schema{{"shard", TypeString}, {"seq", TypeString}}, nil
}

func (u *upper) Apply(_ context.Context, b *Batch) (*Batch, error) {
	out := &Batch{ID: b.ID, Schema: Schema{{"shard", TypeString}, {"seq", TypeString}}}
	for _, r := range b.Rows {
		out.Rows = append(out.Rows, Row{strings.ToUpper(r[5].(string)), r[3]})
	}
	return out, nil
}

type needsColumn struct {
	SinkFunc
	col string
}

func (n needsColumn) CheckSchema(s Schema) error {
	if s.Index(n.col) < 0 {
		return errors.New("the sink needs column " + n.col)
	}
	return nil
}

func TestTransformRunsBetweenSourceAndSink(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	seqs := src.put("shardId-0", 3)
	var got []string
	sink := needsColumn{col: "seq", SinkFunc: func(_ context.Context, b *Batch) error {
		for _, r := range b.Rows {
			got = append(got, r[0].(string)+"/"+r[1].(string))
		}
		return nil
	}}
	tr := &upper{}
	var last Progress
	cfg := Config{Store: memstore.New(), Source: src, Sink: sink, Transform: tr, Trigger: Trigger{Kind: KindOnce},
		OnProgress: func(p Progress) { last = p }}
	if err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range seqs {
		want = append(want, "SHARDID-0/"+s)
	}
	if !slices.Equal(got, want) || tr.prepared != 1 || last.Sink.NumOutputRows != 3 {
		t.Fatalf("got %v (prepared %d, output rows %d)", got, tr.prepared, last.Sink.NumOutputRows)
	}
}

func TestSinkSchemaMismatchFailsBeforeReading(t *testing.T) {
	src := newFakeSource("s", "shardId-0")
	src.put("shardId-0", 1)
	store := memstore.New()
	sink := needsColumn{col: "partitionKey", SinkFunc: func(context.Context, *Batch) error { return nil }}
	err := run(t, Config{Store: store, Source: src, Sink: sink, Transform: &upper{}, Trigger: Trigger{Kind: KindOnce}})
	if err == nil || !strings.Contains(err.Error(), "needs column partitionKey") {
		t.Fatalf("got %v", err)
	}
	if src.openCount("shardId-0") != 0 {
		t.Fatal("a shard was opened before the schema check")
	}
	if names, _ := store.List(t.Context(), ""); len(names) != 0 {
		t.Fatalf("the checkpoint was written: %v", names)
	}
}
