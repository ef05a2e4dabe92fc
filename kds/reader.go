package kds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
)

const (
	// maxExpiredRefresh bounds back-to-back ExpiredIteratorExceptions (no
	// page read in between) before the reader gives up: a fresh iterator
	// that expires at once means something else is wrong.
	maxExpiredRefresh = 3
	// maxClockSkew is how far a lagging server clock may be behind ours
	// before an AT_TIMESTAMP start it rejects is treated as a plain error.
	maxClockSkew = 5 * time.Minute
)

// shardReader is one shard's long-lived polling reader (engine.ShardReader).
//
// One goroutine (run) owns the iterator and calls GetShardIterator and
// GetRecords; the engine calls Peek, Release, Ready and Close from others.
// The buffer is bounded by BufferRecords (strictly: GetRecords' Limit is
// the room left) and BufferBytes (fetching stops once it is reached, so it
// may be exceeded by at most one page).
type shardReader struct {
	api        kinesisAPI
	retry      *retrier
	log        *slog.Logger
	stream     string
	shardID    string
	start      engine.Start
	limit      int
	interval   time.Duration
	maxRecords int
	maxBytes   int

	ready  chan struct{} // cap 1: signalled on every state change, never closed
	room   chan struct{} // cap 1: signalled by Release to wake a reader waiting on a full buffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu           sync.Mutex // guards buf, head, bytes, ended, atTail, millisBehind, children, err
	buf          []engine.Record
	head         int // buf[head:] are the buffered records; buf[:head] were released
	bytes        int // sum of Size() over buf[head:]
	ended        bool
	atTail       bool
	millisBehind int64
	children     []engine.ShardInfo
	err          error

	// Owned by run.
	iter    *string
	lastSeq string // sequence number of the last record GetRecords returned
	filter  startFilter
}

// startFilter drops records the start position excludes but the Kinesis
// iterator cannot: sub-records of the start record before the start's
// sub-sequence number, and records that arrived before an AT_TIMESTAMP
// start that was clamped to now. Both only apply at the very beginning of
// the shard, so each switches itself off at the first record it keeps.
type startFilter struct {
	seq      string // drop records with SequenceNumber == seq and SubSequenceNumber < sub
	sub      int64
	notAfter time.Time // drop records that arrived before notAfter
}

func (f *startFilter) active() bool { return f.seq != "" || !f.notAfter.IsZero() }

// keep reports whether r passes the filter, and turns it off at the first
// record it keeps.
func (f *startFilter) keep(r *engine.Record) bool {
	if f.seq != "" {
		if r.SequenceNumber == f.seq && r.SubSequenceNumber < f.sub {
			return false
		}
		f.seq = ""
	}
	if !f.notAfter.IsZero() {
		if r.ApproximateArrivalTimestamp.Before(f.notAfter) {
			return false
		}
		f.notAfter = time.Time{}
	}
	return true
}

func newShardReader(s *Source, shardID string, from engine.Start) *shardReader {
	return &shardReader{
		api:          s.api,
		retry:        s.retry,
		log:          s.log.With("shard_id", shardID),
		stream:       s.cfg.StreamName,
		shardID:      shardID,
		start:        from,
		limit:        s.cfg.RecordsPerFetch,
		interval:     s.cfg.FetchInterval,
		maxRecords:   s.cfg.BufferRecords,
		maxBytes:     s.cfg.BufferBytes,
		ready:        make(chan struct{}, 1),
		room:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		millisBehind: -1,
	}
}

// Peek returns up to max buffered records, oldest first, and the reader's
// state. The records stay valid until the next Release.
func (r *shardReader) Peek(max int) engine.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.buf) - r.head
	k := min(max, n)
	snap := engine.Snapshot{
		Buffered:           n,
		Ended:              r.ended,
		Full:               n >= r.maxRecords || r.bytes >= r.maxBytes,
		AtTail:             r.atTail,
		MillisBehindLatest: r.millisBehind,
		Children:           r.children,
		Err:                r.err,
	}
	if k > 0 {
		// The cap keeps a caller's append from writing over records the
		// reader appends later.
		snap.Records = r.buf[r.head : r.head+k : r.head+k]
	}
	return snap
}

// Release drops the n oldest buffered records and wakes the reader if it
// was waiting for room.
func (r *shardReader) Release(n int) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	n = min(n, len(r.buf)-r.head)
	dropped := r.buf[r.head : r.head+n]
	for i := range dropped {
		r.bytes -= dropped[i].Size()
	}
	clear(dropped) // let the record data go
	r.head += n
	switch {
	case r.head == len(r.buf):
		r.buf, r.head = r.buf[:0], 0
	case r.head > cap(r.buf)/2:
		// Reuse the array instead of letting append grow a new one.
		// Safe: Release ends the validity of every peeked slice.
		m := copy(r.buf, r.buf[r.head:])
		clear(r.buf[m:])
		r.buf, r.head = r.buf[:m], 0
	}
	r.mu.Unlock()
	select {
	case r.room <- struct{}{}:
	default:
	}
}

