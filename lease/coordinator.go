// Package lease shares a Kinesis stream's shards among several shardflow
// processes (worker mode, shardflow.coordination=DYNAMODB) through a lease
// table in DynamoDB, as the Kinesis Client Library does: one item per
// shard with its owner, a counter that every write changes, and the
// position the next owner resumes from. Conditional writes are the only
// coordination; there is no leader.
//
// Rules (docs/workers.md):
//
//   - Expiry is judged by the observer's own clock: a lease whose counter
//     this worker has seen unchanged for the lease time is expired. Clocks
//     of different machines are never compared.
//   - Every write to a lease is conditional on the owner and the counter
//     the writer last saw. A worker that lost a lease cannot renew it or
//     write its position, and the engine gives the sink nothing of a shard
//     whose renewal is overdue (Unsafe).
//   - Unowned and expired leases are taken first, up to an even share.
//     Then a worker below the even share asks the worker with the most
//     leases for one (pendingOwner); the owner sees the request at its next
//     renewal, finishes and commits its running batch, writes its position
//     and hands the lease over, so a planned move repeats no record.
//   - A child shard's lease is taken only when all its parents' leases are
//     finished (checkpoint SHARD_END), whoever held them.
//   - Renewals carry the latest committed position: in steady state the
//     table gets one write per lease per renewal interval.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardflow/shardflow/internal/engine"
)

// Defaults.
const (
	DefaultLeaseTime = 10 * time.Second
	DefaultMaxSteals = 1
)

// Config configures a Coordinator.
type Config struct {
	// Client calls DynamoDB (with a retrying client in production).
	Client API
	// Table is the lease table; it is created if missing.
	Table string
	// WorkerID names this worker; required.
	WorkerID string
	// Stream is the stream the query reads, and Checkpoint the job's
	// shared checkpointLocation: a table made for another stream or job is
	// refused.
	Stream     string
	Checkpoint string
	// LeaseTime: a worker that stops renewing loses its leases after this
	// long. Default 10 s.
	LeaseTime time.Duration
	// RenewInterval is how often held leases are renewed; default a third
	// of LeaseTime.
	RenewInterval time.Duration
	// TakeInterval is how often the table is scanned to take, balance and
	// create leases; default half of RenewInterval, so that a dead
	// worker's leases are taken over within LeaseTime plus one
	// RenewInterval of its last renewal.
	TakeInterval time.Duration
	// MaxSteals bounds the leases asked from another worker per take
	// interval; default 1.
	MaxSteals int
	// ImportKCLTable, when set, is a KCL application's lease table whose
	// checkpoints a new lease table starts from (read once, never written).
	ImportKCLTable string
	// CleanupAfter is how long this worker must have seen a finished
	// lease's shard missing from the stream's listing before it deletes
	// the lease; default an hour. A shard leaves the listing only when the
	// retention period trimmed it, and never comes back, so no lister, even
	// one with an hour-old listing, recreates the lease.
	CleanupAfter time.Duration
	// Logger receives lease events; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// TableWait bounds the wait for a new table; default 5 minutes.
	TableWait time.Duration
}

// Coordinator implements engine.Coordinator on a DynamoDB lease table.
type Coordinator struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	shared    engine.Shared
	initial   map[string]bool
	held      map[string]*held
	seen      map[string]observed
	listed    map[string]engine.ShardInfo
	requested map[string]time.Time // leases this worker asked for, and when
	unlisted  map[string]time.Time // finished leases whose shard is not listed, since when

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	taken, lost, handedOff, received, stealsAsked atomic.Int64
	renewals, writes, reads, failures             atomic.Int64
}

// held is a lease this worker holds. mu serialises the writes to the
// lease; counter, renewedAt and gone change with both mu and the
// coordinator's mu held, so either lock suffices to read them; the other
// fields are guarded by the coordinator's mu.
type held struct {
	mu        sync.Mutex // one write at a time per lease
	counter   int64
	renewedAt time.Time // when the last successful write was sent
	start     engine.Start
	pos       *engine.Start // the last committed position the engine gave
	lag       int64
	info      engine.ShardInfo
	prevOwner string
	handoffTo string
	gone      bool // lost, finished or handed over
}

