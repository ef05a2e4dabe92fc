package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
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
