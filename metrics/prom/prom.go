// Package prom turns a shardflow query's events and its Kinesis source's and
// sink's counters into Prometheus metrics. It registers them on the
// prometheus.Registerer it is given, never on the global registry; wrap the
// registerer (prometheus.WrapRegistererWith) to add a query label when one
// process runs several queries.
//
//	reg := prometheus.NewRegistry()
//	m, err := prom.New(reg)
//	m.WatchSource(src) // a *kds.Source: API retries, throttles, EFO
//	m.WatchSink(sink)  // a *kds.Sink: PutRecords counters
//	q, err := shardflow.NewQuery(shardflow.QueryConfig{..., Listeners: []shardflow.Listener{m.Listener()}})
//
// The shard label is bounded by the shards the query holds: the series of a
// shard are deleted once the shard is finished (read to its end after a
// reshard) or no longer tracked.
//
// In worker mode (shardflow.coordination=DYNAMODB) the lease coordinator's
// counters, which every progress record carries in its source metrics, become
// the shardflow_leases_* and shardflow_lease_* metrics; they are absent
// otherwise.
package prom

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/kds"
)

const namespace = "shardflow"

// Metrics holds a query's metrics. Create it with New.
type Metrics struct {
	sourceRecords *prometheus.CounterVec
	sourceBytes   *prometheus.CounterVec
	lag           *prometheus.GaugeVec
	shards        *prometheus.GaugeVec
	sinkRecords   prometheus.Counter
	inputRows     prometheus.Counter
	batches       prometheus.Counter
	batchDuration prometheus.Histogram
	phaseDuration *prometheus.HistogramVec
	ckptWrite     prometheus.Histogram
	inputRate     prometheus.Gauge
	processRate   prometheus.Gauge
	lastBatch     prometheus.Gauge
	dataLoss      prometheus.Counter
	reshards      prometheus.Counter
	running       prometheus.Gauge
	failures      prometheus.Counter

	stats  *statsCollector
	leases *leaseCollector

	mu       sync.Mutex // guards the fields below; progress arrives on the query goroutine, scrapes on others
	held     map[string]bool
	finished map[string]bool // shards already counted as reshard events
	lossSeen int64
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	phaseBuckets := prometheus.ExponentialBuckets(0.001, 2, 16) // 1 ms .. 32 s
	m := &Metrics{
		sourceRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "source", Name: "records_total",
			Help: "User records read from a shard, after KPL de-aggregation, in committed batches."}, []string{"shard"}),
		sourceBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "source", Name: "bytes_total",
			Help: "Data bytes of the user records read from a shard in committed batches."}, []string{"shard"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "source", Name: "millis_behind_latest",
			Help: "How far the shard's reader is behind the tip of the shard (MillisBehindLatest), at the last batch."}, []string{"shard"}),
		shards: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "source", Name: "shards",
			Help: "Shards the query holds, by state (open, closed, finished), at the last batch."}, []string{"state"}),
		sinkRecords: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "sink", Name: "records_total",
			Help: "Rows handed to the sink in committed batches."}),
		inputRows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "batch", Name: "input_rows_total",
			Help: "Input rows of committed batches."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "batches_total",
			Help: "Committed batches."}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "batch", Name: "duration_seconds",
			Help: "Duration of a batch from trigger to commit (Spark's triggerExecution).", Buckets: phaseBuckets}),
		phaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "batch", Name: "phase_duration_seconds",
			Help: "Duration of a batch's phases, named as Spark's durationMs keys.", Buckets: phaseBuckets}, []string{"phase"}),
		ckptWrite: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "checkpoint", Name: "write_seconds",
			Help: "Time a batch spent writing its checkpoint entries (offsets and commits: Spark's walCommit).", Buckets: phaseBuckets}),
		inputRate: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "batch", Name: "input_rows_per_second",
			Help: "Input rate of the last batch: its rows over the time since the previous trigger."}),
		processRate: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "batch", Name: "processed_rows_per_second",
			Help: "Processing rate of the last batch: its rows over its duration."}),
		lastBatch: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "batch", Name: "last_id",
			Help: "Id of the last committed batch."}),
		dataLoss: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "source", Name: "data_loss_events_total",
			Help: "Shards that vanished before they were read to their end (kinesis.failOnDataLoss=false)."}),
		reshards: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "source", Name: "reshard_events_total",
			Help: "Shards closed by a reshard (split or merge) and read to their end."}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "query", Name: "running",
			Help: "1 while the query runs, 0 before it started and after it ended."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "query", Name: "failures_total",
			Help: "Query runs that ended with an error."}),
		stats:    &statsCollector{},
		leases:   &leaseCollector{last: map[string]int64{}, total: map[string]int64{}},
		held:     map[string]bool{},
		finished: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{
		m.sourceRecords, m.sourceBytes, m.lag, m.shards, m.sinkRecords, m.inputRows, m.batches, m.batchDuration,
		m.phaseDuration, m.ckptWrite, m.inputRate, m.processRate, m.lastBatch, m.dataLoss, m.reshards,
		m.running, m.failures, m.stats, m.leases,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("prom: register shardflow metrics: %w", err)
		}
	}
	return m, nil
}

