package kds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
)

// Kinesis PutRecords limits.
const (
	maxRecordBytes        = 1 << 20 // data of one record
	maxPartitionKeyChars  = 256     // Unicode characters
	maxRecordsPerRequest  = 500
	maxBytesPerRequest    = 5 << 20 // data plus partition keys of one request
	defaultRecordTTL      = 30 * time.Second
	defaultMaxConnections = 1 // the Spark connector's kinesis.sink.maxConnections
)

// Sink column names.
const (
	colPartitionKey    = "partitionKey"
	colData            = "data"
	colExplicitHashKey = "explicitHashKey"
)

// maxHashKey is 2^128-1, the largest explicit hash key.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// Sink writes batches to a Kinesis stream with PutRecords (the aws-kinesis
// sink format). Rows need a partitionKey column (string) and a data column
// (string or binary), and may have an explicitHashKey column (string, a
// decimal hash key that picks the shard).
//
// Delivery is at-least-once: a batch that fails after some records were
// written is written again in full when it is retried. AddBatch is safe
// for concurrent use.
type Sink struct {
	cfg   SinkConfig
	api   kinesisAPI
	retry *retrier
	log   *slog.Logger
	// sem holds one token per PutRecords call in flight, across batches.
	sem chan struct{}

	mu     sync.Mutex // guards closed
	closed bool

	// Counters for Stats.
	records, bytes, recordRetries, batchFailures atomic.Int64

	// KPL aggregation (sink_agg.go): the open shards' hash key ranges.
	amu      sync.Mutex // guards shards, shardsAt
	shards   []sinkShard
	shardsAt time.Time
}

var _ engine.Sink = (*Sink)(nil)

// NewSink validates cfg and returns a Sink with a Kinesis client built by
// NewClient. It does not call Kinesis. A nil logger discards logs.
//
// Zero fields take defaults: MaxConnections 1 and RecordTTL 30 s, as in the
// Spark connector, and the retry intervals of NewSource. A zero
// Retry.MaxAttempts is an error (kinesis.clientNumRetries must be >= 1).
func NewSink(ctx context.Context, cfg SinkConfig, logger *slog.Logger) (*Sink, error) {
	if err := validateSink(&cfg); err != nil {
		return nil, err
	}
	client, err := NewClient(ctx, cfg.AWS)
	if err != nil {
		return nil, err
	}
	return newSink(cfg, client, logger), nil
}

func newSink(cfg SinkConfig, api kinesisAPI, logger *slog.Logger) *Sink {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("stream", cfg.StreamName)
	return &Sink{
		cfg:   cfg,
		api:   api,
		retry: newRetrier(cfg.Retry, logger),
		log:   logger,
		sem:   make(chan struct{}, cfg.MaxConnections),
	}
}

func validateSink(cfg *SinkConfig) error {
	var errs []error
	if cfg.StreamName == "" {
		errs = append(errs, errors.New("kds sink: kinesis.streamName is required"))
	}
	if err := validateRetry(cfg.Retry); err != nil {
		errs = append(errs, err)
	}
	switch {
	case cfg.MaxConnections == 0:
		cfg.MaxConnections = defaultMaxConnections
	case cfg.MaxConnections < 0:
		errs = append(errs, fmt.Errorf("kds sink: kinesis.sink.maxConnections is %d: must be positive", cfg.MaxConnections))
	}
	switch {
	case cfg.RecordTTL == 0:
		cfg.RecordTTL = defaultRecordTTL
	case cfg.RecordTTL < 0:
		errs = append(errs, fmt.Errorf("kds sink: kinesis.sink.recordTtl is %v: must be positive", cfg.RecordTTL))
	}
	return errors.Join(errs...)
}

