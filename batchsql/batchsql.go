package batchsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/shardflow/shardflow"
)

// Names the transform defines on its connection. They start with __sf_ so
// they do not clash with the user's.
const (
	sourceFunc   = "__sf_source"
	batchTimeVar = "__sf_batch_time"
)

// Config configures a Transform. Only SQL is required.
type Config struct {
	// SQL is one SELECT statement over the view "source" (the source
	// schema: data BLOB, streamName, partitionKey, sequenceNumber
	// VARCHAR, approximateArrivalTimestamp TIMESTAMP, shardId VARCHAR,
	// subSequenceNumber BIGINT). Spark forms are rewritten (docs/sql.md).
	SQL string
	// Init holds statements run once, in order, when the transform is
	// built: static tables for joins, e.g.
	// CREATE TABLE countries AS SELECT * FROM 'countries.csv'.
	// Option shardflow.sql.init.
	Init []string
	// Strict makes a record that does not parse (malformed JSON in
	// from_json, bytes that are not UTF-8 in CAST(data AS STRING)) fail
	// the batch, naming the record's shard and sequence number, instead of
	// giving NULL. Option shardflow.sql.strict.
	Strict bool
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Transform runs a SQL statement on every micro-batch with an embedded,
// in-memory DuckDB. It implements [shardflow.Transform].
//
// A Transform serves one query: Prepare, then Apply for each batch, from
// one goroutine at a time (calls are serialised by a mutex). Close releases
// DuckDB.
//
// A row-local statement (projections and filters over source, such as the
// AWS blog's parse-and-project query) runs on slices of a large batch on
// several DuckDB connections at once, one per CPU up to 4, and the results
// are concatenated in input order; any other statement runs on one.
type Transform struct {
	cfg Config
	log *slog.Logger
	db  *sql.DB

	mu sync.Mutex // guards the fields below and the use of the lanes
	// lanes[0] runs every statement and holds the Init tables. A row-local
	// statement also runs on the other lanes, each on a slice of the batch.
	lanes     []*lane
	closed    bool
	in        shardflow.Schema
	out       shardflow.Schema
	query     string // the wrapped, rewritten statement; "" until Prepare
	rw        *rewritten
	registerd bool
}

// lane is one pinned DuckDB connection with its own temp macros and its
// own "source" view, which reads the rows of feed.
type lane struct {
	conn *sql.Conn
	feed feed
}

// Row-local statements (projections and filters over one scan of source)
// are run on slices of a batch on up to maxLanes connections at once, when
// the batch has at least minLaneRows rows per lane. DuckDB runs such a
// statement on one thread whatever its thread count: the source is a table
// function, which cannot give DuckDB the batch indexes it needs to keep
// the input order on several threads.
const (
	maxLanes    = 4
	minLaneRows = 4096
)

// New opens an in-memory DuckDB, defines the Spark compatibility macros
// and runs cfg.Init. The statement itself is checked by Prepare. Errors in
// Init are *Error values.
func New(cfg Config) (*Transform, error) {
	if strings.TrimSpace(cfg.SQL) == "" {
		return nil, &Error{Msg: "the SQL statement is empty", Pos: -1}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("sql: open duckdb: %w", err)
	}
	ctx := context.Background()
	t := &Transform{cfg: cfg, log: log, db: db}
	l, err := t.newLane(ctx)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.lanes = []*lane{l}
	for i, s := range cfg.Init {
		if strings.TrimSpace(s) == "" {
			continue
		}
		if _, err := l.conn.ExecContext(ctx, s); err != nil {
			t.Close()
			msg, pos := duckPos(err.Error(), s)
			return nil, &Error{Msg: msg, SQL: s, Pos: pos, Init: i + 1}
		}
	}
	return t, nil
}

// newLane opens a connection and defines the compatibility macros on it.
func (t *Transform) newLane(ctx context.Context) (*lane, error) {
	conn, err := t.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sql: open duckdb: %w", err)
	}
	str, fromJSON := macroString, macroFromJSON
	if t.cfg.Strict {
		str, fromJSON = macroStringStrict, macroFromJSONStrict
	}
	for _, s := range []string{"SET TimeZone = 'UTC'", str, fromJSON} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			conn.Close()
			return nil, fmt.Errorf("sql: set up duckdb (%s): %w", s, err)
		}
	}
	return &lane{conn: conn}, nil
}

