package batchsql

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// sparkDDLToJSONStructure turns a Spark DDL schema string, as taken by
// Spark's from_json ('id BIGINT, data STRING, date TIMESTAMP', or
// 'struct<id:bigint,...>'), into the structure argument of DuckDB's
// json_transform ({"id":"BIGINT","data":"VARCHAR","date":"TIMESTAMP"}).
// Field order is kept.
func sparkDDLToJSONStructure(ddl string) (string, error) {
	p := &ddlParser{s: ddl}
	p.skip()
	var fields []ddlField
	var err error
	if p.peekWord("struct") && p.peekAfterWord('<') {
		p.word()
		p.skip()
		p.pos++ // '<'
		if fields, err = p.fields('>'); err != nil {
			return "", err
		}
		if !p.eat('>') {
			return "", p.errf("expected '>'")
		}
	} else if fields, err = p.fields(0); err != nil {
		return "", err
	}
	p.skip()
	if p.pos < len(p.s) {
		return "", p.errf("unexpected %q", p.s[p.pos:])
	}
	if len(fields) == 0 {
		return "", fmt.Errorf("the schema %q has no fields", ddl)
	}
	return structJSON(fields), nil
}

type ddlType struct {
	scalar string     // DuckDB type name, for scalars
	elem   *ddlType   // ARRAY<elem>
	value  *ddlType   // MAP<STRING, value>
	fields []ddlField // STRUCT<...>
}

type ddlField struct {
	name string
	typ  ddlType
}

// duck returns the DuckDB type of t.
func (t ddlType) duck() string {
	switch {
	case t.elem != nil:
		return t.elem.duck() + "[]"
	case t.value != nil:
		return "MAP(VARCHAR, " + t.value.duck() + ")"
	case t.fields != nil:
		parts := make([]string, len(t.fields))
		for i, f := range t.fields {
			parts[i] = sqlIdent(f.name) + " " + f.typ.duck()
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")"
	}
	return t.scalar
}

// structureJSON returns t as a json_transform structure: objects for
// structs, one-element arrays for arrays, type names otherwise.
func (t ddlType) structureJSON() string {
	switch {
	case t.elem != nil:
		return "[" + t.elem.structureJSON() + "]"
	case t.fields != nil:
		return structJSON(t.fields)
	}
	b, _ := json.Marshal(t.duck())
	return string(b)
}

func structJSON(fields []ddlField) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			sb.WriteByte(',')
		}
		k, _ := json.Marshal(f.name)
		sb.Write(k)
		sb.WriteByte(':')
		sb.WriteString(f.typ.structureJSON())
	}
	sb.WriteByte('}')
	return sb.String()
}

type ddlParser struct {
	s   string
	pos int
}

func (p *ddlParser) errf(format string, args ...any) error {
	return fmt.Errorf("at character %d of %q: %s", p.pos+1, p.s, fmt.Sprintf(format, args...))
}

func (p *ddlParser) skip() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *ddlParser) eat(c byte) bool {
	p.skip()
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *ddlParser) peekWord(w string) bool {
	p.skip()
	end := p.pos
	for end < len(p.s) && isIdentByte(p.s[end]) {
		end++
	}
	return strings.EqualFold(p.s[p.pos:end], w)
}

func (p *ddlParser) peekAfterWord(c byte) bool {
	save := p.pos
	p.word()
	ok := p.eat(c)
	p.pos = save
	return ok
}

