package kds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/kds/kpl"
)

// Defaults for zero fields of SourceConfig. The per-shard buffer bounds
// keep at most two full GetRecords pages or 16 MiB per shard.
const (
	defaultRecordsPerFetch = 10000 // the GetRecords maximum, as in the Spark connector
	defaultBufferRecords   = 2 * defaultRecordsPerFetch
	defaultBufferBytes     = 16 << 20
	maxRecordsPerFetch     = 10000 // GetRecords Limit accepts 1..10000

	// emptyPagePause is the least wait after an empty page when
	// FetchInterval is 0, so an idle shard is not polled in a busy loop.
	emptyPagePause = 200 * time.Millisecond
)

// Source is a Kinesis stream read by polling (GetRecords) or enhanced
// fan-out (SubscribeToShard, see efo.go). It implements engine.Source: it
// lists shards with their lineage, resolves kinesis.startingPosition, and
// opens one long-lived reader per shard. In enhanced fan-out mode it also
// implements engine.Lifecycle, which registers and deregisters the
// consumer, and never calls GetRecords.
//
// A Source is safe for concurrent use.
type Source struct {
	cfg   SourceConfig
	api   kinesisAPI
	retry *retrier
	log   *slog.Logger

	// pageSize is ListShards' MaxResults; 0 lets the service choose. Tests
	// set it to exercise pagination.
	pageSize int32

	mu       sync.Mutex // guards shards, listedAt; held during a listing so concurrent callers share it
	shards   []engine.ShardInfo
	listedAt time.Time

	// Enhanced fan-out (ConsumerType SubscribeToShard); see consumer.go.
	efo         efoAPI
	subscribes  atomic.Int64 // SubscribeToShard calls made
	renewals    atomic.Int64 // subscriptions renewed after a normal end
	cmu         sync.Mutex   // guards streamARN, consumerARN, owned, state; held during registration
	streamARN   string
	consumerARN string // the ACTIVE consumer; "" until known
	owned       bool   // this query registered the consumer (checkpoint sources/0)
	state       engine.StateStore

	kpl kplStats // KPL de-aggregation counters of every reader

	// The SIMD digest verifier the readers share (see kpl.Verifier),
	// started at the first aggregate and closed when its last reader is.
	vmu      sync.Mutex
	verifier *kpl.Verifier
	vusers   int
}

var _ engine.Source = (*Source)(nil)

// NewSource validates cfg and returns a Source with a Kinesis client built
// by NewClient. It does not call Kinesis. A nil logger discards logs.
//
// Zero fields take defaults: RecordsPerFetch 10000, BufferRecords 20000,
// BufferBytes 16 MiB, retry intervals 1 s and 10 s. A zero
// Retry.MaxAttempts is an error (kinesis.clientNumRetries must be >= 1).
// DescribeShardInterval 0 lists shards on every ListShards call, and
// FetchInterval 0 polls back to back while records come, pausing 200 ms
// after an empty page.
func NewSource(ctx context.Context, cfg SourceConfig, logger *slog.Logger) (*Source, error) {
	if err := validateSource(&cfg); err != nil {
		return nil, err
	}
	window := 0
	if cfg.ConsumerType == SubscribeToShard {
		window = efoStreamWindow(cfg.BufferBytes)
	}
	client, err := newClient(ctx, cfg.AWS, window)
	if err != nil {
		return nil, err
	}
	return newSource(cfg, client, logger), nil
}

// newSource returns a Source on api; cfg must be validated.
func newSource(cfg SourceConfig, api kinesisAPI, logger *slog.Logger) *Source {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("stream", cfg.StreamName)
	s := &Source{
		cfg:   cfg,
		api:   api,
		retry: newRetrier(cfg.Retry, logger),
		log:   logger,
	}
	s.efo, _ = api.(efoAPI)
	return s
}

func (s *Source) efoMode() bool { return s.cfg.ConsumerType == SubscribeToShard }