// Listener returns the listener that feeds the metrics; attach it to the
// query (QueryConfig.Listeners).
func (m *Metrics) Listener() shardflow.Listener {
	return shardflow.Listener{
		QueryStarted:  func(shardflow.QueryStarted) { m.running.Set(1) },
		QueryProgress: m.observe,
		QueryTerminated: func(e shardflow.QueryTerminated) {
			m.running.Set(0)
			m.leases.stopped()
			if e.Err != nil {
				m.failures.Inc()
			}
		},
	}
}

// SourceStatser is a source with counters, such as *kds.Source.
type SourceStatser interface{ Stats() kds.SourceStats }

// SinkStatser is a sink with counters, such as *kds.Sink.
type SinkStatser interface{ Stats() kds.SinkStats }

// WatchSource reads src's counters (API retries, throttles and errors by
// call; EFO subscriptions and renewals) at every scrape.
func (m *Metrics) WatchSource(src SourceStatser) {
	m.stats.mu.Lock()
	defer m.stats.mu.Unlock()
	m.stats.src = src
}

// WatchSink reads sink's counters (PutRecords retries, throttles and
// errors; records and bytes written; records sent again; failed batches)
// at every scrape.
func (m *Metrics) WatchSink(sink SinkStatser) {
	m.stats.mu.Lock()
	defer m.stats.mu.Unlock()
	m.stats.sink = sink
}

