package kdsfake

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"sort"
	"time"
	"unicode/utf8"
)

// Record and request limits of PutRecord and PutRecords.
const (
	maxRecordBytes   = 1 << 20 // data plus partition key
	maxRequestBytes  = 5 << 20 // all records of one PutRecords
	maxPutRecords    = 500
	maxPartitionKey  = 256 // characters
	maxGetLimit      = 10000
	maxGetBytes      = 10 << 20
	maxIteratorChars = 512
)

// putEntry is one record to write.
type putEntry struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey *string
}

// putResult is the outcome of one putEntry.
type putResult struct {
	counter uint64
	shard   *shard
	errMsg  string // set when throttled
}

// validateEntry checks one record. i is its index in PutRecords, or -1.
func validateEntry(e *putEntry, i int) (u128, error) {
	field := func(name string) string {
		if i < 0 {
			return name
		}
		return "records." + itoa(i+1) + ".member." + name
	}
	if e.Data == nil {
		return u128{}, errValidate("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field("data"))
	}
	if len(e.Data) > maxRecordBytes {
		return u128{}, errValidate("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field("data"), maxRecordBytes)
	}
	n := utf8.RuneCountInString(e.PartitionKey)
	if n < 1 || n > maxPartitionKey {
		return u128{}, errValidate("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length between 1 and %d", e.PartitionKey, field("partitionKey"), maxPartitionKey)
	}
	if len(e.Data)+len(e.PartitionKey) > maxRecordBytes {
		return u128{}, errInvalid("Record size (data plus partition key) of %d bytes exceeds the limit of %d bytes.", len(e.Data)+len(e.PartitionKey), maxRecordBytes)
	}
	if e.ExplicitHashKey != nil {
		k, ok := parseHashKey(*e.ExplicitHashKey)
		if !ok {
			return u128{}, errInvalid("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", *e.ExplicitHashKey)
		}
		return k, nil
	}
	return hashPartitionKey(e.PartitionKey), nil
}

// put writes entries, whose hash keys are keys, to st. Records a quota
// refuses get errMsg instead of a sequence number.
func (s *Server) put(st *stream, entries []putEntry, keys []u128, now time.Time, throttle bool) ([]putResult, error) {
	res := make([]putResult, len(entries))
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.readable(now); err != nil {
		return nil, err
	}
	open := st.openShards()
	ms := now.UnixMilli()
	added := false
	for i := range entries {
		e := &entries[i]
		sh := routeKey(open, keys[i])
		if sh == nil {
			return nil, newError(errInternalFailure, "Internal Service Failure")
		}
		res[i].shard = sh
		if throttle || s.cfg.Quotas && !sh.quota.write(now, len(e.Data)+len(e.PartitionKey)) {
			res[i].errMsg = rateExceeded(st.account, st.name, sh.id)
			continue
		}
		arrival := ms
		if n := len(sh.recs); n > 0 && sh.recs[n-1].arrival > arrival {
			arrival = sh.recs[n-1].arrival
		}
		c := s.seq.Add(1)
		sh.recs = append(sh.recs, record{counter: c, arrival: arrival, pk: e.PartitionKey, data: e.Data})
		res[i].counter = c
		added = true
	}
	if added {
		// Drop records past retention once they are a good part of a
		// shard, so that memory stays bounded at an amortized cost.
		for _, sh := range open {
			if n := st.live(sh, now); n >= 1024 && n >= len(sh.recs)/4 {
				sh.recs = append([]record(nil), sh.recs[n:]...)
			}
		}
		st.wake()
		s.dirty.Store(true)
	}
	return res, nil
}

func (s *Server) putRecord(c *call) error {
	var in struct {
		streamRef
		putEntry
		SequenceNumberForOrdering string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	key, err := validateEntry(&in.putEntry, -1)
	if err != nil {
		return err
	}
	if in.SequenceNumberForOrdering != "" && !validSeqSyntax(in.SequenceNumberForOrdering) {
		return errValidate("1 validation error detected: Value '%s' at 'sequenceNumberForOrdering' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})", in.SequenceNumberForOrdering)
	}
	st, err := c.stream(in.streamRef)
	if err != nil {
		return err
	}
	res, err := s.put(st, []putEntry{in.putEntry}, []u128{key}, c.now, false)
	if err != nil {
		return err
	}
	r := res[0]
	if r.errMsg != "" {
		return newError(errThroughput, "%s", r.errMsg)
	}
	b := make([]byte, 0, 160)
	b = append(b, `{"ShardId":"`...)
	b = append(b, r.shard.id...)
	b = append(b, `","SequenceNumber":"`...)
	b = appendSeq(b, r.counter, r.shard.idx)
	b = append(b, `","EncryptionType":"NONE"}`...)
	return c.writeJSON(b)
}

func (s *Server) putRecords(c *call) error {
	var in struct {
		streamRef
		Records []putEntry
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if len(in.Records) == 0 {
		return errValidate("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(in.Records) > maxPutRecords {
		return errValidate("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to %d", maxPutRecords)
	}
	keys := make([]u128, len(in.Records))
	total := 0
	for i := range in.Records {
		k, err := validateEntry(&in.Records[i], i)
		if err != nil {
			return err
		}
		keys[i] = k
		total += len(in.Records[i].Data) + len(in.Records[i].PartitionKey)
	}
	if total > maxRequestBytes {
		return errInvalid("Records size of %d bytes exceeds the limit of %d bytes per PutRecords request.", total, maxRequestBytes)
	}
	st, err := c.stream(in.streamRef)
	if err != nil {
		return err
	}
	throttle := s.faults.take(c.action, faultThrottleRecords)
	res, err := s.put(st, in.Records, keys, c.now, throttle)
	if err != nil {
		return err
	}
	failed := 0
	for i := range res {
		if res[i].errMsg != "" {
			failed++
		}
	}
	bp := getBuf()
	b := (*bp)[:0]
	b = append(b, `{"FailedRecordCount":`...)
	b = appendInt(b, int64(failed))
	b = append(b, `,"Records":[`...)
	for i := range res {
		if i > 0 {
			b = append(b, ',')
		}
		r := &res[i]
		if r.errMsg != "" {
			b = append(b, `{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":`...)
			b = appendString(b, r.errMsg)
			b = append(b, '}')
			continue
		}
		b = append(b, `{"SequenceNumber":"`...)
		b = appendSeq(b, r.counter, r.shard.idx)
		b = append(b, `","ShardId":"`...)
		b = append(b, r.shard.id...)
		b = append(b, `"}`...)
	}
	b = append(b, `],"EncryptionType":"NONE"}`...)
	err = c.writeJSON(b)
	putBuf(bp, b)
	return err
}

// iterator is the decoded state of a shard iterator.
type iterator struct {
	epoch   uint64 // Server.iterEpoch when issued
	issued  int64  // Unix milliseconds
	created int64  // stream creation, Unix nanoseconds
	shard   int
	after   uint64 // read records with counter > after
	account string
	stream  string
}

// iteratorVersion is the first byte of every encoded iterator.
const iteratorVersion = 1

// encode returns the opaque iterator string.
func (it *iterator) encode() string {
	b := make([]byte, 0, 96)
	b = append(b, iteratorVersion)
	b = binary.AppendUvarint(b, it.epoch)
	b = binary.AppendVarint(b, it.issued)
	b = binary.AppendVarint(b, it.created)
	b = binary.AppendUvarint(b, uint64(it.shard))
	b = binary.AppendUvarint(b, it.after)
	b = binary.AppendUvarint(b, uint64(len(it.account)))
	b = append(b, it.account...)
	b = binary.AppendUvarint(b, uint64(len(it.stream)))
	b = append(b, it.stream...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeIterator parses an iterator string; ok is false for anything this
// server did not issue.
func decodeIterator(s string) (it iterator, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 5 || b[0] != iteratorVersion {
		return it, false
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return it, false
	}
	r := body[1:]
	uv := func() uint64 {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			ok = false
			return 0
		}
		r = r[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(r)
		if n <= 0 {
			ok = false
			return 0
		}
		r = r[n:]
		return v
	}
	str := func() string {
		n := uv()
		if !ok || n > uint64(len(r)) {
			ok = false
			return ""
		}
		v := string(r[:n])
		r = r[n:]
		return v
	}
	ok = true
	it.epoch = uv()
	it.issued = sv()
	it.created = sv()
	it.shard = int(uv() & 0x7fffffff)
	it.after = uv()
	it.account = str()
	it.stream = str()
	return it, ok && len(r) == 0
}

// startingPosition resolves an iterator type to the counter after which
// reading starts. Caller holds st.mu.
func startingPosition(st *stream, sh *shard, typ, seq string, ts timestampNumber, now time.Time, op string) (uint64, error) {
	last := sh.startCounter
	if n := len(sh.recs); n > 0 {
		last = sh.recs[n-1].counter
	}
	switch typ {
	case "TRIM_HORIZON":
		return sh.startCounter, nil
	case "LATEST":
		return last, nil
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if seq == "" {
			return 0, errInvalid("StartingSequenceNumber is required for iterator type %s.", typ)
		}
		if !validSeqSyntax(seq) {
			return 0, errValidate("1 validation error detected: Value '%s' at 'startingSequenceNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})", seq)
		}
		counter, idx, ok := parseSeq(seq)
		if !ok || idx != sh.idx || counter < sh.startCounter || !sh.open() && counter > sh.endCounter {
			return 0, errInvalid("StartingSequenceNumber %s used in %s on shard %s in stream %s under account %s is invalid because it did not come from this stream.", seq, op, sh.id, st.name, st.account)
		}
		if typ == "AT_SEQUENCE_NUMBER" {
			return counter - 1, nil
		}
		return counter, nil
	case "AT_TIMESTAMP":
		if !ts.set {
			return 0, errInvalid("Timestamp is required for iterator type AT_TIMESTAMP.")
		}
		if ts.t.After(now) {
			return 0, errInvalid("The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: %d, currentTimestampInMillis: %d", ts.t.UnixMilli(), now.UnixMilli())
		}
		ms := ts.t.UnixMilli()
		i := sort.Search(len(sh.recs), func(i int) bool { return sh.recs[i].arrival >= ms })
		if i < len(sh.recs) {
			return sh.recs[i].counter - 1, nil
		}
		return last, nil
	}
	return 0, errValidate("1 validation error detected: Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]", typ)
}

func (s *Server) getShardIterator(c *call) error {
	var in struct {
		streamRef
		ShardId                string
		ShardIteratorType      string
		StartingSequenceNumber string
		Timestamp              timestampNumber
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.ShardId == "" {
		return errValidate("1 validation error detected: Value null at 'shardId' failed to satisfy constraint: Member must not be null")
	}
	st, err := c.stream(in.streamRef)
	if err != nil {
		return err
	}
	st.mu.RLock()
	if err := st.readable(c.now); err != nil {
		st.mu.RUnlock()
		return err
	}
	sh := st.shardByID(in.ShardId)
	if sh == nil || !st.listed(sh, c.now) {
		st.mu.RUnlock()
		return shardNotFound(st.account, st.name, in.ShardId)
	}
	after, err := startingPosition(st, sh, in.ShardIteratorType, in.StartingSequenceNumber, in.Timestamp, c.now, "GetShardIterator")
	it := iterator{
		epoch:   s.iterEpoch.Load(),
		issued:  c.now.UnixMilli(),
		created: st.created.UnixNano(),
		shard:   sh.idx,
		after:   after,
		account: st.account,
		stream:  st.name,
	}
	st.mu.RUnlock()
	if err != nil {
		return err
	}
	if s.cfg.Quotas && !sh.quota.iterator(c.now) {
		return newError(errThroughput, "%s", rateExceeded(st.account, st.name, sh.id))
	}
	b := make([]byte, 0, 160)
	b = append(b, `{"ShardIterator":"`...)
	b = append(b, it.encode()...)
	b = append(b, `"}`...)
	return c.writeJSON(b)
}

// readResult is a page of records read from a shard.
type readResult struct {
	recs       []record // shared with the shard: read only
	after      uint64   // position after the page
	behind     int64    // MillisBehindLatest
	end        bool     // a closed shard's end was reached
	bytes      int
	continuing bool // records remain after the page
}

// read returns up to limit records (and at most maxBytes, but at least one)
// after position after. Caller holds st.mu.
func (st *stream) read(sh *shard, after uint64, limit, maxBytes int, now time.Time) readResult {
	recs := sh.recs
	lo := sort.Search(len(recs), func(i int) bool { return recs[i].counter > after })
	if live := st.live(sh, now); lo < live {
		lo = live
	}
	hi, size := lo, 0
	for hi < len(recs) && hi-lo < limit {
		n := len(recs[hi].data) + len(recs[hi].pk)
		if hi > lo && size+n > maxBytes {
			break
		}
		size += n
		hi++
	}
	res := readResult{recs: recs[lo:hi], after: after, bytes: size}
	if hi > lo {
		res.after = recs[hi-1].counter
	} else if lo > 0 && recs[lo-1].counter > after {
		// Skipped trimmed records.
		res.after = recs[lo-1].counter
	}
	if hi < len(recs) {
		res.continuing = true
		res.behind = max(1, now.UnixMilli()-recs[hi].arrival)
	} else if !sh.open() {
		res.end = true
	}
	return res
}

func (s *Server) getRecords(c *call) error {
	var in struct {
		ShardIterator string
		Limit         *int
		StreamARN     string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.ShardIterator == "" {
		return errValidate("1 validation error detected: Value null at 'shardIterator' failed to satisfy constraint: Member must not be null")
	}
	if len(in.ShardIterator) > maxIteratorChars {
		return errValidate("1 validation error detected: Value at 'shardIterator' failed to satisfy constraint: Member must have length less than or equal to %d", maxIteratorChars)
	}
	limit, err := pageLimit(in.Limit, "limit", maxGetLimit, maxGetLimit, maxGetLimit)
	if err != nil {
		return err
	}
	it, ok := decodeIterator(in.ShardIterator)
	if !ok {
		return errInvalid("Invalid ShardIterator.")
	}
	if it.epoch != s.iterEpoch.Load() || c.now.UnixMilli()-it.issued > s.cfg.IteratorTTL.Milliseconds() {
		return newError(errExpiredIterator, "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			time.UnixMilli(it.issued).UTC().Format(time.RFC1123), c.now.UTC().Format(time.RFC1123), s.cfg.IteratorTTL.Milliseconds())
	}
	st := s.lookup(it.account, it.stream, c.now)
	if st == nil || st.created.UnixNano() != it.created {
		return streamNotFound(it.account, it.stream)
	}

	st.mu.RLock()
	if err := st.readable(c.now); err != nil {
		st.mu.RUnlock()
		return err
	}
	if it.shard >= len(st.shards) || !st.listed(st.shards[it.shard], c.now) {
		st.mu.RUnlock()
		return shardNotFound(st.account, st.name, shardID(it.shard))
	}
	sh := st.shards[it.shard]
	if s.cfg.Quotas && !sh.quota.read(c.now) {
		st.mu.RUnlock()
		return newError(errThroughput, "%s", rateExceeded(st.account, st.name, sh.id))
	}
	res := st.read(sh, it.after, limit, maxGetBytes, c.now)
	bp := getBuf()
	b := (*bp)[:0]
	if res.end {
		// Children are fixed once a shard is closed, so build this part
		// under the lock; records are encoded after unlocking.
		b = append(b, `,"ChildShards":`...)
		b = appendChildShards(b, st, sh)
	}
	st.mu.RUnlock()
	tail := append([]byte(nil), b...)
	b = b[:0]

	b = append(b, `{"Records":[`...)
	for i := range res.recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRecord(b, &res.recs[i], sh.idx)
	}
	b = append(b, `],"MillisBehindLatest":`...)
	b = appendInt(b, res.behind)
	if !res.end {
		next := it
		next.after = res.after
		next.issued = c.now.UnixMilli()
		b = append(b, `,"NextShardIterator":"`...)
		b = append(b, next.encode()...)
		b = append(b, '"')
	}
	b = append(b, tail...)
	b = append(b, '}')
	if s.cfg.Quotas {
		sh.quota.readBytes(res.bytes)
	}
	err = c.writeJSON(b)
	putBuf(bp, b)
	return err
}

// itoa formats a small int.
func itoa(i int) string { return string(appendInt(nil, int64(i))) }
