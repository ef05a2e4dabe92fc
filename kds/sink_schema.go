package kds

import (
	"fmt"
	"strings"

	"github.com/shardflow/shardflow/internal/engine"
)

// CheckSchema reports, when the query starts, whether batches of schema s
// can be written: partitionKey and data are required (string or binary),
// explicitHashKey is optional (string). The error lists the columns the
// query produces, so a SQL statement can be fixed before anything is read.
func (s *Sink) CheckSchema(schema engine.Schema) error {
	var problems []string
	for _, c := range []struct {
		name     string
		required bool
		types    []engine.ColumnType
	}{
		{"partitionKey", true, []engine.ColumnType{engine.TypeString, engine.TypeBytes}},
		{"data", true, []engine.ColumnType{engine.TypeString, engine.TypeBytes}},
		{"explicitHashKey", false, []engine.ColumnType{engine.TypeString}},
	} {
		i := schema.Index(c.name)
		switch {
		case i < 0 && c.required:
			problems = append(problems, fmt.Sprintf("required column %q is missing", c.name))
		case i >= 0 && !hasType(c.types, schema[i].Type):
			problems = append(problems, fmt.Sprintf("column %q is %s; it must be %s", c.name, schema[i].Type, typeNames(c.types)))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	cols := make([]string, len(schema))
	for i, c := range schema {
		cols[i] = c.Name + " " + c.Type.String()
	}
	return fmt.Errorf("kds sink for stream %q: %s; the query produces (%s)", s.cfg.StreamName, strings.Join(problems, "; "), strings.Join(cols, ", "))
}

func hasType(ts []engine.ColumnType, t engine.ColumnType) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

func typeNames(ts []engine.ColumnType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.String()
	}
	return strings.Join(names, " or ")
}