// validateSource checks cfg and fills in defaults.
func validateSource(cfg *SourceConfig) error {
	var errs []error
	if cfg.StreamName == "" {
		errs = append(errs, errors.New("kds: kinesis.streamName is required"))
	}
	if err := validateRetry(cfg.Retry); err != nil {
		errs = append(errs, err)
	}
	if cfg.DescribeShardInterval < 0 {
		errs = append(errs, fmt.Errorf("kds: kinesis.describeShardInterval is %v: must not be negative", cfg.DescribeShardInterval))
	}
	if cfg.FetchInterval < 0 {
		errs = append(errs, fmt.Errorf("kds: kinesis.getRecords.fetchIntervalMs is %v: must not be negative", cfg.FetchInterval))
	}
	switch {
	case cfg.RecordsPerFetch == 0:
		cfg.RecordsPerFetch = defaultRecordsPerFetch
	case cfg.RecordsPerFetch < 0 || cfg.RecordsPerFetch > maxRecordsPerFetch:
		errs = append(errs, fmt.Errorf("kds: kinesis.getRecords.numberOfRecordsPerFetch is %d: must be between 1 and %d", cfg.RecordsPerFetch, maxRecordsPerFetch))
	}
	switch {
	case cfg.BufferRecords == 0:
		cfg.BufferRecords = defaultBufferRecords
	case cfg.BufferRecords < 0:
		errs = append(errs, fmt.Errorf("kds: shardflow.buffer.maxRecordsPerShard is %d: must be positive", cfg.BufferRecords))
	}
	switch {
	case cfg.BufferBytes == 0:
		cfg.BufferBytes = defaultBufferBytes
	case cfg.BufferBytes < 0:
		errs = append(errs, fmt.Errorf("kds: shardflow.buffer.maxBytesPerShard is %d: must be positive", cfg.BufferBytes))
	}
	if _, err := resolveStartingPosition(cfg.StartingPosition, time.Now()); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, validateEFO(cfg)...)
	return errors.Join(errs...)
}

// Describe returns "KinesisSource[<stream>]", the description in progress
// records.
func (s *Source) Describe() string { return "KinesisSource[" + s.cfg.StreamName + "]" }

// Stream returns the stream name.
func (s *Source) Stream() string { return s.cfg.StreamName }

// ResolveInitial resolves kinesis.startingPosition once, at the query's
// first start (invariant 5): LATEST becomes AT_TIMESTAMP(now), so records
// written while the query is down are never skipped on restart;
// TRIM_HORIZON and EARLIEST become TRIM_HORIZON; AT_TIMESTAMP keeps its
// time; the JSON form gives per-shard starts plus a default resolved the
// same way. It does not call Kinesis.
func (s *Source) ResolveInitial(_ context.Context, now time.Time) (engine.InitialPosition, error) {
	return resolveStartingPosition(s.cfg.StartingPosition, now)
}

