package batchsql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/batchsql"
)

// blogSQL is the AWS blog's parse-and-project query.
const blogSQL = `SELECT CAST(e.id AS STRING) AS partitionKey, to_json(e) AS data
FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING, date TIMESTAMP') AS e FROM source)`

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// rec builds a source row.
func rec(shard string, seq int, data []byte) shardflow.Row {
	return shardflow.Row{data, "kinesis-source", "pk" + strconv.Itoa(seq), fmt.Sprintf("4963%052d", seq), t0.Add(time.Duration(seq) * time.Millisecond), shard, int64(0)}
}

func newTransform(t *testing.T, cfg batchsql.Config) (*batchsql.Transform, shardflow.Schema) {
	t.Helper()
	xf, err := batchsql.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xf.Close() })
	out, err := xf.Prepare(context.Background(), shardflow.SourceSchema())
	if err != nil {
		t.Fatal(err)
	}
	return xf, out
}

func apply(t *testing.T, xf *batchsql.Transform, rows ...shardflow.Row) []shardflow.Row {
	t.Helper()
	b, err := xf.Apply(context.Background(), &shardflow.Batch{ID: 7, Time: t0, Schema: shardflow.SourceSchema(), Rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != 7 {
		t.Errorf("batch id %d", b.ID)
	}
	return b.Rows
}

func TestBlogPipeline(t *testing.T) {
	xf, out := newTransform(t, batchsql.Config{SQL: blogSQL})
	want := shardflow.Schema{{Name: "partitionKey", Type: shardflow.TypeString}, {Name: "data", Type: shardflow.TypeString}}
	if d := cmp.Diff(want, out); d != "" {
		t.Fatalf("schema (-want +got):\n%s", d)
	}
	rows := apply(t, xf,
		rec("shardId-000000000000", 1, []byte(`{"id": 42, "data": "Spain", "date": "2026-11-25 10:00:00"}`)),
		rec("shardId-000000000000", 2, []byte(`{"id": 7, "data": "Zürich", "date": "2026-11-25 10:00:01"}`)),
	)
	type ev struct {
		ID   int64  `json:"id"`
		Data string `json:"data"`
		Date string `json:"date"`
	}
	var got []ev
	for _, r := range rows {
		var e ev
		if err := json.Unmarshal([]byte(r[1].(string)), &e); err != nil {
			t.Fatalf("data %q: %v", r[1], err)
		}
		if r[0] != strconv.FormatInt(e.ID, 10) {
			t.Errorf("partitionKey %v for id %d", r[0], e.ID)
		}
		got = append(got, e)
	}
	wantEv := []ev{{42, "Spain", "2026-11-25 10:00:00"}, {7, "Zürich", "2026-11-25 10:00:01"}}
	if d := cmp.Diff(wantEv, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

func TestMalformedRecords(t *testing.T) {
	const q = `SELECT sequenceNumber, e.id, e.data, e.date FROM (SELECT sequenceNumber, from_json(CAST(data AS STRING), 'id BIGINT, data STRING, date TIMESTAMP') AS e FROM source)`
	recs := []shardflow.Row{
		rec("s0", 1, []byte(`{"id": 1, "data": "Spain", "date": "2026-11-25 10:00:00"}`)),
		rec("s0", 2, []byte(`not json at all`)),
		rec("s0", 3, []byte(`{"id": 3, "data": "Fra`)),
		rec("s0", 4, []byte(`{"id": "four", "data": 4, "date": "yesterday"}`)),
		rec("s0", 5, []byte{'{', 0xff, 0xfe, '}'}),
		rec("s0", 6, []byte(`[1, 2]`)),
		rec("s0", 7, []byte(`{"id": 7, "data": "Japan", "date": "2026-11-25 10:00:07"}`)),
	}
	xf, _ := newTransform(t, batchsql.Config{SQL: q})
	rows := apply(t, xf, recs...)
	if len(rows) != len(recs) {
		t.Fatalf("%d rows, want %d", len(rows), len(recs))
	}
	want := []shardflow.Row{
		{recs[0][3], int64(1), "Spain", t0},
		{recs[1][3], nil, nil, nil},
		{recs[2][3], nil, nil, nil},
		{recs[3][3], nil, "4", nil}, // wrong types: NULL, as Spark's PERMISSIVE mode; 4 is a valid STRING
		{recs[4][3], nil, nil, nil},
		{recs[5][3], nil, nil, nil},
		{recs[6][3], int64(7), "Japan", t0.Add(7 * time.Second)},
	}
	if d := cmp.Diff(want, rows); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}

	t.Run("strict", func(t *testing.T) {
		xf, _ := newTransform(t, batchsql.Config{SQL: q, Strict: true})
		for _, bad := range []int{1, 2, 4} { // not JSON, truncated, not UTF-8
			rows := []shardflow.Row{recs[0], recs[bad], recs[6]}
			_, err := xf.Apply(context.Background(), &shardflow.Batch{ID: 1, Rows: rows})
			var re *batchsql.RowError
			if !errors.As(err, &re) {
				t.Fatalf("record %d: got %v, want a *RowError", bad, err)
			}
			if re.ShardID != "s0" || re.SequenceNumber != recs[bad][3] {
				t.Errorf("record %d: error names %s/%s: %v", bad, re.ShardID, re.SequenceNumber, err)
			}
			if !strings.Contains(err.Error(), recs[bad][3].(string)) {
				t.Errorf("message does not name the sequence number: %v", err)
			}
		}
		// Good records pass in strict mode too.
		apply(t, xf, recs[0], recs[6])
	})
}

func TestBytesPassThrough(t *testing.T) {
	xf, out := newTransform(t, batchsql.Config{SQL: "SELECT * FROM source"})
	if d := cmp.Diff(shardflow.SourceSchema(), out); d != "" {
		t.Fatalf("schema (-want +got):\n%s", d)
	}
	var recs []shardflow.Row
	for i := range 5000 { // more than one DuckDB chunk (2048 rows)
		data := []byte{0xff, 0x00, byte(i), byte(i >> 8), 0xc3, 0x28, '\\', 'x', '"'}
		recs = append(recs, rec("shardId-000000000001", i, data))
	}
	recs = append(recs, rec("s", 99999, []byte{}))
	rows := apply(t, xf, recs...)
	if d := cmp.Diff(recs, rows); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
}

func TestPerBatchSQL(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "countries.csv")
	if err := os.WriteFile(csv, []byte("name,continent\nSpain,Europe\nJapan,Asia\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var recs []shardflow.Row
	countries := []string{"Spain", "Japan", "Spain", "Brazil", "Spain", "Japan"}
	for i, c := range countries {
		recs = append(recs, rec("s0", i, fmt.Appendf(nil, `{"id": %d, "data": %q, "date": "2026-11-25 10:00:00"}`, i, c)))
	}
	for _, tc := range []struct {
		name string
		sql  string
		want []shardflow.Row
	}{
		{"group by", `SELECT e.data AS country, count(*) AS n FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING') AS e FROM source) GROUP BY 1 ORDER BY n DESC, country`,
			[]shardflow.Row{{"Spain", int64(3)}, {"Japan", int64(2)}, {"Brazil", int64(1)}}},
		{"join with init table", `SELECT c.continent, count(*) AS n FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING') AS e FROM source) s LEFT JOIN countries c ON c.name = s.e.data GROUP BY ALL ORDER BY n DESC`,
			[]shardflow.Row{{"Europe", int64(3)}, {"Asia", int64(2)}, {nil, int64(1)}}},
		{"window", `SELECT e.id, row_number() OVER (PARTITION BY e.data ORDER BY e.id DESC) AS rn FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING') AS e FROM source) QUALIFY rn = 1 ORDER BY e.id`,
			[]shardflow.Row{{int64(3), int64(1)}, {int64(4), int64(1)}, {int64(5), int64(1)}}},
		{"self join", `SELECT count(*) AS n FROM source a JOIN source b ON a.sequenceNumber = b.sequenceNumber`,
			[]shardflow.Row{{int64(6)}}},
		{"types", `SELECT sum(subSequenceNumber + 1) AS s, 1.5::DECIMAL(4,2) AS d, DATE '2026-01-02' AS dt, {'a': 1, 'b': [1, 2]} AS st, true AS b, 2.5::FLOAT AS f, current_timestamp AS now, date_format(current_timestamp, 'yyyy-MM-dd''T''HH:mm') AS fmt FROM source`,
			[]shardflow.Row{{int64(6), 1.5, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), `{"a":1,"b":[1,2]}`, true, 2.5, t0, "2026-11-25T10:00"}}},
		{"json", `SELECT to_json({'a': 1}) AS j, json_extract('{"x": {"y" : [1, 2]}}', '$.x') AS x, [json('{"b": 2}')] AS l FROM source LIMIT 1`,
			[]shardflow.Row{{`{"a":1}`, `{"y":[1,2]}`, `[{"b":2}]`}}},
		{"backquotes and spark names", "SELECT `partitionKey` AS `key` FROM source WHERE sequenceNumber = '" + recs[0][3].(string) + "'",
			[]shardflow.Row{{"pk0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xf, _ := newTransform(t, batchsql.Config{SQL: tc.sql, Init: []string{"CREATE TABLE countries AS SELECT * FROM '" + csv + "'"}})
			if d := cmp.Diff(tc.want, apply(t, xf, recs...)); d != "" {
				t.Errorf("rows (-want +got):\n%s", d)
			}
			// The same batch again (a replay) gives the same rows.
			if d := cmp.Diff(tc.want, apply(t, xf, recs...)); d != "" {
				t.Errorf("replay (-want +got):\n%s", d)
			}
		})
	}
}

func TestErrorsAtStart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sql       string
		init      []string
		line, col int
		msg       string
	}{
		{"syntax", "SELECT partitionKey,\n  data FRM source", nil, 2, 12, "syntax error"},
		{"unknown column", "SELECT partitionKey, datta FROM source", nil, 1, 22, `"datta"`},
		{"unknown column after rewrite", "SELECT CAST(data AS STRING) AS s,\n  from_json(CAST(data AS STRING), 'id BIGINT') AS e, nope FROM source", nil, 2, 54, `"nope"`},
		{"two statements", "SELECT 1; SELECT 2", nil, 1, 9, "one statement"},
		{"bad from_json schema", "SELECT from_json(CAST(data AS STRING), 'id BIGGINT') FROM source", nil, 1, 40, `"biggint"`},
		{"bad date pattern", "SELECT date_format(approximateArrivalTimestamp, 'yyyy-QQ') FROM source", nil, 1, 49, `letter "Q"`},
		{"init", "SELECT * FROM source", []string{"CREATE TABLE x AS SELECT * FROM 'no-such-file.csv'"}, 0, 0, "init statement 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xf, err := batchsql.New(batchsql.Config{SQL: tc.sql, Init: tc.init})
			if err == nil {
				defer xf.Close()
				_, err = xf.Prepare(context.Background(), shardflow.SourceSchema())
			}
			var se *batchsql.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *batchsql.Error", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			if line, col := se.Line(); tc.line != 0 && (line != tc.line || col != tc.col) {
				t.Errorf("position %d:%d, want %d:%d\n%v", line, col, tc.line, tc.col, err)
			}
		})
	}
}

