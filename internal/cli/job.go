package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Job is a job file: what `shardflow run JOB.yaml` runs. Flags override it.
type Job struct {
	Name               string `json:"name"`
	Source             Format `json:"source"`
	Sink               Format `json:"sink"`
	Trigger            string `json:"trigger"`
	CheckpointLocation string `json:"checkpointLocation"`
	// SQL, when set, runs on every micro-batch (package batchsql); SQLInit
	// holds statements run once at start (static tables for joins).
	SQL     string   `json:"sql"`
	SQLInit []string `json:"sqlInit"`
	// SQLOptions holds the shardflow.sql.* options, taken from the source
	// options (not a job-file key).
	SQLOptions map[string]string `json:"-"`
}

// Format is a source or sink: its format name and its options.
type Format struct {
	Format  string            `json:"format"`
	Options map[string]string `json:"options"`
}

// UnmarshalJSON accepts option values of any scalar type (YAML turns
// `numRows: 5` into a number) and keeps them as strings.
func (f *Format) UnmarshalJSON(b []byte) error {
	var raw struct {
		Format  string         `json:"format"`
		Options map[string]any `json:"options"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	f.Format = raw.Format
	f.Options = make(map[string]string, len(raw.Options))
	for k, v := range raw.Options {
		switch v := v.(type) {
		case string:
			f.Options[k] = v
		case bool:
			f.Options[k] = strconv.FormatBool(v)
		case float64:
			f.Options[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
			f.Options[k] = ""
		default:
			return fmt.Errorf("option %s: value %v is not a string, number or boolean", k, v)
		}
	}
	return nil
}

// loadJob reads a job file. Unknown keys are errors, so a typo is never
// silently ignored.
func loadJob(path string) (Job, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Job{}, usage("job file: %v", err)
	}
	var j Job
	if err := yaml.UnmarshalStrict(b, &j); err != nil {
		return Job{}, usage("job file %s: %v (accepted keys: name, source, sink, trigger, checkpointLocation, sql, sqlInit)", path, err)
	}
	if j.Source.Format != "" && !strings.EqualFold(j.Source.Format, "aws-kinesis") && !strings.EqualFold(j.Source.Format, "kinesis") {
		return Job{}, usage("job file %s: source format %q is not supported; use aws-kinesis", path, j.Source.Format)
	}
	return j, nil
}

// parseKV splits repeated KEY=VALUE flags into m, overriding earlier values.
func parseKV(flag string, kvs []string, m map[string]string) error {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return usage("--%s %q: expected KEY=VALUE", flag, kv)
		}
		// Keys are case-insensitive: a flag overrides the job file's
		// spelling of the same key.
		for old := range m {
			if strings.EqualFold(old, k) {
				delete(m, old)
			}
		}
		m[strings.TrimSpace(k)] = v
	}
	return nil
}
