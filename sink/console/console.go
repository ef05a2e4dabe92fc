// Package console is a sink that prints every batch as a table, like
// Spark's console sink (format("console")) and Dataset.show:
//
//	-------------------------------------------
//	Batch: 3
//	-------------------------------------------
//	+------------+-------+
//	|partitionKey|   data|
//	+------------+-------+
//	|     user-17|[68 69]|
//	+------------+-------+
//
// It is meant for development: it prints at most Config.NumRows rows of a
// batch and keeps nothing.
package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shardflow/shardflow"
)

// DefaultNumRows is the number of rows printed per batch when
// Config.NumRows is 0, as in Spark.
const DefaultNumRows = 20

// truncateWidth is the length Spark cuts cells to when truncating.
const truncateWidth = 20

// timestampLayout is how timestamps are printed.
const timestampLayout = "2006-01-02 15:04:05.000"

// Config configures a console sink. The zero value prints like Spark's
// defaults: 20 rows, cells truncated to 20 characters, times in UTC.
type Config struct {
	// NumRows is the most rows printed per batch (Spark option
	// "numRows"); 0 means DefaultNumRows. When a batch has more, a footer
	// says "only showing top N rows".
	NumRows int
	// NoTruncate prints whole cells, left-aligned (Spark option
	// "truncate"=false). By default a cell longer than 20 characters is
	// cut to 17 and "...", and cells are right-aligned, as in Spark.
	NoTruncate bool
	// Location is the time zone timestamps are printed in; nil means UTC.
	Location *time.Location
}

// Sink prints batches to a writer. It is safe for concurrent use; each
// batch is written with a single Write call.
type Sink struct {
	w   io.Writer
	cfg Config

	mu sync.Mutex // serializes writes to w
}

var _ shardflow.Sink = (*Sink)(nil)

// New returns a sink that prints to w. It returns an error if NumRows is
// negative.
func New(w io.Writer, cfg Config) (*Sink, error) {
	if cfg.NumRows < 0 {
		return nil, fmt.Errorf("console: NumRows must be 0 (the default, %d) or more, got %d", DefaultNumRows, cfg.NumRows)
	}
	if cfg.NumRows == 0 {
		cfg.NumRows = DefaultNumRows
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	return &Sink{w: w, cfg: cfg}, nil
}

// AddBatch prints the batch header and the first NumRows rows of b. A
// replayed batch is printed again.
func (s *Sink) AddBatch(ctx context.Context, b *shardflow.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString("-------------------------------------------\n")
	fmt.Fprintf(&buf, "Batch: %d\n", b.ID)
	buf.WriteString("-------------------------------------------\n")
	s.writeTable(&buf, b)
	buf.WriteByte('\n') // Spark's show() ends with println
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("console: batch %d: %w", b.ID, err)
	}
	return nil
}

// writeTable writes b as Spark's Dataset.showString does.
func (s *Sink) writeTable(buf *bytes.Buffer, b *shardflow.Batch) {
	rows := b.Rows
	if len(rows) > s.cfg.NumRows {
		rows = rows[:s.cfg.NumRows]
	}
	cells := make([][]string, 0, 1+len(rows))
	header := make([]string, len(b.Schema))
	for i, c := range b.Schema {
		header[i] = escape(c.Name) // Spark does not truncate the header
	}
	cells = append(cells, header)
	for _, row := range rows {
		line := make([]string, len(b.Schema))
		for i := range line {
			var v any
			if i < len(row) {
				v = row[i]
			}
			line[i] = s.truncate(escape(s.format(v)))
		}
		cells = append(cells, line)
	}

	widths := make([]int, len(b.Schema))
	for i := range widths {
		widths[i] = 3 // Spark's minimum column width
	}
	for _, line := range cells {
		for i, c := range line {
			widths[i] = max(widths[i], width(c))
		}
	}
	// Spark joins with addString(start, sep, end), so a row of no columns
	// is "||".
	dashes := make([]string, len(widths))
	for i, w := range widths {
		dashes[i] = strings.Repeat("-", w)
	}
	sepLine := "+" + strings.Join(dashes, "+") + "+\n"
	sep := func() { buf.WriteString(sepLine) }
	writeLine := func(line []string) {
		padded := make([]string, len(line))
		for i, c := range line {
			pad := strings.Repeat(" ", widths[i]-width(c))
			if s.cfg.NoTruncate {
				padded[i] = c + pad
			} else {
				padded[i] = pad + c
			}
		}
		buf.WriteString("|" + strings.Join(padded, "|") + "|\n")
	}
	sep()
	writeLine(cells[0])
	sep()
	for _, line := range cells[1:] {
		writeLine(line)
	}
	sep()
	if len(b.Rows) > s.cfg.NumRows {
		unit := "rows"
		if s.cfg.NumRows == 1 {
			unit = "row"
		}
		fmt.Fprintf(buf, "only showing top %d %s\n", s.cfg.NumRows, unit)
	}
}

// format renders a value as Spark's show() does (Spark 3.5 and later print
// nulls as NULL; binary as hex bytes in brackets).
func (s *Sink) format(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		var sb strings.Builder
		sb.WriteByte('[')
		for i, c := range v {
			if i > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprintf(&sb, "%02X", c)
		}
		sb.WriteByte(']')
		return sb.String()
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return formatDouble(v)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.In(s.cfg.Location).Format(timestampLayout)
	}
	return fmt.Sprint(v)
}

// formatDouble formats f as Java's Double.toString, which Spark uses:
// "1.0", "0.001", "1.0E7", "1.2345E-5", "NaN", "Infinity".
func formatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a == 0 || a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'E', -1, 64), "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// truncate cuts a cell as Spark does: to 17 characters and "...".
func (s *Sink) truncate(c string) string {
	if s.cfg.NoTruncate || utf8.RuneCountInString(c) <= truncateWidth {
		return c
	}
	runes := []rune(c)
	return string(runes[:truncateWidth-3]) + "..."
}

// escape replaces control characters that would break the table, as
// Spark's SchemaUtils.escapeMetaCharacters does.
var escaper = strings.NewReplacer(
	"\n", `\n`, "\r", `\r`, "\t", `\t`, "\f", `\f`, "\b", `\b`, "\v", `\v`, "\a", `\a`,
)

func escape(s string) string { return escaper.Replace(s) }

// width is the number of terminal columns s takes, as Spark's
// Utils.stringHalfWidth counts them: full-width characters take two.
func width(s string) int {
	n := 0
	for _, r := range s {
		n++
		if fullWidth(r) {
			n++
		}
	}
	return n
}

// fullWidth reports whether r is in the ranges Spark counts as full-width
// (CJK, Hangul, full-width forms), plus characters outside the Basic
// Multilingual Plane, which Java counts as two.
func fullWidth(r rune) bool {
	switch {
	case r >= 0x1100 && r <= 0x115F,
		r >= 0x2E80 && r <= 0xA4CF,
		r >= 0xAC00 && r <= 0xD7A3,
		r >= 0xF900 && r <= 0xFAFF,
		r >= 0xFE10 && r <= 0xFE19,
		r >= 0xFE30 && r <= 0xFE6F,
		r >= 0xFF00 && r <= 0xFF60,
		r >= 0xFFE0 && r <= 0xFFE6,
		r > 0xFFFF:
		return true
	}
	return false
}
