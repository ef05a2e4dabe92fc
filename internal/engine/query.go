// Package engine is shardflow's micro-batch loop: shard discovery, the
// planner that cuts batches from the shard readers' buffers, the offset and
// commit logs, exact replay, triggers and progress records.
//
// Only the planner writes positions (invariant 1): offsets/N before the sink
// runs, commits/N after it succeeded. Readers only fill buffers.
package engine

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
)

// Limits bound what one batch takes and how long the checkpoint history is.
type Limits struct {
	// MaxRecordsPerShard is kinesis.maxFetchRecordsPerShard: the most user
	// records one batch takes from one shard. Default 100000.
	MaxRecordsPerShard int
	// MaxFetchTimePerShard is kinesis.maxFetchTimePerShardSec: the longest a
	// Once or AvailableNow batch waits for a shard to catch up before it is
	// cut anyway. 0 means no limit. ProcessingTime batches never wait: they
	// are cut from what is buffered (invariant 6).
	MaxFetchTimePerShard time.Duration
	// MinBatchesToRetain is kinesis.minBatchesToRetain: log entries kept
	// when old ones are purged. Default 100.
	MinBatchesToRetain int
	// FailOnDataLoss is kinesis.failOnDataLoss: fail the query when a shard
	// vanishes from ListShards before it was read to its end.
	FailOnDataLoss bool
	// DiscoveryInterval is how often an idle query lists shards again.
	// Default 1s; the source caches ListShards for
	// kinesis.describeShardInterval anyway.
	DiscoveryInterval time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxRecordsPerShard <= 0 {
		l.MaxRecordsPerShard = 100000
	}
	if l.MinBatchesToRetain <= 0 {
		l.MinBatchesToRetain = 100
	}
	if l.DiscoveryInterval <= 0 {
		l.DiscoveryInterval = time.Second
	}
	return l
}

// Config configures a Query.
type Config struct {
	// Name is the query's name in progress records and logs.
	Name string
	// Store holds the checkpoint.
	Store checkpoint.Store
	// Source is read; Sink receives every batch.
	Source Source
	Sink   Sink
	// Transform, when set, runs on every batch between source and sink.
	Transform Transform
	// SinkDescription names the sink in progress records.
	SinkDescription string
	Trigger         Trigger
	Limits          Limits
	// Logger receives progress (INFO) and warnings; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// OnProgress, when set, is called after every committed batch, after
	// the Listeners' QueryProgress.
	OnProgress func(Progress)
	// Listeners receive the query's started, progress and terminated
	// events, in order.
	Listeners []Listener
	// Coordinator, when set, runs the query in worker mode: it reads only
	// the shards whose lease it holds (see Coordinator).
	Coordinator Coordinator
	// PeerLogs opens other workers' checkpoints (worker mode), so that a
	// shard taken over from a dead worker resumes after its last commit.
	PeerLogs PeerLogs
}

// Query runs one streaming query. Create it with New, then call Run once.
type Query struct {
	cfg    Config
	limits Limits
	log    *slog.Logger
	now    func() time.Time
	runID  string

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	wake     chan struct{}

	mu       sync.Mutex
	id       string
	recent   []Progress
	runErr   error
	started  bool
	finished bool

	// Run state, owned by the Run goroutine.
	wal         wal
	meta        Metadata
	shards      map[string]*shardRun
	nextBatch   int64
	lastList    time.Time
	lastTrigger time.Time
	relist      bool  // a shard ended: list shards at the next refresh
	dataLoss    int64 // data-loss events (kinesis.failOnDataLoss=false)
	initial     map[string]bool
	ids         []string    // q.shards' keys, sorted (sortedIDs)
	timer       *time.Timer // sleep's timer, reused
	// planShards and planLag are the maps of the current plan (plan);
	// planSize is the most shards they have held.
	planShards map[string]ShardOffset
	planLag    map[string]int64
	planSize   int

	// Worker mode (Config.Coordinator).
	shared    Shared          // the start position shared by every worker
	listing   []ShardInfo     // a ListShards answer not yet given to the coordinator
	listedIDs map[string]bool // the shards of the last ListShards answer
}

// shardRun is the engine's view of one tracked shard.
type shardRun struct {
	info   ShardInfo
	next   Start
	state  ShardState
	reader ShardReader
	quit   chan struct{} // stops the reader's wake forwarder; nil without one
	// listed is true once ListShards has shown the shard. A child known
	// only from a parent's ChildShards may not be listed yet (ListShards is
	// eventually consistent); only a listed shard can vanish.
	listed bool
}

const recentProgressLen = 100

// lifecycleCloseTimeout bounds Lifecycle.Close (an EFO consumer's
// deregistration) at the end of Run.
const lifecycleCloseTimeout = 30 * time.Second

// New checks cfg and returns a query ready to Run. It does no I/O.
func New(cfg Config) (*Query, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("no checkpoint store (checkpointLocation)"))
	}
	if cfg.Source == nil {
		errs = append(errs, errors.New("no source"))
	}
	if cfg.Sink == nil {
		errs = append(errs, errors.New("no sink"))
	}
	if cfg.Trigger.Kind == KindProcessingTime && cfg.Trigger.Interval < 0 {
		errs = append(errs, fmt.Errorf("trigger interval %s is negative; use 0 or more", cfg.Trigger.Interval))
	}
	if cfg.Coordinator != nil && cfg.Trigger.Kind != KindProcessingTime {
		// A worker sees only the shards it holds, and takes them over
		// time: "everything available now" has no meaning for one worker.
		errs = append(errs, fmt.Errorf("worker mode runs continuously: trigger %s is not supported there; use a processing-time trigger", cfg.Trigger))
	}
	if cfg.Limits.MaxFetchTimePerShard < 0 {
		errs = append(errs, fmt.Errorf("kinesis.maxFetchTimePerShardSec %s is negative", cfg.Limits.MaxFetchTimePerShard))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Query{
		cfg:    cfg,
		limits: cfg.Limits.withDefaults(),
		log:    log,
		now:    now,
		runID:  newUUID(),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		wal:    wal{store: cfg.Store, enc: &entryEncoder{}},
		shards: map[string]*shardRun{},
	}, nil
}

