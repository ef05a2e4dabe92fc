package datagen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// PutRecords limits that Produce keeps to.
const (
	MaxBatchRecords      = 500     // records per PutRecords request
	MaxBatchBytes        = 5 << 20 // data plus partition keys per request
	MaxRecordBytes       = 1 << 20 // data plus partition key of one record
	MaxPartitionKeyChars = 256     // Unicode characters of a partition key
)

// Defaults for zero Config fields.
const (
	DefaultMaxAttempts    = 10
	DefaultRequestTimeout = 30 * time.Second
	// DefaultPartitionKey is the partition key template when
	// Config.PartitionKey is nil.
	DefaultPartitionKey = "{{random.uuid}}"
	// DefaultRecordTemplate is the event of `shardflow produce` without a
	// template and of `shardflow demo` (the AWS blog's scenario): an id
	// from 0 to 100, a country and the current time, e.g.
	//
	//	{"id": 42, "data": "Spain", "date": "2026-11-25 10:00:00"}
	DefaultRecordTemplate = `{"id": {{random.number(100)}}, "data": "{{address.country}}", "date": "{{date.now("YYYY-MM-DD HH:mm:ss")}}"}`
)

// Backoff between requests that carry retried records: full jitter,
// doubling from retryInitial up to retryMax.
const (
	retryInitial = 100 * time.Millisecond
	retryMax     = 5 * time.Second
)

// linger is how much of the rate Produce gathers into one request when
// Rate is set: a request carries up to Rate×linger records (at least one,
// at most BatchSize), so a paced producer makes about 1/linger requests a
// second instead of one per record.
const linger = 100 * time.Millisecond

// Putter is the part of the Kinesis client Produce calls. *kinesis.Client
// implements it; tests pass a fake.
type Putter interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

var _ Putter = (*kinesis.Client)(nil)

// Config configures Produce. Client, Stream and Record are required; every
// other zero value has a meaning given with the field.
type Config struct {
	Client Putter
	Stream string
	// Record renders each record's data.
	Record *Template
	// PartitionKey renders each record's partition key; nil means
	// DefaultPartitionKey (a random UUID). A rendered key must have 1 to
	// 256 characters.
	PartitionKey *Template

	// Rate is the number of new records a second; 0 sends as fast as
	// requests complete. Retried records do not count against it.
	Rate float64
	// Count stops Produce after that many records were generated and each
	// was written or given up; 0 means no limit.
	Count int64
	// Duration stops generating records after that long; records already
	// generated are still written or given up. 0 means no limit.
	Duration time.Duration
	// Stop, when closed, stops Produce gracefully: the request in flight
	// completes, records waiting for a retry are given up (counted in
	// Failed) and Produce returns nil. nil never stops.
	Stop <-chan struct{}

	// BatchSize is the most records per PutRecords request, 1 to 500; 0
	// means 500. A request also stays within 5 MiB.
	BatchSize int
	// MaxAttempts is how many times one record is sent before it is given
	// up; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// RequestTimeout bounds each PutRecords call; 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration

	// Rand is the source of every random choice of the templates; nil
	// means a randomly seeded one. Produce uses it from one goroutine.
	Rand *rand.Rand
	// Now is the time each record renders (date.now and friends); nil
	// means time.Now. Pacing always uses the real clock.
	Now func() time.Time
	// Progress, if set, is called after every request with the totals so
	// far, on Produce's goroutine: it should return quickly.
	Progress func(Stats)
	// Logger receives request failures (Warn) and per-request detail
	// (Debug); nil discards.
	Logger *slog.Logger
}

// Stats are Produce's totals.
type Stats struct {
	Sent     int64         // records Kinesis accepted
	Failed   int64         // records given up: out of attempts, not retryable, or pending at Stop
	Retries  int64         // records sent again after a failure
	Errors   int64         // failed entries plus failed requests
	Bytes    int64         // data bytes of the records sent
	Requests int64         // PutRecords calls made
	Elapsed  time.Duration // since Produce started
	// LastErr is the last failure (an entry's error code and message, or a
	// request's error), or nil.
	LastErr error
}