// observed is a lease as this worker last saw it, and since when.
type observed struct {
	item  Item
	since time.Time
}

var _ engine.Coordinator = (*Coordinator)(nil)

// New checks cfg; it does no I/O.
func New(cfg Config) (*Coordinator, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("no DynamoDB client"))
	}
	if cfg.Table == "" {
		errs = append(errs, errors.New("no lease table: set shardflow.lease.tableName (or kinesis.dynamodb.tableName)"))
	}
	if cfg.WorkerID == "" {
		errs = append(errs, errors.New("no worker id"))
	}
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = DefaultLeaseTime
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = cfg.LeaseTime / 3
	}
	if cfg.TakeInterval <= 0 {
		cfg.TakeInterval = cfg.RenewInterval / 2
	}
	if cfg.MaxSteals <= 0 {
		cfg.MaxSteals = DefaultMaxSteals
	}
	if cfg.RenewInterval*2 > cfg.LeaseTime {
		errs = append(errs, fmt.Errorf("shardflow.lease.renewInterval %s must be at most half of shardflow.lease.time %s, so that one late renewal does not lose a lease", cfg.RenewInterval, cfg.LeaseTime))
	}
	if cfg.TableWait <= 0 {
		cfg.TableWait = 5 * time.Minute
	}
	if cfg.CleanupAfter <= 0 {
		cfg.CleanupAfter = time.Hour
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("lease coordinator: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Coordinator{
		cfg: cfg, log: log.With("worker", cfg.WorkerID, "leaseTable", cfg.Table), now: now,
		held: map[string]*held{}, seen: map[string]observed{}, listed: map[string]engine.ShardInfo{},
		requested: map[string]time.Time{}, unlisted: map[string]time.Time{}, wake: make(chan struct{}, 1),
	}, nil
}

func (c *Coordinator) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Wake implements engine.Coordinator.
func (c *Coordinator) Wake() <-chan struct{} { return c.wake }

// Join creates the table if needed, reads or creates the shared start
// position, and starts renewing and taking leases in the background.
func (c *Coordinator) Join(ctx context.Context, resolve func(context.Context) (engine.Shared, error)) (engine.Shared, error) {
	sh, err := c.join(ctx, resolve)
	if err != nil {
		return engine.Shared{}, err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel, c.done = cancel, make(chan struct{})
	go c.loop(lctx)
	c.log.Info("joined the lease table", "stream", c.cfg.Stream, "leaseTime", c.cfg.LeaseTime, "renewInterval", c.cfg.RenewInterval, "takeInterval", c.cfg.TakeInterval)
	return sh, nil
}

// join is Join without the background loop.
func (c *Coordinator) join(ctx context.Context, resolve func(context.Context) (engine.Shared, error)) (engine.Shared, error) {
	if err := ensureTable(ctx, c.cfg.Client, c.cfg.Table, c.cfg.TableWait); err != nil {
		return engine.Shared{}, err
	}
	sh, err := c.readMeta(ctx)
	if errors.Is(err, errNoMeta) {
		if sh, err = resolve(ctx); err != nil {
			return engine.Shared{}, err
		}
		if c.cfg.ImportKCLTable != "" {
			if err := c.importKCL(ctx, sh); err != nil {
				return engine.Shared{}, err
			}
		}
		sh, err = c.createMeta(ctx, sh)
	}
	if err != nil {
		return engine.Shared{}, err
	}
	c.mu.Lock()
	c.shared = sh
	c.initial = make(map[string]bool, len(sh.InitialShards))
	for _, id := range sh.InitialShards {
		c.initial[id] = true
	}
	c.mu.Unlock()
	return sh, nil
}

var errNoMeta = errors.New("no meta item")

func (c *Coordinator) readMeta(ctx context.Context) (engine.Shared, error) {
	out, err := c.cfg.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(c.cfg.Table), Key: keyOf(metaKey), ConsistentRead: aws.Bool(true)})
	c.reads.Add(1)
	if err != nil {
		return engine.Shared{}, fmt.Errorf("read lease table %s: %w", c.cfg.Table, err)
	}
	if len(out.Item) == 0 {
		return engine.Shared{}, errNoMeta
	}
	if s := getS(out.Item, attrStream); s != c.cfg.Stream {
		return engine.Shared{}, fmt.Errorf("lease table %s belongs to workers reading stream %q, not %q; use another shardflow.lease.tableName", c.cfg.Table, s, c.cfg.Stream)
	}
	if j := getS(out.Item, attrJob); j != c.cfg.Checkpoint {
		return engine.Shared{}, fmt.Errorf("lease table %s belongs to the job with checkpointLocation %q, not %q; give every worker of a job the same checkpointLocation, and each job its own shardflow.lease.tableName", c.cfg.Table, j, c.cfg.Checkpoint)
	}
	if f := getN(out.Item, attrFormat, 0); f != tableFormat {
		return engine.Shared{}, fmt.Errorf("lease table %s has format %d; this shardflow reads format %d", c.cfg.Table, f, tableFormat)
	}
	var sh engine.Shared
	if err := json.Unmarshal([]byte(getS(out.Item, attrShared)), &sh); err != nil {
		return engine.Shared{}, fmt.Errorf("lease table %s: unreadable %s item: %w", c.cfg.Table, metaKey, err)
	}
	return sh, nil
}

