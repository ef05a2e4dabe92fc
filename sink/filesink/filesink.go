// Package filesink is a sink that writes each batch to one file in a
// directory, exactly once.
//
// Batch N goes to part-<N as 20 digits>.<format>, for example
// part-00000000000000000042.json. The file is written to a temporary file
// (named ".part-...tmp", which Spark, Hadoop and glob patterns such as
// "*.json" skip), fsynced, renamed into place, and the directory fsynced.
// A batch replayed after a crash therefore replaces its file, whole: the
// directory never holds a partial file, nor the same rows twice.
//
// An empty batch writes no file.
//
// Formats:
//
//   - json: JSON Lines, one object per row, keys in schema order. Binary
//     values are standard base64 strings, timestamps RFC 3339 strings in UTC
//     with nanoseconds (time.RFC3339Nano), nulls null. The doubles NaN and
//     ±Inf, which JSON cannot represent, are the strings "NaN", "Infinity"
//     and "-Infinity", as Spark writes them.
//   - csv: a header row of column names, then one record per row
//     (encoding/csv quoting). Binary values are base64, timestamps
//     RFC 3339 in UTC, doubles as in Go (NaN, Infinity), and nulls empty
//     fields, which an empty string also is.
package filesink

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shardflow/shardflow"
)

// formats lists the accepted values of Config.Format.
var formats = []string{"json", "csv"}

// Config configures a file sink.
type Config struct {
	// Path is the directory the files go to (Spark option "path"). It is
	// created if absent. Required.
	Path string
	// Format is "json" (JSON Lines, the default when empty) or "csv",
	// in any case.
	Format string
}

// Sink writes each batch to its own file. It is safe for concurrent use.
type Sink struct {
	dir    string
	format string

	mu sync.Mutex // one batch at a time: a replay reuses the temporary name
}

var _ shardflow.Sink = (*Sink)(nil)

// New returns a sink writing to cfg.Path, which it creates if absent. It
// returns an error for an empty Path or an unknown Format.
func New(cfg Config) (*Sink, error) {
	if cfg.Path == "" {
		return nil, errors.New("filesink: Path is required")
	}
	format := strings.ToLower(cfg.Format)
	switch format {
	case "":
		format = "json"
	case "json", "csv":
	default:
		return nil, fmt.Errorf("filesink: unknown format %q (want %s)", cfg.Format, strings.Join(formats, " or "))
	}
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("filesink: %w", err)
	}
	return &Sink{dir: cfg.Path, format: format}, nil
}

// FileName returns the name of the file that batch id is written to, in
// Config.Path.
func (s *Sink) FileName(id int64) string {
	return fmt.Sprintf("part-%020d.%s", id, s.format)
}

// AddBatch writes b to its file, replacing the file of an earlier attempt
// at the same batch. It writes nothing for an empty batch. A row whose
// length differs from the schema, or a value whose Go type is not its
// column's, fails the batch with an error naming the row and column.
func (s *Sink) AddBatch(ctx context.Context, b *shardflow.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.ID < 0 {
		return fmt.Errorf("filesink: negative batch id %d", b.ID)
	}
	if len(b.Rows) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := s.FileName(b.ID)
	if err := s.write(ctx, name, b); err != nil {
		return fmt.Errorf("filesink: batch %d: %w", b.ID, err)
	}
	return nil
}

// write writes the batch to a temporary file and renames it to name. The
// temporary name is fixed per batch, so a replay overwrites what a crash
// left of it.
func (s *Sink) write(ctx context.Context, name string, b *shardflow.Batch) (err error) {
	tmp := filepath.Join(s.dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	if s.format == "csv" {
		err = writeCSV(ctx, w, b)
	} else {
		err = writeJSON(ctx, w, b)
	}
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// syncDir makes the rename durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkRows is how often (in rows) a long write checks ctx.
const checkRows = 4096

func writeJSON(ctx context.Context, w *bufio.Writer, b *shardflow.Batch) error {
	keys := make([][]byte, len(b.Schema))
	for i, c := range b.Schema {
		keys[i] = appendJSONString(nil, c.Name)
	}
	var line []byte
	for r, row := range b.Rows {
		if r%checkRows == checkRows-1 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := checkRow(b.Schema, r, row); err != nil {
			return err
		}
		line = append(line[:0], '{')
		for i, v := range row {
			if i > 0 {
				line = append(line, ',')
			}
			line = append(line, keys[i]...)
			line = append(line, ':')
			line = appendJSONValue(line, v)
		}
		line = append(line, '}', '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

func appendJSONValue(buf []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(buf, "null"...)
	case []byte:
		buf = append(buf, '"')
		buf = base64.StdEncoding.AppendEncode(buf, v)
		return append(buf, '"')
	case string:
		return appendJSONString(buf, v)
	case int64:
		return strconv.AppendInt(buf, v, 10)
	case float64:
		if s, ok := nonFinite(v); ok {
			return appendJSONString(buf, s)
		}
		f, _ := json.Marshal(v) // finite: cannot fail
		return append(buf, f...)
	case bool:
		return strconv.AppendBool(buf, v)
	case time.Time:
		buf = append(buf, '"')
		buf = v.UTC().AppendFormat(buf, time.RFC3339Nano)
		return append(buf, '"')
	}
	panic(fmt.Sprintf("filesink: unchecked type %T", v)) // checkRow rejects it first
}

// appendJSONString appends s as a JSON string. Unlike encoding/json it
// leaves <, > and & alone; invalid UTF-8 becomes U+FFFD, as there.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = append(buf, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but not JavaScript
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}

func writeCSV(ctx context.Context, w io.Writer, b *shardflow.Batch) error {
	cw := csv.NewWriter(w)
	record := make([]string, len(b.Schema))
	for i, c := range b.Schema {
		record[i] = c.Name
	}
	if err := cw.Write(record); err != nil {
		return err
	}
	for r, row := range b.Rows {
		if r%checkRows == checkRows-1 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := checkRow(b.Schema, r, row); err != nil {
			return err
		}
		for i, v := range row {
			record[i] = csvField(v)
		}
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvField(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if s, ok := nonFinite(v); ok {
			return s
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	panic(fmt.Sprintf("filesink: unchecked type %T", v)) // checkRow rejects it first
}

// nonFinite returns Spark's spelling of NaN and the infinities.
func nonFinite(f float64) (string, bool) {
	switch {
	case math.IsNaN(f):
		return "NaN", true
	case math.IsInf(f, 1):
		return "Infinity", true
	case math.IsInf(f, -1):
		return "-Infinity", true
	}
	return "", false
}

// checkRow reports a row that does not fit the schema.
func checkRow(schema shardflow.Schema, r int, row shardflow.Row) error {
	if len(row) != len(schema) {
		return fmt.Errorf("row %d has %d values for %d columns", r, len(row), len(schema))
	}
	for i, v := range row {
		if v == nil {
			continue
		}
		var ok bool
		switch schema[i].Type {
		case shardflow.TypeBytes:
			_, ok = v.([]byte)
		case shardflow.TypeString:
			_, ok = v.(string)
		case shardflow.TypeInt64:
			_, ok = v.(int64)
		case shardflow.TypeFloat64:
			_, ok = v.(float64)
		case shardflow.TypeBool:
			_, ok = v.(bool)
		case shardflow.TypeTimestamp:
			_, ok = v.(time.Time)
		default:
			return fmt.Errorf("column %q has unsupported type %v", schema[i].Name, schema[i].Type)
		}
		if !ok {
			return fmt.Errorf("row %d, column %q (%v): value of Go type %T", r, schema[i].Name, schema[i].Type, v)
		}
	}
	return nil
}
