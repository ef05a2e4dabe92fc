package kdsfake

import (
	"sync"
	"time"
)

// Per-shard limits of Kinesis Data Streams, applied with Config.Quotas.
const (
	quotaWriteBytes    = 1 << 20 // bytes per second, data plus partition key
	quotaWriteRecords  = 1000    // records per second
	quotaReadCalls     = 5       // GetRecords calls per second
	quotaReadBytes     = 2 << 20 // bytes per second
	quotaIteratorCalls = 5       // GetShardIterator calls per second
)

// bucket is a token bucket on the server's clock. It is full when first used.
type bucket struct {
	level float64
	last  time.Time
	used  bool
}

// refill brings the bucket up to now at rate tokens per second, capped at burst.
func (b *bucket) refill(now time.Time, rate, burst float64) {
	if !b.used {
		b.level, b.last, b.used = burst, now, true
		return
	}
	if d := now.Sub(b.last); d > 0 {
		b.level = min(burst, b.level+d.Seconds()*rate)
		b.last = now
	}
}

// shardQuota holds the quota state of one shard. It has its own mutex
// because readers, holding the stream's read lock, update it.
type shardQuota struct {
	mu        sync.Mutex
	wBytes    bucket
	wRecords  bucket
	rCalls    bucket
	rBytes    bucket
	iterCalls bucket
}

// write reports whether a record of n bytes may be written at now, and
// takes it from the write buckets if so.
func (q *shardQuota) write(now time.Time, n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wBytes.refill(now, quotaWriteBytes, quotaWriteBytes)
	q.wRecords.refill(now, quotaWriteRecords, quotaWriteRecords)
	if q.wRecords.level < 1 || q.wBytes.level < float64(n) {
		return false
	}
	q.wRecords.level--
	q.wBytes.level -= float64(n)
	return true
}

// read reports whether a GetRecords call may run at now: a call token must
// be left and the byte bucket must not be in debt. It takes the call token.
func (q *shardQuota) read(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rCalls.refill(now, quotaReadCalls, quotaReadCalls)
	q.rBytes.refill(now, quotaReadBytes, quotaReadBytes)
	if q.rCalls.level < 1 || q.rBytes.level <= 0 {
		return false
	}
	q.rCalls.level--
	return true
}

// readBytes charges n bytes read. The bucket may go into debt, as on AWS a
// 10 MB read blocks the shard's reads for the next seconds.
func (q *shardQuota) readBytes(n int) {
	q.mu.Lock()
	q.rBytes.level -= float64(n)
	q.mu.Unlock()
}

// iterator reports whether a GetShardIterator call may run at now.
func (q *shardQuota) iterator(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.iterCalls.refill(now, quotaIteratorCalls, quotaIteratorCalls)
	if q.iterCalls.level < 1 {
		return false
	}
	q.iterCalls.level--
	return true
}
