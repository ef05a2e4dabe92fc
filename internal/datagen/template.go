package datagen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"
)

// Template is a compiled record template. It is immutable after Parse and
// safe for concurrent use by goroutines that each pass their own
// *rand.Rand to Execute.
type Template struct {
	src   string
	parts []part
	// size is the length of the literal text: a lower bound of a record's
	// size, used to grow buffers once.
	size int
}

// part is literal text or a placeholder's generator.
type part struct {
	lit string
	gen generator // nil for literal text
}

// generator appends one rendered value. All randomness comes from r, so a
// seeded r makes the output reproducible; now is the record's time.
type generator func(dst []byte, r *rand.Rand, now time.Time) []byte

// ParseError is a template that does not compile. Line and Column (both
// from 1; the column counts characters) locate the "{{" of the placeholder
// at fault.
type ParseError struct {
	Line, Column int
	// Helper is the helper's name as written, or "" when the placeholder
	// has no valid name.
	Helper string
	// Msg says what is wrong.
	Msg string
	// Accepted lists the forms the helper accepts, or is empty.
	Accepted string
}

// Error implements error, e.g.
//
//	datagen: template line 2, column 14: random.number: min 10 is greater than max 1 (accepted: random.number, random.number(max), random.number({"min":0,"max":99999,"precision":1}))
func (e *ParseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "datagen: template line %d, column %d: ", e.Line, e.Column)
	if e.Helper != "" {
		b.WriteString(e.Helper)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Accepted != "" {
		b.WriteString(" (accepted: ")
		b.WriteString(e.Accepted)
		b.WriteString(")")
	}
	return b.String()
}

// Parse compiles a record template in the Amazon Kinesis Data Generator's
// syntax: literal text with {{helper.name}} and {{helper.name(args)}}
// placeholders, where args are JSON values separated by commas, e.g.
//
//	{"id": {{random.number({"min":1,"max":10})}}, "at": "{{date.now("YYYY-MM-DD")}}"}
//
// Whitespace (line breaks too) is allowed around the name and inside the
// parentheses. A leading "faker." is ignored. {{"text"}} writes a JSON
// string literally, the way to write "{{" itself: {{"{{"}}. In a run of
// three or more braces the placeholder starts at the last two, so
// {"a":{{{random.uuid}}}} is the object {"a":{...}} around a placeholder.
//
// Every helper and argument is checked here: an unknown helper, a
// malformed argument, a wrong type, min > max, an empty array and the
// like fail with a *ParseError naming the position, the helper and what
// it accepts. docs/produce.md lists the helpers.
func Parse(template string) (*Template, error) {
	p := parser{src: template}
	return p.parse()
}

