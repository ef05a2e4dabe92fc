package kdsfake

import (
	"net/http"
	"sync"
	"time"
)

// SubscribeToShard pacing.
const (
	// eventMaxRecords and eventMaxBytes cap one SubscribeToShardEvent.
	eventMaxRecords = 10000
	eventMaxBytes   = 1 << 20
	// heartbeat is the longest time between two events of a subscription:
	// a caught-up subscription sends an empty event this often, as AWS
	// does, so that the client sees ContinuationSequenceNumber advance.
	heartbeat = time.Second
	// takeoverAfter is how long a subscription is protected: a second
	// SubscribeToShard for the same consumer and shard within it gets
	// ResourceInUseException; after it, the new one takes over.
	takeoverAfter = 5 * time.Second
	// quotaEFOBytes is the push rate per subscription with Config.Quotas.
	quotaEFOBytes = 2 << 20
)

// subKey identifies a subscription: one per consumer and shard.
type subKey struct {
	consumerARN string
	shardID     string
}

// subscription is one running SubscribeToShard event stream.
type subscription struct {
	key     subKey
	st      *stream
	started time.Time
	end     chan struct{} // closed to end the stream cleanly
	endOnce sync.Once
	// breakWith, set before end is closed, ends the stream abnormally
	// instead: breakReset drops the connection (resets the HTTP/2
	// stream), any other value is the exception type sent.
	breakWith string
}

// breakReset is subscription.breakWith for a dropped connection.
const breakReset = "reset"

func (sub *subscription) stop() { sub.endOnce.Do(func() { close(sub.end) }) }

// subRegistry tracks running subscriptions.
type subRegistry struct {
	mu   sync.Mutex
	subs map[subKey]*subscription
}

func (r *subRegistry) init() { r.subs = make(map[subKey]*subscription) }

// acquire registers a subscription for key, or fails with
// ResourceInUseException when one younger than takeoverAfter runs. An older
// one is ended and replaced, as on AWS.
func (r *subRegistry) acquire(key subKey, st *stream, now time.Time) (*subscription, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.subs[key]; old != nil {
		if now.Sub(old.started) < takeoverAfter {
			return nil, errInUse("Another active subscription exists for consumer %s and shard %s.", key.consumerARN, key.shardID)
		}
		old.stop()
	}
	sub := &subscription{key: key, st: st, started: now, end: make(chan struct{})}
	r.subs[key] = sub
	return sub, nil
}

// release unregisters sub when it ends.
func (r *subRegistry) release(sub *subscription) {
	r.mu.Lock()
	if r.subs[sub.key] == sub {
		delete(r.subs, sub.key)
	}
	r.mu.Unlock()
	sub.stop()
}

// endWhere ends the subscriptions for which match is true and returns how
// many it ended.
func (r *subRegistry) endWhere(match func(*subscription) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, sub := range r.subs {
		if match(sub) {
			sub.stop()
			delete(r.subs, k)
			n++
		}
	}
	return n
}

func (r *subRegistry) endStream(st *stream) {
	r.endWhere(func(sub *subscription) bool { return sub.st == st })
}

func (r *subRegistry) endConsumer(arn string) {
	r.endWhere(func(sub *subscription) bool { return sub.key.consumerARN == arn })
}

