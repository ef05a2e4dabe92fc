package kdsfake

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Stream and consumer statuses, as Kinesis spells them.
const (
	statusCreating = "CREATING"
	statusActive   = "ACTIVE"
	statusUpdating = "UPDATING"
	statusDeleting = "DELETING"
)

// Stream modes.
const (
	modeProvisioned = "PROVISIONED"
	modeOnDemand    = "ON_DEMAND"
)

// onDemandShards is the shard count of a new ON_DEMAND stream (4 MB/s of
// write capacity, as a new on-demand stream has on AWS).
const onDemandShards = 4

// maxShardsPerStream bounds CreateStream and UpdateShardCount so that a
// hostile request cannot make the server allocate without limit.
const maxShardsPerStream = 10000

// account holds the streams of one AWS account. Guarded by Server.mu.
type account struct {
	id      string
	streams map[string]*stream
}

// stream is one Kinesis data stream. Its mutex guards everything below it:
// metadata, shards, records, consumers and tags. Record data is immutable once
// stored, so a reader may keep a slice of records after unlocking.
type stream struct {
	mu sync.RWMutex

	account string
	name    string
	arn     string
	created time.Time
	mode    string

	readyAt       time.Time // CREATING until then
	updatingUntil time.Time // UPDATING until then
	deleting      bool
	goneAt        time.Time // with deleting: removed from the account then

	retention time.Duration
	shards    []*shard // by index; shard i is "shardId-" + i
	consumers map[string]*consumer
	tags      map[string]string

	// notify is closed and replaced whenever records are added or the
	// shards change, to wake up subscriptions.
	notify chan struct{}
}

// shard is one shard of a stream. Guarded by stream.mu, except the quota
// buckets, which have their own mutex because readers update them.
type shard struct {
	idx       int
	id        string
	parent    string
	adjParent string

	hashStart, hashEnd u128
	hashStartStr       string
	hashEndStr         string

	startCounter uint64 // StartingSequenceNumber; no record has it
	endCounter   uint64 // EndingSequenceNumber once closed; 0 while open
	created      time.Time
	closedAt     time.Time // zero while open
	gone         bool      // closed and trimmed: no longer listed or readable

	// recs holds the retained records in sequence order. Trimming reslices
	// or copies it; it never changes a record in place.
	recs []record

	quota shardQuota
}

// record is one stored record. counter orders records within a stream.
type record struct {
	counter uint64
	arrival int64 // Unix milliseconds, non-decreasing within a shard
	pk      string
	data    []byte
}

// status returns the stream status at now. Caller holds st.mu.
func (st *stream) status(now time.Time) string {
	switch {
	case st.deleting:
		return statusDeleting
	case now.Before(st.readyAt):
		return statusCreating
	case now.Before(st.updatingUntil):
		return statusUpdating
	}
	return statusActive
}

// wake wakes up subscriptions waiting for changes. Caller holds st.mu for
// writing.
func (st *stream) wake() {
	close(st.notify)
	st.notify = make(chan struct{})
}

// open reports whether sh accepts new records.
func (sh *shard) open() bool { return sh.closedAt.IsZero() }

// openShards returns the open shards sorted by hash range. Caller holds st.mu.
func (st *stream) openShards() []*shard {
	var out []*shard
	for _, sh := range st.shards {
		if sh.open() {
			out = append(out, sh)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hashStart.less(out[j].hashStart) })
	return out
}

// shardByID returns the shard with id, or nil. Caller holds st.mu.
func (st *stream) shardByID(id string) *shard {
	idx, ok := parseShardID(id)
	if !ok || idx >= len(st.shards) {
		return nil
	}
	return st.shards[idx]
}

// children returns the shards whose parent or adjacent parent is sh.
// Caller holds st.mu.
func (st *stream) children(sh *shard) []*shard {
	var out []*shard
	for _, c := range st.shards[sh.idx+1:] {
		if c.parent == sh.id || c.adjParent == sh.id {
			out = append(out, c)
		}
	}
	return out
}

// horizon is the oldest arrival time that retention keeps at now.
func (st *stream) horizon(now time.Time) int64 {
	return now.Add(-st.retention).UnixMilli()
}

// live returns the index of the first record of sh kept by retention at
// now. Records before it are trimmed even if not yet dropped from memory.
func (st *stream) live(sh *shard, now time.Time) int {
	h := st.horizon(now)
	return sort.Search(len(sh.recs), func(i int) bool { return sh.recs[i].arrival >= h })
}

// trim drops records older than retention (and older than before, when not
// zero) from every shard, and marks closed shards whose records and
// retention period have both passed as gone. Caller holds st.mu for writing.
func (st *stream) trim(now time.Time, before time.Time, only *shard) {
	h := st.horizon(now)
	if !before.IsZero() && before.UnixMilli() > h {
		h = before.UnixMilli()
	}
	for _, sh := range st.shards {
		if only != nil && sh != only {
			continue
		}
		if n := sort.Search(len(sh.recs), func(i int) bool { return sh.recs[i].arrival >= h }); n > 0 {
			// Copy so that the dropped records can be collected; readers
			// holding the old slice keep seeing valid data.
			sh.recs = append([]record(nil), sh.recs[n:]...)
		}
		if !sh.open() && len(sh.recs) == 0 && sh.closedAt.UnixMilli() < h {
			sh.gone = true
		}
	}
}

