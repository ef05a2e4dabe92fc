package kds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
// The buffer (shardBuffer) is bounded by BufferRecords (strictly:
// GetRecords' Limit is the room left) and BufferBytes (fetching stops once
// it is reached, so it may be exceeded by at most one page).
type shardReader struct {
	shardBuffer
	api      kinesisAPI
	retry    *retrier
	log      *slog.Logger
	stream   string
	start    engine.Start
	limit    int
	interval time.Duration

	readerLife

	// Owned by loop.
	iter    *string
	lastSeq string // sequence number of the last record GetRecords returned
}

func newShardReader(s *Source, shardID string, from engine.Start) *shardReader {
	return &shardReader{
		shardBuffer: newShardBuffer(shardID, s.cfg.BufferRecords, s.cfg.BufferBytes),
		api:         s.api,
		retry:       s.retry,
		log:         s.log.With("shard_id", shardID),
		stream:      s.cfg.StreamName,
		start:       from,
		limit:       s.cfg.RecordsPerFetch,
		interval:    s.cfg.FetchInterval,
		readerLife:  readerLife{done: make(chan struct{})},
	}
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

// deliver appends a page to the buffer and reports whether the shard
// ended (no NextShardIterator).
func (r *shardReader) deliver(out *kinesis.GetRecordsOutput) bool {
	if n := len(out.Records); n > 0 {
		r.lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
	}
	mbl := int64(-1)
	if out.MillisBehindLatest != nil {
		mbl = *out.MillisBehindLatest
	}
	ended := out.NextShardIterator == nil
	r.add(out.Records, mbl, ended, out.ChildShards)
	return ended || r.failed() // a data loss found by add stops the reader
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
		// The buffer de-aggregates (shardBuffer.add), so the filter sees
		// every sub-record with its SubSequenceNumber.
		r.filter.seq, r.filter.sub = st.Seq, st.Sub+1
		r.filter.expect = st.Seq
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
