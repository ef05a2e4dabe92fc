package batchsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
type Transform struct {
	cfg Config
	log *slog.Logger
	db  *sql.DB

	mu        sync.Mutex // guards the fields below and the use of conn
	conn      *sql.Conn  // one pinned connection: temp view, macros, Init tables
	closed    bool
	in        shardflow.Schema
	out       shardflow.Schema
	query     string // the wrapped, rewritten statement; "" until Prepare
	rw        *rewritten
	registerd bool
	feed      feed // the rows the source view returns
}

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
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sql: open duckdb: %w", err)
	}
	t := &Transform{cfg: cfg, log: log, db: db, conn: conn}
	str, fromJSON := macroString, macroFromJSON
	if cfg.Strict {
		str, fromJSON = macroStringStrict, macroFromJSONStrict
	}
	for _, s := range []string{"SET TimeZone = 'UTC'", str, fromJSON} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Close()
			return nil, fmt.Errorf("sql: set up duckdb (%s): %w", s, err)
		}
	}
	for i, s := range cfg.Init {
		if strings.TrimSpace(s) == "" {
			continue
		}
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Close()
			msg, pos := duckPos(err.Error(), s)
			return nil, &Error{Msg: msg, SQL: s, Pos: pos, Init: i + 1}
		}
	}
	return t, nil
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
	return errors.Join(t.conn.Close(), t.db.Close())
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
		if err := t.register(in); err != nil {
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
	rows, err := t.conn.QueryContext(ctx, "DESCRIBE\n"+rw.sql)
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
	t.log.Debug("sql prepared", "sql", t.query, "columns", len(out))
	return out, nil
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
		strings.HasSuffix(u, "]") || u == "JSON":
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
	if _, err := t.conn.ExecContext(ctx, "SET VARIABLE "+batchTimeVar+" = TIMESTAMP '"+lit+"'"); err != nil {
		return fmt.Errorf("sql: set batch time: %w", err)
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

// run executes the statement over rows.
func (t *Transform) run(ctx context.Context, in []shardflow.Row) ([]shardflow.Row, error) {
	t.feed.set(in)
	defer t.feed.set(nil)
	var out []shardflow.Row
	err := t.conn.Raw(func(dc any) error {
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

// register defines the table function behind the "source" view.
func (t *Transform) register(in shardflow.Schema) error {
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
			return &scan{cols: infos, rows: t.feed.get()}, nil
		},
	}
	if err := duckdb.RegisterTableUDF(t.conn, sourceFunc, fn); err != nil {
		return fmt.Errorf("sql: register source: %w", err)
	}
	cols := make([]string, len(in))
	for i, c := range in {
		cols[i] = sqlIdent(c.Name)
	}
	view := "CREATE OR REPLACE TEMP VIEW source AS SELECT " + strings.Join(cols, ", ") + " FROM " + sourceFunc + "()"
	if _, err := t.conn.ExecContext(context.Background(), view); err != nil {
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