// ID returns the query id kept in the checkpoint; empty until Run has read
// or created the checkpoint.
func (q *Query) ID() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.id
}

// RunID returns this run's id; a restart gets a new one.
func (q *Query) RunID() string { return q.runID }

// Progress returns the most recent progress records, oldest first.
func (q *Query) Progress() []Progress {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.recent)
}

// Stop asks Run to finish the running batch, commit it and return nil. It
// waits until Run has returned or ctx is done. Stop before Run makes Run
// return at once.
func (q *Query) Stop(ctx context.Context) error {
	q.stopOnce.Do(func() { close(q.stop) })
	q.mu.Lock()
	started := q.started
	q.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q *Query) stopping() bool {
	select {
	case <-q.stop:
		return true
	default:
		return false
	}
}

// Run runs the query until Stop, the end of a Once or AvailableNow trigger
// (nil), a failure (an error naming the batch), or ctx is cancelled (an
// error wrapping ctx.Err(); the running batch is not committed and is
// replayed by the next run). Run may be called once.
func (q *Query) Run(ctx context.Context) (err error) {
	q.mu.Lock()
	if q.started {
		q.mu.Unlock()
		return errors.New("query: Run called twice")
	}
	q.started = true
	q.mu.Unlock()
	defer close(q.done)
	defer func() {
		q.mu.Lock()
		q.runErr = err
		q.finished = true
		id := q.id
		q.mu.Unlock()
		q.emitTerminated(QueryTerminated{ID: id, RunID: q.runID, Name: q.cfg.Name, Timestamp: q.now().UTC(), Err: err})
	}()

	if err := q.prepare(ctx); err != nil {
		return fmt.Errorf("query %q: %w", q.cfg.Name, err)
	}
	release, err := q.cfg.Store.Lock(ctx, q.runID)
	if err != nil {
		return fmt.Errorf("query %q: %w", q.cfg.Name, err)
	}
	defer func() {
		if rerr := release(); rerr != nil {
			q.log.Warn("releasing checkpoint lock", "err", rerr)
		}
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer q.closeReaders()

	if co := q.cfg.Coordinator; co != nil {
		if err := q.joinShared(ctx); err != nil {
			return fmt.Errorf("query %q: %w", q.cfg.Name, err)
		}
		defer func() {
			// Readers first, then the leases, with the positions the
			// last commit left: the next owners resume exactly there.
			q.closeReaders()
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), lifecycleCloseTimeout)
			defer ccancel()
			if cerr := co.Close(cctx, true, q.mine()); cerr != nil {
				q.log.Warn("releasing shard leases", "err", cerr)
			}
		}()
		quit := make(chan struct{})
		defer close(quit)
		go q.forwardWake(co.Wake(), quit)
	}

	replay, err := q.recover(ctx)
	if err != nil {
		return err
	}
	if lc, ok := q.cfg.Source.(Lifecycle); ok {
		if err := lc.Open(ctx, storeState{store: q.cfg.Store, name: sourceStateName}); err != nil {
			return fmt.Errorf("query %q: open source %s: %w", q.cfg.Name, q.cfg.Source.Describe(), err)
		}
		defer func() {
			// Readers first: a source may release what they read with.
			q.closeReaders()
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), lifecycleCloseTimeout)
			defer ccancel()
			// In worker mode other workers share the source's resources
			// (one EFO consumer): never release them.
			graceful := err == nil && q.cfg.Coordinator == nil
			if cerr := lc.Close(cctx, graceful); cerr != nil {
				q.log.Warn("closing source", "graceful", err == nil, "err", cerr)
			}
		}()
	}
	q.log.Info("query started", "name", q.cfg.Name, "id", q.id, "runId", q.runID,
		"checkpoint", q.cfg.Store.Location(), "nextBatch", q.nextBatch, "trigger", q.cfg.Trigger.String())
	q.emitStarted(QueryStarted{
		ID: q.meta.ID, RunID: q.runID, Name: q.cfg.Name, Timestamp: q.now().UTC(),
		Source: q.cfg.Source.Describe(), Sink: q.cfg.SinkDescription, Trigger: q.cfg.Trigger.String(),
		Checkpoint: q.cfg.Store.Location(), NextBatch: q.nextBatch,
	})
	if replay != nil {
		if err := q.replay(ctx, replay); err != nil {
			return q.wrap(ctx, err)
		}
	}
	switch q.cfg.Trigger.Kind {
	case KindOnce:
		err = q.runOnce(ctx)
	case KindAvailableNow:
		err = q.runAvailableNow(ctx)
	default:
		err = q.runProcessingTime(ctx)
	}
	return q.wrap(ctx, err)
}

func (q *Query) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("query %q stopped: %w", q.cfg.Name, err)
	}
	return fmt.Errorf("query %q (id %s) failed: %w", q.cfg.Name, q.id, err)
}