// Produce renders records from cfg.Record and writes them to cfg.Stream
// with PutRecords until cfg.Count records were generated and resolved,
// cfg.Duration has passed, or cfg.Stop is closed; with none of these it
// runs until ctx ends.
//
// Requests carry at most cfg.BatchSize records and 5 MiB. Entries a request
// could not write (FailedRecordCount > 0) with a retryable code
// (ProvisionedThroughputExceededException, InternalFailure,
// KMSThrottlingException) are sent again, only those, after a backoff, up to
// cfg.MaxAttempts sends each; a request that fails as a whole with a
// retryable error (throttling, 5xx, network) is retried the same way.
// Records given up are counted in Stats.Failed; they do not fail Produce.
//
// Produce returns nil after a normal stop (count, duration, Stop). It
// returns an error for an invalid cfg, a record or partition key Kinesis
// would reject (too large, empty key), a request error that no retry can
// fix (a missing stream, denied access), cfg.MaxAttempts requests in a row
// failing as a whole (nothing gets through), and ctx's error, unwrapped,
// when ctx ends: the request in flight is then abandoned. The Stats
// returned are the totals so far in every case.
func Produce(ctx context.Context, cfg Config) (Stats, error) {
	if err := cfg.validate(); err != nil {
		return Stats{}, err
	}
	p := newProducer(cfg)
	return p.run(ctx)
}

func (c *Config) validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("missing Client"))
	}
	if c.Stream == "" {
		errs = append(errs, errors.New("missing Stream"))
	}
	if c.Record == nil {
		errs = append(errs, errors.New("missing Record"))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("invalid Rate %v: must be a finite number >= 0", c.Rate))
	}
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("invalid Count %d: must be >= 0", c.Count))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("invalid Duration %v: must be >= 0", c.Duration))
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatchRecords {
		errs = append(errs, fmt.Errorf("invalid BatchSize %d: must be between 1 and %d (0 means %d)", c.BatchSize, MaxBatchRecords, MaxBatchRecords))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("invalid MaxAttempts %d: must be >= 0", c.MaxAttempts))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("invalid RequestTimeout %v: must be >= 0", c.RequestTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("datagen: invalid config: %w", err)
	}
	return nil
}

// pending is a record waiting to be sent: carried over from a full request
// or failed. It owns data.
type pending struct {
	data     []byte
	key      string
	attempts int // sends so far
}

// producer is one Produce call's state, owned by its goroutine.
type producer struct {
	cfg   Config
	log   *slog.Logger
	r     *rand.Rand
	now   func() time.Time
	start time.Time
	stats Stats

	queue     []pending // sent before new records
	generated int64
	genDone   bool // no new records: Count reached, Duration over or stopped
	stopped   bool // Stop was closed
	deadline  <-chan time.Time
	failures  int // consecutive requests with failures, for the backoff
	reqErrs   int // consecutive requests that failed as a whole

	bucket bucket
	arena  []byte    // this request's new records' data
	pkBuf  []byte    // scratch for partition keys
	items  []pending // this request's records
	in     kinesis.PutRecordsInput
}

func newProducer(cfg Config) *producer {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = MaxBatchRecords
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.PartitionKey == nil {
		cfg.PartitionKey = MustParse(DefaultPartitionKey)
	}
	p := &producer{cfg: cfg, log: cfg.Logger, r: cfg.Rand, now: cfg.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.r == nil {
		p.r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.in.StreamName = aws.String(cfg.Stream)
	return p
}

func (p *producer) snapshot() Stats {
	s := p.stats
	s.Elapsed = time.Since(p.start)
	return s
}

func (p *producer) run(ctx context.Context) (Stats, error) {
	p.start = time.Now()
	if p.cfg.Duration > 0 {
		t := time.NewTimer(p.cfg.Duration)
		defer t.Stop()
		p.deadline = t.C
	}
	if p.cfg.Rate > 0 {
		burst := math.Ceil(p.cfg.Rate * linger.Seconds())
		burst = max(1, min(float64(p.cfg.BatchSize), burst))
		p.bucket = bucket{rate: p.cfg.Rate, burst: burst, tokens: burst, last: p.start}
	}
	for {
		if err := ctx.Err(); err != nil {
			return p.snapshot(), err
		}
		p.poll()
		if p.cfg.Count > 0 && p.generated >= p.cfg.Count {
			p.genDone = true
		}
		if p.stopped {
			p.giveUpQueue()
			break
		}
		if p.genDone && len(p.queue) == 0 {
			break
		}
		if p.failures > 0 && len(p.queue) > 0 {
			if err := p.wait(ctx, backoff(p.failures-1)); err != nil {
				return p.snapshot(), err
			}
			if p.stopped {
				continue
			}
		}
		if err := p.fill(ctx); err != nil {
			return p.snapshot(), err
		}
		if len(p.items) == 0 {
			continue
		}
		if err := p.send(ctx); err != nil {
			return p.snapshot(), err
		}
		if p.cfg.Progress != nil {
			p.cfg.Progress(p.snapshot())
		}
	}
	return p.snapshot(), nil
}

// poll notes, without blocking, a closed Stop or a passed Duration.
func (p *producer) poll() {
	select {
	case <-p.cfg.Stop:
		p.stopped, p.genDone = true, true
	default:
	}
	select {
	case <-p.deadline:
		p.genDone, p.deadline = true, nil
	default:
	}
}

func (p *producer) giveUpQueue() {
	if len(p.queue) > 0 {
		p.stats.Failed += int64(len(p.queue))
		p.stats.LastErr = fmt.Errorf("stopped with %d records waiting for a retry", len(p.queue))
		p.queue = nil
	}
}

// wait sleeps for d, or until ctx ends, Stop is closed or Duration passes
// (the last two are noted and end the wait early). It returns only ctx's
// error.
func (p *producer) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.cfg.Stop:
		p.stopped, p.genDone = true, true
	case <-p.deadline:
		p.genDone, p.deadline = true, nil
	}
	return nil
}