// The compatibility macros. __sf_string is Spark's CAST(x AS STRING): the
// UTF-8 text of a BLOB (DuckDB's own cast escapes bytes; decode fails on
// invalid UTF-8, so it becomes NULL unless strict), a VARCHAR cast
// otherwise. __sf_from_json is Spark's from_json in PERMISSIVE mode: a
// record that is not a JSON object gives a struct of NULL fields; strict
// mode fails instead (Spark's FAILFAST).
const (
	macroString         = `CREATE OR REPLACE TEMP MACRO __sf_string(x BLOB) AS try(decode(x)), (x) AS CAST(x AS VARCHAR)`
	macroStringStrict   = `CREATE OR REPLACE TEMP MACRO __sf_string(x BLOB) AS decode(x), (x) AS CAST(x AS VARCHAR)`
	macroFromJSON       = `CREATE OR REPLACE TEMP MACRO __sf_from_json(x, spec) AS CASE WHEN x IS NULL THEN NULL ELSE coalesce(try(json_transform(x, spec)), json_transform('{}', spec)) END`
	macroFromJSONStrict = `CREATE OR REPLACE TEMP MACRO __sf_from_json(x, spec) AS CASE WHEN x IS NULL THEN NULL WHEN json_valid(x) AND json_type(x) = 'OBJECT' THEN json_transform(x, spec) ELSE error('malformed JSON record: ' || left(x, 64)) END`
)

// Close releases DuckDB. It is idempotent.
func (t *Transform) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for _, l := range t.lanes {
		errs = append(errs, l.conn.Close())
	}
	return errors.Join(append(errs, t.db.Close())...)
}

// Prepare rewrites and binds the statement against the input schema and
// returns the output schema, before anything is read. A syntax error or an
// unknown column is an *Error with its position in the statement.
func (t *Transform) Prepare(ctx context.Context, in shardflow.Schema) (shardflow.Schema, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("sql: transform is closed")
	}
	rw, err := rewriteSpark(t.cfg.SQL)
	if err != nil {
		return nil, err
	}
	if !t.registerd {
		if err := t.register(t.lanes[0], 0, in); err != nil {
			return nil, err
		}
		t.registerd = true
	} else if !sameSchema(in, t.in) {
		return nil, errors.New("sql: Prepare called again with a different input schema")
	}
	t.in = in
	if err := t.setBatchTime(ctx, time.Time{}); err != nil {
		return nil, err
	}
	// DESCRIBE binds without running. The statement starts on line 2, so
	// DuckDB's line and column numbers refer to rw.sql directly.
	rows, err := t.lanes[0].conn.QueryContext(ctx, "DESCRIBE\n"+rw.sql)
	if err != nil {
		msg, pos := duckPos(err.Error(), "\n"+rw.sql)
		if pos > 0 {
			pos = rw.origPos(pos - 1)
		}
		return nil, &Error{Msg: msg, SQL: t.cfg.SQL, Pos: pos}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var names, types []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("sql: describe: %w", err)
		}
		names = append(names, fmt.Sprint(vals[0]))
		types = append(types, fmt.Sprint(vals[1]))
	}
	if err := rows.Err(); err != nil {
		msg, pos := duckPos(err.Error(), "\n"+rw.sql)
		return nil, &Error{Msg: msg, SQL: t.cfg.SQL, Pos: max(pos-1, -1)}
	}
	out := make(shardflow.Schema, len(names))
	sel := make([]string, len(names))
	alias := make([]string, len(names))
	for i := range names {
		var expr string
		out[i].Name = names[i]
		out[i].Type, expr = outputType(types[i], "c"+strconv.Itoa(i))
		sel[i] = expr + " AS " + sqlIdent(names[i])
		alias[i] = "c" + strconv.Itoa(i)
	}
	t.query = "SELECT " + strings.Join(sel, ", ") + " FROM (\n" + rw.sql + "\n) AS __sf_q(" + strings.Join(alias, ", ") + ")"
	t.rw = rw
	t.out = out
	if len(t.lanes) == 1 {
		t.addLanes(ctx)
		if err := t.setBatchTime(ctx, time.Time{}); err != nil {
			return nil, err
		}
	}
	t.log.Debug("sql prepared", "sql", t.query, "columns", len(out), "lanes", len(t.lanes))
	return out, nil
}

