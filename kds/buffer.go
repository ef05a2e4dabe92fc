package kds

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/kds/kpl"
)

// shardBuffer is the bounded record buffer and state of one shard reader,
// shared by the polling and the enhanced fan-out readers. It implements
// Peek, Release and Ready of engine.ShardReader; the reader adds Close.
//
// One goroutine (the reader's) writes with add, fail and waitRoom; the
// engine calls Peek, Release and Ready from others. The bounds are
// BufferRecords and BufferBytes; a reader waits (waitRoom) while either is
// reached, so the buffer exceeds them by at most one page or event.
type shardBuffer struct {
	shardID    string
	maxRecords int
	maxBytes   int

	ready chan struct{} // cap 1: signalled on every state change, never closed
	room  chan struct{} // cap 1: signalled by Release to wake a reader waiting on a full buffer
	// wake, set by NotifyWake, is signalled with ready: the engine's own
	// channel, so that no goroutine forwards ready to it.
	wake atomic.Pointer[chan<- struct{}]

	mu           sync.Mutex // guards buf, head, bytes, ended, atTail, millisBehind, children, err
	buf          []engine.Record
	head         int // buf[head:] are the buffered records; buf[:head] were released
	bytes        int // sum of Size() over buf[head:]
	ended        bool
	atTail       bool
	millisBehind int64
	children     []engine.ShardInfo
	err          error

	// filter is owned by the writing goroutine (used by add under mu).
	filter startFilter
	// De-aggregation, owned by the writing goroutine.
	deagg kplReader
}

// kplStats are the source's KPL de-aggregation counters, shared by its
// shard readers.
type kplStats struct {
	deaggregated atomic.Int64 // user records taken out of aggregates
	corrupt      atomic.Int64 // records with the KPL magic that failed the checks, emitted whole
	filtered     atomic.Int64 // sub-records outside the shard's hash key range, dropped
}

// kplReader de-aggregates the KPL records a shard reader receives.
type kplReader struct {
	d     kpl.Deaggregator // d.Verifier: the source's, shared by its readers
	stats *kplStats        // nil: no counting (tests)
	// verifier returns the source's shared SIMD digest verifier; it is
	// asked at the first aggregate, so a stream without KPL records never
	// starts one. nil verifies with crypto/md5.
	verifier func() *kpl.Verifier
	page     [][]byte // scratch: the Data of the page being added
	// hashRange is the shard's hash key range, resolved by resolveRange
	// at the first aggregate (a sub-record outside it belongs to another
	// shard: the KCL drops it); nil resolveRange keeps every sub-record.
	hashRange    kpl.HashRange
	resolved     bool
	resolveRange func() kpl.HashRange
}

// verifyPage checks the MD5 digests of every aggregate of a page together
// (multi-buffer SIMD: the digests are the cost of de-aggregation), outside
// the buffer's lock, since a shared verifier may make it wait for lanes.
// ParseVerified then uses the results.
func (k *kplReader) verifyPage(recs []types.Record) {
	if k.d.Verifier == nil && k.verifier != nil {
		k.d.Verifier = k.verifier()
	}
	for i := range recs {
		k.page = append(k.page, recs[i].Data)
	}
	k.d.VerifyPage(k.page)
	clear(k.page) // keep no reference to the page
	k.page = k.page[:0]
}

// rangeFor returns the shard's hash key range, resolving it once.
func (k *kplReader) rangeFor() kpl.HashRange {
	if !k.resolved {
		k.hashRange, k.resolved = kpl.FullRange, true
		if k.resolveRange != nil {
			k.hashRange = k.resolveRange()
		}
	}
	return k.hashRange
}

func newShardBuffer(shardID string, maxRecords, maxBytes int) shardBuffer {
	return shardBuffer{
		shardID:      shardID,
		maxRecords:   maxRecords,
		maxBytes:     maxBytes,
		ready:        make(chan struct{}, 1),
		room:         make(chan struct{}, 1),
		millisBehind: -1,
	}
}

