package kpl

import (
	"bytes"
	"cmp"
	"slices"
	"sync"

	md5simd "github.com/minio/md5-simd"
)

const (
	// lanes is how many buffers md5-simd hashes at once: the 16 32-bit
	// lanes of AVX-512 (or two AVX2 units of 8).
	lanes = 16
	// minLanes is the fewest aggregates a caller hashes in one SIMD round.
	// md5-simd hashes one or two buffers with scalar code on its own
	// goroutines, slower than crypto/md5 on the caller's.
	minLanes = 4
	// minSIMDSize is the smallest protobuf hashed with SIMD. Each buffer
	// costs a few hand-offs to md5-simd's goroutine: below a few KB,
	// crypto/md5 is as fast.
	minSIMDSize = 4 << 10
)

// A Verifier checks the MD5 digests of many aggregates at once, with
// multi-buffer SIMD MD5 (github.com/minio/md5-simd): 16 buffers per pass
// with AVX-512, 2×8 with AVX2. Without either (older amd64 CPUs, arm64
// and other architectures, the noasm build tag) md5-simd hashes with
// crypto/md5, one buffer after the other: the results are the same, only
// slower.
//
// A Verifier is safe for concurrent use. One is meant to serve every
// Deaggregator of a source (or a process): the aggregates of concurrent
// callers share the SIMD lanes. It holds md5-simd's server, one goroutine
// (idle when unused) and about 1.5 MB of buffers, until Close.
type Verifier struct {
	srv md5simd.Server
	// The smallest round and protobuf hashed with SIMD; tests lower them.
	minLanes, minSize int

	mu     sync.Mutex
	freed  sync.Cond        // on mu: hashers were released, or v was closed
	free   []md5simd.Hasher // lanes hashers, reused (Reset) round after round
	out    int              // hashers acquired and not released
	closed bool
}

// NewVerifier starts a Verifier. Close releases it.
func NewVerifier() *Verifier {
	v := &Verifier{srv: md5simd.NewServer(), minLanes: minLanes, minSize: minSIMDSize}
	v.freed.L = &v.mu
	v.free = make([]md5simd.Hasher, lanes)
	for i := range v.free {
		v.free[i] = v.srv.NewHash()
	}
	return v
}

// Close stops v's goroutine once the rounds under way have finished. The
// Deaggregators that use v afterwards check digests with crypto/md5. Close
// may be called more than once.
func (v *Verifier) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	for _, h := range v.free {
		h.Close()
	}
	v.free = nil
	if v.out == 0 {
		v.srv.Close()
	}
	v.freed.Broadcast()
}

// acquire appends at least least and at most most hashers to hs, waiting
// for least to be free; it appends none once v is closed. A caller
// releases its hashers before it acquires again, so waiting cannot
// deadlock: every holder is under way.
func (v *Verifier) acquire(hs []md5simd.Hasher, least, most int) []md5simd.Hasher {
	v.mu.Lock()
	defer v.mu.Unlock()
	for !v.closed && len(v.free) < least {
		v.freed.Wait()
	}
	if v.closed {
		return hs
	}
	n := min(most, len(v.free))
	hs = append(hs, v.free[len(v.free)-n:]...)
	clear(v.free[len(v.free)-n:])
	v.free = v.free[:len(v.free)-n]
	v.out += n
	return hs
}

// release returns hashers that acquire gave, each Reset.
func (v *Verifier) release(hs []md5simd.Hasher) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.out -= len(hs)
	if v.closed {
		for _, h := range hs {
			h.Close()
		}
		if v.out == 0 {
			v.srv.Close()
		}
		return
	}
	v.free = append(v.free, hs...)
	v.freed.Broadcast()
}

// candidate is the digest check of page[i], a candidate aggregate (see
// isCandidate) of n bytes that ends with digest.
type candidate struct {
	i, n    int
	digest  [digestLen]byte
	simd    bool // hashed by the Verifier
	checked bool
	ok      bool // the digest matched
}

// is reports whether b looks like the record c checked: same length and
// digest (ParseVerified's guard against a wrong index).
func (c *candidate) is(b []byte) bool {
	return c.n == len(b) && string(c.digest[:]) == string(b[len(b)-digestLen:])
}