// seqPattern is the API reference's pattern for sequence numbers.
var seqPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,128})$`)

func resolveStartingPosition(sp StartingPosition, now time.Time) (engine.InitialPosition, error) {
	kind := strings.ToUpper(strings.TrimSpace(sp.Kind))
	if kind == "SHARDS" {
		def := strings.ToUpper(strings.TrimSpace(sp.Default))
		if def == "AT_TIMESTAMP" && sp.Timestamp.IsZero() {
			return engine.InitialPosition{}, errors.New("kds: kinesis.startingPosition: the default position AT_TIMESTAMP needs a timestamp")
		}
		p, err := resolveKind(def, sp.Timestamp, now)
		if err != nil {
			return engine.InitialPosition{}, err
		}
		if len(sp.Shards) > 0 {
			p.Shards = make(map[string]engine.Start, len(sp.Shards))
		}
		for id, pos := range sp.Shards {
			st, err := resolveShardPosition(id, pos, p, now)
			if err != nil {
				return engine.InitialPosition{}, err
			}
			p.Shards[id] = st
		}
		return p, nil
	}
	if kind == "AT_TIMESTAMP" && sp.Timestamp.IsZero() {
		return engine.InitialPosition{}, errors.New("kds: kinesis.startingPosition is AT_TIMESTAMP but no timestamp is given")
	}
	return resolveKind(kind, sp.Timestamp, now)
}

// resolveKind resolves LATEST (the default when empty), TRIM_HORIZON,
// EARLIEST and AT_TIMESTAMP.
func resolveKind(kind string, ts, now time.Time) (engine.InitialPosition, error) {
	switch kind {
	case "", "LATEST":
		return engine.InitialPosition{Type: engine.AtTimestamp, Timestamp: now}, nil
	case "TRIM_HORIZON", "EARLIEST":
		return engine.InitialPosition{Type: engine.TrimHorizon}, nil
	case "AT_TIMESTAMP":
		return engine.InitialPosition{Type: engine.AtTimestamp, Timestamp: ts}, nil
	}
	return engine.InitialPosition{}, fmt.Errorf("kds: kinesis.startingPosition %q: want LATEST, TRIM_HORIZON, EARLIEST, AT_TIMESTAMP or a JSON object of per-shard positions", kind)
}

func resolveShardPosition(shardID string, pos ShardPosition, def engine.InitialPosition, now time.Time) (engine.Start, error) {
	typ := strings.ToUpper(strings.TrimSpace(pos.Type))
	switch typ {
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if !seqPattern.MatchString(pos.SequenceNumber) {
			return engine.Start{}, fmt.Errorf("kds: kinesis.startingPosition: shard %s: %s needs a sequence number (decimal digits), got %q", shardID, typ, pos.SequenceNumber)
		}
		if pos.SubSequenceNumber < 0 {
			return engine.Start{}, fmt.Errorf("kds: kinesis.startingPosition: shard %s: negative subSequenceNumber %d", shardID, pos.SubSequenceNumber)
		}
		return engine.Start{Type: engine.StartType(typ), Seq: pos.SequenceNumber, Sub: pos.SubSequenceNumber}, nil
	case "TRIM_HORIZON", "EARLIEST":
		return engine.Start{Type: engine.TrimHorizon}, nil
	case "AT_TIMESTAMP":
		if pos.Timestamp.IsZero() {
			return engine.Start{}, fmt.Errorf("kds: kinesis.startingPosition: shard %s: AT_TIMESTAMP needs a timestamp", shardID)
		}
		return engine.Start{Type: engine.AtTimestamp, Timestamp: pos.Timestamp}, nil
	case "LATEST":
		// Resolved now, like the query-wide LATEST (invariant 5).
		return engine.Start{Type: engine.AtTimestamp, Timestamp: now}, nil
	case "":
		return def.StartFor(""), nil
	}
	return engine.Start{}, fmt.Errorf("kds: kinesis.startingPosition: shard %s: iterator type %q: want AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON or LATEST", shardID, pos.Type)
}

// ListShards lists every shard of the stream, open and closed, with its
// lineage. Results are cached for DescribeShardInterval. Listing follows
// NextToken and does not rely on ShardFilter or MaxResults, which some
// servers ignore. The returned slice is the caller's.
func (s *Source) ListShards(ctx context.Context) ([]engine.ShardInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shards != nil && s.cfg.DescribeShardInterval > 0 && time.Since(s.listedAt) < s.cfg.DescribeShardInterval {
		return cloneShards(s.shards), nil
	}
	shards, err := s.listShards(ctx)
	if err != nil {
		return nil, err
	}
	s.shards, s.listedAt = shards, time.Now()
	return cloneShards(shards), nil
}

func (s *Source) listShards(ctx context.Context) ([]engine.ShardInfo, error) {
	var (
		shards   []engine.ShardInfo
		seen     = map[string]bool{}
		token    *string
		restarts int
	)
	for {
		// The first page names the stream; later pages send only
		// NextToken (the API rejects StreamName with it) and MaxResults.
		in := &kinesis.ListShardsInput{NextToken: token}
		if token == nil {
			in.StreamName = aws.String(s.cfg.StreamName)
		}
		if s.pageSize > 0 {
			in.MaxResults = aws.Int32(s.pageSize)
		}
		var out *kinesis.ListShardsOutput
		err := s.retry.do(ctx, "ListShards", s.cfg.StreamName, "", func(ctx context.Context) error {
			var err error
			out, err = s.api.ListShards(ctx, in)
			return err
		})
		if err != nil {
			// A token lives 300 s; if a listing outlives it, start over.
			if _, ok := errors.AsType[*types.ExpiredNextTokenException](err); ok && restarts < 3 {
				restarts++
				shards, token = nil, nil
				clear(seen)
				continue
			}
			return nil, err
		}
		for i := range out.Shards {
			si := shardInfo(&out.Shards[i])
			if si.ID == "" || seen[si.ID] {
				continue
			}
			seen[si.ID] = true
			shards = append(shards, si)
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		token = out.NextToken
	}
	if shards == nil {
		shards = []engine.ShardInfo{}
	}
	return shards, nil
}

func shardInfo(sh *types.Shard) engine.ShardInfo {
	si := engine.ShardInfo{ID: aws.ToString(sh.ShardId)}
	if p := aws.ToString(sh.ParentShardId); p != "" {
		si.Parents = append(si.Parents, p)
	}
	if p := aws.ToString(sh.AdjacentParentShardId); p != "" {
		si.Parents = append(si.Parents, p)
	}
	if r := sh.SequenceNumberRange; r != nil {
		si.StartingSequenceNumber = aws.ToString(r.StartingSequenceNumber)
		si.Closed = r.EndingSequenceNumber != nil
	}
	if h := sh.HashKeyRange; h != nil {
		si.HashKeyStart = aws.ToString(h.StartingHashKey)
		si.HashKeyEnd = aws.ToString(h.EndingHashKey)
	}
	return si
}

func cloneShards(in []engine.ShardInfo) []engine.ShardInfo {
	out := slices.Clone(in)
	for i := range out {
		out[i].Parents = slices.Clone(out[i].Parents)
	}
	return out
}

// OpenShard starts the long-lived reader of one shard at from. The reader
// polls until Close is called or ctx is done; ctx is its lifetime, not
// just the call's.
func (s *Source) OpenShard(ctx context.Context, shardID string, from engine.Start) (engine.ShardReader, error) {
	if shardID == "" {
		return nil, errors.New("kds: OpenShard: empty shard id")
	}
	if err := validateStart(from); err != nil {
		return nil, fmt.Errorf("kds: OpenShard %s: %w", shardID, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	if s.efoMode() {
		if s.efo == nil {
			cancel()
			return nil, errors.New("kds: OpenShard: the Kinesis client does not support SubscribeToShard")
		}
		r := newEFOReader(s, shardID, from)
		s.setUpDeaggregation(rctx, &r.shardBuffer)
		r.readerLife.start(rctx, cancel, &r.shardBuffer, r.log, r.loop)
		return r, nil
	}
	r := newShardReader(s, shardID, from)
	s.setUpDeaggregation(rctx, &r.shardBuffer)
	r.readerLife.start(rctx, cancel, &r.shardBuffer, r.log, r.loop)
	return r, nil
}

// setUpDeaggregation gives a new reader's buffer the source's KPL counters
// and the way to its shard's hash key range: from the last listing or,
// when the shard is not in it (a child opened since), a new one. The range
// is resolved at the reader's first aggregate, never before. When it
// cannot be known every sub-record is kept (the Spark connector's
// behaviour).
func (s *Source) setUpDeaggregation(ctx context.Context, b *shardBuffer) {
	b.deagg.stats = &s.kpl
	b.deagg.verifier = func() *kpl.Verifier { return s.shareVerifier(ctx) }
	shardID := b.shardID
	b.deagg.resolveRange = func() kpl.HashRange {
		find := func(shards []engine.ShardInfo) (kpl.HashRange, bool) {
			for _, sh := range shards {
				if sh.ID == shardID {
					return kpl.ParseHashRange(sh.HashKeyStart, sh.HashKeyEnd)
				}
			}
			return kpl.HashRange{}, false
		}
		s.mu.Lock()
		r, ok := find(s.shards)
		s.mu.Unlock()
		if ok {
			return r
		}
		shards, err := s.ListShards(ctx)
		if err == nil {
			if r, ok := find(shards); ok {
				return r
			}
		}
		s.log.Warn("hash key range of the shard unknown: sub-records of KPL aggregates are not filtered by it",
			"shard_id", shardID, "err", err)
		return kpl.FullRange
	}
}

// shareVerifier returns the source's digest verifier for a reader whose
// context is ctx, starting it for the first such reader; it is closed
// when the last reader's context ends.
func (s *Source) shareVerifier(ctx context.Context) *kpl.Verifier {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	if s.verifier == nil {
		s.verifier = kpl.NewVerifier()
	}
	s.vusers++
	v := s.verifier
	context.AfterFunc(ctx, func() {
		s.vmu.Lock()
		defer s.vmu.Unlock()
		if s.vusers--; s.vusers == 0 && s.verifier == v {
			v.Close()
			s.verifier = nil
		}
	})
	return v
}

func validateStart(st engine.Start) error {
	switch st.Type {
	case engine.TrimHorizon:
		return nil
	case engine.AtTimestamp:
		if st.Timestamp.IsZero() {
			return errors.New("AT_TIMESTAMP start without a timestamp")
		}
		return nil
	case engine.AtSequenceNumber, engine.AfterSequenceNumber:
		if !seqPattern.MatchString(st.Seq) {
			return fmt.Errorf("%s start with invalid sequence number %q", st.Type, st.Seq)
		}
		if st.Sub < 0 {
			return fmt.Errorf("%s start with negative sub-sequence number %d", st.Type, st.Sub)
		}
		return nil
	}
	return fmt.Errorf("unknown start type %q", st.Type)
}