// MustParse is Parse for templates known to be valid, such as constants;
// it panics on an error.
func MustParse(template string) *Template {
	t, err := Parse(template)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template's source text.
func (t *Template) String() string { return t.src }

// Execute appends one rendered record to dst and returns the extended
// slice. Every random choice comes from r (a seeded r gives the same
// records every run); now is the time date.now and friends render.
func (t *Template) Execute(dst []byte, r *rand.Rand, now time.Time) []byte {
	if cap(dst)-len(dst) < t.size {
		dst = append(make([]byte, 0, len(dst)+t.size+64), dst...)
	}
	for i := range t.parts {
		p := &t.parts[i]
		if p.gen == nil {
			dst = append(dst, p.lit...)
		} else {
			dst = p.gen(dst, r, now)
		}
	}
	return dst
}

// OneLine returns a copy of t whose literal text has its line breaks
// removed and its two ends trimmed of white space. The Kinesis Data
// Generator does this to every template before rendering it, so a
// template written across lines produces one-line records.
func (t *Template) OneLine() *Template {
	out := &Template{src: t.src}
	for i, p := range t.parts {
		if p.gen == nil {
			p.lit = strings.NewReplacer("\r", "", "\n", "").Replace(p.lit)
			if i == 0 {
				p.lit = strings.TrimLeft(p.lit, " \t")
			}
			if i == len(t.parts)-1 {
				p.lit = strings.TrimRight(p.lit, " \t")
			}
			if p.lit == "" {
				continue
			}
			out.size += len(p.lit)
		}
		out.parts = append(out.parts, p)
	}
	return out
}

type parser struct {
	src   string
	parts []part
}

func (p *parser) errAt(off int, helper, accepted, format string, args ...any) *ParseError {
	line, col := 1, 1
	for _, c := range p.src[:min(off, len(p.src))] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &ParseError{Line: line, Column: col, Helper: helper, Msg: fmt.Sprintf(format, args...), Accepted: accepted}
}

func (p *parser) literal(s string) {
	if s == "" {
		return
	}
	if n := len(p.parts); n > 0 && p.parts[n-1].gen == nil {
		p.parts[n-1].lit += s
		return
	}
	p.parts = append(p.parts, part{lit: s})
}

func (p *parser) parse() (*Template, error) {
	s := p.src
	litStart, i := 0, 0
	for {
		j := strings.Index(s[i:], "{{")
		if j < 0 {
			break
		}
		open := i + j
		// In "{{{", the placeholder is the last "{{".
		for open+2 < len(s) && s[open+2] == '{' {
			open++
		}
		gen, end, err := p.placeholder(open)
		if err != nil {
			return nil, err
		}
		p.literal(s[litStart:open])
		p.parts = append(p.parts, part{gen: gen})
		i, litStart = end, end
	}
	p.literal(s[litStart:])
	t := &Template{src: s, parts: p.parts}
	for _, pt := range t.parts {
		t.size += len(pt.lit)
	}
	return t, nil
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// placeholder compiles the placeholder whose "{{" is at open and returns
// its generator and the offset after its "}}".
func (p *parser) placeholder(open int) (generator, int, error) {
	s := p.src
	i := skipSpace(s, open+2)
	if i < len(s) && s[i] == '"' {
		return p.stringLiteral(open, i)
	}
	start := i
	for i < len(s) {
		if !isIdentStart(s[i]) {
			break
		}
		for i < len(s) && isIdent(s[i]) {
			i++
		}
		if i+1 < len(s) && s[i] == '.' && isIdentStart(s[i+1]) {
			i++
			continue
		}
		break
	}
	name := s[start:i]
	if name == "" {
		return nil, 0, p.errAt(open, "", "", "%s: expected a helper name such as random.number after {{ (write a literal {{ as {{\"{{\"}})", quoteSnippet(s[open:]))
	}
	i = skipSpace(s, i)
	var argText string
	hasArgs := false
	if i < len(s) && s[i] == '(' {
		end, ok := matchParen(s, i)
		if !ok {
			return nil, 0, p.errAt(open, name, "", "unclosed ( : the arguments must end with ) before }}")
		}
		argText = s[i+1 : end]
		hasArgs = true
		i = skipSpace(s, end+1)
	}
	if !strings.HasPrefix(s[i:], "}}") {
		if i < len(s) && s[i] == '.' {
			return nil, 0, p.errAt(open, name, "", "%s: a helper name is words joined by dots, such as name.firstName", quoteSnippet(s[start:]))
		}
		return nil, 0, p.errAt(open, name, "", "expected }} after %s, found %s", strings.TrimSpace(s[start:i]), quoteSnippet(s[i:]))
	}
	end := i + 2

	lookup := strings.TrimPrefix(name, "faker.")
	h, ok := helpers[lookup]
	if !ok {
		if why, ok := unsupported[lookup]; ok {
			return nil, 0, p.errAt(open, name, "", "not supported: %s", why)
		}
		msg := "unknown helper"
		if sug := suggest(lookup); sug != "" {
			msg += fmt.Sprintf("; did you mean %s?", sug)
		}
		return nil, 0, p.errAt(open, name, "", "%s (docs/produce.md lists the supported helpers)", msg)
	}
	var args []any
	if hasArgs && strings.TrimSpace(argText) != "" {
		var err error
		args, err = parseArgs(argText)
		if err != nil {
			return nil, 0, p.errAt(open, name, h.usage, "arguments are not valid JSON (strings need double quotes, arrays [...], objects {\"key\":value}): %v", err)
		}
	}
	gen, err := h.compile(args)
	if err != nil {
		return nil, 0, p.errAt(open, name, h.usage, "%v", err)
	}
	return gen, end, nil
}

// stringLiteral compiles {{"text"}}, a JSON string written as is.
func (p *parser) stringLiteral(open, i int) (generator, int, error) {
	s := p.src
	end, ok := scanString(s, i)
	if !ok {
		return nil, 0, p.errAt(open, "", "", "unterminated string literal in {{\"...\"}}")
	}
	var text string
	if err := json.Unmarshal([]byte(s[i:end]), &text); err != nil {
		return nil, 0, p.errAt(open, "", "", "bad string literal %s: %v", s[i:end], err)
	}
	j := skipSpace(s, end)
	if !strings.HasPrefix(s[j:], "}}") {
		return nil, 0, p.errAt(open, "", "", "expected }} after the string literal %s", s[i:end])
	}
	return constant(text), j + 2, nil
}

// scanString returns the offset after the JSON string starting at s[i].
func scanString(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// matchParen returns the offset of the ")" closing the "(" at s[i],
// skipping JSON strings and nested brackets.
func matchParen(s string, i int) (int, bool) {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"':
			end, ok := scanString(s, j)
			if !ok {
				return 0, false
			}
			j = end - 1
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				return j, s[j] == ')'
			}
			if depth < 0 {
				return 0, false
			}
		}
	}
	return 0, false
}

// parseArgs decodes comma-separated JSON values. Numbers stay json.Number,
// so integers keep their exact text.
func parseArgs(text string) ([]any, error) {
	d := json.NewDecoder(strings.NewReader("[" + text + "]"))
	d.UseNumber()
	var args []any
	if err := d.Decode(&args); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("unexpected text after the arguments")
	}
	return args, nil
}

func quoteSnippet(s string) string {
	const max = 24
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "..."
	}
	return fmt.Sprintf("%q", s)
}

// render is how a JSON argument value appears in a record: strings as they
// are, numbers as written, true/false/null, arrays joined with commas (as
// JavaScript prints them) and objects as compact JSON.
func render(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	case nil:
		return "null"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			if e != nil {
				parts[i] = render(e)
			}
		}
		return strings.Join(parts, ",")
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v) // maps of decoded JSON always encode
		return strings.TrimSuffix(b.String(), "\n")
	}
}