// recover reads or creates the checkpoint and rebuilds the shard state. It
// returns the uncommitted entry to replay, if any.
func (q *Query) recover(ctx context.Context) (*OffsetEntry, error) {
	var meta Metadata
	err := q.wal.readJSON(ctx, metadataName, &meta)
	switch {
	case errors.Is(err, checkpoint.ErrNotExist):
		if meta, err = q.newMetadata(ctx); err != nil {
			return nil, err
		}
		if err := q.wal.create(ctx, metadataName, meta); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if meta.Format != FormatVersion {
			return nil, fmt.Errorf("checkpoint %s has format %d; this shardflow reads format %d", q.cfg.Store.Location(), meta.Format, FormatVersion)
		}
		if meta.Source.Stream != q.cfg.Source.Stream() {
			return nil, fmt.Errorf("checkpoint %s belongs to a query on stream %q, not %q; use a new checkpointLocation", q.cfg.Store.Location(), meta.Source.Stream, q.cfg.Source.Stream())
		}
	}
	q.meta = meta
	q.initial = make(map[string]bool, len(meta.Source.InitialShards))
	for _, id := range meta.Source.InitialShards {
		q.initial[id] = true
	}
	if err := q.checkIdentity(ctx); err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.id = meta.ID
	q.mu.Unlock()

	lastOff, err := q.wal.latest(ctx, offsetsDir)
	if err != nil {
		return nil, err
	}
	lastCommit, err := q.wal.latest(ctx, commitsDir)
	if err != nil {
		return nil, err
	}
	loc := q.cfg.Store.Location()
	switch {
	case lastOff < 0 && lastCommit < 0:
		q.nextBatch = 0
		return nil, nil
	case lastOff < lastCommit:
		return nil, fmt.Errorf("checkpoint %s: commits/%d has no offsets/%d (the offset log was removed); the positions of the committed batch are lost: restore the file or start with a new checkpointLocation", loc, lastCommit, lastCommit)
	case lastOff > lastCommit+1:
		return nil, fmt.Errorf("checkpoint %s: offsets/%d is ahead of the last commit (commits/%d); remove offsets entries after %d to re-plan them", loc, lastOff, lastCommit, lastCommit+1)
	}
	if q.cfg.Coordinator != nil {
		// Worker mode: positions come from the leases, and the shards of
		// an uncommitted batch may be held by other workers now, so it is
		// not replayed: whoever holds its shards reads its records again
		// (at-least-once after a crash).
		q.nextBatch = lastOff + 1
		if lastOff > lastCommit {
			return nil, q.abandon(ctx, lastOff, "the worker restarted before committing it")
		}
		return nil, nil
	}
	entry, err := q.wal.readOffsets(ctx, lastOff)
	if err != nil {
		if lastOff > lastCommit {
			return nil, fmt.Errorf("%w; this batch was never committed, so removing offsets/%d is safe: the batch is then planned again from commits/%d", err, lastOff, lastCommit)
		}
		return nil, err
	}
	committed := lastOff == lastCommit
	for id, o := range entry.Shards {
		s := &shardRun{info: ShardInfo{ID: id, Parents: o.Parents, Closed: o.State != StateOpen}, state: o.State, listed: true}
		if committed {
			s.next = o.next()
		} else {
			// The replayed batch reads each shard from its start again;
			// replay opens the readers itself.
			s.next = o.Start
		}
		q.shards[id] = s
	}
	if committed {
		q.nextBatch = lastOff + 1
		return nil, nil
	}
	q.nextBatch = lastOff
	return entry, nil
}

// newMetadata is a new checkpoint's metadata: kinesis.startingPosition
// resolved now, with the shards listed and the stream's identity; in worker
// mode, the position every worker shares, from the lease table.
func (q *Query) newMetadata(ctx context.Context) (Metadata, error) {
	meta := Metadata{
		ID:        newUUID(),
		Format:    FormatVersion,
		CreatedAt: q.now().UTC(),
		Name:      q.cfg.Name,
		Source: SourceMetadata{
			Description: q.cfg.Source.Describe(),
			Stream:      q.cfg.Source.Stream(),
		},
	}
	if q.cfg.Coordinator != nil {
		meta.Source.InitialPosition = q.shared.Initial
		meta.Source.InitialShards = q.shared.InitialShards
		meta.Source.Identity = q.shared.Identity
		return meta, nil
	}
	ip, err := q.cfg.Source.ResolveInitial(ctx, q.now())
	if err != nil {
		return Metadata{}, fmt.Errorf("resolve kinesis.startingPosition: %w", err)
	}
	meta.Source.InitialPosition = ip
	if err := q.pinSource(ctx, &meta); err != nil {
		return Metadata{}, err
	}
	return meta, nil
}

