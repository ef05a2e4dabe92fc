package filesink_test

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/sink/filesink"
)

var schema = shardflow.Schema{
	{Name: "data", Type: shardflow.TypeBytes},
	{Name: "partitionKey", Type: shardflow.TypeString},
	{Name: "subSequenceNumber", Type: shardflow.TypeInt64},
	{Name: "score", Type: shardflow.TypeFloat64},
	{Name: "ok", Type: shardflow.TypeBool},
	{Name: "approximateArrivalTimestamp", Type: shardflow.TypeTimestamp},
}

var ts = time.Date(2026, 3, 1, 12, 30, 5, 123456789, time.FixedZone("CET", 3600))

func rows() []shardflow.Row {
	return []shardflow.Row{
		{[]byte{0, 1, 0xfe, 0xff}, "pk-1", int64(0), 1.5, true, ts},
		{[]byte("hello"), `quote " comma , newline
and <html> & unicode é 日本`, int64(math.MinInt64), -1e300, false, ts.Add(time.Nanosecond)},
		{nil, nil, nil, nil, nil, nil},
		{[]byte{}, "", int64(7), 0.0, true, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
}

func newSink(t *testing.T, cfg filesink.Config) *filesink.Sink {
	t.Helper()
	s, err := filesink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func add(t *testing.T, s *filesink.Sink, id int64, rows []shardflow.Row) {
	t.Helper()
	if err := s.AddBatch(t.Context(), &shardflow.Batch{ID: id, Schema: schema, Rows: rows}); err != nil {
		t.Fatal(err)
	}
}

// dirFiles returns the names of all files in dir.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// readJSON decodes a JSON Lines file back into rows of schema.
func readJSON(t *testing.T, path string) []shardflow.Row {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []shardflow.Row
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for dec.More() {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			t.Fatal(err)
		}
		if len(obj) != len(schema) {
			t.Fatalf("object has %d keys, want %d", len(obj), len(schema))
		}
		row := make(shardflow.Row, len(schema))
		for i, c := range schema {
			v, ok := obj[c.Name]
			if !ok {
				t.Fatalf("no key %q", c.Name)
			}
			if v == nil {
				continue
			}
			row[i] = parse(t, c.Type, v)
		}
		out = append(out, row)
	}
	return out
}

func parse(t *testing.T, typ shardflow.ColumnType, v any) any {
	t.Helper()
	s := ""
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case bool:
		return v
	}
	var (
		out any
		err error
	)
	switch typ {
	case shardflow.TypeBytes:
		out, err = base64.StdEncoding.DecodeString(s)
	case shardflow.TypeString:
		out = s
	case shardflow.TypeInt64:
		out, err = strconv.ParseInt(s, 10, 64)
	case shardflow.TypeFloat64:
		out, err = strconv.ParseFloat(s, 64)
	case shardflow.TypeBool:
		out, err = strconv.ParseBool(s)
	case shardflow.TypeTimestamp:
		out, err = time.Parse(time.RFC3339Nano, s)
	}
	if err != nil {
		t.Fatalf("parsing %q as %v: %v", s, typ, err)
	}
	return out
}

func TestJSONRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, filesink.Config{Path: dir})
	add(t, s, 42, rows())
	if got, want := dirFiles(t, dir), []string{"part-00000000000000000042.json"}; !cmp.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	got := readJSON(t, filepath.Join(dir, s.FileName(42)))
	if diff := cmp.Diff(rows(), got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestJSONShape(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, filesink.Config{Path: dir, Format: "JSON"})
	add(t, s, 1, rows()[:1])
	add(t, s, 2, rows()[2:3])
	got := readFiles(t, dir)
	want := []string{
		`{"data":"AAH+/w==","partitionKey":"pk-1","subSequenceNumber":0,"score":1.5,"ok":true,"approximateArrivalTimestamp":"2026-03-01T11:30:05.123456789Z"}` + "\n",
		`{"data":null,"partitionKey":null,"subSequenceNumber":null,"score":null,"ok":null,"approximateArrivalTimestamp":null}` + "\n",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestJSONSpecialValues(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, filesink.Config{Path: dir})
	sch := shardflow.Schema{{Name: "f", Type: shardflow.TypeFloat64}, {Name: "s", Type: shardflow.TypeString}}
	b := &shardflow.Batch{ID: 3, Schema: sch, Rows: []shardflow.Row{
		{math.NaN(), "<a & b>"},
		{math.Inf(1), "ctl\x00\x1f\t"},
		{math.Inf(-1), "bad utf8 \xff, sep \u2028"},
		{1e21, `back\slash "q"`},
	}}
	if err := s.AddBatch(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	want := `{"f":"NaN","s":"<a & b>"}
{"f":"Infinity","s":"ctl\u0000\u001f\t"}
{"f":"-Infinity","s":"bad utf8 \ufffd, sep \u2028"}
{"f":1e+21,"s":"back\\slash \"q\""}
`
	got := readFiles(t, dir)
	if diff := cmp.Diff([]string{want}, got); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
	// Every line is valid JSON.
	for line := range strings.Lines(want) {
		if !json.Valid([]byte(line)) {
			t.Errorf("invalid JSON line %q", line)
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, filesink.Config{Path: dir, Format: "csv"})
	add(t, s, 9, rows())
	f, err := os.Open(filepath.Join(dir, "part-00000000000000000009.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := []string{"data", "partitionKey", "subSequenceNumber", "score", "ok", "approximateArrivalTimestamp"}
	if diff := cmp.Diff(header, records[0]); diff != "" {
		t.Fatalf("header (-want +got):\n%s", diff)
	}
	var got []shardflow.Row
	for _, rec := range records[1:] {
		row := make(shardflow.Row, len(schema))
		for i, c := range schema {
			// CSV cannot tell null from empty: read empty as null, except
			// for strings and bytes of the last row.
			if rec[i] == "" && len(got) != 3 {
				continue
			}
			row[i] = parse(t, c.Type, rec[i])
		}
		got = append(got, row)
	}
	if diff := cmp.Diff(rows(), got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestReplayReplacesFile(t *testing.T) {
	for _, format := range []string{"json", "csv"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			s := newSink(t, filesink.Config{Path: dir, Format: format})
			add(t, s, 5, rows())
			first := readFiles(t, dir)
			// A crash between the file and the commit log: a new sink (a
			// new process) writes batch 5 again, then batch 6.
			s = newSink(t, filesink.Config{Path: dir, Format: format})
			add(t, s, 5, rows())
			if got := readFiles(t, dir); !cmp.Equal(first, got) {
				t.Fatalf("replayed batch changed the files:\n%q\nwant\n%q", got, first)
			}
			add(t, s, 6, rows()[:1])
			want := []string{"part-00000000000000000005." + format, "part-00000000000000000006." + format}
			if got := dirFiles(t, dir); !cmp.Equal(got, want) {
				t.Fatalf("files %q, want %q", got, want)
			}
		})
	}
}

// TestReplayAfterCrashMidWrite plants what a crash during the write of
// batch 5 leaves (a partial temporary file), and checks that the replay
// replaces it and that globs never saw it.
func TestReplayAfterCrashMidWrite(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, filesink.Config{Path: dir})
	tmp := filepath.Join(dir, "."+s.FileName(5)+".tmp")
	if err := os.WriteFile(tmp, []byte(`{"data":"trunc`), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(m) != 0 {
		t.Fatalf("*.json matches the temporary file: %q", m)
	}
	add(t, s, 5, rows())
	if got, want := dirFiles(t, dir), []string{s.FileName(5)}; !cmp.Equal(got, want) {
		t.Fatalf("files %q, want %q", got, want)
	}
	if diff := cmp.Diff(rows(), readJSON(t, filepath.Join(dir, s.FileName(5)))); diff != "" {
		t.Errorf("replayed file (-want +got):\n%s", diff)
	}
}

func TestEmptyBatchWritesNoFile(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, filesink.Config{Path: dir})
	add(t, s, 0, nil)
	if got := dirFiles(t, dir); len(got) != 0 {
		t.Fatalf("empty batch wrote %q", got)
	}
}

func TestBadRowsFailTheBatch(t *testing.T) {
	tests := []struct {
		name string
		rows []shardflow.Row
		want string
	}{
		{"wrong type", []shardflow.Row{rows()[0], {"not bytes", "pk", int64(1), 1.0, true, ts}}, `row 1, column "data" (binary): value of Go type string`},
		{"int not int64", []shardflow.Row{{nil, "pk", 1, 1.0, true, ts}}, `row 0, column "subSequenceNumber" (bigint): value of Go type int`},
		{"short row", []shardflow.Row{{nil}}, "row 0 has 1 values for 6 columns"},
	}
	for _, format := range []string{"json", "csv"} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				s := newSink(t, filesink.Config{Path: dir, Format: format})
				err := s.AddBatch(t.Context(), &shardflow.Batch{ID: 4, Schema: schema, Rows: tt.rows})
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "batch 4") {
					t.Fatalf("AddBatch = %v, want an error for batch 4 containing %q", err, tt.want)
				}
				if got := dirFiles(t, dir); len(got) != 0 {
					t.Fatalf("a failed batch left %q", got)
				}
			})
		}
	}
}

func TestNewErrors(t *testing.T) {
	_, err := filesink.New(filesink.Config{Path: t.TempDir(), Format: "parquet"})
	if err == nil || !strings.Contains(err.Error(), `"parquet"`) || !strings.Contains(err.Error(), "json or csv") {
		t.Errorf("New(Format: parquet) = %v, want an error naming it and listing json, csv", err)
	}
	if _, err := filesink.New(filesink.Config{}); err == nil || !strings.Contains(err.Error(), "Path") {
		t.Errorf("New without Path = %v, want an error naming Path", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := filesink.New(filesink.Config{Path: file}); err == nil {
		t.Errorf("New on a regular file succeeded")
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := filesink.New(filesink.Config{Path: dir}); err != nil {
		t.Errorf("New with a missing directory: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("New did not create %s", dir)
	}
}

func TestNegativeBatchID(t *testing.T) {
	s := newSink(t, filesink.Config{Path: t.TempDir()})
	if err := s.AddBatch(t.Context(), &shardflow.Batch{ID: -1, Schema: schema, Rows: rows()}); err == nil {
		t.Fatal("AddBatch accepted batch id -1")
	}
}

// readFiles returns the content of the files in dir, in name order.
func readFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, name := range dirFiles(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	return out
}