// addLanes opens more lanes when the statement is row-local, so that Apply
// runs it on slices of a batch at once. Anything else, or a lane that
// cannot bind the statement (a TEMP table from Init exists on lanes[0]
// only), keeps the one lane.
func (t *Transform) addLanes(ctx context.Context) {
	n := min(runtime.NumCPU(), maxLanes)
	if n < 2 || !t.rowLocal(ctx) {
		return
	}
	lanes := []*lane{t.lanes[0]}
	for i := 1; i < n; i++ {
		l, err := t.newLane(ctx)
		if err == nil {
			lanes = append(lanes, l)
			err = t.register(l, i, t.in)
		}
		if err == nil {
			_, err = l.conn.ExecContext(ctx, "EXPLAIN "+t.query)
		}
		if err != nil {
			t.log.Debug("sql: running on one connection", "err", err)
			for _, l := range lanes[1:] {
				l.conn.Close()
			}
			return
		}
	}
	// Each lane runs on one thread; more DuckDB threads would only spin
	// waiting for its pipeline.
	if _, err := lanes[0].conn.ExecContext(ctx, "SET threads = 1"); err != nil {
		t.log.Debug("sql: set threads", "err", err)
	}
	t.lanes = lanes
}

// rowLocal reports whether the prepared statement computes each output
// row from one input row, in input order: DuckDB's plan is projections and
// filters over one scan of source, and no sequence is used. Its result on
// a batch is then the concatenation of its results on slices of the batch.
func (t *Transform) rowLocal(ctx context.Context) bool {
	low := strings.ToLower(t.rw.sql)
	if strings.Contains(low, "nextval") || strings.Contains(low, "currval") {
		return false
	}
	var key, plan string
	if err := t.lanes[0].conn.QueryRowContext(ctx, "EXPLAIN (FORMAT JSON) "+t.query).Scan(&key, &plan); err != nil {
		t.log.Debug("sql: explain", "err", err)
		return false
	}
	type node struct {
		Name     string `json:"name"`
		Children []node `json:"children"`
	}
	var roots []node
	if err := json.Unmarshal([]byte(plan), &roots); err != nil || len(roots) != 1 {
		return false
	}
	for n := roots[0]; ; n = n.Children[0] {
		switch {
		case len(n.Children) == 0:
			return strings.EqualFold(n.Name, sourceFunc)
		case len(n.Children) > 1 || n.Name != "PROJECTION" && n.Name != "FILTER":
			return false
		}
	}
}

func sameSchema(a, b shardflow.Schema) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// outputType maps a DuckDB column type to a batch column type and the
// expression that converts column c to it. Nested types (structs, lists,
// maps) become their JSON text; integers become BIGINT (an integer beyond
// int64, such as a HUGEINT sum over 2^63, fails the batch); DECIMAL and
// FLOAT become DOUBLE; DATE and TIMESTAMP WITH TIME ZONE become TIMESTAMP
// (UTC); other types (UUID, INTERVAL, TIME, ENUM...) become VARCHAR.
func outputType(duck, c string) (shardflow.ColumnType, string) {
	u := strings.ToUpper(duck)
	switch {
	case u == "BLOB":
		return shardflow.TypeBytes, c
	case u == "VARCHAR":
		return shardflow.TypeString, c
	case u == "JSON":
		// JSON is text already: to_json would parse and write it again
		// (a fifth of the blog query's time), and the driver would parse
		// it into Go maps.
		return shardflow.TypeString, "CAST(" + c + " AS VARCHAR)"
	case u == "BIGINT":
		return shardflow.TypeInt64, c
	case u == "INTEGER" || u == "SMALLINT" || u == "TINYINT" || u == "UINTEGER" || u == "USMALLINT" ||
		u == "UTINYINT" || u == "UBIGINT" || u == "HUGEINT" || u == "UHUGEINT" || u == "\"NULL\"" || u == "NULL":
		return shardflow.TypeInt64, "CAST(" + c + " AS BIGINT)"
	case u == "DOUBLE":
		return shardflow.TypeFloat64, c
	case u == "FLOAT" || strings.HasPrefix(u, "DECIMAL"):
		return shardflow.TypeFloat64, "CAST(" + c + " AS DOUBLE)"
	case u == "BOOLEAN":
		return shardflow.TypeBool, c
	case u == "TIMESTAMP":
		return shardflow.TypeTimestamp, c
	case strings.HasPrefix(u, "TIMESTAMP") || u == "DATE":
		return shardflow.TypeTimestamp, "CAST(" + c + " AS TIMESTAMP)"
	case strings.HasPrefix(u, "STRUCT") || strings.HasPrefix(u, "MAP") || strings.HasPrefix(u, "UNION") ||
		strings.HasSuffix(u, "]"):
		return shardflow.TypeString, "CAST(to_json(" + c + ") AS VARCHAR)"
	}
	return shardflow.TypeString, "CAST(" + c + " AS VARCHAR)"
}

