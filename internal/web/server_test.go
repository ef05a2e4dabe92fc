package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/engine"
)

// TestReadyzAndLastError follows a query's events: not ready before start,
// ready while it runs, not ready once it failed, with the error shown.
func TestReadyzAndLastError(t *testing.T) {
	s := New(Config{Info: Info{Name: "q"}})
	h := s.Handler()
	ready := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	l := s.Listener()
	if ready() != http.StatusServiceUnavailable {
		t.Error("ready before start")
	}
	l.QueryStarted(shardflow.QueryStarted{ID: "id-1", RunID: "run-1", Name: "q"})
	if ready() != http.StatusOK {
		t.Error("not ready while running")
	}
	l.QueryProgress(shardflow.Progress{BatchID: 3, Timestamp: time.Now().UTC().Format(time.RFC3339Nano)})
	l.QueryTerminated(shardflow.QueryTerminated{ID: "id-1", Err: errors.New("batch 4: sink is down"), Timestamp: time.Now()})
	if ready() != http.StatusServiceUnavailable {
		t.Error("ready after failure")
	}
	p := s.Progress(-1)
	if p.Query.Status != StatusFailed || p.LastError == nil || p.LastError.Message != "batch 4: sink is down" || len(p.RecentProgress) != 1 || p.Query.ID != "id-1" {
		t.Errorf("progress = %+v", p)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/progress?since=x", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("bad since: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("dashboard: %d %v", rec.Code, rec.Header())
	}
}

// TestWorkerLeases: in worker mode /api/progress carries the worker's id
// and lease counters from the last progress record; otherwise "worker" is
// null.
func TestWorkerLeases(t *testing.T) {
	s := New(Config{Info: Info{Name: "q"}})
	l := s.Listener()
	l.QueryStarted(shardflow.QueryStarted{ID: "id-1", RunID: "run-1"})
	now := time.Now().UTC().Format(time.RFC3339Nano)
	l.QueryProgress(shardflow.Progress{BatchID: 0, Timestamp: now, Sources: []engine.SourceProgress{{Metrics: map[string]string{"dataLossEvents": "0"}}}})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/progress", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w, ok := body["worker"]; !ok || w != nil {
		t.Errorf("outside worker mode: worker = %v (present %v), want null", w, ok)
	}

	metrics := func(held, taken int) map[string]string {
		return map[string]string{
			"leasesHeld": fmt.Sprint(held), "leasesTaken": fmt.Sprint(taken), "leasesLost": "1", "leasesHandedOff": "3",
			"leasesReceived": "2", "leaseRenewals": "40", "leaseTableWrites": "44", "workerId": "worker-a",
		}
	}
	l.QueryProgress(shardflow.Progress{BatchID: 1, Timestamp: now, Sources: []engine.SourceProgress{{Metrics: metrics(4, 2)}}})
	l.QueryProgress(shardflow.Progress{BatchID: 2, Timestamp: now, Sources: []engine.SourceProgress{{Metrics: metrics(5, 3)}}})
	want := &Worker{ID: "worker-a", LeasesHeld: 5, LeasesTaken: 3, LeasesLost: 1, LeasesHandedOff: 3, LeasesReceived: 2}
	if diff := cmp.Diff(want, s.Progress(-1).Worker); diff != "" {
		t.Errorf("worker (-want +got):\n%s", diff)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/progress?since=2", nil))
	if !strings.Contains(rec.Body.String(), `"worker": {
    "id": "worker-a",
    "leasesHeld": 5,`) {
		t.Errorf("/api/progress lacks the worker:\n%s", rec.Body.String())
	}
}