// TestLanes runs statements on batches large enough to be split across
// DuckDB connections: a row-local statement (projections and filters) gives
// every row, in input order, and a malformed record in strict mode is still
// named; a statement that is not row-local runs on one connection.
func TestLanes(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: the transform uses one connection")
	}
	const n = 3*4096 + 5
	var recs []shardflow.Row
	for i := range n {
		recs = append(recs, rec(fmt.Sprintf("shardId-%012d", i%3), i, fmt.Appendf(nil, `{"id": %d, "data": "c%d", "date": "2026-11-25 10:00:00"}`, i, i%5)))
	}
	lanes := regexp.MustCompile(`msg="sql prepared".* lanes=(\d+)`)
	prepare := func(t *testing.T, cfg batchsql.Config) (*batchsql.Transform, int) {
		t.Helper()
		var logs bytes.Buffer
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		xf, _ := newTransform(t, cfg)
		m := lanes.FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no lanes in the debug log:\n%s", logs.String())
		}
		k, _ := strconv.Atoi(m[1])
		return xf, k
	}

	t.Run("projection", func(t *testing.T) {
		xf, k := prepare(t, batchsql.Config{SQL: blogSQL})
		if k < 2 {
			t.Fatalf("the blog's query runs on %d connection(s), want several", k)
		}
		rows := apply(t, xf, recs...)
		if len(rows) != n {
			t.Fatalf("%d rows, want %d", len(rows), n)
		}
		for i, r := range rows {
			if r[0] != strconv.Itoa(i) {
				t.Fatalf("row %d: partitionKey %v, want %d: not in input order", i, r[0], i)
			}
		}
	})
	t.Run("filter", func(t *testing.T) {
		xf, k := prepare(t, batchsql.Config{SQL: `SELECT partitionKey FROM source WHERE shardId LIKE '%2' AND partitionKey LIKE '%7'`})
		if k < 2 {
			t.Fatalf("the filter runs on %d connection(s), want several", k)
		}
		var want []shardflow.Row
		for i := range n {
			if i%3 == 2 && i%10 == 7 {
				want = append(want, shardflow.Row{"pk" + strconv.Itoa(i)})
			}
		}
		if d := cmp.Diff(want, apply(t, xf, recs...)); d != "" {
			t.Errorf("rows (-want +got):\n%s", d)
		}
	})
	t.Run("strict", func(t *testing.T) {
		xf, _ := prepare(t, batchsql.Config{SQL: blogSQL, Strict: true})
		bad := slices.Clone(recs)
		bad[9000] = rec("shardId-000000000009", 9000, []byte(`{"id": 3, "data": "Fra`))
		_, err := xf.Apply(context.Background(), &shardflow.Batch{ID: 1, Rows: bad})
		var re *batchsql.RowError
		if !errors.As(err, &re) || re.SequenceNumber != bad[9000][3] {
			t.Fatalf("got %v, want a *RowError naming %s", err, bad[9000][3])
		}
	})
	t.Run("not row-local", func(t *testing.T) {
		for _, q := range []string{
			`SELECT e.data AS country, count(*) AS n FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING') AS e FROM source) GROUP BY 1 ORDER BY 1`,
			`SELECT partitionKey, row_number() OVER () AS i FROM source`,
			`SELECT partitionKey FROM source LIMIT 5`,
			`SELECT a.partitionKey FROM source a JOIN source b USING (sequenceNumber)`,
			`SELECT 1 AS one`,
		} {
			if _, k := prepare(t, batchsql.Config{SQL: q}); k != 1 {
				t.Errorf("%s: runs on %d connections, want 1", q, k)
			}
		}
		// Row-local, but Init's TEMP macro exists on the first connection
		// only.
		xf, k := prepare(t, batchsql.Config{SQL: `SELECT plus1(subSequenceNumber) AS s FROM source`, Init: []string{"CREATE TEMP MACRO plus1(x) AS x + 1"}})
		if rows := apply(t, xf, recs...); k != 1 || len(rows) != n || rows[n-1][0] != int64(1) {
			t.Errorf("with a TEMP macro: %d connections, %d rows", k, len(rows))
		}
		xf, _ = prepare(t, batchsql.Config{SQL: `SELECT e.data AS country, count(*) AS n FROM (SELECT from_json(CAST(data AS STRING), 'id BIGINT, data STRING') AS e FROM source) GROUP BY 1 ORDER BY 1`})
		want := []shardflow.Row{{"c0", int64(2459)}, {"c1", int64(2459)}, {"c2", int64(2459)}, {"c3", int64(2458)}, {"c4", int64(2458)}} // 12293 = 5·2458 + 3
		if d := cmp.Diff(want, apply(t, xf, recs...)); d != "" {
			t.Errorf("rows (-want +got):\n%s", d)
		}
	})
}
