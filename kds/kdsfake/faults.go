package kdsfake

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// faultKind is what an injected fault does.
type faultKind int

const (
	faultThrottle        faultKind = iota // whole call fails with a throttling error
	faultThrottleRecords                  // PutRecords: every record fails with ProvisionedThroughputExceeded
	faultStatus                           // whole call fails with 500 or 503
	faultReset                            // the connection is dropped without a response
	faultDelay                            // the response is delayed
)

// fault is one queued fault: it applies to the next n calls of action
// ("" for any action).
type fault struct {
	action string
	kind   faultKind
	status int
	delay  time.Duration
	n      int
}

// faultSet holds the queued faults.
type faultSet struct {
	mu     sync.Mutex
	faults []*fault
}

func (fs *faultSet) add(f *fault) {
	if f.n <= 0 {
		return
	}
	fs.mu.Lock()
	fs.faults = append(fs.faults, f)
	fs.mu.Unlock()
}

// take consumes one use of the first fault of kind for action, reporting
// whether there was one.
func (fs *faultSet) take(action string, kind faultKind) bool {
	f := fs.next(action, func(f *fault) bool { return f.kind == kind })
	return f != nil
}

// next consumes one use of the first fault for action that match accepts.
func (fs *faultSet) next(action string, match func(*fault) bool) *fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if (f.action == "" || f.action == action) && match(f) {
			f.n--
			if f.n == 0 {
				fs.faults = append(fs.faults[:i:i], fs.faults[i+1:]...)
			}
			cp := *f
			return &cp
		}
	}
	return nil
}

// ThrottleNext makes the next n calls of action fail as AWS throttles them.
// Data-plane calls (GetRecords, GetShardIterator, PutRecord,
// SubscribeToShard) get ProvisionedThroughputExceededException; PutRecords
// answers 200 with every record failed with ProvisionedThroughputExceeded
// (FailedRecordCount set), as a throttled PutRecords does; control-plane
// calls get LimitExceededException. An empty action matches every action.
func (s *Server) ThrottleNext(action string, n int) {
	kind := faultThrottle
	if action == "PutRecords" {
		kind = faultThrottleRecords
	}
	s.faults.add(&fault{action: action, kind: kind, n: n})
}

// FailNext makes the next n calls of action fail with HTTP status 500
// (InternalFailure) or 503 (ServiceUnavailable). Other statuses are
// treated as 500. An empty action matches every action.
func (s *Server) FailNext(action string, status, n int) {
	if status != http.StatusServiceUnavailable {
		status = http.StatusInternalServerError
	}
	s.faults.add(&fault{action: action, kind: faultStatus, status: status, n: n})
}

// ResetNext makes the server drop the connection of the next n calls of
// action without answering (on HTTP/2, the stream is reset). An empty action
// matches every action.
func (s *Server) ResetNext(action string, n int) {
	s.faults.add(&fault{action: action, kind: faultReset, n: n})
}

// DelayNext delays the next n calls of action by d before they are served.
// The delay ends early if the client gives up. An empty action matches every
// action.
func (s *Server) DelayNext(action string, d time.Duration, n int) {
	s.faults.add(&fault{action: action, kind: faultDelay, delay: d, n: n})
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.faults = nil
	s.faults.mu.Unlock()
}

// ExpireIterators makes every shard iterator issued so far expired:
// GetRecords with one gets ExpiredIteratorException.
func (s *Server) ExpireIterators() { s.iterEpoch.Add(1) }

// EndSubscriptions cleanly ends the running SubscribeToShard event streams
// of a shard (of any consumer), as AWS does when a subscription's 5 minutes
// are over. stream is a name in the default account or a stream ARN. It
// returns how many subscriptions it ended.
func (s *Server) EndSubscriptions(stream, shardID string) int {
	st, _, _ := s.namedStream(stream, s.now())
	if st == nil {
		return 0
	}
	return s.subs.endWhere(func(sub *subscription) bool {
		return sub.st == st && (shardID == "" || sub.key.shardID == shardID)
	})
}

// BreakSubscriptions ends the running SubscribeToShard event streams of a
// shard (of any consumer; every shard when shardID is "") abnormally: with
// exception "" the connection is dropped mid-stream (on HTTP/2 the stream
// is reset), as a network failure would; otherwise an exception event of
// that type (such as "ResourceNotFoundException" or
// "InternalFailureException") ends the stream. stream is a name in the
// default account or a stream ARN. It returns how many subscriptions it
// broke.
func (s *Server) BreakSubscriptions(stream, shardID, exception string) int {
	st, _, _ := s.namedStream(stream, s.now())
	if st == nil {
		return 0
	}
	if exception == "" {
		exception = breakReset
	}
	return s.subs.endWhere(func(sub *subscription) bool {
		if sub.st != st || shardID != "" && sub.key.shardID != shardID {
			return false
		}
		sub.breakWith = exception // endWhere holds subs.mu
		return true
	})
}

// Trim drops the records of a shard that arrived before before, as
// retention would. An empty shardID trims every shard. A closed shard left
// without records, and closed before before, disappears from ListShards.
// stream is a name in the default account or a stream ARN.
func (s *Server) Trim(stream, shardID string, before time.Time) error {
	now := s.now()
	st, acct, name := s.namedStream(stream, now)
	if st == nil {
		return fmt.Errorf("kdsfake: stream %s under account %s not found", name, acct)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	var only *shard
	if shardID != "" {
		if only = st.shardByID(shardID); only == nil {
			return fmt.Errorf("kdsfake: shard %s in stream %s not found", shardID, name)
		}
	}
	st.trim(now, before, only)
	st.wake()
	s.dirty.Store(true)
	return nil
}

// controlPlane reports whether action is throttled with
// LimitExceededException rather than ProvisionedThroughputExceededException.
func controlPlane(action string) bool {
	switch action {
	case "GetRecords", "GetShardIterator", "PutRecord", "PutRecords", "SubscribeToShard":
		return false
	}
	return true
}

// applyFaults applies the queued faults for a call: delays first, then the
// first failure. It returns the error to answer with, or nil to serve the
// call. A reset never returns: it aborts the handler.
func (s *Server) applyFaults(r *http.Request, action string) *apiError {
	for {
		f := s.faults.next(action, func(f *fault) bool { return f.kind == faultDelay })
		if f == nil {
			break
		}
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		case <-s.closing:
			t.Stop()
		}
	}
	f := s.faults.next(action, func(f *fault) bool {
		return f.kind == faultThrottle || f.kind == faultStatus || f.kind == faultReset
	})
	if f == nil {
		return nil
	}
	switch f.kind {
	case faultReset:
		// net/http closes the connection (HTTP/1) or resets the stream
		// (HTTP/2) without logging.
		panic(http.ErrAbortHandler)
	case faultStatus:
		if f.status == http.StatusServiceUnavailable {
			return newError(errServiceUnavailable, "Service Unavailable")
		}
		return newError(errInternalFailure, "Internal Service Failure")
	}
	if controlPlane(action) {
		return newError(errLimitExceeded, "Rate exceeded for %s (injected).", action)
	}
	return newError(errThroughput, "Rate exceeded (injected throttling of %s).", action)
}

// namedStream resolves the stream argument of the fault-injection methods:
// a name in the default account, or a stream ARN. st is nil when there is
// no such stream.
func (s *Server) namedStream(ref string, now time.Time) (st *stream, acct, name string) {
	acct, name = s.cfg.DefaultAccount, ref
	if a, n, ok := parseStreamARN(ref); ok {
		acct, name = a, n
	}
	return s.lookup(acct, name, now), acct, name
}