// newShard appends a new open shard covering [start, end]. Caller holds
// st.mu for writing.
func (s *Server) newShard(st *stream, start, end u128, parent, adj string, now time.Time) *shard {
	idx := len(st.shards)
	sh := &shard{
		idx:          idx,
		id:           shardID(idx),
		parent:       parent,
		adjParent:    adj,
		hashStart:    start,
		hashEnd:      end,
		hashStartStr: start.String(),
		hashEndStr:   end.String(),
		startCounter: s.seq.Add(1),
		created:      now,
	}
	st.shards = append(st.shards, sh)
	return sh
}

// closeShard closes sh. Caller holds st.mu for writing.
func (s *Server) closeShard(sh *shard, now time.Time) {
	sh.endCounter = s.seq.Add(1)
	sh.closedAt = now
}

// shardID formats a shard index the way Kinesis does.
func shardID(idx int) string {
	return fmt.Sprintf("shardId-%012d", idx)
}

// parseShardID parses "shardId-000000000007" (any number of digits, as the
// API accepts "shardId-7" too) into 7.
func parseShardID(id string) (int, bool) {
	const prefix = "shardId-"
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix {
		return 0, false
	}
	n, err := strconv.ParseUint(id[len(prefix):], 10, 31)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// route returns the open shard whose hash range holds key. Caller holds st.mu.
func routeKey(open []*shard, key u128) *shard {
	i := sort.Search(len(open), func(i int) bool { return key.less(open[i].hashStart) })
	if i == 0 {
		return nil
	}
	sh := open[i-1]
	if sh.hashEnd.less(key) {
		return nil
	}
	return sh
}

// Sequence numbers are 56 decimal digits, like Kinesis's:
//
//	"49" | counter (24 digits) | shard index (10 digits) | 20 zeros
//
// The counter is one per server and increases with every record and every
// shard start or end, so sequence numbers increase within a shard and
// compare across the shards of a stream as big integers.
const (
	seqLen       = 56
	seqPrefix    = "49"
	seqCounterW  = 24
	seqShardW    = 10
	seqPaddingW  = seqLen - len(seqPrefix) - seqCounterW - seqShardW
	seqZeroTail  = "00000000000000000000"
	maxSeqDigits = 129
)

// appendSeq appends the sequence number of counter in shard idx to b.
func appendSeq(b []byte, counter uint64, idx int) []byte {
	b = append(b, seqPrefix...)
	b = appendPadded(b, counter, seqCounterW)
	b = appendPadded(b, uint64(idx), seqShardW)
	return append(b, seqZeroTail[:seqPaddingW]...)
}

// seqString returns the sequence number of counter in shard idx.
func seqString(counter uint64, idx int) string {
	var buf [seqLen]byte
	return string(appendSeq(buf[:0], counter, idx))
}

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(b []byte, v uint64, width int) []byte {
	var tmp [24]byte
	d := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// validSeqSyntax reports whether s matches the API's sequence number
// pattern 0|([1-9]\d{0,128}).
func validSeqSyntax(s string) bool {
	if s == "0" {
		return true
	}
	if s == "" || len(s) > maxSeqDigits || s[0] < '1' || s[0] > '9' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseSeq extracts the counter and shard index from a sequence number this
// server issued. ok is false for any other number.
func parseSeq(s string) (counter uint64, idx int, ok bool) {
	if len(s) != seqLen || s[:2] != seqPrefix || !validSeqSyntax(s) {
		return 0, 0, false
	}
	c, err := strconv.ParseUint(s[2:2+seqCounterW], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	i, err := strconv.ParseUint(s[2+seqCounterW:2+seqCounterW+seqShardW], 10, 31)
	if err != nil {
		return 0, 0, false
	}
	return c, int(i), true
}

// u128 is an unsigned 128-bit hash key.
type u128 struct{ hi, lo uint64 }

// maxU128 is 2^128-1, the last hash key.
var maxU128 = u128{^uint64(0), ^uint64(0)}

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) big() *big.Int {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return new(big.Int).SetBytes(b[:])
}

func (a u128) String() string { return a.big().String() }

// addOne returns a+1 (wrapping at 2^128).
func (a u128) addOne() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

// subOne returns a-1 (wrapping at 0).
func (a u128) subOne() u128 {
	lo := a.lo - 1
	hi := a.hi
	if a.lo == 0 {
		hi--
	}
	return u128{hi, lo}
}

// u128FromBig converts b, which must be in [0, 2^128).
func u128FromBig(b *big.Int) u128 {
	var buf [16]byte
	b.FillBytes(buf[:])
	return u128{binary.BigEndian.Uint64(buf[:8]), binary.BigEndian.Uint64(buf[8:])}
}

// parseHashKey parses a decimal hash key in [0, 2^128).
func parseHashKey(s string) (u128, bool) {
	if s == "" || len(s) > 39 {
		return u128{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return u128{}, false
		}
	}
	b, ok := new(big.Int).SetString(s, 10)
	if !ok || b.BitLen() > 128 {
		return u128{}, false
	}
	return u128FromBig(b), true
}

// hashPartitionKey maps a partition key to its hash key: the MD5 digest as
// a 128-bit big-endian integer.
func hashPartitionKey(pk string) u128 {
	sum := md5.Sum([]byte(pk))
	return u128{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

// evenSplit returns the start of each of n ranges that split the hash key
// space evenly: range i starts at i*floor(2^128/n); the last ends at 2^128-1.
func evenSplit(n int) []u128 {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(space, big.NewInt(int64(n)))
	out := make([]u128, n)
	for i := range out {
		out[i] = u128FromBig(new(big.Int).Mul(step, big.NewInt(int64(i))))
	}
	return out
}