// startFilter drops records the start position excludes but the Kinesis
// iterator (or subscription) cannot: sub-records of the start record
// before the start's sub-sequence number, and records that arrived before
// an AT_TIMESTAMP start that was clamped to now. Both only apply at the
// very beginning of the shard, so each switches itself off at the first
// record it keeps.
type startFilter struct {
	// expect is the record a resumed reader must see first (it resumes AT
	// the last record read). Any other first record means the records in
	// between were trimmed: a data loss, reported instead of skipped.
	expect   string
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

// Peek returns up to max buffered records, oldest first, and the reader's
// state. The records stay valid until the next Release.
func (b *shardBuffer) Peek(max int) engine.Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.buf) - b.head
	k := min(max, n)
	snap := engine.Snapshot{
		Buffered:           n,
		Ended:              b.ended,
		Full:               n >= b.maxRecords || b.bytes >= b.maxBytes,
		AtTail:             b.atTail,
		MillisBehindLatest: b.millisBehind,
		Children:           b.children,
		Err:                b.err,
	}
	if k > 0 {
		// The cap keeps a caller's append from writing over records the
		// reader appends later.
		snap.Records = b.buf[b.head : b.head+k : b.head+k]
	}
	return snap
}

// Release drops the n oldest buffered records and wakes the reader if it
// was waiting for room.
func (b *shardBuffer) Release(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	n = min(n, len(b.buf)-b.head)
	dropped := b.buf[b.head : b.head+n]
	for i := range dropped {
		b.bytes -= dropped[i].Size()
	}
	clear(dropped) // let the record data go
	b.head += n
	switch {
	case b.head == len(b.buf):
		b.buf, b.head = b.buf[:0], 0
	case b.head > cap(b.buf)/2:
		// Reuse the array instead of letting append grow a new one.
		// Safe: Release ends the validity of every peeked slice.
		m := copy(b.buf, b.buf[b.head:])
		clear(b.buf[m:])
		b.buf, b.head = b.buf[:m], 0
	}
	b.mu.Unlock()
	select {
	case b.room <- struct{}{}:
	default:
	}
}

// Ready receives a value after each state change: new records, tail
// reached, shard end, error.
func (b *shardBuffer) Ready() <-chan struct{} { return b.ready }

// NotifyWake makes every later change also signal ch, without blocking.
// The engine passes its wake channel, so that a change (an enhanced fan-out
// event) wakes the planner directly rather than through a goroutine that
// forwards Ready.
func (b *shardBuffer) NotifyWake(ch chan<- struct{}) { b.wake.Store(&ch) }

func (b *shardBuffer) signal() {
	select {
	case b.ready <- struct{}{}:
	default:
	}
	if w := b.wake.Load(); w != nil {
		select {
		case *w <- struct{}{}:
		default:
		}
	}
}

// failed reports whether the buffer holds a failure: the reader stops.
func (b *shardBuffer) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil
}

// fail records a failure the reader could not retry past. A shard that
// no longer exists is reported as data loss.
func (b *shardBuffer) fail(err error) {
	if isNotFound(err) {
		err = &engine.DataLossError{ShardID: b.shardID, Gone: true, Err: err}
	}
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return // the first failure stands
	}
	b.err = err
	b.mu.Unlock()
	b.signal()
}