// createMeta writes the shared state; when another worker wrote it first,
// its version wins.
func (c *Coordinator) createMeta(ctx context.Context, sh engine.Shared) (engine.Shared, error) {
	b, err := json.Marshal(sh)
	if err != nil {
		return engine.Shared{}, err
	}
	err = c.putIfAbsent(ctx, map[string]types.AttributeValue{
		attrKey: str(metaKey), attrStream: str(c.cfg.Stream), attrShared: str(string(b)), attrJob: str(c.cfg.Checkpoint),
		attrFormat: num(tableFormat), attrCreatedAt: str(c.now().UTC().Format(time.RFC3339Nano)),
	})
	switch {
	case isCCF(err):
		return c.readMeta(ctx)
	case err != nil:
		return engine.Shared{}, fmt.Errorf("write lease table %s: %w", c.cfg.Table, err)
	}
	return sh, nil
}

// loop renews held leases every RenewInterval and takes, balances and
// creates leases every TakeInterval (the first pass at once).
func (c *Coordinator) loop(ctx context.Context) {
	defer close(c.done)
	renew := time.NewTicker(c.cfg.RenewInterval)
	defer renew.Stop()
	take := time.NewTimer(0)
	defer take.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			c.renewAll(ctx)
		case <-take.C:
			if err := c.takePass(ctx); err != nil && ctx.Err() == nil {
				c.failures.Add(1)
				c.log.Warn("lease take pass failed; retrying at the next one", "err", err)
			}
			take.Reset(c.cfg.TakeInterval)
		}
	}
}

// safeFor is how long after a successful renewal was sent this worker is
// sure it still holds the lease. Another worker takes a lease only after
// seeing its counter unchanged for LeaseTime from a read made after that
// write, so the lease is ours until sent+LeaseTime; a fifth of it is kept
// as a margin for the time between the check and the sink.
func (c *Coordinator) safeFor() time.Duration { return c.cfg.LeaseTime - c.cfg.LeaseTime/5 }

func (c *Coordinator) safe(h *held, now time.Time) bool {
	return !h.gone && now.Sub(h.renewedAt) < c.safeFor()
}

