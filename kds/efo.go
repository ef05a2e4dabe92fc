package kds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
)

// Enhanced fan-out defaults and rules.
const (
	defaultSubscribeTimeout = 60 * time.Second
	defaultSubscribeRetries = 10
	// defaultEventReadTimeout: Kinesis sends an event at least every few
	// seconds, an empty one when the shard is idle; this long without one
	// means the subscription is broken.
	defaultEventReadTimeout = 30 * time.Second
	// minResubscribe is the least time between two SubscribeToShard calls
	// for one shard: Kinesis answers ResourceInUseException to a second
	// call within 5 s of a successful one.
	minResubscribe = 5 * time.Second
	// inUseJitter is added to the 5 s wait after ResourceInUseException.
	inUseJitter = time.Second
)

// validateEFO checks the enhanced fan-out fields and fills in defaults.
func validateEFO(cfg *SourceConfig) []error {
	var errs []error
	switch {
	case cfg.ConsumerType == "" || strings.EqualFold(string(cfg.ConsumerType), string(GetRecords)):
		cfg.ConsumerType = GetRecords
		return nil
	case strings.EqualFold(string(cfg.ConsumerType), string(SubscribeToShard)):
		cfg.ConsumerType = SubscribeToShard
	default:
		return []error{fmt.Errorf("kds: kinesis.consumerType %q: want GetRecords or SubscribeToShard", cfg.ConsumerType)}
	}
	e := &cfg.EFO
	if e.ConsumerName == "" && e.ConsumerARN == "" {
		errs = append(errs, errors.New("kds: kinesis.consumerName is required with kinesis.consumerType=SubscribeToShard (or kinesis.consumerARN)"))
	}
	if e.ConsumerARN != "" && e.ConsumerName == "" {
		// The name is the ARN's ".../consumer/<name>:<timestamp>" part.
		if _, rest, ok := strings.Cut(e.ConsumerARN, "/consumer/"); ok {
			e.ConsumerName, _, _ = strings.Cut(rest, ":")
		}
	}
	switch {
	case e.Registration == "" || strings.EqualFold(string(e.Registration), string(RegisterAuto)):
		e.Registration = RegisterAuto
	case strings.EqualFold(string(e.Registration), string(RegisterOnly)):
		e.Registration = RegisterOnly
	default:
		errs = append(errs, fmt.Errorf("kds: kinesis.consumerRegistration %q: want auto or register-only", e.Registration))
	}
	switch {
	case e.SubscribeTimeout == 0:
		e.SubscribeTimeout = defaultSubscribeTimeout
	case e.SubscribeTimeout < 0:
		errs = append(errs, fmt.Errorf("kds: kinesis.subscribeToShard.timeoutSec is %v: must be positive", e.SubscribeTimeout))
	}
	switch {
	case e.MaxRetries == 0:
		e.MaxRetries = defaultSubscribeRetries
	case e.MaxRetries < 0:
		errs = append(errs, fmt.Errorf("kds: kinesis.subscribeToShard.maxRetries is %d: must be positive", e.MaxRetries))
	}
	if e.ReadTimeout <= 0 {
		e.ReadTimeout = defaultEventReadTimeout
	}
	return errs
}

// efoReader is one shard's long-lived enhanced fan-out reader
// (engine.ShardReader): one subscription at a time, kept open across
// batches and renewed from the last continuation sequence number when
// Kinesis ends it (after at most 5 minutes).
//
// One goroutine (run) owns the subscription; the engine calls Peek,
// Release, Ready and Close from others. Backpressure: while the buffer is
// full the reader takes no event, so the HTTP/2 stream's window fills and
// Kinesis stops sending; the buffer exceeds its bounds by at most one
// event. A subscription that expires meanwhile is renewed from the
// continuation, so nothing is lost.
type efoReader struct {
	shardBuffer
	src   *Source
	log   *slog.Logger
	start engine.Start
	readerLife

	// Owned by run.
	cont          string    // last ContinuationSequenceNumber
	lastSubscribe time.Time // start of the last SubscribeToShard call
}

func newEFOReader(s *Source, shardID string, from engine.Start) *efoReader {
	return &efoReader{
		shardBuffer: newShardBuffer(shardID, s.cfg.BufferRecords, s.cfg.BufferBytes),
		src:         s,
		log:         s.log.With("shard_id", shardID, "consumer", s.cfg.EFO.ConsumerName),
		start:       from,
		readerLife:  readerLife{done: make(chan struct{})},
	}
}

