package batchsql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Error is an error in the SQL statement or an Init statement, found when
// the transform is built or prepared (before anything is read), with its
// position in the user's text when one is known.
type Error struct {
	// Msg is DuckDB's message (without its own excerpt) or shardflow's.
	Msg string
	// SQL is the statement the error is about; Pos is a byte offset in it,
	// or -1 when the error has no position.
	SQL string
	Pos int
	// Init is the 1-based index of the Init statement, or 0 for SQL.
	Init int
}

// Line and Column return the 1-based position of the error (0, 0 when
// there is none). Columns count bytes.
func (e *Error) Line() (line, col int) {
	if e.Pos < 0 || e.Pos > len(e.SQL) {
		return 0, 0
	}
	before := e.SQL[:e.Pos]
	line = strings.Count(before, "\n") + 1
	col = e.Pos - (strings.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func (e *Error) Error() string {
	what := "sql"
	if e.Init > 0 {
		what = fmt.Sprintf("sql init statement %d", e.Init)
	}
	line, col := e.Line()
	if line == 0 {
		return what + ": " + e.Msg
	}
	text := strings.Split(e.SQL, "\n")[line-1]
	return fmt.Sprintf("%s: %s (line %d, column %d)\n  %s\n  %s^", what, e.Msg, line, col, text, strings.Repeat(" ", col-1))
}

// RowError is a batch that failed at run time on one row (strict mode, or
// a function that fails on bad input), naming the row.
type RowError struct {
	ShardID        string
	SequenceNumber string
	Err            error
}

func (e *RowError) Error() string {
	return fmt.Sprintf("sql failed on the record at shard %s sequence number %s: %v", e.ShardID, e.SequenceNumber, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// duckPos finds the position DuckDB reports in an error message ("LINE 2:
// <excerpt>\n<spaces>^") and returns the message without the excerpt and
// the byte offset in sql, or -1.
var lineRE = regexp.MustCompile(`(?m)^LINE (\d+): (.*)\n( *)\^`)

func duckPos(msg, sql string) (string, int) {
	m := lineRE.FindStringSubmatchIndex(msg)
	if m == nil {
		return strings.TrimSpace(msg), -1
	}
	clean := strings.TrimSpace(msg[:m[0]])
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	excerpt := msg[m[4]:m[5]]
	caret := m[7] - m[6] - len("LINE : ") - (m[3] - m[2]) // caret column within the excerpt
	lines := strings.Split(sql, "\n")
	if line < 1 || line > len(lines) || caret < 0 {
		return clean, -1
	}
	start := 0
	for _, l := range lines[:line-1] {
		start += len(l) + 1
	}
	text := lines[line-1]
	// DuckDB may show a window of a long line, with "..." around it.
	off := 0
	if strings.HasPrefix(excerpt, "...") {
		ex := strings.TrimSuffix(strings.TrimPrefix(excerpt, "..."), "...")
		if i := strings.Index(text, ex); i >= 0 {
			off = i - 3
		}
	}
	p := min(start+off+caret, start+len(text))
	return clean, max(p, 0)
}
