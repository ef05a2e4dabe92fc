package console_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/sink/console"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func allTypes() shardflow.Schema {
	return shardflow.Schema{
		{Name: "data", Type: shardflow.TypeBytes},
		{Name: "s", Type: shardflow.TypeString},
		{Name: "n", Type: shardflow.TypeInt64},
		{Name: "f", Type: shardflow.TypeFloat64},
		{Name: "ok", Type: shardflow.TypeBool},
		{Name: "ts", Type: shardflow.TypeTimestamp},
	}
}

func TestGolden(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	many := make([]shardflow.Row, 25)
	for i := range many {
		many[i] = shardflow.Row{int64(i)}
	}
	tests := []struct {
		name  string
		cfg   console.Config
		batch shardflow.Batch
	}{
		{
			name:  "empty",
			batch: shardflow.Batch{ID: 0, Schema: allTypes()},
		},
		{
			name: "types",
			batch: shardflow.Batch{ID: 7, Schema: allTypes(), Rows: []shardflow.Row{
				{[]byte("Hel"), "short", int64(-42), 1.0, true, ts},
				{[]byte{}, "", int64(math.MaxInt64), 1e7, false, ts.Add(-time.Hour)},
				{nil, nil, nil, nil, nil, nil},
				{[]byte{0, 0xff}, "x", int64(0), 1.5e-5, true, time.Time{}},
				{[]byte{1}, "y", int64(1), math.NaN(), false, ts},
				{[]byte{2}, "z", int64(2), math.Inf(-1), false, ts},
				{[]byte{3}, "w", int64(3), 0.001, false, ts},
			}},
		},
		{
			name: "types_no_truncate",
			cfg:  console.Config{NoTruncate: true},
			batch: shardflow.Batch{ID: 8, Schema: allTypes(), Rows: []shardflow.Row{
				{[]byte("a much longer binary value"), "a string that is longer than twenty characters", int64(1), 123456.789, true, ts},
			}},
		},
		{
			name: "truncate",
			batch: shardflow.Batch{ID: 9, Schema: shardflow.Schema{{Name: "a column name longer than twenty", Type: shardflow.TypeString}}, Rows: []shardflow.Row{
				{"exactly twenty chars"},
				{"twenty-one characters"},
				{"héllo wörld with accents ok"},
				{"日本語のテキストはとても長いです。二十文字以上"},
			}},
		},
		{
			name: "meta_characters",
			batch: shardflow.Batch{ID: 10, Schema: shardflow.Schema{{Name: "col\tname", Type: shardflow.TypeString}}, Rows: []shardflow.Row{
				{"line1\nline2"},
				{"a|b\r\f\b\v\a"},
			}},
		},
		{
			name:  "num_rows_footer",
			batch: shardflow.Batch{ID: 11, Schema: shardflow.Schema{{Name: "n", Type: shardflow.TypeInt64}}, Rows: many},
		},
		{
			name:  "num_rows_one",
			cfg:   console.Config{NumRows: 1},
			batch: shardflow.Batch{ID: 12, Schema: shardflow.Schema{{Name: "n", Type: shardflow.TypeInt64}}, Rows: many[:2]},
		},
		{
			name:  "num_rows_exact",
			cfg:   console.Config{NumRows: 2},
			batch: shardflow.Batch{ID: 13, Schema: shardflow.Schema{{Name: "n", Type: shardflow.TypeInt64}}, Rows: many[:2]},
		},
		{
			name:  "location",
			cfg:   console.Config{Location: time.FixedZone("UTC+2", 2*3600), NoTruncate: true},
			batch: shardflow.Batch{ID: 14, Schema: shardflow.Schema{{Name: "ts", Type: shardflow.TypeTimestamp}}, Rows: []shardflow.Row{{ts}}},
		},
		{
			name:  "no_columns",
			batch: shardflow.Batch{ID: 15, Rows: []shardflow.Row{{}, {}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			sink, err := console.New(&out, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.AddBatch(t.Context(), &tt.batch); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestNewRejectsNegativeNumRows(t *testing.T) {
	_, err := console.New(os.Stdout, console.Config{NumRows: -1})
	if err == nil || !strings.Contains(err.Error(), "NumRows") {
		t.Fatalf("New(NumRows: -1) = %v, want an error naming NumRows", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	sink, err := console.New(failWriter{}, console.Config{})
	if err != nil {
		t.Fatal(err)
	}
	err = sink.AddBatch(t.Context(), &shardflow.Batch{ID: 5})
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "batch 5") {
		t.Fatalf("AddBatch = %v, want the write error for batch 5", err)
	}
}

func TestCanceled(t *testing.T) {
	var out bytes.Buffer
	sink, _ := console.New(&out, console.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sink.AddBatch(ctx, &shardflow.Batch{ID: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("AddBatch = %v, want context.Canceled", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q for a canceled batch", out.String())
	}
}

// lockedBuffer records each Write separately.
type lockedBuffer struct {
	mu     sync.Mutex
	writes []string
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes = append(b.writes, string(p))
	return len(p), nil
}

// TestConcurrentBatchesDoNotInterleave checks that each batch is one Write.
func TestConcurrentBatchesDoNotInterleave(t *testing.T) {
	var out lockedBuffer
	sink, _ := console.New(&out, console.Config{})
	var wg sync.WaitGroup
	for id := range 8 {
		wg.Go(func() {
			b := &shardflow.Batch{ID: int64(id), Schema: allTypes()[1:2], Rows: []shardflow.Row{{"v"}}}
			if err := sink.AddBatch(t.Context(), b); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(out.writes) != 8 {
		t.Fatalf("%d writes for 8 batches", len(out.writes))
	}
	for _, w := range out.writes {
		if strings.Count(w, "Batch: ") != 1 {
			t.Fatalf("a write holds %d batches:\n%s", strings.Count(w, "Batch: "), w)
		}
	}
}