// Sync implements engine.Coordinator.
func (c *Coordinator) Sync(ctx context.Context, listed []engine.ShardInfo, mine map[string]engine.Held) (map[string]engine.Lease, error) {
	c.mu.Lock()
	if listed != nil {
		c.listed = make(map[string]engine.ShardInfo, len(listed))
		for _, s := range listed {
			c.listed[s.ID] = s
		}
	}
	type move struct {
		id string
		h  *held
		m  engine.Held
		to string
	}
	var moves []move
	for id, m := range mine {
		h := c.held[id]
		if h == nil {
			continue
		}
		p := m.Next
		h.pos = &p
		h.lag = m.MillisBehindLatest
		if m.Finished || h.handoffTo != "" {
			to := ""
			if !m.Finished {
				to = h.handoffTo
			}
			moves = append(moves, move{id, h, m, to})
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, mv := range moves {
		if err := c.release(ctx, mv.id, mv.h, mv.m, mv.to); err != nil {
			errs = append(errs, err)
		}
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]engine.Lease, len(c.held))
	for id, h := range c.held {
		if !c.safe(h, now) {
			continue
		}
		start := h.start
		if h.pos != nil {
			start = *h.pos
		}
		info := h.info
		if li, ok := c.listed[id]; ok {
			info = li
		}
		out[id] = engine.Lease{Start: start, Info: info, PrevOwner: h.prevOwner}
	}
	return out, errors.Join(errs...)
}

// Unsafe implements engine.Coordinator.
func (c *Coordinator) Unsafe(ids []string) []string {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var bad []string
	for _, id := range ids {
		if h := c.held[id]; h == nil || !c.safe(h, now) {
			bad = append(bad, id)
		}
	}
	return bad
}

// ownedUpdate applies update to the lease of shard id that this worker
// holds as h: the write is fenced on owner and counter (it fails with a
// conditional check failure once another worker took the lease) and bumps
// the counter (update sets it to :n). vals may use :me, :c and :n.
func (c *Coordinator) ownedUpdate(ctx context.Context, id string, h *held, update string, vals map[string]types.AttributeValue, ret types.ReturnValue) (*dynamodb.UpdateItemOutput, error) {
	vals[":me"] = str(c.cfg.WorkerID)
	vals[":c"] = num(h.counter)
	vals[":n"] = num(h.counter + 1)
	out, err := c.cfg.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(c.cfg.Table),
		Key:                       keyOf(id),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(attrOwner + " = :me AND " + attrCounter + " = :c"),
		ExpressionAttributeValues: vals,
		ReturnValues:              ret,
	})
	c.writes.Add(1)
	return out, err
}

// release writes a held lease's final position (SHARD_END when finished)
// and gives it to `to` (a worker that asked for it) or to nobody.
func (c *Coordinator) release(ctx context.Context, id string, h *held, m engine.Held, to string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return nil
	}
	vals := checkpointValues(m.Next, m.Finished)
	update := "SET " + attrCounter + " = :n, " + setCheckpoint
	if to != "" {
		vals[":to"] = str(to)
		update += ", " + attrOwner + " = :to REMOVE " + attrPending
	} else {
		update += " REMOVE " + attrOwner + ", " + attrPending
	}
	_, err := c.ownedUpdate(ctx, id, h, update, vals, types.ReturnValueNone)
	switch {
	case isCCF(err):
		c.dropLost(id, h, "the lease was taken over before it could be released")
		return nil
	case err != nil:
		c.failures.Add(1)
		return fmt.Errorf("release the lease of shard %s: %w", id, err)
	}
	c.mu.Lock()
	h.gone = true
	delete(c.held, id)
	c.mu.Unlock()
	switch {
	case m.Finished:
		c.log.Info("shard finished; lease released", "shard", id)
	case to != "":
		c.handedOff.Add(1)
		c.log.Info("lease handed over", "shard", id, "to", to, "at", m.Next.String())
	default:
		c.log.Info("lease released", "shard", id, "at", m.Next.String())
	}
	return nil
}

// dropLost forgets a lease another worker holds now.
func (c *Coordinator) dropLost(id string, h *held, why string) {
	c.mu.Lock()
	h.gone = true
	if c.held[id] == h {
		delete(c.held, id)
	}
	c.mu.Unlock()
	c.lost.Add(1)
	c.log.Warn("lease lost: the shard is no longer read here", "shard", id, "reason", why)
	c.signal()
}