// discover lists shards at most every DiscoveryInterval and updates the
// tracked set: new shards start at the initial position, shards that
// vanished before their end are data loss.
func (q *Query) discover(ctx context.Context, force bool) error {
	now := q.now()
	if !force && !q.relist && now.Sub(q.lastList) < q.limits.DiscoveryInterval {
		return nil
	}
	q.relist = false
	list, err := q.cfg.Source.ListShards(ctx)
	if err != nil {
		return fmt.Errorf("list shards: %w", err)
	}
	q.lastList = now
	listed := make(map[string]bool, len(list))
	for _, info := range list {
		listed[info.ID] = true
		if _, tracked := q.shards[info.ID]; !tracked && q.cfg.Coordinator != nil {
			continue // worker mode: only leased shards are tracked
		}
		q.track(info)
		q.shards[info.ID].listed = true
	}
	q.listing, q.listedIDs = list, listed
	for _, id := range q.sortedIDs() {
		s := q.shards[id]
		if listed[id] || !s.listed && s.state != StateFinished {
			continue
		}
		if s.state == StateFinished {
			// Trimmed after it was read to its end: nothing can need it.
			delete(q.shards, id)
			continue
		}
		if s.reader != nil && s.reader.Peek(0).Ended {
			continue // its end is buffered; the next batch finishes it
		}
		msg := fmt.Sprintf("shard %s vanished from ListShards before it was read to its end (trimmed by the retention period?); records after %s are lost", id, s.next.String())
		if q.limits.FailOnDataLoss {
			return fmt.Errorf("%s (kinesis.failOnDataLoss=true)", msg)
		}
		q.log.Warn(msg+"; continuing because kinesis.failOnDataLoss=false", "shard", id)
		q.dataLoss++
		q.closeReader(s)
		s.state = StateFinished
	}
	return nil
}

func (q *Query) track(info ShardInfo) {
	s, ok := q.shards[info.ID]
	if !ok {
		st := StateOpen
		if info.Closed {
			st = StateClosed
		}
		q.shards[info.ID] = &shardRun{info: info, next: q.startFor(info.ID), state: st}
		return
	}
	if len(info.Parents) > 0 {
		s.info.Parents = info.Parents
	}
	if info.Closed && s.state == StateOpen {
		s.state = StateClosed
	}
	s.info.Closed = s.info.Closed || info.Closed
}

// readable reports whether every parent of s is finished or untracked
// (invariant 4: a child is not read before its parents' ends are committed).
// An untracked parent is one trimmed away, unless s itself is known only
// from a parent's ChildShards: the listing that shows s may then also show
// a parent this query has not seen yet (a reshard's other, adjacent
// parent), so s waits for it.
func (q *Query) readable(s *shardRun) bool {
	for _, p := range s.info.Parents {
		ps, ok := q.shards[p]
		if !ok && !s.listed || ok && ps.state != StateFinished {
			return false
		}
	}
	return true
}

// activate opens readers for tracked shards that may be read now.
func (q *Query) activate(ctx context.Context) error {
	for _, id := range q.sortedIDs() {
		s := q.shards[id]
		if s.reader != nil || s.state == StateFinished || !q.readable(s) {
			continue
		}
		r, err := q.cfg.Source.OpenShard(ctx, id, s.next)
		if err != nil {
			return fmt.Errorf("open reader for shard %s at %s: %w", id, s.next.String(), err)
		}
		q.watch(s, r)
	}
	return nil
}

// sortedIDs returns the tracked shard ids in order. The slice is kept
// across batches and rebuilt only when the tracked set changed, so a batch
// neither sorts nor allocates for it; callers must not modify it.
func (q *Query) sortedIDs() []string {
	if len(q.ids) == len(q.shards) {
		same := true
		for _, id := range q.ids {
			if _, ok := q.shards[id]; !ok {
				same = false
				break
			}
		}
		if same {
			return q.ids
		}
	}
	q.ids = slices.Sorted(maps.Keys(q.shards))
	return q.ids
}

// wakeNotifier is a ShardReader that can signal the query's wake channel
// itself (kds' readers can): the engine then needs no goroutine to forward
// its Ready signals, which saves a goroutine wake-up per change, that is per
// enhanced fan-out event.
type wakeNotifier interface {
	// NotifyWake makes the reader also send to ch, without blocking,
	// after every change it signals on Ready.
	NotifyWake(ch chan<- struct{})
}

// watch makes r the reader of s and turns its change signals into the
// query's wake signal. A change signalled before is not lost: the planner
// peeks every reader after watch returns.
func (q *Query) watch(s *shardRun, r ShardReader) {
	s.reader = r
	if n, ok := r.(wakeNotifier); ok {
		n.NotifyWake(q.wake)
		return
	}
	s.quit = make(chan struct{})
	go q.forwardWake(r.Ready(), s.quit)
}

// forwardWake turns signals on ch into the query's wake signal.
func (q *Query) forwardWake(ch <-chan struct{}, quit <-chan struct{}) {
	for {
		select {
		case <-ch:
			select {
			case q.wake <- struct{}{}:
			default:
			}
		case <-quit:
			return
		}
	}
}

func (q *Query) closeReader(s *shardRun) {
	if s.reader == nil {
		return
	}
	if s.quit != nil {
		close(s.quit)
		s.quit = nil
	}
	s.reader.Close()
	s.reader = nil
}

func (q *Query) closeReaders() {
	var wg sync.WaitGroup
	for _, s := range q.shards {
		if s.reader == nil {
			continue
		}
		wg.Add(1)
		go func(s *shardRun) { defer wg.Done(); q.closeReader(s) }(s)
	}
	wg.Wait()
}

func (q *Query) refresh(ctx context.Context, force bool) error {
	if err := q.discover(ctx, force); err != nil {
		return err
	}
	if q.cfg.Coordinator != nil {
		if err := q.syncLeases(ctx); err != nil {
			return err
		}
	}
	return q.activate(ctx)
}

