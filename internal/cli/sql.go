package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/batchsql"
)

// sqlOptionPrefix marks the SQL stage's options (shardflow.sql.strict,
// shardflow.sql.init). They may be given with the source options, as Spark
// options are given to the reader; they are taken out before the source
// options are checked.
const sqlOptionPrefix = "shardflow.sql."

// applySQLFlags sets the job's SQL from --sql or --sql-file (which win over
// the job file) and moves shardflow.sql.* options out of the source
// options.
func applySQLFlags(job Job, sqlText, sqlFile string) (Job, error) {
	if sqlText != "" && sqlFile != "" {
		return job, usage("--sql and --sql-file: give one of them")
	}
	if sqlFile != "" {
		b, err := os.ReadFile(sqlFile)
		if err != nil {
			return job, usage("--sql-file: %v", err)
		}
		sqlText = string(b)
	}
	if sqlText != "" {
		job.SQL = sqlText
	}
	for k, v := range job.Source.Options {
		if strings.HasPrefix(strings.ToLower(k), sqlOptionPrefix) {
			if job.SQLOptions == nil {
				job.SQLOptions = map[string]string{}
			}
			job.SQLOptions[k] = v
			delete(job.Source.Options, k)
		}
	}
	return job, nil
}

// buildSQL builds the job's SQL stage (nil when the job has none) and
// checks it against the source schema and the sink's column needs, so a
// bad statement fails before anything is read, as a usage error (exit 2).
func buildSQL(ctx context.Context, job Job, sink shardflow.Sink, log *slog.Logger) (*batchsql.Transform, error) {
	if strings.TrimSpace(job.SQL) == "" {
		if len(job.SQLInit) > 0 || len(job.SQLOptions) > 0 {
			return nil, usage("sqlInit and shardflow.sql.* options need a SQL statement (the job file's sql, --sql or --sql-file)")
		}
		return nil, nil
	}
	o, warns, err := shardflow.ParseOptions(shardflow.ScopeQuery, job.SQLOptions)
	for _, w := range warns {
		log.Warn(w)
	}
	if err != nil {
		return nil, usage("sql options: %v", err)
	}
	init := append([]string(nil), job.SQLInit...)
	if s := o.String("shardflow.sql.init"); strings.TrimSpace(s) != "" {
		init = append(init, splitStatements(s)...)
	}
	xf, err := batchsql.New(batchsql.Config{SQL: job.SQL, Init: init, Strict: o.Bool("shardflow.sql.strict"), Logger: log})
	if err != nil {
		return nil, usageError{err}
	}
	out, err := xf.Prepare(ctx, shardflow.SourceSchema())
	if err == nil {
		if sc, ok := sink.(interface{ CheckSchema(shardflow.Schema) error }); ok {
			if err = sc.CheckSchema(out); err != nil {
				err = fmt.Errorf("sql output: %w", err)
			}
		}
	}
	if err != nil {
		xf.Close()
		return nil, usageError{err}
	}
	return xf, nil
}

// splitStatements splits "a; b" at semicolons outside quotes.
func splitStatements(s string) []string {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ';':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	out = append(out, s[start:])
	var stmts []string
	for _, st := range out {
		if strings.TrimSpace(st) != "" {
			stmts = append(stmts, st)
		}
	}
	return stmts
}