// Close stops accepting batches. It does not wait for AddBatch calls in
// progress; it always returns nil.
func (s *Sink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// sinkColumns are the positions of the sink's columns in a schema.
type sinkColumns struct {
	pk, data, ehk int // ehk is -1 when absent
}

func sinkSchema(batch int64, sc engine.Schema) (sinkColumns, error) {
	cols := sinkColumns{pk: sc.Index(colPartitionKey), data: sc.Index(colData), ehk: sc.Index(colExplicitHashKey)}
	names := make([]string, len(sc))
	for i, c := range sc {
		names[i] = c.Name
	}
	switch {
	case cols.pk < 0:
		return cols, fmt.Errorf("kds sink: batch %d: no %s column (columns: %s); the aws-kinesis sink needs partitionKey (string) and data (string or binary)",
			batch, colPartitionKey, strings.Join(names, ", "))
	case cols.data < 0:
		return cols, fmt.Errorf("kds sink: batch %d: no %s column (columns: %s); the aws-kinesis sink needs partitionKey (string) and data (string or binary)",
			batch, colData, strings.Join(names, ", "))
	case sc[cols.pk].Type != engine.TypeString:
		return cols, fmt.Errorf("kds sink: batch %d: column %s has type %s; want string", batch, colPartitionKey, sc[cols.pk].Type)
	case sc[cols.data].Type != engine.TypeString && sc[cols.data].Type != engine.TypeBytes:
		return cols, fmt.Errorf("kds sink: batch %d: column %s has type %s; want string or binary", batch, colData, sc[cols.data].Type)
	case cols.ehk >= 0 && sc[cols.ehk].Type != engine.TypeString:
		return cols, fmt.Errorf("kds sink: batch %d: column %s has type %s; want string", batch, colExplicitHashKey, sc[cols.ehk].Type)
	}
	return cols, nil
}

// entries validates every row and turns it into a PutRecords entry. It
// fails on the first invalid row and counts the others, before anything
// is sent.
func entries(b *engine.Batch, cols sinkColumns) ([]types.PutRecordsRequestEntry, error) {
	out := make([]types.PutRecordsRequestEntry, len(b.Rows))
	pks := make([]string, len(b.Rows)) // backing store for the *string fields: one allocation
	ehks := []string(nil)
	if cols.ehk >= 0 {
		ehks = make([]string, len(b.Rows))
	}
	var first error
	bad := 0
	for i, row := range b.Rows {
		err := entry(row, cols, &out[i], &pks[i], ehks, i)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("kds sink: batch %d row %d: %w", b.ID, i, err)
			}
			bad++
		}
	}
	if bad > 1 {
		return nil, fmt.Errorf("%w (and %d more invalid rows)", first, bad-1)
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

func entry(row engine.Row, cols sinkColumns, e *types.PutRecordsRequestEntry, pk *string, ehks []string, i int) error {
	n := max(cols.pk, cols.data, cols.ehk) + 1
	if len(row) < n {
		return fmt.Errorf("has %d values; the schema needs at least %d", len(row), n)
	}
	switch v := row[cols.pk].(type) {
	case string:
		*pk = v
	case nil:
		return errors.New("partitionKey is null")
	default:
		return fmt.Errorf("partitionKey holds a %T; want string", v)
	}
	if *pk == "" {
		return errors.New("partitionKey is empty; Kinesis needs 1 to 256 characters")
	}
	if c := utf8.RuneCountInString(*pk); c > maxPartitionKeyChars {
		return fmt.Errorf("partitionKey is %d characters; Kinesis accepts at most %d", c, maxPartitionKeyChars)
	}
	e.PartitionKey = pk

	switch v := row[cols.data].(type) {
	case []byte:
		e.Data = v
	case string:
		e.Data = []byte(v)
	case nil:
		return errors.New("data is null")
	default:
		return fmt.Errorf("data holds a %T; want string or []byte", v)
	}
	if len(e.Data) > maxRecordBytes {
		return fmt.Errorf("data is %d bytes; Kinesis accepts at most %d", len(e.Data), maxRecordBytes)
	}

	if cols.ehk >= 0 {
		switch v := row[cols.ehk].(type) {
		case nil:
		case string:
			if v == "" {
				break // no explicit hash key: the partition key decides
			}
			h, ok := new(big.Int).SetString(v, 10)
			if !ok || h.Sign() < 0 || h.Cmp(maxHashKey) > 0 || v[0] == '+' {
				return fmt.Errorf("explicitHashKey %q is not a decimal number between 0 and 2^128-1", v)
			}
			ehks[i] = v
			e.ExplicitHashKey = &ehks[i]
		default:
			return fmt.Errorf("explicitHashKey holds a %T; want string", v)
		}
	}
	return nil
}

// chunk is one PutRecords request: rows [lo, hi) of the batch.
type chunk struct{ lo, hi int }

// chunks cuts entries into requests of at most 500 records and 5 MiB of
// data plus partition keys, in order.
func chunks(es []types.PutRecordsRequestEntry) []chunk {
	var out []chunk
	lo, size := 0, 0
	for i := range es {
		sz := len(es[i].Data) + len(*es[i].PartitionKey)
		if i > lo && (i-lo == maxRecordsPerRequest || size+sz > maxBytesPerRequest) {
			out = append(out, chunk{lo, i})
			lo, size = i, 0
		}
		size += sz
	}
	if lo < len(es) {
		out = append(out, chunk{lo, len(es)})
	}
	return out
}

// AddBatch writes every row of b. It validates all rows first, so an
// invalid row fails the batch, naming the row, before any record is sent.
// Requests run with at most MaxConnections in flight. Entries a request
// could not write (FailedRecordCount > 0) are sent again, only those, with
// backoff, until RecordTTL has passed since AddBatch began; then AddBatch
// fails naming the first such row and its error code.
func (s *Sink) AddBatch(ctx context.Context, b *engine.Batch) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("kds sink: batch %d: sink is closed", b.ID)
	}
	if len(b.Rows) == 0 {
		return nil
	}
	cols, err := sinkSchema(b.ID, b.Schema)
	if err != nil {
		return err
	}
	es, err := entries(b, cols)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(s.cfg.RecordTTL)
	if s.cfg.Aggregation {
		err = s.writeAggregated(ctx, b.ID, es, deadline)
	} else {
		err = s.write(ctx, b.ID, es, deadline, nil)
	}
	if err != nil {
		s.batchFailures.Add(1)
		return err
	}
	s.records.Add(int64(len(es)))
	for i := range es {
		s.bytes.Add(int64(len(es[i].Data)))
	}
	s.log.Debug("batch written", "batch_id", b.ID, "records", len(es))
	return nil
}