// sleep waits for d, a reader's signal (when onWake), Stop or ctx. It
// reports false when the query must stop.
func (q *Query) sleep(ctx context.Context, d time.Duration, onWake bool) (bool, error) {
	t := q.resetTimer(d)
	var wake <-chan struct{}
	if onWake {
		wake = q.wake
	}
	select {
	case <-t.C:
	case <-wake:
	case <-q.stop:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return true, nil
}

// resetTimer returns the Run goroutine's timer set to fire after d. One
// timer serves every wait of the loop: no timer is allocated per batch.
// (Since Go 1.23 Reset leaves no stale value in the channel.)
func (q *Query) resetTimer(d time.Duration) *time.Timer {
	if q.timer == nil {
		q.timer = time.NewTimer(d)
	} else {
		q.timer.Reset(d)
	}
	return q.timer
}

func (q *Query) runProcessingTime(ctx context.Context) error {
	interval := q.cfg.Trigger.Interval
	next := q.now()
	force := true
	for {
		if q.stopping() {
			return nil
		}
		if err := q.refresh(ctx, force); err != nil {
			return err
		}
		force = false
		if interval > 0 {
			if wait := next.Sub(q.now()); wait > 0 {
				ok, err := q.sleep(ctx, wait, false)
				if !ok {
					return err
				}
				continue
			}
			next = next.Add(interval)
			if now := q.now(); next.Before(now) {
				next = now // a batch overran the interval: fire at once, skip missed ticks
			}
		}
		if !q.idle() {
			start := q.now()
			p, err := q.plan(ctx, time.Time{})
			if err != nil {
				return err
			}
			if p.hasContent() {
				if err := q.runBatch(ctx, p, start); err != nil {
					return err
				}
				continue
			}
		}
		if interval == 0 {
			ok, err := q.sleep(ctx, q.limits.DiscoveryInterval, true)
			if !ok {
				return err
			}
		}
	}
}

// idle reports whether no shard has anything for a plan: no buffered
// record, no end, no error. A plan would then cut nothing and settle would
// apply nothing, so the ProcessingTime loop skips it. Without this, on a
// wide stream read with ProcessingTime(0), every pushed record paid for a
// second, empty plan over every shard after its batch.
func (q *Query) idle() bool {
	for _, s := range q.shards {
		if s.reader == nil {
			continue
		}
		if snap := s.reader.Peek(0); snap.Buffered > 0 || snap.Ended || snap.Err != nil {
			return false
		}
	}
	return true
}

// settled reports whether a Once/AvailableNow batch may be cut for shard s:
// it is caught up, ended, full, holds a whole batch, or holds a record
// after cutoff.
func (q *Query) settled(s *shardRun, cutoff time.Time) bool {
	snap := s.reader.Peek(q.limits.MaxRecordsPerShard)
	if snap.Err != nil || snap.Ended || snap.AtTail || snap.Full || snap.Buffered >= q.limits.MaxRecordsPerShard {
		return true
	}
	return !cutoff.IsZero() && len(snap.Records) > 0 && snap.Records[len(snap.Records)-1].ApproximateArrivalTimestamp.After(cutoff)
}

// waitSettled waits until every read shard is settled, or
// MaxFetchTimePerShard has passed.
func (q *Query) waitSettled(ctx context.Context, cutoff time.Time) (bool, error) {
	var deadline time.Time
	if q.limits.MaxFetchTimePerShard > 0 {
		deadline = q.now().Add(q.limits.MaxFetchTimePerShard)
	}
	for {
		all := true
		for _, s := range q.shards {
			if s.reader != nil && !q.settled(s, cutoff) {
				all = false
				break
			}
		}
		if all {
			return true, nil
		}
		wait := q.limits.DiscoveryInterval
		if !deadline.IsZero() {
			left := deadline.Sub(q.now())
			if left <= 0 {
				return true, nil
			}
			wait = min(wait, left)
		}
		ok, err := q.sleep(ctx, wait, true)
		if !ok {
			return false, err
		}
	}
}

func (q *Query) runOnce(ctx context.Context) error {
	if err := q.refresh(ctx, true); err != nil {
		return err
	}
	start := q.now()
	if ok, err := q.waitSettled(ctx, time.Time{}); !ok {
		return err
	}
	p, err := q.plan(ctx, time.Time{})
	if err != nil || !p.hasContent() {
		return err
	}
	return q.runBatch(ctx, p, start)
}

// availableNowSkew is how far past its start an AvailableNow run reads. The
// cutoff compares the server's arrival timestamps with this machine's
// clock: a server clock ahead of ours (real skew, or kinesalite, which
// stamps records written into a new child shard up to a second ahead)
// would otherwise leave records written before the start for the next run.
// Reading a second's worth more is harmless; the next run starts after it.
const availableNowSkew = time.Second

func (q *Query) runAvailableNow(ctx context.Context) error {
	cutoff := q.now().Add(availableNowSkew)
	for {
		if q.stopping() {
			return nil
		}
		if err := q.refresh(ctx, true); err != nil {
			return err
		}
		start := q.now()
		if ok, err := q.waitSettled(ctx, cutoff); !ok {
			return err
		}
		p, err := q.plan(ctx, cutoff)
		if err != nil {
			return err
		}
		if p.hasContent() {
			if err := q.runBatch(ctx, p, start); err != nil {
				return err
			}
			continue
		}
		if q.drained(cutoff) {
			q.log.Info("available-now: every shard is read up to its tail at start; stopping", "cutoff", cutoff)
			return nil
		}
		ok, err := q.sleep(ctx, q.limits.DiscoveryInterval, true)
		if !ok {
			return err
		}
	}
}

// drained reports whether no tracked shard can still yield a record that
// arrived up to cutoff.
func (q *Query) drained(cutoff time.Time) bool {
	memo := map[string]bool{}
	for id := range q.shards {
		if !q.shardDrained(id, cutoff, memo) {
			return false
		}
	}
	return true
}

// shardDrained reports whether shard id can yield no more record that
// arrived up to cutoff in this run. A shard waiting for its parents is
// drained when an unfinished parent is: the parent's next record arrived
// after cutoff, so the child cannot be read in this run.
func (q *Query) shardDrained(id string, cutoff time.Time, memo map[string]bool) bool {
	if d, ok := memo[id]; ok {
		return d
	}
	memo[id] = false // a cycle in bad lineage data is not drained
	s := q.shards[id]
	d := false
	switch {
	case s == nil || s.state == StateFinished:
		d = true
	case s.reader == nil:
		for _, p := range s.info.Parents {
			if ps, ok := q.shards[p]; ok && ps.state != StateFinished && q.shardDrained(p, cutoff, memo) {
				d = true
			}
		}
	default:
		snap := s.reader.Peek(1)
		// A closed shard is drained only at its end (plan then finishes
		// it): an empty page with nothing behind does not end it, and its
		// children wait for that end.
		d = len(snap.Records) > 0 && snap.Records[0].ApproximateArrivalTimestamp.After(cutoff) ||
			snap.Buffered == 0 && snap.AtTail && !snap.Ended && s.state == StateOpen
	}
	memo[id] = d
	return d
}

// planned is a batch cut by the planner, not yet written.
type planned struct {
	entry    OffsetEntry
	ids      []string   // shards with records, sorted
	recs     [][]Record // records per ids[i]
	rows     int64
	finished int // shards whose last records are in this batch
	// ended are shards read to their end whose every record is already
	// committed: they finish without a batch of their own (no empty
	// batches after a reshard, defect F).
	ended    []string
	lagSum   int64
	lagN     int64
	lagMax   int64
	children []ShardInfo      // reported by readers at shard end
	replay   bool             // offsets/N is already written: this is its replay
	lag      map[string]int64 // per-shard MillisBehindLatest at planning
	bytes    map[string]int64 // per-shard data bytes, counted before Release
}

func (p *planned) hasContent() bool { return p.rows > 0 }

// plan cuts the next batch from what the readers have buffered. With a
// non-zero cutoff (AvailableNow) records that arrived after it are left for
// later.
func (q *Query) plan(ctx context.Context, cutoff time.Time) (*planned, error) {
	// The two per-shard maps are the previous plan's, emptied: a plan
	// lives until its batch is reported, before the next plan, and nothing
	// keeps them (the offsets entry is encoded, progress copies), so a
	// wide stream's small batches do not allocate two maps of every shard.
	// clear costs the most shards the maps ever held: after the stream (or
	// this worker's share) shrank to a quarter, new maps are cheaper.
	if q.planShards == nil || len(q.shards) < q.planSize/4 {
		q.planShards = make(map[string]ShardOffset, len(q.shards))
		q.planLag = make(map[string]int64, len(q.shards))
		q.planSize = 0
	}
	q.planSize = max(q.planSize, len(q.shards))
	clear(q.planShards)
	clear(q.planLag)
	p := &planned{
		entry:  OffsetEntry{BatchID: q.nextBatch, Timestamp: q.now().UTC(), Shards: q.planShards},
		lagMax: -1,
		lag:    q.planLag,
	}
	for _, id := range q.sortedIDs() {
		s := q.shards[id]
		off := ShardOffset{Start: s.next, State: s.state, Parents: s.info.Parents}
		if s.reader != nil {
			snap := s.reader.Peek(q.limits.MaxRecordsPerShard)
			if dl, ok := errors.AsType[*DataLossError](snap.Err); ok && snap.Buffered == 0 {
				if err := q.dataLost(s, dl); err != nil {
					return nil, err
				}
				p.entry.Shards[id] = ShardOffset{Start: s.next, State: s.state, Parents: s.info.Parents}
				continue
			}
			if snap.Err != nil && (snap.Buffered == 0 || !isDataLoss(snap.Err)) {
				return nil, fmt.Errorf("shard %s: %w", id, snap.Err)
			}
			recs := snap.Records
			if !cutoff.IsZero() {
				n, _ := slices.BinarySearchFunc(recs, cutoff, func(r Record, t time.Time) int {
					if r.ApproximateArrivalTimestamp.After(t) {
						return 1
					}
					return -1
				})
				recs = recs[:n]
			}
			if len(recs) > 0 {
				last := recs[len(recs)-1]
				off.End = &Position{Seq: last.SequenceNumber, Sub: last.SubSequenceNumber}
				p.ids = append(p.ids, id)
				p.recs = append(p.recs, recs)
				p.rows += int64(len(recs))
			}
			if snap.Ended && len(recs) == snap.Buffered {
				off.State = StateFinished
				if len(recs) > 0 {
					p.finished++
				} else {
					p.ended = append(p.ended, id)
				}
			}
			if snap.Ended {
				p.children = append(p.children, snap.Children...)
			}
			p.lag[id] = snap.MillisBehindLatest
			if snap.MillisBehindLatest >= 0 {
				p.lagSum += snap.MillisBehindLatest
				p.lagN++
				p.lagMax = max(p.lagMax, snap.MillisBehindLatest)
			}
		}
		p.entry.Shards[id] = off
	}
	q.settle(p)
	return p, ctx.Err()
}

func positionJSON(p Position) map[string]any {
	return map[string]any{"sequenceNumber": p.Seq, "subSequenceNumber": p.Sub}
}

// runBatch writes offsets/N, hands the rows to the sink, writes commits/N,
// then releases the readers' buffers.
func (q *Query) runBatch(ctx context.Context, p *planned, triggerStart time.Time) error {
	id := p.entry.BatchID
	planDone := q.now()
	if !p.replay {
		if err := q.wal.create(ctx, entryName(offsetsDir, id), p.entry); err != nil {
			return fmt.Errorf("batch %d: %w", id, err)
		}
	}
	walDone := q.now()

	batch := &Batch{ID: id, Time: p.entry.Timestamp, Schema: SourceSchema(), Rows: make([]Row, 0, p.rows)}
	stream := q.cfg.Source.Stream()
	for _, recs := range p.recs {
		batch.Rows = append(batch.Rows, RowsFromRecords(stream, recs)...)
	}
	if q.cfg.Transform != nil {
		out, err := q.cfg.Transform.Apply(ctx, batch)
		if err != nil {
			return fmt.Errorf("batch %d: transform: %w (nothing was committed; the batch is replayed on restart)", id, err)
		}
		out.ID = id
		batch = out
	}
	built := q.now()
	if co := q.cfg.Coordinator; co != nil {
		// Worker mode: a shard whose lease may have passed to another
		// worker (this one was paused or cut off) gives the sink nothing:
		// the batch is abandoned and its records stay with the lease.
		if lost := co.Unsafe(slices.Collect(maps.Keys(p.entry.Shards))); len(lost) > 0 {
			slices.Sort(lost)
			return q.abandon(ctx, id, fmt.Sprintf("the leases of shards %v may be held by another worker now", lost))
		}
	}
	if err := q.cfg.Sink.AddBatch(ctx, batch); err != nil {
		return fmt.Errorf("batch %d: sink %s: %w (nothing was committed; the batch is replayed on restart)", id, q.cfg.SinkDescription, err)
	}
	sunk := q.now()
	commit := CommitEntry{BatchID: id, CommittedAt: sunk.UTC(), NumInputRows: p.rows}
	if err := q.wal.create(ctx, entryName(commitsDir, id), commit); err != nil {
		return fmt.Errorf("batch %d: %w", id, err)
	}
	committed := q.now()

	startOffsets := map[string]any{}
	endOffsets := map[string]any{}
	p.bytes = make(map[string]int64, len(p.ids))
	for i, sid := range p.ids {
		for j := range p.recs[i] {
			p.bytes[sid] += int64(len(p.recs[i][j].Data))
		}
		s := q.shards[sid]
		startOffsets[sid] = startJSON(s.next)
		s.reader.Release(len(p.recs[i]))
	}
	for sid, off := range p.entry.Shards {
		s := q.shards[sid]
		s.next = off.next()
		s.state = off.State
		if off.End != nil {
			endOffsets[sid] = positionJSON(*off.End)
		}
		if off.State == StateFinished {
			q.closeReader(s)
			q.relist = true // open its children before the next trigger
		}
	}
	q.nextBatch = id + 1
	// Purging every purgeEvery batches deletes the entries that left the
	// retention in one batched call (the logs are listed once per run), so
	// a batch costs two writes and no reads against a remote store, while
	// the log never holds more than MinBatchesToRetain+purgeEvery entries.
	if id%purgeEvery(q.limits.MinBatchesToRetain) == 0 {
		if err := q.wal.purge(ctx, id, q.limits.MinBatchesToRetain); err != nil {
			q.log.Warn("purging old checkpoint entries", "err", err)
		}
	}
	q.report(p, int64(len(batch.Rows)), triggerStart, planDone, walDone, built, sunk, committed, startOffsets, endOffsets)
	return nil
}

func startJSON(s Start) map[string]any {
	m := map[string]any{"type": string(s.Type)}
	switch s.Type {
	case AtTimestamp:
		m["timestamp"] = s.Timestamp.UTC().Format(time.RFC3339Nano)
	case AtSequenceNumber, AfterSequenceNumber:
		m["sequenceNumber"] = s.Seq
		m["subSequenceNumber"] = s.Sub
	}
	return m
}

func (q *Query) report(p *planned, outRows int64, start, planDone, walDone, built, sunk, committed time.Time, startOffsets, endOffsets map[string]any) {
	total := committed.Sub(start)
	var sincePrev time.Duration
	if !q.lastTrigger.IsZero() {
		sincePrev = start.Sub(q.lastTrigger)
	}
	q.lastTrigger = start
	metrics := map[string]string{"avgMsBehindLatest": "0.0", "maxMsBehindLatest": "0"}
	if p.lagN > 0 {
		metrics["avgMsBehindLatest"] = strconv.FormatFloat(float64(p.lagSum)/float64(p.lagN), 'f', 1, 64)
		metrics["maxMsBehindLatest"] = strconv.FormatInt(p.lagMax, 10)
	}
	metrics["dataLossEvents"] = strconv.FormatInt(q.dataLoss, 10)
	if mr, ok := q.cfg.Source.(MetricsReporter); ok {
		maps.Copy(metrics, mr.ProgressMetrics())
	}
	if mr, ok := q.cfg.Coordinator.(MetricsReporter); ok {
		maps.Copy(metrics, mr.ProgressMetrics())
	}
	// LatestOffset is each shard's end offset in this batch.
	latest := maps.Clone(endOffsets)
	shards := make(map[string]ShardProgress, len(p.entry.Shards))
	for sid, off := range p.entry.Shards {
		lag, ok := p.lag[sid]
		if !ok {
			lag = -1
		}
		shards[sid] = ShardProgress{State: off.State, Parents: off.Parents, MillisBehindLatest: lag}
	}
	for i, sid := range p.ids {
		sp := shards[sid]
		sp.NumInputRows = int64(len(p.recs[i]))
		sp.NumInputBytes = p.bytes[sid]
		shards[sid] = sp
	}
	pr := Progress{
		ID:                     q.meta.ID,
		RunID:                  q.runID,
		Name:                   q.cfg.Name,
		Timestamp:              start.UTC().Format("2006-01-02T15:04:05.000Z"),
		BatchID:                p.entry.BatchID,
		NumInputRows:           p.rows,
		InputRowsPerSecond:     perSecond(p.rows, sincePrev),
		ProcessedRowsPerSecond: perSecond(p.rows, total),
		DurationMs: map[string]int64{
			phaseLatestOffset:     millis(planDone.Sub(start)),
			phaseQueryPlanning:    0,
			phaseWalCommit:        millis(walDone.Sub(planDone) + committed.Sub(sunk)),
			phaseGetBatch:         millis(built.Sub(walDone)),
			phaseAddBatch:         millis(sunk.Sub(built)),
			phaseTriggerExecution: millis(total),
		},
		Sources: []SourceProgress{{
			Description:            q.cfg.Source.Describe(),
			StartOffset:            startOffsets,
			EndOffset:              endOffsets,
			LatestOffset:           latest,
			NumInputRows:           p.rows,
			InputRowsPerSecond:     perSecond(p.rows, sincePrev),
			ProcessedRowsPerSecond: perSecond(p.rows, total),
			Metrics:                metrics,
			Shards:                 shards,
		}},
		Sink: SinkProgress{Description: q.cfg.SinkDescription, NumOutputRows: outRows},
	}
	q.mu.Lock()
	q.recent = append(q.recent, pr)
	if len(q.recent) > recentProgressLen {
		q.recent = slices.Delete(q.recent, 0, len(q.recent)-recentProgressLen)
	}
	q.mu.Unlock()
	// The record's JSON is built only when the log takes INFO: with
	// ProcessingTime(0) a batch can be a single record, and marshalling
	// its progress would cost more than the batch.
	if q.log.Enabled(context.Background(), slog.LevelInfo) {
		if b, err := json.Marshal(pr); err == nil {
			q.log.Info("batch committed", "batchId", pr.BatchID, "numInputRows", pr.NumInputRows, "progress", json.RawMessage(b))
		}
	}
	q.emitProgress(pr)
}

// replay runs the uncommitted batch entry again with exactly its records
// (invariant 2): each shard from its start up to and including its end.
func (q *Query) replay(ctx context.Context, entry *OffsetEntry) error {
	q.log.Info("replaying uncommitted batch", "batchId", entry.BatchID)
	start := q.now()
	for _, id := range slices.Sorted(maps.Keys(entry.Shards)) {
		if entry.Shards[id].End == nil {
			continue
		}
		s := q.shards[id]
		r, err := q.cfg.Source.OpenShard(ctx, id, s.next)
		if err != nil {
			return fmt.Errorf("replay batch %d: open shard %s: %w", entry.BatchID, id, err)
		}
		q.watch(s, r)
	}
	p := &planned{entry: *entry, lagMax: -1, replay: true}
	for _, id := range slices.Sorted(maps.Keys(entry.Shards)) {
		off := entry.Shards[id]
		if off.End == nil {
			continue
		}
		recs, err := q.waitFor(ctx, entry.BatchID, id, *off.End)
		if err != nil {
			return err
		}
		p.ids = append(p.ids, id)
		p.recs = append(p.recs, recs)
		p.rows += int64(len(recs))
	}
	for _, off := range entry.Shards {
		if off.State == StateFinished {
			p.finished++
		}
	}
	return q.runBatch(ctx, p, start)
}

// waitFor waits until shard id's reader has buffered the record at end and
// returns the records up to it.
func (q *Query) waitFor(ctx context.Context, batch int64, id string, end Position) ([]Record, error) {
	r := q.shards[id].reader
	for {
		snap := r.Peek(int(^uint(0) >> 1))
		if snap.Err != nil {
			return nil, fmt.Errorf("replay batch %d: shard %s: %w", batch, id, snap.Err)
		}
		for i := range snap.Records {
			rec := &snap.Records[i]
			c := cmpPos(Position{rec.SequenceNumber, rec.SubSequenceNumber}, end)
			if c == 0 {
				return snap.Records[:i+1], nil
			}
			if c > 0 {
				return nil, fmt.Errorf("replay batch %d: shard %s no longer holds its last record %s/%d (found %s/%d after it); the batch cannot be replayed exactly", batch, id, end.Seq, end.Sub, rec.SequenceNumber, rec.SubSequenceNumber)
			}
		}
		if snap.Ended {
			return nil, fmt.Errorf("replay batch %d: shard %s ended before its last record %s/%d (trimmed by retention?)", batch, id, end.Seq, end.Sub)
		}
		if snap.Full {
			return nil, fmt.Errorf("replay batch %d: shard %s: the shard buffer filled before the batch's last record %s/%d; raise shardflow.buffer.maxRecordsPerShard or shardflow.buffer.maxBytesPerShard to at least the batch size", batch, id, end.Seq, end.Sub)
		}
		select {
		case <-q.wake:
		case <-time.After(q.limits.DiscoveryInterval):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// cmpSeq compares Kinesis sequence numbers as unsigned integers: they vary
// in length, so string order is wrong.
func cmpSeq(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

func cmpPos(a, b Position) int {
	if c := cmpSeq(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Compare(a.Sub, b.Sub)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// purgeEvery is how many batches pass between two purges of the logs.
func purgeEvery(keep int) int64 { return int64(max(1, keep/10)) }