// waitRoom blocks while the buffer is full and returns how many records
// fit, or false when ctx ends.
func (b *shardBuffer) waitRoom(ctx context.Context) (int, bool) {
	for {
		b.mu.Lock()
		n, by := len(b.buf)-b.head, b.bytes
		b.mu.Unlock()
		if n < b.maxRecords && by < b.maxBytes {
			return b.maxRecords - n, true
		}
		select {
		case <-b.room:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// add appends records read from the shard (a GetRecords page or a
// SubscribeToShardEvent), updates the tail and end state, and signals
// Ready. mbl is MillisBehindLatest (-1: unknown). ended marks the shard's
// end, with its children.
//
// KPL aggregates are de-aggregated here, for both readers: each user
// record becomes its own Record with the outer sequence number and arrival
// time and its index in the aggregate as SubSequenceNumber. A whole
// Kinesis record is always handed over at once, so the start filter sees
// every sub-record and a position can end inside an aggregate. A record
// with the magic bytes that fails the checks (MD5, protobuf) is kept
// whole, as a plain record, and counted; sub-records outside the shard's
// hash key range are dropped and counted (the KCL's filter). The
// sub-sequence numbers of the others do not change, so positions are the
// same in every shard and after any restart.
//
// This is the hot path: each record is converted in place into the buffer
// (its Data, strings and time are shared with the SDK's response, not
// copied; a sub-record's Data slices the aggregate), with no allocation
// per record besides the buffer's growth (one per aggregate for its keys).
func (b *shardBuffer) add(recs []types.Record, mbl int64, ended bool, children []types.ChildShard) {
	var hashRange kpl.HashRange
	for i := range recs {
		if kpl.IsAggregated(recs[i].Data) {
			// Resolved outside mu: it may call ListShards once.
			hashRange = b.deagg.rangeFor()
			b.deagg.verifyPage(recs)
			break
		}
	}
	var deaggregated, corrupt, filtered int64
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return // stopped: nothing after a failure is kept
	}
	if b.filter.expect != "" && len(recs) > 0 {
		if first := aws.ToString(recs[0].SequenceNumber); first != b.filter.expect {
			b.err = &engine.DataLossError{ShardID: b.shardID,
				After:          &engine.Position{Seq: b.filter.expect, Sub: b.filter.sub - 1},
				FirstAvailable: &engine.Position{Seq: first}}
			b.mu.Unlock()
			b.signal()
			return
		}
		b.filter.expect = ""
	}
	added := 0
	wasTail := b.atTail
	for i := range recs {
		k := &recs[i]
		outer := engine.Record{
			Data:                        k.Data,
			PartitionKey:                aws.ToString(k.PartitionKey),
			SequenceNumber:              aws.ToString(k.SequenceNumber),
			ApproximateArrivalTimestamp: aws.ToTime(k.ApproximateArrivalTimestamp),
			ShardID:                     b.shardID,
		}
		subs, status := b.deagg.d.ParseVerified(i, k.Data)
		switch status {
		case kpl.Corrupt:
			corrupt++
			fallthrough
		case kpl.Plain:
			if b.push(&outer) {
				added++
			}
			continue
		}
		deaggregated += int64(len(subs))
		filter := !hashRange.IsFull()
		for j := range subs {
			u := &subs[j]
			if filter && !hashRange.Contains(kpl.EffectiveHashKey(u.PartitionKey, u.ExplicitHashKey)) {
				filtered++
				continue
			}
			rec := outer
			rec.Data, rec.PartitionKey, rec.ExplicitHashKey = u.Data, u.PartitionKey, u.ExplicitHashKey
			rec.SubSequenceNumber = int64(j)
			if b.push(&rec) {
				added++
			}
		}
	}
	b.millisBehind = mbl
	// Only an empty page (or event) proves the tail: some servers report
	// 0 behind on every page, even far from the tail.
	if len(recs) > 0 {
		b.atTail = false
	} else if mbl == 0 {
		b.atTail = true
	}
	if ended {
		b.ended = true
		b.children = childShards(children)
	}
	changed := added > 0 || ended || b.atTail != wasTail
	b.mu.Unlock()
	if st := b.deagg.stats; st != nil {
		if deaggregated > 0 {
			st.deaggregated.Add(deaggregated)
		}
		if corrupt > 0 {
			st.corrupt.Add(corrupt)
		}
		if filtered > 0 {
			st.filtered.Add(filtered)
		}
	}
	if changed {
		b.signal()
	}
}

// push appends rec to the buffer unless the start filter drops it, and
// reports whether it did. b.mu must be held.
func (b *shardBuffer) push(rec *engine.Record) bool {
	if b.filter.active() && !b.filter.keep(rec) {
		return false
	}
	b.buf = append(b.buf, *rec)
	b.bytes += rec.Size()
	return true
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

// readerLife is the goroutine of a shard reader, the same for the polling
// and the enhanced fan-out reader: it runs the reader's loop until the
// shard ends, ctx ends or the loop fails, and then records the failure in
// the buffer for the engine.
type readerLife struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop returns
}

// start runs loop in a goroutine; cancel stops it.
func (l *readerLife) start(ctx context.Context, cancel context.CancelFunc, b *shardBuffer, log *slog.Logger, loop func(context.Context) error) {
	l.cancel = cancel
	go func() {
		defer close(l.done)
		err := loop(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Debug("shard reader stopped", "err", err)
		b.fail(err)
	}()
}

// Close stops the reader and waits for its goroutine. It may be called
// more than once.
func (l *readerLife) Close() {
	l.cancel()
	<-l.done
}