// renewAll renews every held lease, a few at a time, writing the position
// the engine last committed.
func (c *Coordinator) renewAll(ctx context.Context) {
	c.mu.Lock()
	hs := maps.Clone(c.held)
	c.mu.Unlock()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for id, h := range hs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.renew(ctx, id, h)
		}()
	}
	wg.Wait()
}

func (c *Coordinator) renew(ctx context.Context, id string, h *held) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return
	}
	c.mu.Lock()
	pos, lag := h.pos, h.lag
	c.mu.Unlock()
	vals := map[string]types.AttributeValue{":lag": num(lag)}
	update := "SET " + attrCounter + " = :n, " + attrLag + " = :lag"
	if pos != nil {
		maps.Copy(vals, checkpointValues(*pos, false))
		update += ", " + setCheckpoint
	}
	sent := c.now()
	out, err := c.ownedUpdate(ctx, id, h, update, vals, types.ReturnValueAllNew)
	switch {
	case isCCF(err):
		c.dropLost(id, h, "another worker took it (renewal refused)")
		return
	case err != nil:
		c.failures.Add(1)
		if ctx.Err() == nil {
			c.log.Warn("lease renewal failed; retrying at the next renewal", "shard", id, "err", err, "lastRenewal", h.renewedAt)
		}
		if c.now().Sub(h.renewedAt) >= c.cfg.LeaseTime {
			c.dropLost(id, h, "not renewed for the lease time")
		}
		return
	}
	c.renewals.Add(1)
	it := decodeItem(out.Attributes)
	c.mu.Lock()
	h.counter = it.Counter
	h.renewedAt = sent
	asked := it.Pending != "" && it.Pending != c.cfg.WorkerID && h.handoffTo == ""
	if asked {
		h.handoffTo = it.Pending
	}
	c.mu.Unlock()
	if asked {
		c.log.Info("lease asked for: handing it over after the running batch", "shard", id, "to", it.Pending)
		c.signal()
	}
}