// Ready receives a value after each state change: new records, tail
// reached, shard end, error.
func (r *shardReader) Ready() <-chan struct{} { return r.ready }

// Close stops the reader and waits for its goroutine. It may be called
// more than once.
func (r *shardReader) Close() {
	r.cancel()
	<-r.done
}

func (r *shardReader) signal() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (r *shardReader) run(ctx context.Context) {
	defer close(r.done)
	err := r.loop(ctx)
	if err == nil || ctx.Err() != nil {
		return
	}
	r.log.Debug("shard reader stopped", "err", err)
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	r.signal()
}

// loop polls until the shard ends, ctx ends, or a call fails for good.
func (r *shardReader) loop(ctx context.Context) error {
	if err := r.newIterator(ctx, r.start); err != nil {
		return err
	}
	var (
		next    time.Time // earliest start of the next GetRecords call
		expired int
		in      kinesis.GetRecordsInput
		limit   int32
	)
	for {
		room, ok := r.waitRoom(ctx)
		if !ok {
			return nil
		}
		if d := time.Until(next); d > 0 {
			if sleep(ctx, d) != nil {
				return nil
			}
		}
		now := time.Now()
		next = now.Add(r.interval)

		limit = int32(min(r.limit, room))
		in = kinesis.GetRecordsInput{ShardIterator: r.iter, Limit: &limit}
		var out *kinesis.GetRecordsOutput
		err := r.retry.do(ctx, "GetRecords", r.stream, r.shardID, func(ctx context.Context) error {
			var err error
			out, err = r.api.GetRecords(ctx, &in)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if _, ok := errors.AsType[*types.ExpiredIteratorException](err); ok && expired < maxExpiredRefresh {
				expired++
				if err := r.refreshIterator(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		expired = 0
		if r.deliver(out) {
			return nil // shard end
		}
		r.iter = out.NextShardIterator
		if len(out.Records) == 0 && r.interval < emptyPagePause {
			next = now.Add(emptyPagePause)
		}
	}
}

// waitRoom blocks while the buffer is full and returns how many records
// fit, or false when ctx ends.
func (r *shardReader) waitRoom(ctx context.Context) (int, bool) {
	for {
		r.mu.Lock()
		n, b := len(r.buf)-r.head, r.bytes
		r.mu.Unlock()
		if n < r.maxRecords && b < r.maxBytes {
			return r.maxRecords - n, true
		}
		select {
		case <-r.room:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// deliver appends a page to the buffer, updates the tail and end state,
// and signals Ready. It reports whether the shard ended.
//
// This is the hot path: each record is converted in place into the buffer
// (its Data, strings and time are shared with the SDK's response, not
// copied), with no allocation besides the buffer's growth.
func (r *shardReader) deliver(out *kinesis.GetRecordsOutput) bool {
	recs := out.Records
	if len(recs) > 0 {
		r.lastSeq = aws.ToString(recs[len(recs)-1].SequenceNumber)
	}
	mbl := int64(-1)
	if out.MillisBehindLatest != nil {
		mbl = *out.MillisBehindLatest
	}
	ended := out.NextShardIterator == nil

	r.mu.Lock()
	added := 0
	wasTail := r.atTail
	for i := range recs {
		k := &recs[i]
		r.buf = append(r.buf, engine.Record{
			Data:                        k.Data,
			PartitionKey:                aws.ToString(k.PartitionKey),
			SequenceNumber:              aws.ToString(k.SequenceNumber),
			ApproximateArrivalTimestamp: aws.ToTime(k.ApproximateArrivalTimestamp),
			ShardID:                     r.shardID,
		})
		rec := &r.buf[len(r.buf)-1]
		if r.filter.active() && !r.filter.keep(rec) {
			*rec = engine.Record{}
			r.buf = r.buf[:len(r.buf)-1]
			continue
		}
		r.bytes += rec.Size()
		added++
	}
	r.millisBehind = mbl
	// Only an empty page proves the tail: some servers report 0 behind
	// on every page, even far from the tail.
	if len(recs) > 0 {
		r.atTail = false
	} else if mbl == 0 {
		r.atTail = true
	}
	if ended {
		r.ended = true
		r.children = childShards(out.ChildShards)
	}
	changed := added > 0 || ended || r.atTail != wasTail
	r.mu.Unlock()
	if changed {
		r.signal()
	}
	return ended
}

func childShards(cs []types.ChildShard) []engine.ShardInfo {
	if len(cs) == 0 {
		return nil
	}
	out := make([]engine.ShardInfo, 0, len(cs))
	for _, c := range cs {
		si := engine.ShardInfo{ID: aws.ToString(c.ShardId), Parents: c.ParentShards}
		if h := c.HashKeyRange; h != nil {
			si.HashKeyStart = aws.ToString(h.StartingHashKey)
			si.HashKeyEnd = aws.ToString(h.EndingHashKey)
		}
		out = append(out, si)
	}
	return out
}

// refreshIterator replaces an expired iterator: right after the last
// record read, or at the original start when none was read yet.
func (r *shardReader) refreshIterator(ctx context.Context) error {
	from := r.start
	if r.lastSeq != "" {
		// Every record of lastSeq was delivered (de-aggregation hands over
		// all sub-records of a Kinesis record at once), so the Kinesis
		// AFTER_SEQUENCE_NUMBER is exact here.
		from = engine.Start{Type: engine.AfterSequenceNumber, Seq: r.lastSeq}
		r.log.Debug("iterator expired, resuming after last record", "seq_start", r.lastSeq)
		return r.getIterator(ctx, types.ShardIteratorTypeAfterSequenceNumber, from.Seq, time.Time{})
	}
	r.log.Debug("iterator expired, restarting at the start position")
	return r.newIterator(ctx, from)
}

// newIterator gets the iterator for a start position and sets up the start
// filter for what the iterator alone cannot express.
func (r *shardReader) newIterator(ctx context.Context, st engine.Start) error {
	r.filter = startFilter{}
	switch st.Type {
	case engine.TrimHorizon:
		return r.getIterator(ctx, types.ShardIteratorTypeTrimHorizon, "", time.Time{})

	case engine.AtSequenceNumber:
		if st.Sub > 0 {
			r.filter.seq, r.filter.sub = st.Seq, st.Sub
		}
		return r.getIterator(ctx, types.ShardIteratorTypeAtSequenceNumber, st.Seq, time.Time{})

	case engine.AfterSequenceNumber:
		// Start AT the record and drop its sub-records up to and including
		// st.Sub. For a plain record (sub-sequence 0 only) this equals the
		// Kinesis AFTER_SEQUENCE_NUMBER; for a KPL aggregate it resumes
		// inside the aggregate, which AFTER_SEQUENCE_NUMBER would skip.
		// TODO(kpl): de-aggregation must set SubSequenceNumber on each
		// sub-record for this filter to see them.
		r.filter.seq, r.filter.sub = st.Seq, st.Sub+1
		return r.getIterator(ctx, types.ShardIteratorTypeAtSequenceNumber, st.Seq, time.Time{})

	case engine.AtTimestamp:
		ts := st.Timestamp
		if now := time.Now(); ts.After(now) {
			// Kinesis rejects timestamps in the future. Ask for now
			// instead and drop what arrived before ts ourselves, which is
			// exactly what AT_TIMESTAMP(ts) would return.
			r.filter.notAfter = ts
			ts = now
		}
		err := r.getIterator(ctx, types.ShardIteratorTypeAtTimestamp, "", ts)
		if isFutureTimestampError(err) && time.Since(ts) < maxClockSkew {
			// The server's clock is behind ours and finds ts in its
			// future. LATEST is its now, which is before ts: with the
			// filter this still returns exactly the records from ts on.
			r.log.Debug("AT_TIMESTAMP start is in the server's future, using LATEST", "timestamp", st.Timestamp, "err", err)
			r.filter.notAfter = st.Timestamp
			return r.getIterator(ctx, types.ShardIteratorTypeLatest, "", time.Time{})
		}
		return err
	}
	return fmt.Errorf("kds: shard %s: unknown start type %q", r.shardID, st.Type)
}

// isFutureTimestampError reports whether GetShardIterator rejected an
// AT_TIMESTAMP start for being in the server's future. AWS and kinesalite
// say "cannot be greater than the currentTimestampInMillis", kinesis-mock
// "cannot be in the future". Any other InvalidArgumentException must not
// turn into LATEST, which could skip records.
func isFutureTimestampError(err error) bool {
	e, ok := errors.AsType[*types.InvalidArgumentException](err)
	if !ok {
		return false
	}
	msg := strings.ToLower(e.ErrorMessage())
	return strings.Contains(msg, "future") || strings.Contains(msg, "greater than the current")
}

func (r *shardReader) getIterator(ctx context.Context, typ types.ShardIteratorType, seq string, ts time.Time) error {
	in := &kinesis.GetShardIteratorInput{
		StreamName:        aws.String(r.stream),
		ShardId:           aws.String(r.shardID),
		ShardIteratorType: typ,
	}
	if seq != "" {
		in.StartingSequenceNumber = aws.String(seq)
	}
	if !ts.IsZero() {
		in.Timestamp = aws.Time(ts)
	}
	var out *kinesis.GetShardIteratorOutput
	err := r.retry.do(ctx, "GetShardIterator", r.stream, r.shardID, func(ctx context.Context) error {
		var err error
		out, err = r.api.GetShardIterator(ctx, in)
		return err
	})
	if err != nil {
		return err
	}
	if out.ShardIterator == nil {
		return &CallError{Op: "GetShardIterator", Stream: r.stream, Shard: r.shardID, Attempts: 1,
			Err: errors.New("no shard iterator in the response")}
	}
	r.iter = out.ShardIterator
	return nil
}