// word reads an identifier or a `backquoted` name.
func (p *ddlParser) word() string {
	p.skip()
	if p.pos < len(p.s) && p.s[p.pos] == '`' {
		end := endQuoted(p.s, p.pos)
		w := p.s[p.pos+1 : max(p.pos+1, end-1)]
		p.pos = end
		return strings.ReplaceAll(w, "``", "`")
	}
	start := p.pos
	for p.pos < len(p.s) && isIdentByte(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// fields reads "name [:] TYPE [NOT NULL] [COMMENT '...'], ..." up to the
// closing byte (0: end of text).
func (p *ddlParser) fields(closing byte) ([]ddlField, error) {
	var out []ddlField
	seen := map[string]bool{}
	for {
		p.skip()
		if p.pos >= len(p.s) || closing != 0 && p.s[p.pos] == closing {
			return out, nil
		}
		name := p.word()
		if name == "" {
			return nil, p.errf("expected a field name")
		}
		if seen[strings.ToLower(name)] {
			return nil, p.errf("field %q appears twice", name)
		}
		seen[strings.ToLower(name)] = true
		p.eat(':')
		t, err := p.typ()
		if err != nil {
			return nil, err
		}
		if p.peekWord("not") {
			p.word()
			if w := p.word(); !strings.EqualFold(w, "null") {
				return nil, p.errf("expected NULL after NOT")
			}
		}
		if p.peekWord("comment") {
			p.word()
			p.skip()
			if p.pos >= len(p.s) || p.s[p.pos] != '\'' {
				return nil, p.errf("expected a string after COMMENT")
			}
			p.pos = endQuoted(p.s, p.pos)
		}
		out = append(out, ddlField{name: name, typ: t})
		if !p.eat(',') {
			return out, nil
		}
	}
}

// sparkScalar maps Spark SQL type names to DuckDB's.
var sparkScalar = map[string]string{
	"string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR",
	"bigint": "BIGINT", "long": "BIGINT",
	"int": "INTEGER", "integer": "INTEGER",
	"smallint": "SMALLINT", "short": "SMALLINT",
	"tinyint": "TINYINT", "byte": "TINYINT",
	"double": "DOUBLE", "float": "FLOAT", "real": "FLOAT",
	"boolean":   "BOOLEAN",
	"timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP", "timestamp_ltz": "TIMESTAMP",
	"date": "DATE",
}

func (p *ddlParser) typ() (ddlType, error) {
	w := strings.ToLower(p.word())
	switch w {
	case "":
		return ddlType{}, p.errf("expected a type")
	case "array":
		if !p.eat('<') {
			return ddlType{}, p.errf("expected '<' after ARRAY")
		}
		e, err := p.typ()
		if err != nil {
			return ddlType{}, err
		}
		if !p.eat('>') {
			return ddlType{}, p.errf("expected '>' closing ARRAY")
		}
		return ddlType{elem: &e}, nil
	case "map":
		if !p.eat('<') {
			return ddlType{}, p.errf("expected '<' after MAP")
		}
		k, err := p.typ()
		if err != nil {
			return ddlType{}, err
		}
		if k.scalar != "VARCHAR" {
			return ddlType{}, p.errf("MAP keys must be STRING in JSON")
		}
		if !p.eat(',') {
			return ddlType{}, p.errf("expected ',' in MAP<STRING, type>")
		}
		v, err := p.typ()
		if err != nil {
			return ddlType{}, err
		}
		if !p.eat('>') {
			return ddlType{}, p.errf("expected '>' closing MAP")
		}
		return ddlType{value: &v}, nil
	case "struct":
		if !p.eat('<') {
			return ddlType{}, p.errf("expected '<' after STRUCT")
		}
		fs, err := p.fields('>')
		if err != nil {
			return ddlType{}, err
		}
		if !p.eat('>') {
			return ddlType{}, p.errf("expected '>' closing STRUCT")
		}
		if fs == nil {
			fs = []ddlField{}
		}
		return ddlType{fields: fs}, nil
	case "decimal", "dec", "numeric":
		prec, scale := 10, 0
		if p.eat('(') {
			var err error
			if prec, err = p.int(); err != nil {
				return ddlType{}, err
			}
			if p.eat(',') {
				if scale, err = p.int(); err != nil {
					return ddlType{}, err
				}
			}
			if !p.eat(')') {
				return ddlType{}, p.errf("expected ')' closing DECIMAL")
			}
		}
		if prec < 1 || prec > 38 || scale < 0 || scale > prec {
			return ddlType{}, p.errf("DECIMAL(%d,%d) is out of range", prec, scale)
		}
		return ddlType{scalar: fmt.Sprintf("DECIMAL(%d,%d)", prec, scale)}, nil
	}
	d, ok := sparkScalar[w]
	if !ok {
		return ddlType{}, p.errf("type %q is not supported (supported: STRING, BIGINT, INT, SMALLINT, TINYINT, DOUBLE, FLOAT, BOOLEAN, TIMESTAMP, DATE, DECIMAL(p,s), ARRAY<t>, MAP<STRING,t>, STRUCT<...>)", w)
	}
	if (w == "varchar" || w == "char") && p.eat('(') {
		if _, err := p.int(); err != nil {
			return ddlType{}, err
		}
		if !p.eat(')') {
			return ddlType{}, p.errf("expected ')'")
		}
	}
	return ddlType{scalar: d}, nil
}

func (p *ddlParser) int() (int, error) {
	p.skip()
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.Atoi(p.s[start:p.pos])
	if err != nil {
		return 0, p.errf("expected a number")
	}
	return n, nil
}