// setBatchTime sets what current_timestamp returns: the batch's time
// (recorded in offsets/N, so a replay sees the same), or now when unknown.
func (t *Transform) setBatchTime(ctx context.Context, ts time.Time) error {
	if ts.IsZero() {
		ts = time.Now()
	}
	lit := ts.UTC().Format("2006-01-02 15:04:05.999999")
	for _, l := range t.lanes {
		if _, err := l.conn.ExecContext(ctx, "SET VARIABLE "+batchTimeVar+" = TIMESTAMP '"+lit+"'"); err != nil {
			return fmt.Errorf("sql: set batch time: %w", err)
		}
	}
	return nil
}

// Apply runs the statement on one batch. Rows are read into DuckDB through
// a table function (no row-by-row appends); the output rows are owned by
// the returned batch. A run-time error is narrowed down to the record that
// causes it, and returned as a *RowError when one record does.
func (t *Transform) Apply(ctx context.Context, b *shardflow.Batch) (*shardflow.Batch, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.query == "" {
		return nil, errors.New("sql: Apply before Prepare")
	}
	if t.closed {
		return nil, errors.New("sql: transform is closed")
	}
	if t.rw.usesTime {
		if err := t.setBatchTime(ctx, b.Time); err != nil {
			return nil, err
		}
	}
	rows, err := t.run(ctx, b.Rows)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, t.locate(ctx, b.Rows, err)
	}
	return &shardflow.Batch{ID: b.ID, Time: b.Time, Schema: t.out, Rows: rows}, nil
}