// VerifyPage checks the digests of the aggregates in page, a page of
// Kinesis records' data (a GetRecords response, a SubscribeToShard event),
// all together, and keeps the outcome for ParseVerified. Records that are
// not aggregates cost nothing.
//
// With a Verifier, the aggregates of at least 4 KB are hashed with SIMD,
// up to 16 at a time, when there are at least 4 of them; the others are
// hashed with crypto/md5 meanwhile. VerifyPage may wait for the
// Verifier's lanes while other Deaggregators use them. It allocates
// nothing once d's scratch space has grown to the page's aggregate count.
func (d *Deaggregator) VerifyPage(page [][]byte) {
	v := d.Verifier
	d.cands = d.cands[:0]
	nSIMD := 0
	for i, b := range page {
		if !isCandidate(b) {
			continue
		}
		c := candidate{i: i, n: len(b), digest: [digestLen]byte(b[len(b)-digestLen:])}
		if v != nil && len(b)-magicLen-digestLen >= v.minSize {
			c.simd = true
			nSIMD++
		}
		d.cands = append(d.cands, c)
	}
	if v == nil || nSIMD < v.minLanes {
		d.hashRest(page)
		return
	}
	next, hashedRest := 0, false // d.cands before next are in a round or done
	for nSIMD >= v.minLanes {
		// Spread what is left evenly over the rounds it needs.
		rounds := (nSIMD + lanes - 1) / lanes
		d.hs = v.acquire(d.hs[:0], v.minLanes, (nSIMD+rounds-1)/rounds)
		if len(d.hs) == 0 {
			break // closed: crypto/md5 below
		}
		// Hand the round's protobufs to the lanes: the Writes queue them
		// (md5-simd copies them) and the Sums wait for the digests. A
		// hash.Hash's Write never fails. lane[j] is the index in d.cands.
		var lane [lanes]int
		n := 0
		for ; next < len(d.cands) && n < len(d.hs); next++ {
			if c := &d.cands[next]; c.simd {
				b := page[c.i]
				d.hs[n].Write(b[magicLen : len(b)-digestLen])
				lane[n] = next
				n++
			}
		}
		if !hashedRest {
			// The small ones, while the lanes are being hashed.
			d.hashRest(page)
			hashedRest = true
		}
		for j, h := range d.hs[:n] {
			c := &d.cands[lane[j]]
			b := page[c.i]
			sum := h.Sum(d.sums[j][:0])
			c.ok, c.checked = bytes.Equal(sum, b[len(b)-digestLen:]), true
			h.Reset()
		}
		nSIMD -= n
		v.release(d.hs)
		clear(d.hs)
	}
	// Too few left for a round, or v closed.
	for k := range d.cands {
		c := &d.cands[k]
		if !c.checked {
			c.ok, c.checked = digestOK(page[c.i]), true
		}
	}
}

// hashRest checks the digests of the candidates not hashed with SIMD.
func (d *Deaggregator) hashRest(page [][]byte) {
	for k := range d.cands {
		c := &d.cands[k]
		if !c.simd && !c.checked {
			c.ok, c.checked = digestOK(page[c.i]), true
		}
	}
}

// ParseVerified is Parse for b = page[i], where page is the page last
// given to VerifyPage: it uses the digest check VerifyPage made, and
// returns what Parse would, provided b was not modified since. Without a
// check for b (no VerifyPage, an index out of the page, a record of
// another length or digest at the index) it checks the digest itself.
func (d *Deaggregator) ParseVerified(i int, b []byte) ([]Record, Status) {
	if !isCandidate(b) {
		return nil, Plain
	}
	k, found := slices.BinarySearchFunc(d.cands, i, func(c candidate, i int) int { return cmp.Compare(c.i, i) })
	if !found || !d.cands[k].checked || !d.cands[k].is(b) {
		return d.parse(b, digestOK(b))
	}
	return d.parse(b, d.cands[k].ok)
}

// ParsePage parses every record of page, a page of Kinesis records' data,
// after checking the digests of its aggregates together (VerifyPage). It
// calls fn for each record in order with its index in page and what
// Parse would return for it: the user records and the status. recs is
// valid only until fn returns.
func (d *Deaggregator) ParsePage(page [][]byte, fn func(i int, recs []Record, st Status)) {
	d.VerifyPage(page)
	for i, b := range page {
		recs, st := d.ParseVerified(i, b)
		fn(i, recs, st)
	}
}
