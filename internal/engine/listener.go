package engine

import "time"

// Listener receives a query's lifecycle events, like Spark's
// StreamingQueryListener. Any field may be nil. The engine calls the
// functions synchronously from the query's goroutine, in order: keep them
// fast, and do not call the query's Stop from them (Progress, ID and RunID
// are safe).
type Listener struct {
	// QueryStarted is called once the checkpoint is read or created (the
	// query id is known) and the source is open, before the first batch.
	QueryStarted func(QueryStarted)
	// QueryProgress is called after every committed batch, once per batch.
	QueryProgress func(Progress)
	// QueryTerminated is called once when Run returns, with Run's error
	// (nil after Stop or the end of a Once or AvailableNow trigger). It is
	// called even when the query failed before QueryStarted.
	QueryTerminated func(QueryTerminated)
}

// QueryStarted is the event of Listener.QueryStarted.
type QueryStarted struct {
	ID        string    `json:"id"`
	RunID     string    `json:"runId"`
	Name      string    `json:"name"`
	Timestamp time.Time `json:"timestamp"`
	// Source and Sink are the descriptions used in progress records.
	Source  string `json:"source"`
	Sink    string `json:"sink"`
	Trigger string `json:"trigger"`
	// Checkpoint is the checkpoint's location.
	Checkpoint string `json:"checkpoint"`
	// NextBatch is the id of the next batch (the replayed one, if any).
	NextBatch int64 `json:"nextBatch"`
}

// QueryTerminated is the event of Listener.QueryTerminated.
type QueryTerminated struct {
	ID        string    `json:"id"`
	RunID     string    `json:"runId"`
	Name      string    `json:"name"`
	Timestamp time.Time `json:"timestamp"`
	// Err is Run's error: nil for a normal end.
	Err error `json:"-"`
}

func (q *Query) listeners() []Listener {
	ls := q.cfg.Listeners
	if q.cfg.OnProgress != nil {
		ls = append(ls[:len(ls):len(ls)], Listener{QueryProgress: q.cfg.OnProgress})
	}
	return ls
}

func (q *Query) emitStarted(e QueryStarted) {
	for _, l := range q.listeners() {
		if l.QueryStarted != nil {
			l.QueryStarted(e)
		}
	}
}

func (q *Query) emitProgress(p Progress) {
	for _, l := range q.listeners() {
		if l.QueryProgress != nil {
			l.QueryProgress(p)
		}
	}
}

func (q *Query) emitTerminated(e QueryTerminated) {
	for _, l := range q.listeners() {
		if l.QueryTerminated != nil {
			l.QueryTerminated(e)
		}
	}
}