// run executes the statement over rows: on slices of rows on all lanes at
// once when there are several and rows is large enough, the results
// concatenated in order.
func (t *Transform) run(ctx context.Context, in []shardflow.Row) ([]shardflow.Row, error) {
	k := min(len(t.lanes), len(in)/minLaneRows)
	if k < 2 {
		return t.runOn(ctx, t.lanes[0], in)
	}
	parts := make([][]shardflow.Row, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Go(func() {
			parts[i], errs[i] = t.runOn(ctx, t.lanes[i], in[i*len(in)/k:(i+1)*len(in)/k])
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return slices.Concat(parts...), nil
}

// runOn executes the statement over rows on lane l.
func (t *Transform) runOn(ctx context.Context, l *lane, in []shardflow.Row) ([]shardflow.Row, error) {
	l.feed.set(in)
	defer l.feed.set(nil)
	out := make([]shardflow.Row, 0, len(in))
	err := l.conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return errors.New("sql: duckdb connection cannot query")
		}
		rows, err := q.QueryContext(ctx, t.query, nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := len(t.out)
		cells := make([]any, 0, n*max(len(in), 1))
		dest := make([]driver.Value, n)
		for {
			if err := rows.Next(dest); err != nil {
				if err == io.EOF {
					break
				}
				return err
			}
			if len(cells)+n > cap(cells) {
				cells = make([]any, 0, max(cap(cells), 1024*n))
			}
			start := len(cells)
			for _, v := range dest {
				cells = append(cells, v)
			}
			out = append(out, cells[start:start+n:start+n])
		}
		return nil
	})
	return out, err
}

// locate finds the record that makes the statement fail by running it on
// halves of the batch (about 2·log2(n) runs, only after a failure).
func (t *Transform) locate(ctx context.Context, rows []shardflow.Row, cause error) error {
	shard, seq := t.in.Index("shardId"), t.in.Index("sequenceNumber")
	for len(rows) > 1 {
		half := len(rows) / 2
		_, errA := t.run(ctx, rows[:half])
		_, errB := t.run(ctx, rows[half:])
		switch {
		case errA != nil && errB == nil:
			rows, cause = rows[:half], errA
		case errB != nil && errA == nil:
			rows, cause = rows[half:], errB
		default:
			// Both halves fail (several bad records, or not a record's
			// fault), or only the records together do (an overflow).
			return fmt.Errorf("sql: %w", cause)
		}
	}
	if len(rows) == 1 && shard >= 0 && seq >= 0 {
		s, _ := rows[0][shard].(string)
		q, _ := rows[0][seq].(string)
		return &RowError{ShardID: s, SequenceNumber: q, Err: cause}
	}
	return fmt.Errorf("sql: %w", cause)
}

// register defines lane l's table function (the lane's number is num) and
// its "source" view over it.
func (t *Transform) register(l *lane, num int, in shardflow.Schema) error {
	infos := make([]duckdb.ColumnInfo, len(in))
	for i, c := range in {
		var dt duckdb.Type
		switch c.Type {
		case shardflow.TypeBytes:
			dt = duckdb.TYPE_BLOB
		case shardflow.TypeString:
			dt = duckdb.TYPE_VARCHAR
		case shardflow.TypeInt64:
			dt = duckdb.TYPE_BIGINT
		case shardflow.TypeFloat64:
			dt = duckdb.TYPE_DOUBLE
		case shardflow.TypeBool:
			dt = duckdb.TYPE_BOOLEAN
		case shardflow.TypeTimestamp:
			dt = duckdb.TYPE_TIMESTAMP
		default:
			return fmt.Errorf("sql: input column %s has unsupported type %s", c.Name, c.Type)
		}
		ti, err := duckdb.NewTypeInfo(dt)
		if err != nil {
			return fmt.Errorf("sql: %w", err)
		}
		infos[i] = duckdb.ColumnInfo{Name: c.Name, T: ti}
	}
	fn := duckdb.ChunkTableFunction{
		BindArguments: func(map[string]any, ...any) (duckdb.ChunkTableSource, error) {
			return &scan{cols: infos, rows: l.feed.get()}, nil
		},
	}
	name := sourceFunc
	if num > 0 {
		name += "_" + strconv.Itoa(num)
	}
	if err := duckdb.RegisterTableUDF(l.conn, name, fn); err != nil {
		return fmt.Errorf("sql: register source: %w", err)
	}
	cols := make([]string, len(in))
	for i, c := range in {
		cols[i] = sqlIdent(c.Name)
	}
	view := "CREATE OR REPLACE TEMP VIEW source AS SELECT " + strings.Join(cols, ", ") + " FROM " + name + "()"
	if _, err := l.conn.ExecContext(context.Background(), view); err != nil {
		return fmt.Errorf("sql: create view source: %w", err)
	}
	return nil
}

// feed hands the current batch to the table function, which DuckDB calls
// on its own threads.
type feed struct {
	mu   sync.Mutex
	rows []shardflow.Row
}

func (f *feed) set(rows []shardflow.Row) {
	f.mu.Lock()
	f.rows = rows
	f.mu.Unlock()
}

func (f *feed) get() []shardflow.Row {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rows
}

// scan is one scan of the source view: DuckDB binds one per reference to
// "source" in the statement, so self-joins and subqueries each read the
// whole batch. DuckDB copies every value it is given.
type scan struct {
	cols []duckdb.ColumnInfo
	mu   sync.Mutex // DuckDB calls FillChunk from its worker threads, one at a time
	rows []shardflow.Row
	pos  int
}

func (s *scan) ColumnInfos() []duckdb.ColumnInfo { return s.cols }

func (s *scan) Cardinality() *duckdb.CardinalityInfo {
	return &duckdb.CardinalityInfo{Cardinality: uint(len(s.rows)), Exact: true}
}

func (s *scan) Init() {}

func (s *scan) FillChunk(chunk duckdb.DataChunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(s.rows)-s.pos, duckdb.GetDataChunkCapacity())
	rows := s.rows[s.pos : s.pos+n]
	s.pos += n
	for c := range s.cols {
		// DuckDB pushes the projection down: columns the statement does
		// not read have no vector, and are skipped.
		if _, err := chunk.GetVector(c); err != nil {
			continue
		}
		for i, r := range rows {
			if err := duckdb.SetChunkValue(chunk, c, i, r[c]); err != nil {
				return err
			}
		}
	}
	return chunk.SetSize(n)
}