// takePass scans the table, creates leases for listed shards that have
// none, resumes leases the table says this worker holds, takes unowned
// and expired ones up to an even share, and asks the busiest worker for
// one when still below it.
func (c *Coordinator) takePass(ctx context.Context) error {
	raw, pages, err := scanTable(ctx, c.cfg.Client, c.cfg.Table)
	c.reads.Add(int64(pages))
	if err != nil {
		return err
	}
	now := c.now()
	items := map[string]Item{}
	c.mu.Lock()
	for _, m := range raw {
		it := decodeItem(m)
		if it.ShardID == metaKey || it.ShardID == "" {
			continue
		}
		items[it.ShardID] = it
		if o, ok := c.seen[it.ShardID]; !ok || o.item.Counter != it.Counter || o.item.Owner != it.Owner {
			c.seen[it.ShardID] = observed{item: it, since: now}
		} else {
			o.item = it
			c.seen[it.ShardID] = o
		}
	}
	var missing []engine.ShardInfo
	for id, info := range c.listed {
		if _, ok := items[id]; !ok {
			missing = append(missing, info)
		}
	}
	c.mu.Unlock()

	for _, info := range missing {
		it, err := c.createLease(ctx, info)
		if err != nil {
			return err
		}
		items[info.ID] = it
	}

	c.mu.Lock()
	for id, it := range items {
		if _, ok := c.seen[id]; !ok {
			// Created in this pass, here or by another worker (which may
			// already own it): its expiry clock starts now.
			c.seen[id] = observed{item: it, since: now}
		}
	}
	gone := c.trimmed(items, now)
	var resume, free []Item
	leasable := 0
	counts := map[string]int{c.cfg.WorkerID: 0}
	for id, it := range items {
		if it.Finished || !c.parentsFinished(it, items) {
			continue
		}
		leasable++
		_, mine := c.held[id]
		switch {
		case it.Owner == c.cfg.WorkerID:
			counts[c.cfg.WorkerID]++
			if !mine {
				resume = append(resume, it)
			}
		case it.Owner == "":
			free = append(free, it)
		case now.Sub(c.seen[id].since) >= c.cfg.LeaseTime:
			free = append(free, it) // expired: its owner stopped renewing
		case it.Pending != "":
			// Being handed over: counted for neither side (a worker counts
			// its own requests), but both are live workers.
			for _, w := range []string{it.Owner, it.Pending} {
				if _, ok := counts[w]; !ok {
					counts[w] = 0
				}
			}
		default:
			counts[it.Owner]++
		}
	}
	for id, at := range c.requested {
		// A request the owner never answered (it died, or the lease
		// finished) lapses; one answered is cleared when adopted below.
		if o := items[id]; o.Owner != c.cfg.WorkerID && now.Sub(at) >= c.cfg.LeaseTime {
			delete(c.requested, id)
		}
	}
	outstanding := len(c.requested)
	c.mu.Unlock()

	for _, id := range gone {
		c.deleteFinished(ctx, id)
	}
	for _, it := range resume {
		c.acquire(ctx, it, now)
	}
	target := (leasable + len(counts) - 1) / len(counts)
	// Expired leases before unowned ones, each group in random order so
	// that workers starting together do not fight over the same items.
	rand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	slices.SortStableFunc(free, func(a, b Item) int {
		return boolInt(a.Owner == "") - boolInt(b.Owner == "")
	})
	tookAny := false
	for _, it := range free {
		if c.heldCount() >= target {
			break
		}
		if c.acquire(ctx, it, now) {
			tookAny = true
		}
	}
	if tookAny {
		return nil
	}
	return c.steal(ctx, items, counts, leasable, outstanding)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *Coordinator) heldCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// parentsFinished reports whether every parent of it is finished or gone
// from both the table and the listing (trimmed after it was read).
func (c *Coordinator) parentsFinished(it Item, items map[string]Item) bool {
	for _, p := range it.Parents {
		if pi, ok := items[p]; ok {
			if !pi.Finished {
				return false
			}
			continue
		}
		if _, listed := c.listed[p]; listed {
			return false // its lease is not created yet
		}
	}
	return true
}

// createLease writes a new shard's lease: shards listed at the query's
// first start begin at the shared start position, later ones (reshard
// children) at TRIM_HORIZON, as in a single process.
func (c *Coordinator) createLease(ctx context.Context, info engine.ShardInfo) (Item, error) {
	c.mu.Lock()
	start := engine.Start{Type: engine.TrimHorizon}
	if _, ok := c.shared.Initial.Shards[info.ID]; ok || c.initial[info.ID] || c.shared.InitialShards == nil {
		start = c.shared.Initial.StartFor(info.ID)
	}
	c.mu.Unlock()
	item := map[string]types.AttributeValue{attrKey: str(info.ID), attrCounter: num(0)}
	for k, v := range checkpointValues(start, false) {
		item[map[string]string{":cp": attrCheckpoint, ":sub": attrSub, ":ctype": attrCkptType, ":cts": attrCkptTime}[k]] = v
	}
	if len(info.Parents) > 0 {
		item[attrParents] = &types.AttributeValueMemberSS{Value: info.Parents}
	}
	err := c.putIfAbsent(ctx, item)
	if err != nil && !isCCF(err) {
		return Item{}, fmt.Errorf("create the lease of shard %s: %w", info.ID, err)
	}
	if isCCF(err) {
		// Another worker created it; read its state at the next pass.
		out, gerr := c.cfg.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(c.cfg.Table), Key: keyOf(info.ID), ConsistentRead: aws.Bool(true)})
		c.reads.Add(1)
		if gerr != nil {
			return Item{}, fmt.Errorf("read the lease of shard %s: %w", info.ID, gerr)
		}
		return decodeItem(out.Item), nil
	}
	return decodeItem(item), nil
}