func (m *Metrics) observe(p shardflow.Progress) {
	m.batches.Inc()
	m.inputRows.Add(float64(p.NumInputRows))
	m.sinkRecords.Add(float64(p.Sink.NumOutputRows))
	m.lastBatch.Set(float64(p.BatchID))
	m.inputRate.Set(p.InputRowsPerSecond)
	m.processRate.Set(p.ProcessedRowsPerSecond)
	for phase, ms := range p.DurationMs {
		m.phaseDuration.WithLabelValues(phase).Observe(float64(ms) / 1000)
	}
	if ms, ok := p.DurationMs["triggerExecution"]; ok {
		m.batchDuration.Observe(float64(ms) / 1000)
	}
	if ms, ok := p.DurationMs["walCommit"]; ok {
		m.ckptWrite.Observe(float64(ms) / 1000)
	}

	for _, src := range p.Sources {
		m.leases.observe(src.Metrics)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	held := map[string]bool{}
	states := map[engine.ShardState]int{engine.StateOpen: 0, engine.StateClosed: 0, engine.StateFinished: 0}
	for _, src := range p.Sources {
		if v, err := strconv.ParseInt(src.Metrics["dataLossEvents"], 10, 64); err == nil && v > m.lossSeen {
			m.dataLoss.Add(float64(v - m.lossSeen))
			m.lossSeen = v
		}
		for _, id := range slices.Sorted(maps.Keys(src.Shards)) {
			sp := src.Shards[id]
			states[sp.State]++
			m.sourceRecords.WithLabelValues(id).Add(float64(sp.NumInputRows))
			m.sourceBytes.WithLabelValues(id).Add(float64(sp.NumInputBytes))
			if sp.State == engine.StateFinished {
				if !m.finished[id] {
					m.finished[id] = true
					m.reshards.Inc()
				}
				continue
			}
			held[id] = true
			if sp.MillisBehindLatest >= 0 {
				m.lag.WithLabelValues(id).Set(float64(sp.MillisBehindLatest))
			}
		}
	}
	for st, n := range states {
		m.shards.WithLabelValues(string(st)).Set(float64(n))
	}
	// Bound the shard label: drop the series of shards no longer held.
	for id := range m.held {
		if !held[id] {
			m.sourceRecords.DeleteLabelValues(id)
			m.sourceBytes.DeleteLabelValues(id)
			m.lag.DeleteLabelValues(id)
		}
	}
	for id := range m.finished {
		if !held[id] {
			m.sourceRecords.DeleteLabelValues(id)
			m.sourceBytes.DeleteLabelValues(id)
			m.lag.DeleteLabelValues(id)
		}
	}
	if len(m.finished) > 10000 {
		clear(m.finished) // a very long-lived query: forget old shard ids
	}
	m.held = held
}

// statsCollector reports the watched source's and sink's counters at scrape
// time.
type statsCollector struct {
	mu   sync.Mutex
	src  SourceStatser
	sink SinkStatser
}

var (
	descRetries = prometheus.NewDesc(namespace+"_api_retries_total",
		"Kinesis API call attempts that failed and were retried, by side (source or sink) and API call.", []string{"side", "api"}, nil)
	descThrottles = prometheus.NewDesc(namespace+"_api_throttles_total",
		"Kinesis API call attempts refused by a throughput quota, by side and API call.", []string{"side", "api"}, nil)
	descErrors = prometheus.NewDesc(namespace+"_api_errors_total",
		"Kinesis API calls that failed for good, by side and API call.", []string{"side", "api"}, nil)
	descSubs = prometheus.NewDesc(namespace+"_efo_subscriptions_total",
		"SubscribeToShard calls made (enhanced fan-out).", nil, nil)
	descRenewals = prometheus.NewDesc(namespace+"_efo_renewals_total",
		"Enhanced fan-out subscriptions renewed after the previous one ended.", nil, nil)
	descSinkBytes = prometheus.NewDesc(namespace+"_sink_bytes_total",
		"Data bytes of the records the Kinesis sink wrote.", nil, nil)
	descSinkWritten = prometheus.NewDesc(namespace+"_sink_written_records_total",
		"Records the Kinesis sink wrote (accepted by PutRecords).", nil, nil)
	descSinkRetries = prometheus.NewDesc(namespace+"_sink_record_retries_total",
		"Records the Kinesis sink sent again after PutRecords reported them failed.", nil, nil)
	descSinkFailures = prometheus.NewDesc(namespace+"_sink_failures_total",
		"Batches the Kinesis sink failed to write.", nil, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRetries, descThrottles, descErrors, descSubs, descRenewals,
		descSinkBytes, descSinkWritten, descSinkRetries, descSinkFailures} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src, sink := c.src, c.sink
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	calls := func(side string, m map[string]kds.CallStats) {
		for _, api := range slices.Sorted(maps.Keys(m)) {
			s := m[api]
			counter(descRetries, s.Retries, side, api)
			counter(descThrottles, s.Throttles, side, api)
			counter(descErrors, s.Failures, side, api)
		}
	}
	if src != nil {
		st := src.Stats()
		calls("source", st.Calls)
		counter(descSubs, st.Subscriptions)
		counter(descRenewals, st.Renewals)
	}
	if sink != nil {
		st := sink.Stats()
		calls("sink", st.Calls)
		counter(descSinkBytes, st.Bytes)
		counter(descSinkWritten, st.Records)
		counter(descSinkRetries, st.RecordRetries)
		counter(descSinkFailures, st.BatchFailures)
	}
}

// leaseCollector reports a worker's lease counters (worker mode), taken from
// the source metrics of its progress records. It reports nothing until a
// record carries them.
type leaseCollector struct {
	mu     sync.Mutex
	seen   bool
	worker string
	held   int64
	last   map[string]int64 // each counter's last reported value
	total  map[string]int64 // each counter's count since New
}

var (
	descLeasesHeld = prometheus.NewDesc(namespace+"_leases_held",
		"Shard leases this worker holds (worker mode), at the last batch; 0 once the query ended.", nil, nil)
	descWorker = prometheus.NewDesc(namespace+"_worker_info",
		"Always 1 in worker mode; worker_id is the id this worker has in the lease table.", []string{"worker_id"}, nil)
	// leaseCounters are the coordinator's counters, by source metrics key.
	leaseCounters = []struct {
		key  string
		desc *prometheus.Desc
	}{
		{"leasesTaken", prometheus.NewDesc(namespace+"_leases_taken_total",
			"Shard leases this worker took over from another worker that had stopped renewing them (worker mode).", nil, nil)},
		{"leasesLost", prometheus.NewDesc(namespace+"_leases_lost_total",
			"Shard leases another worker took over from this worker before it handed them over (worker mode).", nil, nil)},
		{"leasesHandedOff", prometheus.NewDesc(namespace+"_leases_handed_off_total",
			"Shard leases this worker handed over to the worker that asked for them, after committing (worker mode).", nil, nil)},
		{"leasesReceived", prometheus.NewDesc(namespace+"_leases_received_total",
			"Shard leases another worker handed over to this worker (worker mode).", nil, nil)},
		{"leaseStealsAsked", prometheus.NewDesc(namespace+"_lease_steals_asked_total",
			"Handoffs this worker asked of the worker with the most leases, to balance (worker mode).", nil, nil)},
		{"leaseRenewals", prometheus.NewDesc(namespace+"_lease_renewals_total",
			"Lease renewals this worker wrote (worker mode).", nil, nil)},
		{"leaseTableReads", prometheus.NewDesc(namespace+"_lease_table_reads_total",
			"Lease table reads this worker made: scan pages and item reads (worker mode).", nil, nil)},
		{"leaseTableWrites", prometheus.NewDesc(namespace+"_lease_table_writes_total",
			"Lease table writes this worker made (worker mode).", nil, nil)},
		{"leaseTableFailures", prometheus.NewDesc(namespace+"_lease_table_failures_total",
			"Lease table calls that failed, other than a lost conditional write (worker mode).", nil, nil)},
	}
)

// observe takes the lease counters from a source's progress metrics.
func (c *leaseCollector) observe(metrics map[string]string) {
	held, err := strconv.ParseInt(metrics["leasesHeld"], 10, 64)
	if err != nil {
		return // not worker mode
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen, c.held, c.worker = true, held, metrics["workerId"]
	for _, lc := range leaseCounters {
		v, err := strconv.ParseInt(metrics[lc.key], 10, 64)
		if err != nil || v < 0 {
			continue
		}
		if v < c.last[lc.key] {
			c.total[lc.key] += v // a new coordinator counts from 0 again
		} else {
			c.total[lc.key] += v - c.last[lc.key]
		}
		c.last[lc.key] = v
	}
}

// stopped: the query ended, and with it this worker's leases.
func (c *leaseCollector) stopped() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = 0
}

func (c *leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLeasesHeld
	ch <- descWorker
	for _, lc := range leaseCounters {
		ch <- lc.desc
	}
}

func (c *leaseCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen {
		return
	}
	ch <- prometheus.MustNewConstMetric(descLeasesHeld, prometheus.GaugeValue, float64(c.held))
	if c.worker != "" {
		ch <- prometheus.MustNewConstMetric(descWorker, prometheus.GaugeValue, 1, c.worker)
	}
	for _, lc := range leaseCounters {
		ch <- prometheus.MustNewConstMetric(lc.desc, prometheus.CounterValue, float64(c.total[lc.key]))
	}
}
