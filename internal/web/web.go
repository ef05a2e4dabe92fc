// Package web serves a running query's observability endpoints: Prometheus
// metrics (/metrics), a JSON view of its progress (/api/progress, described
// in docs/observability.md), health (/healthz, /readyz) and a live dashboard
// (/) embedded in the binary. Nothing is fetched from the internet: the
// dashboard draws its charts with inline SVG.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardflow/shardflow"
)

//go:embed static
var static embed.FS

// Info describes the query on the dashboard. Options must already be
// redacted (shardflow.Options.Redacted): the server shows them as given.
type Info struct {
	Name       string
	Checkpoint string
	// Options are the redacted options by scope ("source", "sink").
	Options map[string]map[string]string
}

// Config configures a Server.
type Config struct {
	Info Info
	// Gatherer serves /metrics; nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Window is how much progress history /api/progress keeps; default 15m.
	Window time.Duration
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

// Status is a query's state in /api/progress.
type Status string

// Query states.
const (
	StatusStarting Status = "starting" // Run called, the checkpoint not read yet
	StatusRunning  Status = "running"
	StatusStopped  Status = "stopped" // ended without error
	StatusFailed   Status = "failed"
)

// maxHistory bounds the progress records kept, whatever the window.
const maxHistory = 2000

// Server collects a query's events through its Listener and serves them.
type Server struct {
	cfg    Config
	now    func() time.Time
	window time.Duration

	mu        sync.Mutex
	status    Status
	started   shardflow.QueryStarted
	startedAt time.Time
	history   []shardflow.Progress
	shards    map[string]Shard
	lastErr   *ErrorInfo
	lastBatch time.Time
	worker    *Worker
}

// New returns a server; attach its Listener to the query.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, now: cfg.Now, window: cfg.Window, status: StatusStarting, shards: map[string]Shard{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.window <= 0 {
		s.window = 15 * time.Minute
	}
	return s
}

// Listener returns the listener that feeds the server.
func (s *Server) Listener() shardflow.Listener {
	return shardflow.Listener{
		QueryStarted: func(e shardflow.QueryStarted) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.status, s.started, s.startedAt = StatusRunning, e, s.now()
		},
		QueryProgress: s.progress,
		QueryTerminated: func(e shardflow.QueryTerminated) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.status = StatusStopped
			if e.Err != nil {
				s.status = StatusFailed
				s.lastErr = &ErrorInfo{Message: e.Err.Error(), Timestamp: e.Timestamp}
			}
		},
	}
}

func (s *Server) progress(p shardflow.Progress) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastBatch = now
	s.history = append(s.history, p)
	cut := 0
	for cut < len(s.history)-1 && (len(s.history)-cut > maxHistory || tooOld(s.history[cut], now, s.window)) {
		cut++
	}
	s.history = slices.Delete(s.history, 0, cut)
	for _, src := range p.Sources {
		if w := workerOf(src.Metrics); w != nil {
			s.worker = w
		}
		for id, sp := range src.Shards {
			sh := s.shards[id]
			sh.ID, sh.State, sh.Parents = id, string(sp.State), sp.Parents
			sh.NumInputRows += sp.NumInputRows
			sh.MillisBehindLatest = sp.MillisBehindLatest
			sh.LastBatchID = p.BatchID
			s.shards[id] = sh
		}
	}
	if len(s.shards) > 10000 { // a very long-lived query: keep the live part of the lineage
		for id, sh := range s.shards {
			if sh.State == "finished" {
				delete(s.shards, id)
			}
		}
	}
}

func tooOld(p shardflow.Progress, now time.Time, window time.Duration) bool {
	t, err := time.Parse(time.RFC3339Nano, p.Timestamp)
	return err == nil && now.Sub(t) > window
}

// ProgressResponse is the body of GET /api/progress.
type ProgressResponse struct {
	Query QueryInfo `json:"query"`
	// RecentProgress are the progress records of the last Window (15
	// minutes by default), oldest first, in Spark's StreamingQueryProgress
	// shape; with ?since=N only those with batchId > N.
	RecentProgress []shardflow.Progress `json:"recentProgress"`
	// Shards is the lineage: every shard seen, sorted by id.
	Shards []Shard `json:"shards"`
	// LastError is the error that ended the query, or null.
	LastError *ErrorInfo `json:"lastError"`
	// Worker is this worker's id and lease counters in worker mode
	// (shardflow.coordination=DYNAMODB), as of the last batch; null
	// otherwise.
	Worker *Worker `json:"worker"`
}