// trimmed returns the finished leases whose shard this worker has seen
// missing from the listing for CleanupAfter: the retention period trimmed
// them, and their leases only make every scan longer. Called with c.mu
// held. Nothing is judged without a listing.
func (c *Coordinator) trimmed(items map[string]Item, now time.Time) []string {
	if len(c.listed) == 0 {
		return nil
	}
	var gone []string
	for id, it := range items {
		if _, listed := c.listed[id]; listed || !it.Finished {
			delete(c.unlisted, id)
			continue
		}
		since, ok := c.unlisted[id]
		if !ok {
			c.unlisted[id] = now
			continue
		}
		if now.Sub(since) >= c.cfg.CleanupAfter {
			gone = append(gone, id)
		}
	}
	for id := range c.unlisted {
		if _, ok := items[id]; !ok {
			delete(c.unlisted, id) // deleted, here or by another worker
		}
	}
	return gone
}

// deleteFinished deletes a finished lease of a trimmed shard. The write is
// conditional on the lease still being finished. A child whose parent's
// lease is gone treats the parent as finished, as it is neither in the
// table nor in the listing.
func (c *Coordinator) deleteFinished(ctx context.Context, id string) {
	_, err := c.cfg.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(c.cfg.Table),
		Key:                       keyOf(id),
		ConditionExpression:       aws.String(attrCheckpoint + " = :end"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":end": str(ckptShardEnd)},
	})
	c.writes.Add(1)
	switch {
	case err == nil:
		c.log.Info("lease of a trimmed shard deleted", "shard", id)
	case !isCCF(err):
		c.failures.Add(1)
		c.log.Warn("deleting the lease of a trimmed shard failed; retrying at a later pass", "shard", id, "err", err)
	}
}

// putIfAbsent writes an item unless one with its key exists (a
// ConditionalCheckFailedException then).
func (c *Coordinator) putIfAbsent(ctx context.Context, item map[string]types.AttributeValue) error {
	_, err := c.cfg.Client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(c.cfg.Table),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(" + attrKey + ")"),
	})
	c.writes.Add(1)
	return err
}

// acquire takes a lease with a write conditional on the counter seen; at
// most one worker wins.
func (c *Coordinator) acquire(ctx context.Context, it Item, now time.Time) bool {
	vals := map[string]types.AttributeValue{":me": str(c.cfg.WorkerID), ":c": num(it.Counter), ":n": num(it.Counter + 1)}
	cond := attrCounter + " = :c AND attribute_not_exists(" + attrOwner + ")"
	if it.Owner != "" {
		vals[":old"] = str(it.Owner)
		cond = attrCounter + " = :c AND " + attrOwner + " = :old"
	}
	sent := c.now()
	out, err := c.cfg.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(c.cfg.Table),
		Key:                       keyOf(it.ShardID),
		UpdateExpression:          aws.String("SET " + attrOwner + " = :me, " + attrCounter + " = :n REMOVE " + attrPending),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueAllNew,
	})
	c.writes.Add(1)
	if isCCF(err) {
		return false // another worker was faster, or the owner renewed
	}
	if err != nil {
		c.failures.Add(1)
		c.log.Warn("taking a lease failed", "shard", it.ShardID, "err", err)
		return false
	}
	got := decodeItem(out.Attributes)
	c.mu.Lock()
	_, asked := c.requested[it.ShardID]
	delete(c.requested, it.ShardID)
	prev := it.Owner
	switch {
	case prev == c.cfg.WorkerID && asked:
		prev = "" // handed over to us with its exact position
	case prev == "", prev == c.cfg.WorkerID:
		// Released with its exact position, or this worker's own lease
		// after a restart (its log holds the last commit).
	default:
		c.taken.Add(1)
	}
	if asked {
		c.received.Add(1)
	}
	info := engine.ShardInfo{ID: it.ShardID, Parents: it.Parents}
	if li, ok := c.listed[it.ShardID]; ok {
		info = li
	}
	c.held[it.ShardID] = &held{counter: got.Counter, renewedAt: sent, start: got.Checkpoint, lag: -1, info: info, prevOwner: prev}
	c.mu.Unlock()
	c.log.Info("lease taken", "shard", it.ShardID, "previousOwner", it.Owner, "expired", it.Owner != "" && it.Owner != c.cfg.WorkerID, "at", got.Checkpoint.String())
	c.signal()
	return true
}

