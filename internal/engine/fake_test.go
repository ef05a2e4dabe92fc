package engine

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// fakeSource is an in-memory stream for engine tests: shards are slices of
// records; readers see everything appended, bounded by bufferRecords.
type fakeSource struct {
	mu            sync.Mutex
	stream        string
	shards        map[string]*fakeShard
	order         []string
	nextSeq       int64
	now           func() time.Time
	bufferRecords int
	listErr       error
	hidden        map[string]bool // shards ListShards does not show (yet)
	identity      StreamIdentity
	initial       InitialPosition
	hasInitial    bool
	opens         map[string]int
}

type fakeShard struct {
	info     ShardInfo
	children []ShardInfo // reported at the shard's end, like ChildShards
	recs     []Record
	closed   bool
	readers  []*fakeReader
}

func newFakeSource(stream string, shards ...string) *fakeSource {
	f := &fakeSource{stream: stream, shards: map[string]*fakeShard{}, now: time.Now, opens: map[string]int{}}
	for _, id := range shards {
		f.addShard(ShardInfo{ID: id})
	}
	return f
}

func (f *fakeSource) addShard(info ShardInfo) {
	f.shards[info.ID] = &fakeShard{info: info}
	f.order = append(f.order, info.ID)
}

// put appends n records to shard id; returns their sequence numbers.
func (f *fakeSource) put(id string, n int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	sh := f.shards[id]
	if sh.closed {
		panic("put to closed shard " + id)
	}
	var seqs []string
	for range n {
		f.nextSeq++
		seq := fmt.Sprintf("4959%052d", f.nextSeq)
		seqs = append(seqs, seq)
		sh.recs = append(sh.recs, Record{
			Data:                        []byte("data-" + seq),
			PartitionKey:                "pk-" + id,
			SequenceNumber:              seq,
			ApproximateArrivalTimestamp: f.now().Truncate(time.Millisecond),
			ShardID:                     id,
		})
	}
	for _, r := range sh.readers {
		r.signal()
	}
	return seqs
}

// split closes parent and adds two children.
func (f *fakeSource) split(parent, a, b string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards[parent].closed = true
	f.shards[parent].info.Closed = true
	f.addShard(ShardInfo{ID: a, Parents: []string{parent}})
	f.addShard(ShardInfo{ID: b, Parents: []string{parent}})
	f.shards[parent].children = []ShardInfo{f.shards[a].info, f.shards[b].info}
	for _, r := range f.shards[parent].readers {
		r.signal()
	}
}

func (f *fakeSource) Describe() string { return "FakeSource[" + f.stream + "]" }
func (f *fakeSource) Stream() string   { return f.stream }

func (f *fakeSource) ResolveInitial(ctx context.Context, now time.Time) (InitialPosition, error) {
	if f.hasInitial {
		return f.initial, nil
	}
	return InitialPosition{Type: TrimHorizon}, nil
}

func (f *fakeSource) ListShards(ctx context.Context) ([]ShardInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []ShardInfo
	for _, id := range f.order {
		if sh, ok := f.shards[id]; ok && !f.hidden[id] {
			out = append(out, sh.info)
		}
	}
	return out, nil
}

func (f *fakeSource) OpenShard(ctx context.Context, id string, from Start) (ShardReader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sh, ok := f.shards[id]
	if !ok {
		return nil, fmt.Errorf("no shard %s", id)
	}
	f.opens[id]++
	pos := 0
	switch from.Type {
	case TrimHorizon:
	case AtTimestamp:
		for pos < len(sh.recs) && sh.recs[pos].ApproximateArrivalTimestamp.Before(from.Timestamp) {
			pos++
		}
	case AfterSequenceNumber, AtSequenceNumber:
		for pos < len(sh.recs) && cmpSeq(sh.recs[pos].SequenceNumber, from.Seq) < 0 {
			pos++
		}
		if from.Type == AfterSequenceNumber && pos < len(sh.recs) && sh.recs[pos].SequenceNumber == from.Seq {
			pos++
		}
	}
	r := &fakeReader{src: f, sh: sh, pos: pos, ready: make(chan struct{}, 1), limit: f.bufferRecords}
	sh.readers = append(sh.readers, r)
	r.signal()
	return r, nil
}

func (f *fakeSource) openCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opens[id]
}

type fakeReader struct {
	src    *fakeSource
	sh     *fakeShard
	pos    int // index of the first unreleased record
	limit  int
	ready  chan struct{}
	closed bool
}

func (r *fakeReader) signal() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (r *fakeReader) Peek(max int) Snapshot {
	r.src.mu.Lock()
	defer r.src.mu.Unlock()
	avail := r.sh.recs[r.pos:]
	full := false
	if r.limit > 0 && len(avail) >= r.limit {
		avail = avail[:r.limit]
		full = true
	}
	snap := Snapshot{Buffered: len(avail), Full: full, MillisBehindLatest: 0}
	snap.Ended = r.sh.closed && r.pos+len(avail) == len(r.sh.recs)
	if snap.Ended {
		snap.Children = r.sh.children
	}
	snap.AtTail = !r.sh.closed && r.pos+len(avail) == len(r.sh.recs)
	if max < len(avail) {
		avail = avail[:max]
	}
	snap.Records = append([]Record(nil), avail...)
	return snap
}

func (r *fakeReader) Release(n int) {
	r.src.mu.Lock()
	r.pos += n
	r.src.mu.Unlock()
	r.signal()
}

func (r *fakeReader) Ready() <-chan struct{} { return r.ready }

func (r *fakeReader) Close() {
	r.src.mu.Lock()
	defer r.src.mu.Unlock()
	r.closed = true
}

func (f *fakeSource) Identity(ctx context.Context) (StreamIdentity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.identity, nil
}
