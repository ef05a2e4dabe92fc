package batchsql

import (
	"fmt"
	"strings"
)

// The rewriter turns the Spark SQL forms of docs/sql.md into DuckDB SQL
// before DuckDB sees the statement. It works on tokens, so string
// literals, quoted identifiers and comments are never touched, and it keeps
// a map from positions in its output back to positions in the user's text,
// so DuckDB's error positions are reported against what the user wrote.

type tokKind int

const (
	tkSpace  tokKind = iota // whitespace and comments
	tkIdent                 // identifiers and keywords
	tkQuoted                // "quoted" or `backquoted` identifier
	tkString                // 'string literal'
	tkNumber
	tkPunct
)

type token struct {
	kind       tokKind
	start, end int // byte offsets in the source text
}

// tokenize splits src into tokens. It never fails: an unterminated string
// or comment runs to the end of the text, and DuckDB reports it.
func tokenize(src string) []token {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		start := i
		kind := tkPunct
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			for i < len(src) && strings.IndexByte(" \t\n\r\f", src[i]) >= 0 {
				i++
			}
			kind = tkSpace
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			if j := strings.IndexByte(src[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(src)
			}
			kind = tkSpace
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			if j := strings.Index(src[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(src)
			}
			kind = tkSpace
		case c == '\'' || c == '"' || c == '`':
			i = endQuoted(src, i)
			kind = tkQuoted
			if c == '\'' {
				kind = tkString
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			for i < len(src) && (isIdentByte(src[i]) || src[i] == '.') {
				i++
			}
			kind = tkNumber
		case isIdentByte(c):
			for i < len(src) && isIdentByte(src[i]) {
				i++
			}
			kind = tkIdent
		case c == ':' && i+1 < len(src) && src[i+1] == ':':
			i += 2
		default:
			i++
		}
		toks = append(toks, token{kind: kind, start: start, end: i})
	}
	return toks
}

// endQuoted returns the offset after the quoted text starting at i; a
// doubled quote character escapes it.
func endQuoted(src string, i int) int {
	q := src[i]
	for j := i + 1; j < len(src); j++ {
		if src[j] == q {
			if j+1 < len(src) && src[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(src)
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// segment maps output text back to the user's text: out[outStart:outStart+n]
// was copied from src[inStart:], or generated for the construct at inStart
// when n is 0.
type segment struct{ outStart, inStart, n int }

// rewritten is the result of rewriting a statement.
type rewritten struct {
	sql      string
	segs     []segment
	usesTime bool // current_timestamp and friends: the batch time is needed
}

// origPos maps an offset in the rewritten text to an offset in the user's.
func (r *rewritten) origPos(p int) int {
	in := 0
	for _, s := range r.segs {
		if s.outStart > p {
			break
		}
		in = s.inStart
		if p-s.outStart < s.n {
			in += p - s.outStart
		}
	}
	return in
}

type rewriter struct {
	src      string
	toks     []token
	out      strings.Builder
	segs     []segment
	usesTime bool
}

// rewriteSpark rewrites the Spark forms of one statement. A trailing
// semicolon is dropped; a second statement is an error.
func rewriteSpark(src string) (*rewritten, error) {
	toks := tokenize(src)
	// Drop trailing spaces and semicolons; refuse more than one statement.
	end := len(toks)
	for end > 0 && (toks[end-1].kind == tkSpace || toks[end-1].kind == tkPunct && src[toks[end-1].start] == ';') {
		end--
	}
	toks = toks[:end]
	for _, t := range toks {
		if t.kind == tkPunct && src[t.start] == ';' {
			return nil, &Error{Msg: "only one statement is allowed (found ';' followed by more text)", Pos: t.start, SQL: src}
		}
	}
	if len(toks) == 0 {
		return nil, &Error{Msg: "the SQL statement is empty", Pos: -1}
	}
	rw := &rewriter{src: src, toks: toks}
	if err := rw.emitRange(0, len(toks)); err != nil {
		return nil, err
	}
	return &rewritten{sql: rw.out.String(), segs: rw.segs, usesTime: rw.usesTime}, nil
}

func (rw *rewriter) text(t token) string { return rw.src[t.start:t.end] }

func (rw *rewriter) isPunct(i int, p string) bool {
	return i >= 0 && i < len(rw.toks) && rw.toks[i].kind == tkPunct && rw.text(rw.toks[i]) == p
}

func (rw *rewriter) isIdent(i int, name string) bool {
	return i >= 0 && i < len(rw.toks) && rw.toks[i].kind == tkIdent && strings.EqualFold(rw.text(rw.toks[i]), name)
}

// next returns the index of the first non-space token at or after i.
func (rw *rewriter) next(i int) int {
	for i < len(rw.toks) && rw.toks[i].kind == tkSpace {
		i++
	}
	return i
}

// prev returns the index of the last non-space token before i, or -1.
func (rw *rewriter) prev(i int) int {
	for i--; i >= 0 && rw.toks[i].kind == tkSpace; i-- {
	}
	return i
}

// closing returns the index of the ')' matching the '(' at open.
func (rw *rewriter) closing(open int) (int, error) {
	depth := 0
	for i := open; i < len(rw.toks); i++ {
		if rw.toks[i].kind != tkPunct {
			continue
		}
		switch rw.text(rw.toks[i]) {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, &Error{Msg: "unbalanced parenthesis", Pos: rw.toks[open].start, SQL: rw.src}
}

// args splits the tokens between '(' at open and ')' at cl at top-level
// commas into [start, end) index ranges.
func (rw *rewriter) args(open, cl int) [][2]int {
	var out [][2]int
	depth, start := 0, open+1
	for i := open + 1; i < cl; i++ {
		if rw.toks[i].kind != tkPunct {
			continue
		}
		switch rw.text(rw.toks[i]) {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		case ",":
			if depth == 0 {
				out = append(out, [2]int{start, i})
				start = i + 1
			}
		}
	}
	if rw.next(start) < cl || len(out) > 0 {
		out = append(out, [2]int{start, cl})
	}
	return out
}

// literal returns the value of the range if it holds one string literal.
func (rw *rewriter) literal(r [2]int) (string, int, bool) {
	i := rw.next(r[0])
	if i >= r[1] || rw.toks[i].kind != tkString || rw.next(i+1) < r[1] {
		return "", 0, false
	}
	s := rw.text(rw.toks[i])
	return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), rw.toks[i].start, true
}

// gen writes generated text standing for the construct at src offset at.
func (rw *rewriter) gen(at int, s string) {
	rw.segs = append(rw.segs, segment{outStart: rw.out.Len(), inStart: at})
	rw.out.WriteString(s)
}

func (rw *rewriter) copyTok(t token) {
	rw.segs = append(rw.segs, segment{outStart: rw.out.Len(), inStart: t.start, n: t.end - t.start})
	rw.out.WriteString(rw.src[t.start:t.end])
}

// emitRange writes tokens [lo, hi) with the Spark forms rewritten.
func (rw *rewriter) emitRange(lo, hi int) error {
	for i := lo; i < hi; i++ {
		t := rw.toks[i]
		if t.kind == tkQuoted && rw.src[t.start] == '`' {
			// Spark's `identifier` is DuckDB's "identifier".
			body := rw.src[t.start+1 : max(t.start+1, t.end-1)]
			body = strings.ReplaceAll(strings.ReplaceAll(body, "``", "`"), `"`, `""`)
			rw.gen(t.start, `"`+body+`"`)
			continue
		}
		if t.kind != tkIdent || rw.isPunct(rw.prev(i), ".") {
			rw.copyTok(t)
			continue
		}
		name := strings.ToLower(rw.text(t))
		open := rw.next(i + 1)
		call := rw.isPunct(open, "(") && open < hi
		var (
			n   int
			err error
		)
		switch {
		case call && (name == "cast" || name == "try_cast"):
			n, err = rw.cast(i, open)
		case call && name == "from_json":
			n, err = rw.fromJSON(i, open)
		case call && name == "date_format":
			n, err = rw.dateFormat(i, open)
		case name == "current_timestamp" || name == "now" && call || name == "current_date":
			n, err = rw.currentTime(i, open, name)
		default:
			rw.copyTok(t)
			continue
		}
		if err != nil {
			return err
		}
		i = n
	}
	return nil
}

// cast rewrites CAST(x AS STRING) to __sf_string(x): the UTF-8 text of a
// BLOB (DuckDB's own cast escapes its bytes), a VARCHAR cast otherwise.
// Other casts are copied. It returns the index of the last token consumed.
func (rw *rewriter) cast(i, open int) (int, error) {
	cl, err := rw.closing(open)
	if err != nil {
		return 0, err
	}
	// Find the last top-level AS.
	depth, as := 0, -1
	for j := open + 1; j < cl; j++ {
		switch {
		case rw.isPunct(j, "("):
			depth++
		case rw.isPunct(j, ")"):
			depth--
		case depth == 0 && rw.isIdent(j, "as"):
			as = j
		}
	}
	if as < 0 {
		rw.copyTok(rw.toks[i])
		return i, nil
	}
	typ := rw.next(as + 1)
	if !rw.isIdent(typ, "string") || rw.next(typ+1) != cl {
		rw.copyTok(rw.toks[i])
		return i, nil
	}
	rw.gen(rw.toks[i].start, "__sf_string(")
	if err := rw.emitRange(open+1, as); err != nil {
		return 0, err
	}
	rw.gen(rw.toks[cl].start, ")")
	return cl, nil
}

// fromJSON rewrites from_json(text, 'spark ddl') to __sf_from_json(text,
// '<json_transform structure>').
func (rw *rewriter) fromJSON(i, open int) (int, error) {
	cl, err := rw.closing(open)
	if err != nil {
		return 0, err
	}
	args := rw.args(open, cl)
	if len(args) != 2 {
		return 0, &Error{Msg: fmt.Sprintf("from_json takes 2 arguments here (the JSON text and a schema string such as 'id BIGINT, data STRING'); got %d (options are not supported)", len(args)), Pos: rw.toks[i].start, SQL: rw.src}
	}
	ddl, at, ok := rw.literal(args[1])
	if !ok {
		return 0, &Error{Msg: "from_json: the schema must be a string literal such as 'id BIGINT, data STRING, date TIMESTAMP'", Pos: rw.toks[rw.next(args[1][0])].start, SQL: rw.src}
	}
	spec, err := sparkDDLToJSONStructure(ddl)
	if err != nil {
		return 0, &Error{Msg: "from_json schema: " + err.Error(), Pos: at, SQL: rw.src}
	}
	rw.gen(rw.toks[i].start, "__sf_from_json(__sf_string(")
	if err := rw.emitRange(args[0][0], args[0][1]); err != nil {
		return 0, err
	}
	rw.gen(at, "), "+sqlString(spec)+")")
	return cl, nil
}

// dateFormat rewrites date_format(ts, 'java pattern') to strftime.
func (rw *rewriter) dateFormat(i, open int) (int, error) {
	cl, err := rw.closing(open)
	if err != nil {
		return 0, err
	}
	args := rw.args(open, cl)
	if len(args) != 2 {
		return 0, &Error{Msg: fmt.Sprintf("date_format takes 2 arguments (a timestamp and a pattern such as 'yyyy-MM-dd HH:mm:ss'); got %d", len(args)), Pos: rw.toks[i].start, SQL: rw.src}
	}
	pat, at, ok := rw.literal(args[1])
	if !ok {
		return 0, &Error{Msg: "date_format: the pattern must be a string literal such as 'yyyy-MM-dd HH:mm:ss'", Pos: rw.toks[rw.next(args[1][0])].start, SQL: rw.src}
	}
	f, err := javaToStrftime(pat)
	if err != nil {
		return 0, &Error{Msg: "date_format: " + err.Error(), Pos: at, SQL: rw.src}
	}
	rw.gen(rw.toks[i].start, "strftime(CAST(")
	if err := rw.emitRange(args[0][0], args[0][1]); err != nil {
		return 0, err
	}
	rw.gen(at, " AS TIMESTAMP), "+sqlString(f)+")")
	return cl, nil
}

// currentTime rewrites current_timestamp, current_timestamp(), now() and
// current_date to the batch's timestamp, so a replayed batch gives the same
// result.
func (rw *rewriter) currentTime(i, open int, name string) (int, error) {
	end := i
	if rw.isPunct(open, "(") {
		cl := rw.next(open + 1)
		if !rw.isPunct(cl, ")") {
			return 0, &Error{Msg: name + " takes no arguments", Pos: rw.toks[i].start, SQL: rw.src}
		}
		end = cl
	}
	rw.usesTime = true
	expr := "getvariable('" + batchTimeVar + "')"
	if name == "current_date" {
		expr = "CAST(" + expr + " AS DATE)"
	}
	rw.gen(rw.toks[i].start, expr)
	return end, nil
}

// sqlIdent quotes s as a SQL identifier.
func sqlIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
