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
	// Shards is shardflow's extension to Spark's shape: every shard the
	// batch was planned with, by shard id.
	Shards map[string]ShardProgress `json:"shards,omitempty"`
}

// ShardProgress is one shard's part of a batch.
type ShardProgress struct {
	// State is the shard's state after the batch: open, closed or finished.
	State ShardState `json:"state"`
	// Parents are the shard's parent shards (lineage), if any.
	Parents []string `json:"parents,omitempty"`
	// NumInputRows and NumInputBytes count the user records (after KPL
	// de-aggregation) and their data bytes that the batch read from the shard.
	NumInputRows  int64 `json:"numInputRows"`
	NumInputBytes int64 `json:"numInputBytes"`
	// MillisBehindLatest is the shard reader's last reported lag when the
	// batch was planned; -1 when unknown (no reader, or no call yet).
	MillisBehindLatest int64 `json:"millisBehindLatest"`
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
