package kdsfake

import (
	"encoding/base64"
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// Retention bounds, in hours.
const (
	minRetentionHours     = 24
	maxRetentionHours     = 8760
	defaultRetentionHours = 24
)

// streamRef is the pair of stream-identifying request fields.
type streamRef struct {
	StreamName string `json:"StreamName"`
	StreamARN  string `json:"StreamARN"`
}

// validName reports whether name is a valid stream or consumer name.
func validName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// streamARN returns the ARN of a stream.
func (s *Server) streamARN(acct, name string) string {
	return "arn:aws:kinesis:" + s.cfg.Region + ":" + acct + ":stream/" + name
}

// parseStreamARN splits "arn:aws:kinesis:region:account:stream/name".
func parseStreamARN(arn string) (acct, name string, ok bool) {
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[2] != "kinesis" || !isAccountID(f[4]) {
		return "", "", false
	}
	name, ok = strings.CutPrefix(f[5], "stream/")
	if !ok || !validName(name) {
		return "", "", false
	}
	return f[4], name, true
}

// resolve returns the account and stream name a request names, from
// StreamName or StreamARN.
func (c *call) resolve(ref streamRef) (acct, name string, err error) {
	switch {
	case ref.StreamARN != "":
		acct, name, ok := parseStreamARN(ref.StreamARN)
		if !ok {
			return "", "", errValidate("1 validation error detected: Value '%s' at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+", ref.StreamARN)
		}
		if ref.StreamName != "" && ref.StreamName != name {
			return "", "", errInvalid("StreamARN %s and StreamName %s name different streams.", ref.StreamARN, ref.StreamName)
		}
		return acct, name, nil
	case ref.StreamName != "":
		if !validName(ref.StreamName) {
			return "", "", errValidate("1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128", ref.StreamName)
		}
		return c.account, ref.StreamName, nil
	}
	return "", "", errInvalid("Either StreamName or StreamARN should be provided.")
}

// stream returns the stream a request names, in any status.
func (c *call) stream(ref streamRef) (*stream, error) {
	acct, name, err := c.resolve(ref)
	if err != nil {
		return nil, err
	}
	st := c.s.lookup(acct, name, c.now)
	if st == nil {
		return nil, streamNotFound(acct, name)
	}
	return st, nil
}

// lookup returns the stream acct/name, or nil. A stream whose deletion
// delay has passed is removed here.
func (s *Server) lookup(acct, name string, now time.Time) *stream {
	s.mu.RLock()
	a := s.accounts[acct]
	var st *stream
	if a != nil {
		st = a.streams[name]
	}
	s.mu.RUnlock()
	if st == nil {
		return nil
	}
	st.mu.RLock()
	gone := st.deleting && !now.Before(st.goneAt)
	st.mu.RUnlock()
	if !gone {
		return st
	}
	s.mu.Lock()
	if a.streams[name] == st {
		delete(a.streams, name)
	}
	s.mu.Unlock()
	return nil
}

// streamsOf returns the streams of acct sorted by name, without those whose
// deletion is complete.
func (s *Server) streamsOf(acct string, now time.Time) []*stream {
	s.mu.RLock()
	var names []string
	if a := s.accounts[acct]; a != nil {
		for n := range a.streams {
			names = append(names, n)
		}
	}
	s.mu.RUnlock()
	sort.Strings(names)
	var out []*stream
	for _, n := range names {
		if st := s.lookup(acct, n, now); st != nil {
			out = append(out, st)
		}
	}
	return out
}

// readable reports an error unless records can be written to or read from
// st now. Caller holds st.mu.
func (st *stream) readable(now time.Time) error {
	switch st.status(now) {
	case statusCreating, statusDeleting:
		return streamNotFound(st.account, st.name)
	}
	return nil
}

// changeable reports an error unless st is ACTIVE, as resharding and
// retention changes require. Caller holds st.mu.
func (st *stream) changeable(now time.Time) error {
	if status := st.status(now); status != statusActive {
		return errInUse("Stream %s under account %s not ACTIVE, instead in state %s", st.name, st.account, status)
	}
	return nil
}

// lockChangeable returns the stream ref names, locked, when it is ACTIVE
// and so may change (reshard, retention, ...); the caller unlocks it.
func (c *call) lockChangeable(ref streamRef) (*stream, error) {
	st, err := c.stream(ref)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	if err := st.changeable(c.now); err != nil {
		st.mu.Unlock()
		return nil, err
	}
	return st, nil
}

// CreateStream creates a stream with shardCount shards in the default
// account, as the CreateStream action does. It is for programs that start
// the server with streams ready, such as `shardflow local --streams`.
func (s *Server) CreateStream(name string, shardCount int) error {
	_, err := s.create(s.cfg.DefaultAccount, name, shardCount, modeProvisioned, nil, s.now())
	return err
}

// create adds a stream.
func (s *Server) create(acct, name string, shardCount int, mode string, tags map[string]string, now time.Time) (*stream, error) {
	if !validName(name) {
		return nil, errValidate("1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128", name)
	}
	if shardCount < 1 || shardCount > maxShardsPerStream {
		return nil, errInvalid("ShardCount %d must be between 1 and %d.", shardCount, maxShardsPerStream)
	}
	if s.lookup(acct, name, now) != nil {
		return nil, errInUse("Stream %s under account %s already exists.", name, acct)
	}
	st := &stream{
		account:   acct,
		name:      name,
		arn:       s.streamARN(acct, name),
		created:   now,
		mode:      mode,
		readyAt:   now.Add(s.cfg.StreamDelay),
		retention: defaultRetentionHours * time.Hour,
		consumers: make(map[string]*consumer),
		tags:      make(map[string]string),
		notify:    make(chan struct{}),
	}
	for k, v := range tags {
		st.tags[k] = v
	}
	starts := evenSplit(shardCount)
	for i, start := range starts {
		end := maxU128
		if i+1 < len(starts) {
			end = starts[i+1].subOne()
		}
		s.newShard(st, start, end, "", "", now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[acct]
	if a == nil {
		a = &account{id: acct, streams: make(map[string]*stream)}
		s.accounts[acct] = a
	}
	if old := a.streams[name]; old != nil {
		// Lost a race with another CreateStream, or a deleted stream whose
		// removal lookup has not done yet.
		old.mu.RLock()
		done := old.deleting && !now.Before(old.goneAt)
		old.mu.RUnlock()
		if !done {
			return nil, errInUse("Stream %s under account %s already exists.", name, acct)
		}
	}
	a.streams[name] = st
	s.dirty.Store(true)
	return st, nil
}

func (s *Server) createStream(c *call) error {
	var in struct {
		StreamName        string
		ShardCount        *int
		StreamModeDetails *struct{ StreamMode string }
		Tags              map[string]string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.StreamName == "" {
		return errValidate("1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null")
	}
	mode := modeProvisioned
	if in.StreamModeDetails != nil {
		switch in.StreamModeDetails.StreamMode {
		case modeProvisioned, modeOnDemand:
			mode = in.StreamModeDetails.StreamMode
		default:
			return errValidate("1 validation error detected: Value '%s' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]", in.StreamModeDetails.StreamMode)
		}
	}
	n := onDemandShards
	switch {
	case in.ShardCount != nil:
		n = *in.ShardCount
	case mode == modeProvisioned:
		return errInvalid("ShardCount is required for a PROVISIONED stream.")
	}
	if _, err := s.create(c.account, in.StreamName, n, mode, in.Tags, c.now); err != nil {
		return err
	}
	return c.writeJSON([]byte("{}"))
}

func (s *Server) deleteStream(c *call) error {
	var in struct {
		streamRef
		EnforceConsumerDeletion bool
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	st, err := c.stream(in.streamRef)
	if err != nil {
		return err
	}
	st.mu.Lock()
	if st.deleting {
		st.mu.Unlock()
		return streamNotFound(st.account, st.name)
	}
	if len(st.consumers) > 0 && !in.EnforceConsumerDeletion {
		st.mu.Unlock()
		return errInUse("Stream %s under account %s has registered consumers. Use EnforceConsumerDeletion to delete them with the stream.", st.name, st.account)
	}
	st.deleting = true
	st.goneAt = c.now.Add(s.cfg.StreamDelay)
	st.consumers = map[string]*consumer{}
	st.wake()
	st.mu.Unlock()
	s.subs.endStream(st)
	s.dirty.Store(true)
	if s.cfg.StreamDelay == 0 {
		s.lookup(st.account, st.name, c.now) // removes it now
	}
	return c.writeJSON([]byte("{}"))
}

// shardOut is a Shard in DescribeStream and ListShards.
type shardOut struct {
	ShardID               string    `json:"ShardId"`
	ParentShardID         string    `json:"ParentShardId,omitempty"`
	AdjacentParentShardID string    `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          hashRange `json:"HashKeyRange"`
	SequenceNumberRange   seqRange  `json:"SequenceNumberRange"`
}

type hashRange struct {
	StartingHashKey string
	EndingHashKey   string
}

type seqRange struct {
	StartingSequenceNumber string
	EndingSequenceNumber   string `json:",omitempty"`
}

// out describes sh. Caller holds st.mu.
func (sh *shard) out() shardOut {
	o := shardOut{
		ShardID:               sh.id,
		ParentShardID:         sh.parent,
		AdjacentParentShardID: sh.adjParent,
		HashKeyRange:          hashRange{sh.hashStartStr, sh.hashEndStr},
		SequenceNumberRange:   seqRange{StartingSequenceNumber: seqString(sh.startCounter, sh.idx)},
	}
	if !sh.open() {
		o.SequenceNumberRange.EndingSequenceNumber = seqString(sh.endCounter, sh.idx)
	}
	return o
}

// listed reports whether ListShards and DescribeStream show sh at now:
// closed shards disappear once retention has passed since they closed.
// Caller holds st.mu.
func (st *stream) listed(sh *shard, now time.Time) bool {
	if sh.gone {
		return false
	}
	// A closed shard's records all arrived before it closed.
	return sh.open() || sh.closedAt.UnixMilli() >= st.horizon(now)
}

type streamModeDetails struct {
	StreamMode string
}

type enhancedMetrics struct {
	ShardLevelMetrics []string
}

func (s *Server) describeStream(c *call) error {
	var in struct {
		streamRef
		Limit                 *int
		ExclusiveStartShardId string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	limit, err := pageLimit(in.Limit, "limit", 100, 10000, 100)
	if err != nil {
		return err
	}
	st, err := c.stream(in.streamRef)
	if err != nil {
		return err
	}
	start := -1
	if in.ExclusiveStartShardId != "" {
		idx, ok := parseShardID(in.ExclusiveStartShardId)
		if !ok {
			return errInvalid("ExclusiveStartShardId %s is not a shard id.", in.ExclusiveStartShardId)
		}
		start = idx
	}
	type description struct {
		StreamName              string
		StreamARN               string
		StreamStatus            string
		StreamModeDetails       streamModeDetails
		Shards                  []shardOut
		HasMoreShards           bool
		RetentionPeriodHours    int
		StreamCreationTimestamp epoch
		EnhancedMonitoring      []enhancedMetrics
		EncryptionType          string
	}
	st.mu.RLock()
	d := description{
		StreamName:              st.name,
		StreamARN:               st.arn,
		StreamStatus:            st.status(c.now),
		StreamModeDetails:       streamModeDetails{st.mode},
		Shards:                  []shardOut{},
		RetentionPeriodHours:    int(st.retention / time.Hour),
		StreamCreationTimestamp: epoch(st.created),
		EnhancedMonitoring:      []enhancedMetrics{{ShardLevelMetrics: []string{}}},
		EncryptionType:          "NONE",
	}
	for _, sh := range st.shards {
		if sh.idx <= start || !st.listed(sh, c.now) {
			continue
		}
		if len(d.Shards) == limit {
			d.HasMoreShards = true
			break
		}
		d.Shards = append(d.Shards, sh.out())
	}
	st.mu.RUnlock()
	return c.reply(struct{ StreamDescription description }{d})
}

func (s *Server) describeStreamSummary(c *call) error {
	var in streamRef
	if err := c.decode(&in); err != nil {
		return err
	}
	st, err := c.stream(in)
	if err != nil {
		return err
	}
	type summary struct {
		StreamName              string
		StreamARN               string
		StreamStatus            string
		StreamModeDetails       streamModeDetails
		RetentionPeriodHours    int
		StreamCreationTimestamp epoch
		EnhancedMonitoring      []enhancedMetrics
		EncryptionType          string
		OpenShardCount          int
		ConsumerCount           int
	}
	st.mu.RLock()
	d := summary{
		StreamName:              st.name,
		StreamARN:               st.arn,
		StreamStatus:            st.status(c.now),
		StreamModeDetails:       streamModeDetails{st.mode},
		RetentionPeriodHours:    int(st.retention / time.Hour),
		StreamCreationTimestamp: epoch(st.created),
		EnhancedMonitoring:      []enhancedMetrics{{ShardLevelMetrics: []string{}}},
		EncryptionType:          "NONE",
		OpenShardCount:          len(st.openShards()),
		ConsumerCount:           st.liveConsumers(c.now),
	}
	st.mu.RUnlock()
	return c.reply(struct{ StreamDescriptionSummary summary }{d})
}

func (s *Server) listStreams(c *call) error {
	var in struct {
		Limit                    *int
		ExclusiveStartStreamName string
		NextToken                string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	limit, err := pageLimit(in.Limit, "limit", 100, 10000, 10000)
	if err != nil {
		return err
	}
	after := in.ExclusiveStartStreamName
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil {
			return errInvalid("Invalid NextToken.")
		}
		after = string(b)
	}
	type summary struct {
		StreamName              string
		StreamARN               string
		StreamStatus            string
		StreamModeDetails       streamModeDetails
		StreamCreationTimestamp epoch
	}
	out := struct {
		StreamNames     []string
		HasMoreStreams  bool
		NextToken       string `json:",omitempty"`
		StreamSummaries []summary
	}{StreamNames: []string{}, StreamSummaries: []summary{}}
	for _, st := range s.streamsOf(c.account, c.now) {
		if st.name <= after {
			continue
		}
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = true
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(out.StreamNames[len(out.StreamNames)-1]))
			break
		}
		st.mu.RLock()
		out.StreamNames = append(out.StreamNames, st.name)
		out.StreamSummaries = append(out.StreamSummaries, summary{st.name, st.arn, st.status(c.now), streamModeDetails{st.mode}, epoch(st.created)})
		st.mu.RUnlock()
	}
	return c.reply(out)
}

// listShardsToken is the decoded NextToken of ListShards.
type listShardsToken struct {
	Account string `json:"a"`
	Stream  string `json:"s"`
	Created int64  `json:"c"` // stream creation, Unix nanoseconds
	After   int    `json:"i"` // last shard index returned
	Filter  string `json:"f,omitempty"`
	FilterT int64  `json:"t,omitempty"` // Unix milliseconds
	Issued  int64  `json:"n"`           // Unix milliseconds
}

// nextTokenTTL is how long a ListShards NextToken is valid.
const nextTokenTTL = 300 * time.Second

func (s *Server) listShards(c *call) error {
	var in struct {
		streamRef
		NextToken               string
		ExclusiveStartShardId   string
		MaxResults              *int
		StreamCreationTimestamp timestampNumber
		ShardFilter             *struct {
			Type      string
			ShardId   string
			Timestamp timestampNumber
		}
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	limit, err := pageLimit(in.MaxResults, "maxResults", 1000, 10000, 1000)
	if err != nil {
		return err
	}
	var (
		st      *stream
		after   = -1
		filter  string
		filterT time.Time
	)
	if in.NextToken != "" {
		if in.StreamName != "" || in.StreamARN != "" || in.ExclusiveStartShardId != "" || in.ShardFilter != nil {
			return errInvalid("NextToken and StreamName cannot be provided together.")
		}
		raw, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		var tok listShardsToken
		if err != nil || json.Unmarshal(raw, &tok) != nil {
			return errInvalid("Invalid NextToken.")
		}
		if c.now.Sub(time.UnixMilli(tok.Issued)) > nextTokenTTL {
			return newError(errExpiredNextToken, "The timestamp in the NextToken has expired.")
		}
		st = s.lookup(tok.Account, tok.Stream, c.now)
		if st == nil || st.created.UnixNano() != tok.Created {
			return streamNotFound(tok.Account, tok.Stream)
		}
		after, filter = tok.After, tok.Filter
		if tok.FilterT != 0 {
			filterT = time.UnixMilli(tok.FilterT)
		}
	} else {
		var err error
		if st, err = c.stream(in.streamRef); err != nil {
			return err
		}
		if in.StreamCreationTimestamp.set && in.StreamCreationTimestamp.t.UnixMilli() != st.created.UnixMilli() {
			return streamNotFound(st.account, st.name)
		}
		if in.ExclusiveStartShardId != "" {
			idx, ok := parseShardID(in.ExclusiveStartShardId)
			if !ok {
				return errInvalid("ExclusiveStartShardId %s is not a shard id.", in.ExclusiveStartShardId)
			}
			after = idx
		}
		if f := in.ShardFilter; f != nil {
			filter = f.Type
			switch f.Type {
			case "AFTER_SHARD_ID":
				idx, ok := parseShardID(f.ShardId)
				if !ok {
					return errInvalid("ShardFilter of type AFTER_SHARD_ID requires a valid ShardId.")
				}
				after = max(after, idx)
			case "AT_TIMESTAMP", "FROM_TIMESTAMP":
				if !f.Timestamp.set {
					return errInvalid("ShardFilter of type %s requires a Timestamp.", f.Type)
				}
				filterT = f.Timestamp.t
			case "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST":
			default:
				return errValidate("1 validation error detected: Value '%s' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]", f.Type)
			}
			if f.ShardId != "" && f.Type != "AFTER_SHARD_ID" {
				return errInvalid("ShardId can only be used with ShardFilter type AFTER_SHARD_ID.")
			}
		}
	}

	out := struct {
		Shards    []shardOut
		NextToken string `json:",omitempty"`
	}{Shards: []shardOut{}}
	st.mu.RLock()
	if st.status(c.now) == statusCreating {
		st.mu.RUnlock()
		return errInUse("Stream %s under account %s is in CREATING state.", st.name, st.account)
	}
	horizon := time.UnixMilli(st.horizon(c.now))
	last := -1
	more := false
	for _, sh := range st.shards {
		if sh.idx <= after || !st.listed(sh, c.now) || !matchFilter(st, sh, filter, filterT, horizon) {
			continue
		}
		if len(out.Shards) == limit {
			more = true
			break
		}
		out.Shards = append(out.Shards, sh.out())
		last = sh.idx
	}
	tok := listShardsToken{Account: st.account, Stream: st.name, Created: st.created.UnixNano(), After: last, Filter: filter, Issued: c.now.UnixMilli()}
	st.mu.RUnlock()
	if more {
		if !filterT.IsZero() {
			tok.FilterT = filterT.UnixMilli()
		}
		raw, _ := json.Marshal(tok)
		out.NextToken = base64.RawURLEncoding.EncodeToString(raw)
	}
	return c.reply(out)
}

// matchFilter applies a ShardFilter type to sh. Caller holds st.mu.
func matchFilter(st *stream, sh *shard, filter string, t, horizon time.Time) bool {
	// openAt reports whether sh was open at time at.
	openAt := func(at time.Time) bool {
		return !sh.created.After(at) && (sh.open() || !sh.closedAt.Before(at))
	}
	clamp := func(at time.Time) time.Time {
		if at.Before(st.created) {
			at = st.created
		}
		return at
	}
	switch filter {
	case "AT_LATEST":
		return sh.open()
	case "AT_TRIM_HORIZON":
		return openAt(clamp(horizon))
	case "AT_TIMESTAMP":
		return openAt(clamp(t))
	case "FROM_TIMESTAMP":
		if t.Before(horizon) {
			t = horizon
		}
		return sh.open() || !sh.closedAt.Before(t)
	}
	return true // FROM_TRIM_HORIZON, AFTER_SHARD_ID, none
}

func (s *Server) increaseRetention(c *call) error { return s.changeRetention(c, true) }

func (s *Server) decreaseRetention(c *call) error { return s.changeRetention(c, false) }

func (s *Server) changeRetention(c *call, increase bool) error {
	var in struct {
		streamRef
		RetentionPeriodHours *int
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.RetentionPeriodHours == nil {
		return errValidate("1 validation error detected: Value null at 'retentionPeriodHours' failed to satisfy constraint: Member must not be null")
	}
	h := *in.RetentionPeriodHours
	st, err := c.lockChangeable(in.streamRef)
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	cur := int(st.retention / time.Hour)
	switch {
	case h < minRetentionHours:
		return errInvalid("Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", minRetentionHours, h)
	case h > maxRetentionHours:
		return errInvalid("Maximum allowed retention period is %d hours. Requested retention period (%d hours) is too long.", maxRetentionHours, h)
	case increase && h < cur:
		return errInvalid("Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", h, st.name, cur)
	case !increase && h > cur:
		return errInvalid("Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", h, st.name, cur)
	}
	st.retention = time.Duration(h) * time.Hour
	st.trim(c.now, time.Time{}, nil)
	s.dirty.Store(true)
	return c.writeJSON([]byte("{}"))
}

// maxTags is the number of tags a stream may have.
const maxTags = 50

func (s *Server) addTags(c *call) error {
	var in struct {
		streamRef
		Tags map[string]string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if len(in.Tags) == 0 {
		return errValidate("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	st, err := c.stream(in.streamRef)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := len(st.tags)
	for k := range in.Tags {
		if _, ok := st.tags[k]; !ok {
			n++
		}
	}
	if n > maxTags {
		return newError(errLimitExceeded, "Failed to add tags to stream %s under account %s because a given stream cannot have more than %d tags.", st.name, st.account, maxTags)
	}
	for k, v := range in.Tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			return errInvalid("Tag keys must be 1-128 characters and values at most 256.")
		}
	}
	for k, v := range in.Tags {
		st.tags[k] = v
	}
	s.dirty.Store(true)
	return c.writeJSON([]byte("{}"))
}

func (s *Server) removeTags(c *call) error {
	var in struct {
		streamRef
		TagKeys []string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	st, err := c.stream(in.streamRef)
	if err != nil {
		return err
	}
	st.mu.Lock()
	for _, k := range in.TagKeys {
		delete(st.tags, k)
	}
	st.mu.Unlock()
	s.dirty.Store(true)
	return c.writeJSON([]byte("{}"))
}

func (s *Server) listTags(c *call) error {
	var in struct {
		streamRef
		ExclusiveStartTagKey string
		Limit                *int
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	limit, err := pageLimit(in.Limit, "limit", 50, 50, 50)
	if err != nil {
		return err
	}
	st, err := c.stream(in.streamRef)
	if err != nil {
		return err
	}
	type tag struct{ Key, Value string }
	out := struct {
		Tags        []tag
		HasMoreTags bool
	}{Tags: []tag{}}
	st.mu.RLock()
	keys := make([]string, 0, len(st.tags))
	for k := range st.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k <= in.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, tag{k, st.tags[k]})
	}
	st.mu.RUnlock()
	return c.reply(out)
}

func (s *Server) describeLimits(c *call) error {
	if err := c.decode(&struct{}{}); err != nil {
		return err
	}
	open, onDemand := 0, 0
	for _, st := range s.streamsOf(c.account, c.now) {
		st.mu.RLock()
		open += len(st.openShards())
		if st.mode == modeOnDemand {
			onDemand++
		}
		st.mu.RUnlock()
	}
	return c.reply(struct {
		ShardLimit               int
		OpenShardCount           int
		OnDemandStreamCount      int
		OnDemandStreamCountLimit int
	}{20000, open, onDemand, 50})
}

// pageLimit is an action's optional page size (Limit, MaxResults): def
// when v is nil, a validation error naming field outside 1..hi, else v
// capped at most (the most the service returns per page).
func pageLimit(v *int, field string, def, hi, most int) (int, error) {
	if v == nil {
		return def, nil
	}
	if *v < 1 || *v > hi {
		return 0, errValidate("1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value between 1 and %d", *v, field, hi)
	}
	return min(*v, most), nil
}