// loop subscribes until the shard ends, ctx ends, or subscribing failed
// MaxRetries times in a row.
func (r *efoReader) loop(ctx context.Context) error {
	cfg := r.src.cfg.EFO
	failures := 0
	for {
		if _, ok := r.waitRoom(ctx); !ok {
			return nil
		}
		if !r.lastSubscribe.IsZero() {
			// Never within 5 s of the last call for this shard: Kinesis
			// would refuse it, and a failing subscription cannot loop hot.
			if err := sleep(ctx, minResubscribe-time.Since(r.lastSubscribe)); err != nil {
				return nil
			}
		}
		arn, err := r.src.consumer(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		healthy, ended, err := r.subscribe(ctx, arn)
		if ctx.Err() != nil {
			return nil
		}
		if ended {
			r.log.Debug("shard end reached")
			return nil
		}
		if healthy {
			failures = 0 // the budget counts failures in a row
		}
		if err == nil {
			r.log.Debug("subscription ended, renewing", "seq_start", r.cont)
			r.src.renewals.Add(1)
			continue
		}
		failures++
		if failures > cfg.MaxRetries || !subscribeRetryable(err) {
			r.src.retry.countFailure("SubscribeToShard")
			return &CallError{Op: "SubscribeToShard", Stream: r.src.cfg.StreamName, Shard: r.shardID, Attempts: failures, Err: err}
		}
		r.src.retry.countRetry("SubscribeToShard")
		if isThrottle(err) {
			r.src.retry.countThrottle("SubscribeToShard")
		}
		var wait time.Duration
		switch {
		case isInUse(err):
			// Another subscription of this consumer and shard is active
			// (a previous one not yet released, or another process): the
			// rest of the 5 s since the last call, plus jitter. The jitter
			// comes after the 5 s, not within them (where the 5 s wait
			// at the top of the loop would absorb it), so two processes
			// contending for a subscription drift apart.
			wait = minResubscribe - time.Since(r.lastSubscribe) + fullJitter(inUseJitter)
		default:
			wait = r.src.retry.backoff(failures - 1)
		}
		r.log.Warn("subscription failed, retrying", "api", "SubscribeToShard", "attempt", failures, "backoff", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return nil
		}
		if isNotFound(err) {
			// The consumer or the shard may be gone: check both (and
			// register the consumer again when this source may).
			if err := r.src.recheck(ctx, r.shardID, arn); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// subscribeRetryable reports whether a failed subscription is retried:
// ResourceInUse, ResourceNotFound (after a re-check), throttling, 5xx,
// timeouts, and transport failures (a connection or HTTP/2 stream reset
// mid-event carries no API error). Other API errors (validation, access
// denied) fail at once.
func subscribeRetryable(err error) bool {
	if isInUse(err) || isNotFound(err) || isRetryable(err) {
		return true
	}
	var to interface{ Timeout() bool }
	if errors.As(err, &to) && to.Timeout() {
		return true
	}
	switch errorCode(err) {
	case "InternalFailureException", "InternalFailure", "ServiceUnavailableException", "ServiceUnavailable":
		// A server fault sent as an event stream exception carries no
		// HTTP status (the stream was accepted with 200 before it broke):
		// retried like a 5xx answer.
		return true
	case "":
	default:
		return false
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() >= 400 && status.HTTPStatusCode() < 500 {
		return false
	}
	return true
}

// subscribeTimeoutError is a SubscribeToShard call not accepted within
// kinesis.subscribeToShard.timeoutSec; it is retried.
type subscribeTimeoutError struct{ after time.Duration }

func (e *subscribeTimeoutError) Error() string {
	return fmt.Sprintf("subscription not accepted within %s (kinesis.subscribeToShard.timeoutSec)", e.after)
}

func (e *subscribeTimeoutError) Timeout() bool { return true }

// eventTimeoutError is a subscription that delivered no event for too long.
type eventTimeoutError struct{ after time.Duration }

func (e *eventTimeoutError) Error() string {
	return fmt.Sprintf("no event for %s: read timeout", e.after)
}

func (e *eventTimeoutError) Timeout() bool { return true }

// subscribe runs one subscription until Kinesis ends it (err nil), the
// shard ends (ended), it fails, or ctx ends. healthy reports whether it
// delivered at least one event.
func (r *efoReader) subscribe(ctx context.Context, arn string) (healthy, ended bool, err error) {
	cfg := r.src.cfg.EFO
	in := &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String(arn),
		ShardId:          aws.String(r.shardID),
		StartingPosition: r.position(),
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.lastSubscribe = time.Now()
	r.src.subscribes.Add(1)
	var raw rawEventStream
	timer := time.AfterFunc(cfg.SubscribeTimeout, func() { cancel(nil) })
	_, err = r.src.efo.SubscribeToShard(sctx, in, raw.option)
	if !timer.Stop() {
		if raw.body != nil {
			raw.body.Close()
		}
		return false, false, &subscribeTimeoutError{after: cfg.SubscribeTimeout}
	}
	if err != nil {
		if raw.body != nil {
			raw.body.Close() // a step after the deserializer failed
		}
		return false, false, err
	}
	if raw.body == nil {
		return false, false, errors.New("SubscribeToShard returned no event stream (the call's middleware was not installed)")
	}
	defer raw.body.Close()
	r.log.Debug("subscribed", "type", in.StartingPosition.Type, "seq_start", aws.ToString(in.StartingPosition.SequenceNumber))

	stream := newSubStream(raw.body)
	defer stream.watch(cfg.ReadTimeout, cancel)()
	for {
		// Backpressure: take no event while the buffer is full; the
		// stream's HTTP/2 window then fills and Kinesis stops sending.
		if _, ok := r.waitRoom(ctx); !ok {
			return healthy, false, nil
		}
		e, err := stream.next()
		switch {
		case ctx.Err() != nil:
			return healthy, false, nil
		case err != nil && sctx.Err() != nil:
			return healthy, false, context.Cause(sctx) // the read timeout cut the stream
		case err == io.EOF:
			return healthy, false, nil // Kinesis ended the subscription
		case err != nil:
			return healthy, false, err
		}
		healthy = true
		ended, ok := r.deliver(ctx, e)
		if !ok {
			return healthy, false, nil
		}
		if ended {
			return true, true, nil
		}
	}
}

// deliver appends an event's records to the buffer and tracks the
// continuation, also from events with no records: a LATEST or AT_TIMESTAMP
// start becomes a concrete position with the first event, and an idle
// shard's position is never lost. It reports whether the shard ended (no
// continuation), and false when ctx ended first.
//
// An event may hold more records than the buffer has room for: they are
// moved in as Release makes room, so the buffer keeps its record bound as
// in polling mode, and the reader holds at most one event besides it.
func (r *efoReader) deliver(ctx context.Context, e *types.SubscribeToShardEvent) (ended, ok bool) {
	ended = e.ContinuationSequenceNumber == nil
	if !ended {
		r.cont = *e.ContinuationSequenceNumber
	}
	mbl := int64(-1)
	if e.MillisBehindLatest != nil {
		mbl = *e.MillisBehindLatest
	}
	recs := e.Records
	for len(recs) > 0 {
		room, ok := r.waitRoom(ctx)
		if !ok {
			return false, false
		}
		k := min(room, len(recs))
		last := k == len(recs)
		r.add(recs[:k], mbl, ended && last, e.ChildShards)
		recs = recs[k:]
	}
	if len(e.Records) == 0 {
		r.add(nil, mbl, ended, e.ChildShards)
	}
	return ended, true
}

// position is where the next subscription starts: after the last
// continuation, or at the reader's start (setting up the start filter for
// what SubscribeToShard cannot express, as the polling reader does).
func (r *efoReader) position() *types.StartingPosition {
	if r.cont != "" {
		// The filter is kept: a clamped AT_TIMESTAMP start still drops
		// records that arrived before it, after any number of renewals.
		return &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(r.cont)}
	}
	st := r.start
	r.filter = startFilter{}
	switch st.Type {
	case engine.AtSequenceNumber:
		if st.Sub > 0 {
			r.filter.seq, r.filter.sub = st.Seq, st.Sub
		}
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(st.Seq)}
	case engine.AfterSequenceNumber:
		// AT the record, dropping its sub-records up to st.Sub: exact for
		// KPL aggregates, which AFTER_SEQUENCE_NUMBER would skip whole.
		r.filter.seq, r.filter.sub = st.Seq, st.Sub+1
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(st.Seq)}
	case engine.AtTimestamp:
		ts := st.Timestamp
		if now := time.Now(); ts.After(now) {
			// Kinesis rejects a future timestamp: ask for now and drop
			// what arrived before ts.
			r.filter.notAfter = ts
			ts = now
		}
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(ts)}
	}
	return &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
}
