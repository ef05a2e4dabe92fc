package kdsfake

import (
	"time"
)

// openShard returns the open shard id of st, or an error. Caller holds st.mu.
func (st *stream) openShard(id string, now time.Time) (*shard, error) {
	sh := st.shardByID(id)
	if sh == nil || sh.gone {
		return nil, shardNotFound(st.account, st.name, id)
	}
	if !sh.open() {
		return nil, errInvalid("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", id, st.name, st.account)
	}
	return sh, nil
}

// resharded marks st UPDATING for the stream delay and wakes subscriptions.
// Caller holds st.mu for writing.
func (s *Server) resharded(st *stream, now time.Time) {
	st.updatingUntil = now.Add(s.cfg.StreamDelay)
	st.wake()
	s.dirty.Store(true)
}

func (s *Server) splitShard(c *call) error {
	var in struct {
		streamRef
		ShardToSplit       string
		NewStartingHashKey string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.ShardToSplit == "" || in.NewStartingHashKey == "" {
		return errValidate("1 validation error detected: ShardToSplit and NewStartingHashKey must not be null")
	}
	key, ok := parseHashKey(in.NewStartingHashKey)
	if !ok {
		return errValidate("1 validation error detected: Value '%s' at 'newStartingHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})", in.NewStartingHashKey)
	}
	st, err := c.lockChangeable(in.streamRef)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	sh, err := st.openShard(in.ShardToSplit, c.now)
	if err != nil {
		return err
	}
	if !sh.hashStart.less(key) || sh.hashEnd.less(key) {
		return errInvalid("NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.",
			in.NewStartingHashKey, sh.id, st.name, st.account, sh.hashStartStr, sh.hashEndStr)
	}
	s.closeShard(sh, c.now)
	s.newShard(st, sh.hashStart, key.subOne(), sh.id, "", c.now)
	s.newShard(st, key, sh.hashEnd, sh.id, "", c.now)
	s.resharded(st, c.now)
	return c.writeJSON([]byte("{}"))
}

func (s *Server) mergeShards(c *call) error {
	var in struct {
		streamRef
		ShardToMerge         string
		AdjacentShardToMerge string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.ShardToMerge == "" || in.AdjacentShardToMerge == "" {
		return errValidate("1 validation error detected: ShardToMerge and AdjacentShardToMerge must not be null")
	}
	st, err := c.lockChangeable(in.streamRef)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	a, err := st.openShard(in.ShardToMerge, c.now)
	if err != nil {
		return err
	}
	b, err := st.openShard(in.AdjacentShardToMerge, c.now)
	if err != nil {
		return err
	}
	lo, hi := a, b
	if b.hashStart.less(a.hashStart) {
		lo, hi = b, a
	}
	if a == b || lo.hashEnd.addOne() != hi.hashStart {
		return errInvalid("Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", a.id, b.id, st.name, st.account)
	}
	s.closeShard(a, c.now)
	s.closeShard(b, c.now)
	s.newShard(st, lo.hashStart, hi.hashEnd, a.id, b.id, c.now)
	s.resharded(st, c.now)
	return c.writeJSON([]byte("{}"))
}

func (s *Server) updateShardCount(c *call) error {
	var in struct {
		streamRef
		TargetShardCount *int
		ScalingType      string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.TargetShardCount == nil {
		return errValidate("1 validation error detected: Value null at 'targetShardCount' failed to satisfy constraint: Member must not be null")
	}
	if in.ScalingType != "UNIFORM_SCALING" {
		return errValidate("1 validation error detected: Value '%s' at 'scalingType' failed to satisfy constraint: Member must satisfy enum value set: [UNIFORM_SCALING]", in.ScalingType)
	}
	target := *in.TargetShardCount
	if target < 1 || target > maxShardsPerStream {
		return errValidate("1 validation error detected: Value '%d' at 'targetShardCount' failed to satisfy constraint: Member must have value between 1 and %d", target, maxShardsPerStream)
	}
	st, err := c.lockChangeable(in.streamRef)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	old := st.openShards()
	cur := len(old)
	if target > 2*cur || 2*target < cur {
		return newError(errLimitExceeded, "UpdateShardCount can scale stream %s under account %s to between %d and %d shards, not %d.", st.name, st.account, (cur+1)/2, 2*cur, target)
	}
	if target != cur {
		s.rescale(st, old, target, c.now)
		s.resharded(st, c.now)
	}
	return c.reply(struct {
		StreamName        string
		StreamARN         string
		CurrentShardCount int
		TargetShardCount  int
	}{st.name, st.arn, cur, target})
}

// rescale closes the open shards old and opens n shards that split the hash
// key space evenly. Each new shard's parents are the old shards its range
// overlaps. Kinesis records at most two parents per shard, so when a new
// shard overlaps more than two old ones, rescale chains closed, empty
// intermediate shards, as AWS's own splits and merges do: every parent is
// still read to its end before the child. Caller holds st.mu for writing.
func (s *Server) rescale(st *stream, old []*shard, n int, now time.Time) {
	for _, sh := range old {
		s.closeShard(sh, now)
	}
	starts := evenSplit(n)
	for i, start := range starts {
		end := maxU128
		if i+1 < len(starts) {
			end = starts[i+1].subOne()
		}
		var parents []*shard
		for _, o := range old {
			if !o.hashEnd.less(start) && !end.less(o.hashStart) {
				parents = append(parents, o)
			}
		}
		// Fold parents beyond two into closed intermediate shards.
		for len(parents) > 2 {
			a, b := parents[0], parents[1]
			mid := s.newShard(st, a.hashStart, b.hashEnd, a.id, b.id, now)
			s.closeShard(mid, now)
			parents = append([]*shard{mid}, parents[2:]...)
		}
		adj := ""
		if len(parents) == 2 {
			adj = parents[1].id
		}
		s.newShard(st, start, end, parents[0].id, adj, now)
	}
}