// fill gathers the next request into p.items: queued records first, then
// new ones, within BatchSize, 5 MiB and, for new records, the rate.
func (p *producer) fill(ctx context.Context) error {
	p.items = p.items[:0]
	p.arena = p.arena[:0]
	size := 0
	for len(p.queue) > 0 && len(p.items) < p.cfg.BatchSize {
		q := p.queue[0]
		sz := len(q.data) + len(q.key)
		if len(p.items) > 0 && size+sz > MaxBatchBytes {
			return nil
		}
		p.items = append(p.items, q)
		size += sz
		p.queue = p.queue[1:]
	}
	if p.genDone || len(p.items) == p.cfg.BatchSize {
		return nil
	}
	want := int64(p.cfg.BatchSize - len(p.items))
	if p.cfg.Count > 0 {
		want = min(want, p.cfg.Count-p.generated)
	}
	if p.cfg.Rate > 0 {
		if len(p.items) == 0 {
			// Nothing to send yet: wait until a request's worth of
			// tokens (or all that is left of Count) is there.
			need := min(float64(want), p.bucket.burst)
			for {
				p.bucket.refill(time.Now())
				if p.bucket.tokens >= need {
					break
				}
				if err := p.wait(ctx, p.bucket.until(need)); err != nil {
					return err
				}
				if p.genDone {
					return nil
				}
			}
		} else {
			p.bucket.refill(time.Now())
		}
		want = min(want, int64(p.bucket.tokens))
	}
	for range want {
		if p.cfg.Rate > 0 {
			p.bucket.tokens--
		}
		now := p.now()
		start := len(p.arena)
		p.arena = p.cfg.Record.Execute(p.arena, p.r, now)
		data := p.arena[start:len(p.arena):len(p.arena)]
		p.pkBuf = p.cfg.PartitionKey.Execute(p.pkBuf[:0], p.r, now)
		p.generated++
		if err := checkRecord(data, p.pkBuf, p.generated); err != nil {
			return err
		}
		key := string(p.pkBuf)
		sz := len(data) + len(key)
		if size+sz > MaxBatchBytes {
			// Full: this record opens the next request.
			p.queue = append(p.queue, pending{data: bytes.Clone(data), key: key})
			return nil
		}
		p.items = append(p.items, pending{data: data, key: key})
		size += sz
	}
	return nil
}

// checkRecord rejects what Kinesis would: a template that renders these is
// wrong, so Produce stops instead of failing every record.
func checkRecord(data, key []byte, n int64) error {
	switch chars := utf8.RuneCount(key); {
	case chars == 0:
		return fmt.Errorf("datagen: record %d: the partition key template rendered an empty key; Kinesis needs 1 to %d characters", n, MaxPartitionKeyChars)
	case chars > MaxPartitionKeyChars:
		return fmt.Errorf("datagen: record %d: the partition key has %d characters; Kinesis accepts at most %d", n, chars, MaxPartitionKeyChars)
	case len(data)+len(key) > MaxRecordBytes:
		return fmt.Errorf("datagen: record %d: %d bytes of data and partition key; Kinesis accepts at most %d (1 MiB) per record", n, len(data)+len(key), MaxRecordBytes)
	}
	return nil
}