func (s *Server) subscribeToShard(c *call) error {
	var in struct {
		ConsumerARN      string
		ShardId          string
		StartingPosition *struct {
			Type           string
			SequenceNumber string
			Timestamp      timestampNumber
		}
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.ConsumerARN == "" {
		return errValidate("1 validation error detected: Value null at 'consumerARN' failed to satisfy constraint: Member must not be null")
	}
	if in.ShardId == "" {
		return errValidate("1 validation error detected: Value null at 'shardId' failed to satisfy constraint: Member must not be null")
	}
	if in.StartingPosition == nil {
		return errValidate("1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null")
	}
	st, co, err := c.consumer(consumerRequest{ConsumerARN: in.ConsumerARN})
	if err != nil {
		return err
	}
	st.mu.RLock()
	if status := co.status(c.now); status != statusActive {
		st.mu.RUnlock()
		return errInUse("Consumer %s is not ACTIVE, instead in state %s.", co.arn, status)
	}
	if err := st.readable(c.now); err != nil {
		st.mu.RUnlock()
		return err
	}
	sh := st.shardByID(in.ShardId)
	if sh == nil || !st.listed(sh, c.now) {
		st.mu.RUnlock()
		return shardNotFound(st.account, st.name, in.ShardId)
	}
	p := in.StartingPosition
	after, err := startingPosition(st, sh, p.Type, p.SequenceNumber, p.Timestamp, c.now, "SubscribeToShard")
	st.mu.RUnlock()
	if err != nil {
		return err
	}
	sub, err := s.subs.acquire(subKey{co.arn, sh.id}, st, c.now)
	if err != nil {
		return err
	}
	defer s.subs.release(sub)
	if err := startEventStream(c.w); err != nil {
		return nil // the client went away
	}
	s.log.Debug("subscription started", "stream", st.name, "shard_id", sh.id, "consumer", co.name)
	s.pushEvents(c, sub, sh, after)
	s.subs.mu.Lock()
	broken := sub.breakWith
	s.subs.mu.Unlock()
	switch broken {
	case "":
	case breakReset:
		s.log.Debug("subscription reset", "stream", st.name, "shard_id", sh.id, "consumer", co.name)
		panic(http.ErrAbortHandler)
	default:
		_ = writeException(c.w, broken, exceptionPayload("Injected "+broken+" for shard "+sh.id+" (kdsfake BreakSubscriptions)."))
	}
	s.log.Debug("subscription ended", "stream", st.name, "shard_id", sh.id, "consumer", co.name)
	return nil
}

// pushEvents sends SubscribeToShardEvents from position after until the
// shard ends, the subscription expires or is ended, or the client goes away.
func (s *Server) pushEvents(c *call, sub *subscription, sh *shard, after uint64) {
	st := sub.st
	deadline := c.now.Add(s.cfg.SubscriptionTTL)
	var (
		quota   bucket
		lastOut time.Time // real time of the last event
		sent    bool
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	ctx := c.r.Context()
	for {
		select {
		case <-sub.end:
			return
		default:
		}
		now := s.now()
		if !now.Before(deadline) {
			return
		}
		st.mu.RLock()
		if st.deleting || sh.gone {
			st.mu.RUnlock()
			return
		}
		notify := st.notify
		res := st.read(sh, after, eventMaxRecords, eventMaxBytes, now)
		var children []byte
		if res.end {
			children = appendChildShards(nil, st, sh)
		}
		st.mu.RUnlock()

		if len(res.recs) > 0 || !sent || res.end || time.Since(lastOut) >= heartbeat {
			if err := s.writeShardEvent(c, sh, res, children); err != nil {
				return
			}
			sent, lastOut, after = true, time.Now(), res.after
			if res.end {
				return
			}
		}

		wait := heartbeat - time.Since(lastOut)
		if s.cfg.Quotas && res.bytes > 0 {
			// Paced on real time, as the pause is a real timer.
			quota.refill(time.Now(), quotaEFOBytes, quotaEFOBytes)
			quota.level -= float64(res.bytes)
			if quota.level < 0 {
				// Pace the push to the per-consumer shard throughput.
				wait = time.Duration(-quota.level / quotaEFOBytes * float64(time.Second))
				res.continuing = false
				notify = nil // sleep the whole pause
			}
		}
		if res.continuing {
			continue
		}
		wait = min(wait, deadline.Sub(now))
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-notify:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		case <-sub.end:
			return
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

// writeShardEvent writes one SubscribeToShardEvent for res. children is
// the ChildShards array at a closed shard's end.
func (s *Server) writeShardEvent(c *call, sh *shard, res readResult, children []byte) error {
	bp := getBuf()
	b := (*bp)[:0]
	b = append(b, `{"Records":[`...)
	for i := range res.recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRecord(b, &res.recs[i], sh.idx)
	}
	b = append(b, `],"MillisBehindLatest":`...)
	b = appendInt(b, res.behind)
	if res.end {
		b = append(b, `,"ChildShards":`...)
		b = append(b, children...)
	} else {
		b = append(b, `,"ContinuationSequenceNumber":"`...)
		b = appendSeq(b, max(res.after, sh.startCounter), sh.idx)
		b = append(b, '"')
	}
	b = append(b, '}')
	err := writeEvent(c.w, "SubscribeToShardEvent", b)
	if err == nil {
		s.eventBytes.Add(int64(len(b)))
	}
	putBuf(bp, b)
	return err
}