// Worker is a worker's lease counters in /api/progress (worker mode).
type Worker struct {
	ID string `json:"id"`
	// LeasesHeld are the shard leases the worker holds.
	LeasesHeld int64 `json:"leasesHeld"`
	// LeasesTaken and LeasesLost count leases taken over from a worker
	// that stopped renewing them, and taken over from this one.
	LeasesTaken int64 `json:"leasesTaken"`
	LeasesLost  int64 `json:"leasesLost"`
	// LeasesHandedOff and LeasesReceived count planned handoffs, out and in.
	LeasesHandedOff int64 `json:"leasesHandedOff"`
	LeasesReceived  int64 `json:"leasesReceived"`
}

// workerOf reads the lease counters a worker's progress records carry in
// their source metrics; nil outside worker mode.
func workerOf(m map[string]string) *Worker {
	id, ok := m["workerId"]
	if !ok {
		return nil
	}
	n := func(k string) int64 {
		v, _ := strconv.ParseInt(m[k], 10, 64)
		return v
	}
	return &Worker{ID: id, LeasesHeld: n("leasesHeld"), LeasesTaken: n("leasesTaken"), LeasesLost: n("leasesLost"),
		LeasesHandedOff: n("leasesHandedOff"), LeasesReceived: n("leasesReceived")}
}

// QueryInfo describes the query.
type QueryInfo struct {
	Name          string                       `json:"name"`
	ID            string                       `json:"id"`
	RunID         string                       `json:"runId"`
	Source        string                       `json:"source"`
	Sink          string                       `json:"sink"`
	Trigger       string                       `json:"trigger"`
	Checkpoint    string                       `json:"checkpoint"`
	Status        Status                       `json:"status"`
	StartedAt     *time.Time                   `json:"startedAt"`
	UptimeSeconds float64                      `json:"uptimeSeconds"`
	Options       map[string]map[string]string `json:"options"`
}

// Shard is one shard in /api/progress.
type Shard struct {
	ID      string   `json:"id"`
	State   string   `json:"state"`
	Parents []string `json:"parents"`
	// NumInputRows are the rows read from the shard in this run.
	NumInputRows int64 `json:"numInputRows"`
	// MillisBehindLatest is the lag at the last batch, -1 when unknown.
	MillisBehindLatest int64 `json:"millisBehindLatest"`
	LastBatchID        int64 `json:"lastBatchId"`
}

// ErrorInfo is the last error.
type ErrorInfo struct {
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
}

// Progress returns the /api/progress view; since < 0 returns every record kept.
func (s *Server) Progress(since int64) ProgressResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := s.cfg.Info
	q := QueryInfo{
		Name: info.Name, ID: s.started.ID, RunID: s.started.RunID, Source: s.started.Source, Sink: s.started.Sink,
		Trigger: s.started.Trigger, Checkpoint: info.Checkpoint, Status: s.status, Options: info.Options,
	}
	if q.Name == "" {
		q.Name = s.started.Name
	}
	if q.Checkpoint == "" {
		q.Checkpoint = s.started.Checkpoint
	}
	if !s.startedAt.IsZero() {
		t := s.startedAt.UTC()
		q.StartedAt = &t
		q.UptimeSeconds = s.now().Sub(s.startedAt).Seconds()
	}
	if q.Options == nil {
		q.Options = map[string]map[string]string{}
	}
	r := ProgressResponse{Query: q, RecentProgress: []shardflow.Progress{}, Shards: []Shard{}, LastError: s.lastErr}
	if s.worker != nil {
		w := *s.worker
		r.Worker = &w
	}
	for _, p := range s.history {
		if p.BatchID > since {
			r.RecentProgress = append(r.RecentProgress, p)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.shards)) {
		sh := s.shards[id]
		if sh.Parents == nil {
			sh.Parents = []string{}
		}
		r.Shards = append(r.Shards, sh)
	}
	return r
}

// Ready reports whether the query runs and its last batch succeeded (a
// failed batch ends the query).
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status == StatusRunning
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.cfg.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /api/progress", s.handleProgress)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		s.mu.Lock()
		st := s.status
		s.mu.Unlock()
		if st != StatusRunning {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(string(st) + "\n"))
	})
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	return mux
}

func (s *Server) handleProgress(w http.ResponseWriter, r *http.Request) {
	since := int64(-1)
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			http.Error(w, "since must be a batch id", http.StatusBadRequest)
			return
		}
		since = n
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Progress(since))
}