// steal asks the worker with the most leases for up to MaxSteals of them
// when this worker holds fewer than an even share and the move makes the
// split more even.
func (c *Coordinator) steal(ctx context.Context, items map[string]Item, counts map[string]int, leasable, asked int) error {
	// Leases asked for and not yet handed over count as ours: requests
	// overlap (one more per take interval) without overshooting.
	mine := c.heldCount() + asked
	if mine >= leasable/len(counts) {
		return nil
	}
	victim, most := "", 0
	for _, w := range slices.Sorted(maps.Keys(counts)) {
		if w != c.cfg.WorkerID && counts[w] > most {
			victim, most = w, counts[w]
		}
	}
	if victim == "" || most <= mine+1 {
		return nil
	}
	var cands []string
	for id, it := range items {
		if it.Owner == victim && it.Pending == "" && !it.Finished {
			cands = append(cands, id)
		}
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	for _, id := range cands[:min(len(cands), c.cfg.MaxSteals, most-mine-1)] {
		_, err := c.cfg.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(c.cfg.Table),
			Key:                       keyOf(id),
			UpdateExpression:          aws.String("SET " + attrPending + " = :me"),
			ConditionExpression:       aws.String(attrOwner + " = :v AND attribute_not_exists(" + attrPending + ")"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":me": str(c.cfg.WorkerID), ":v": str(victim)},
		})
		c.writes.Add(1)
		if isCCF(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ask worker %s for the lease of shard %s: %w", victim, id, err)
		}
		c.mu.Lock()
		c.requested[id] = c.now()
		c.mu.Unlock()
		c.stealsAsked.Add(1)
		c.log.Info("asked for a lease to balance the workers", "shard", id, "owner", victim, "ownerLeases", most, "myLeases", mine)
	}
	return nil
}

// Close implements engine.Coordinator.
func (c *Coordinator) Close(ctx context.Context, release bool, mine map[string]engine.Held) error {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	if !release {
		return nil
	}
	type final struct {
		h  *held
		m  engine.Held
		to string
	}
	c.mu.Lock()
	fs := make(map[string]final, len(c.held))
	for id, h := range c.held {
		m, ok := mine[id]
		if !ok {
			m = engine.Held{Next: h.start}
			if h.pos != nil {
				m.Next = *h.pos
			}
		}
		fs[id] = final{h, m, h.handoffTo}
	}
	c.mu.Unlock()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(fs)) {
		f := fs[id]
		if err := c.release(ctx, id, f.h, f.m, f.to); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ProgressMetrics adds the lease counters to every progress record.
func (c *Coordinator) ProgressMetrics() map[string]string {
	return map[string]string{
		"leasesHeld":         fmt.Sprint(c.heldCount()),
		"leasesTaken":        fmt.Sprint(c.taken.Load()),
		"leasesLost":         fmt.Sprint(c.lost.Load()),
		"leasesHandedOff":    fmt.Sprint(c.handedOff.Load()),
		"leasesReceived":     fmt.Sprint(c.received.Load()),
		"leaseStealsAsked":   fmt.Sprint(c.stealsAsked.Load()),
		"leaseRenewals":      fmt.Sprint(c.renewals.Load()),
		"leaseTableWrites":   fmt.Sprint(c.writes.Load()),
		"leaseTableReads":    fmt.Sprint(c.reads.Load()),
		"leaseTableFailures": fmt.Sprint(c.failures.Load()),
		"workerId":           c.cfg.WorkerID,
	}
}

// Held returns the shards this worker holds now, sorted.
func (c *Coordinator) Held() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.held))
}
