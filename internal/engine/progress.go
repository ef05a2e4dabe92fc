package engine

import "time"

// Progress is a batch's progress record, in the JSON shape of Spark's
// StreamingQueryProgress so existing dashboards and parsers read it.
type Progress struct {
	ID                     string            `json:"id"`
	RunID                  string            `json:"runId"`
	Name                   string            `json:"name"`
	Timestamp              string            `json:"timestamp"`
	BatchID                int64             `json:"batchId"`
	NumInputRows           int64             `json:"numInputRows"`
	InputRowsPerSecond     float64           `json:"inputRowsPerSecond"`
	ProcessedRowsPerSecond float64           `json:"processedRowsPerSecond"`
	DurationMs             map[string]int64  `json:"durationMs"`
	Sources                []SourceProgress  `json:"sources"`
	Sink                   SinkProgress      `json:"sink"`
	ObservedMetrics        map[string]string `json:"observedMetrics,omitempty"`
}

// SourceProgress is the source part of a Progress record. Offsets are the
// per-shard positions as JSON objects keyed by shard id.
type SourceProgress struct {
	Description            string            `json:"description"`
	StartOffset            map[string]any    `json:"startOffset"`
	EndOffset              map[string]any    `json:"endOffset"`
	LatestOffset           map[string]any    `json:"latestOffset"`
	NumInputRows           int64             `json:"numInputRows"`
	InputRowsPerSecond     float64           `json:"inputRowsPerSecond"`
	ProcessedRowsPerSecond float64           `json:"processedRowsPerSecond"`
	Metrics                map[string]string `json:"metrics"`
}

// SinkProgress is the sink part of a Progress record.
type SinkProgress struct {
	Description   string `json:"description"`
	NumOutputRows int64  `json:"numOutputRows"`
}

// Duration phase names, as in Spark.
const (
	phaseAddBatch         = "addBatch"
	phaseGetBatch         = "getBatch"
	phaseLatestOffset     = "latestOffset"
	phaseQueryPlanning    = "queryPlanning"
	phaseTriggerExecution = "triggerExecution"
	phaseWalCommit        = "walCommit"
)

func millis(d time.Duration) int64 { return d.Milliseconds() }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