// write puts es in requests of at most 500 records and 5 MiB, with at
// most MaxConnections in flight. When shards is not nil, shards[i] is set
// to the shard es[i] was written to.
func (s *Sink) write(ctx context.Context, batch int64, es []types.PutRecordsRequestEntry, deadline time.Time, shards []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, c := range chunks(es) {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-s.sem }()
			if err := s.put(ctx, batch, es, c, deadline, shards); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// writeAggregated packs es into KPL aggregates per target shard
// (aggregate) and writes them. An aggregate that Kinesis put in another
// shard than the map predicted (a reshard since the map was listed) is
// written again, re-packed with a fresh map, as the KPL does: the copy in
// the wrong shard holds sub-records outside that shard's range, which
// de-aggregating readers drop.
func (s *Sink) writeAggregated(ctx context.Context, batch int64, es []types.PutRecordsRequestEntry, deadline time.Time) error {
	rows := make([]int, len(es))
	for i := range rows {
		rows[i] = i
	}
	for len(rows) > 0 {
		shards, err := s.shardMap(ctx)
		if err != nil {
			return fmt.Errorf("kds sink: batch %d: %w", batch, err)
		}
		agg, meta := s.aggregate(shards, es, rows)
		got := make([]string, len(agg))
		if err := s.write(ctx, batch, agg, deadline, got); err != nil {
			return err
		}
		rows = rows[:0:0]
		for i, m := range meta {
			if m.rows != nil && got[i] != "" && got[i] != m.shard {
				rows = append(rows, m.rows...)
			}
		}
		if len(rows) == 0 {
			break
		}
		slices.Sort(rows)
		s.invalidateShardMap()
		if time.Now().After(deadline) {
			return fmt.Errorf("kds sink: batch %d: %d rows still aggregated for the wrong shard after kinesis.sink.recordTtl (%v): the stream keeps resharding",
				batch, len(rows), s.cfg.RecordTTL)
		}
		s.log.Info("aggregates landed in other shards than predicted (reshard): writing their rows again", "batch_id", batch, "rows", len(rows))
	}
	return nil
}

// put writes one request's entries, retrying failed entries until deadline.
// When shards is not nil it records where each entry was written.
func (s *Sink) put(ctx context.Context, batch int64, es []types.PutRecordsRequestEntry, c chunk, deadline time.Time, shards []string) error {
	// rows maps the position in the request to the row index in the batch.
	rows := make([]int, 0, c.hi-c.lo)
	for i := c.lo; i < c.hi; i++ {
		rows = append(rows, i)
	}
	req := es[c.lo:c.hi:c.hi]
	for attempt := 0; ; attempt++ {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(s.cfg.StreamName), Records: req}
		var out *kinesis.PutRecordsOutput
		err := s.retry.do(ctx, "PutRecords", s.cfg.StreamName, "", func(ctx context.Context) error {
			var err error
			out, err = s.api.PutRecords(ctx, in)
			return err
		})
		if err != nil {
			return fmt.Errorf("kds sink: batch %d rows %d to %d: %w", batch, rows[0], rows[len(rows)-1], err)
		}
		if shards != nil && len(out.Records) == len(req) {
			for i := range out.Records {
				if out.Records[i].ErrorCode == nil {
					shards[rows[i]] = aws.ToString(out.Records[i].ShardId)
				}
			}
		}
		if aws.ToInt32(out.FailedRecordCount) == 0 {
			return nil
		}
		if len(out.Records) != len(req) {
			return fmt.Errorf("kds sink: batch %d: PutRecords answered %d entries for %d records", batch, len(out.Records), len(req))
		}
		// Keep the failed entries, in order.
		var failed []types.PutRecordsRequestEntry
		var failedRows []int
		firstFailed := -1
		for i := range out.Records {
			if out.Records[i].ErrorCode == nil {
				continue
			}
			if firstFailed < 0 {
				firstFailed = i
			}
			failed = append(failed, req[i])
			failedRows = append(failedRows, rows[i])
		}
		if len(failed) == 0 {
			return nil // FailedRecordCount disagreed with the entries; all were written
		}
		left := time.Until(deadline)
		if left <= 0 {
			fe := out.Records[firstFailed]
			more := ""
			if len(failed) > 1 {
				more = fmt.Sprintf(" (and %d more records failed)", len(failed)-1)
			}
			return fmt.Errorf("kds sink: batch %d row %d: not written within kinesis.sink.recordTtl (%v): %s: %s%s",
				batch, rows[firstFailed], s.cfg.RecordTTL, aws.ToString(fe.ErrorCode), aws.ToString(fe.ErrorMessage), more)
		}
		d := min(s.retry.backoff(attempt), left)
		s.log.Warn("put records: entries failed, retrying", "batch_id", batch, "records", len(failed),
			"err", aws.ToString(out.Records[firstFailed].ErrorCode), "backoff", d)
		if err := sleep(ctx, d); err != nil {
			return err
		}
		s.recordRetries.Add(int64(len(failed)))
		req, rows = failed, failedRows
	}
}