// send makes one PutRecords request of p.items and sorts out the result.
func (p *producer) send(ctx context.Context) error {
	entries := make([]types.PutRecordsRequestEntry, len(p.items))
	for i := range p.items {
		entries[i] = types.PutRecordsRequestEntry{Data: p.items[i].data, PartitionKey: aws.String(p.items[i].key)}
	}
	p.in.Records = entries
	rctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	out, err := p.cfg.Client.PutRecords(rctx, &p.in)
	cancel()
	p.in.Records = nil
	p.stats.Requests++
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.stats.Errors++
		p.stats.LastErr = err
		if !retryable(err) {
			p.stats.Failed += int64(len(p.items))
			return fmt.Errorf("datagen: PutRecords to stream %q: %w", p.cfg.Stream, err)
		}
		p.failures++
		p.reqErrs++
		if p.reqErrs >= p.cfg.MaxAttempts {
			// Nothing gets through (a wrong endpoint, a dead network):
			// say so instead of giving up record after record forever.
			p.stats.Failed += int64(len(p.items))
			return fmt.Errorf("datagen: PutRecords to stream %q failed %d times in a row: %w", p.cfg.Stream, p.reqErrs, err)
		}
		p.log.Warn("PutRecords failed, retrying its records", "stream", p.cfg.Stream, "records", len(p.items), "err", err)
		for i := range p.items {
			p.retry(p.items[i])
		}
		return nil
	}
	p.reqErrs = 0
	if len(out.Records) != len(p.items) {
		p.stats.Failed += int64(len(p.items))
		return fmt.Errorf("datagen: PutRecords to stream %q answered %d entries for %d records", p.cfg.Stream, len(out.Records), len(p.items))
	}
	failed := 0
	for i, res := range out.Records {
		if res.ErrorCode == nil {
			p.stats.Sent++
			p.stats.Bytes += int64(len(p.items[i].data))
			continue
		}
		failed++
		p.stats.Errors++
		code := aws.ToString(res.ErrorCode)
		p.stats.LastErr = fmt.Errorf("%s: %s", code, aws.ToString(res.ErrorMessage))
		if retryableCode(code) {
			p.retry(p.items[i])
		} else {
			p.stats.Failed++
		}
	}
	if failed > 0 {
		p.failures++
		p.log.Debug("PutRecords entries failed", "stream", p.cfg.Stream, "records", len(p.items), "failed", failed, "err", p.stats.LastErr)
	} else {
		p.failures = 0
		p.log.Debug("PutRecords", "stream", p.cfg.Stream, "records", len(p.items))
	}
	return nil
}

// retry queues a record for another send, or gives it up after
// MaxAttempts sends.
func (p *producer) retry(it pending) {
	it.attempts++
	if it.attempts >= p.cfg.MaxAttempts {
		p.stats.Failed++
		return
	}
	// Records of this request's arena are overwritten by the next one.
	it.data = bytes.Clone(it.data)
	p.queue = append(p.queue, it)
	p.stats.Retries++
}

// backoff is the wait before the next request after n+1 consecutive
// requests with failures: full jitter in [0, min(retryMax,
// retryInitial·2^n)]. The jitter does not use Config.Rand, so retries do
// not change the records a seed renders.
func backoff(n int) time.Duration {
	ceiling := retryInitial
	for i := 0; i < n && ceiling < retryMax; i++ {
		ceiling *= 2
	}
	return rand.N(min(ceiling, retryMax) + 1)
}

// retryableCode is the classifier for PutRecords entry error codes: the
// documented ProvisionedThroughputExceededException and InternalFailure
// clear up with time, as does KMS throttling. The other KMS codes (key
// disabled, access denied, not found) need someone to fix the key, so
// retrying them only delays the report.
func retryableCode(code string) bool {
	switch code {
	case "ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException":
		return true
	}
	return false
}

// retryable is the classifier for failed PutRecords requests. Retried:
// throttling (the request is valid and succeeds once the quota refills),
// HTTP 5xx (the service failed, not the request) and network errors (the
// request may never have arrived). A 4xx answer is the request's fault:
// a missing stream or denied access stays that way.
func retryable(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ProvisionedThroughputExceededException", "LimitExceededException",
			"ThrottlingException", "Throttling", "KMSThrottlingException":
			return true
		}
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		if code := status.HTTPStatusCode(); code != 0 {
			return code >= 500
		}
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// bucket is a token bucket: tokens refill at rate a second up to burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// until is how long until the bucket holds need tokens.
func (b *bucket) until(need float64) time.Duration {
	missing := need - b.tokens
	if missing <= 0 {
		return 0
	}
	return max(time.Duration(math.Ceil(missing/b.rate*float64(time.Second))), time.Microsecond)
}
