package engine

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The offset and commit logs are written once per batch, and with
// ProcessingTime(0) a batch can be a single record: encoding/json's
// reflection, map key sorting and indent pass cost more than the rest of
// such a batch. entryEncoder writes the same bytes as
// json.MarshalIndent(v, "", "  ") for the two entry types directly, and
// falls back to MarshalIndent for anything it does not handle byte for
// byte (a string that needs escaping, a year outside 0-9999).

// entryEncoder remembers between entries: an offsets entry lists every
// shard of the stream, and between two batches most shards' offsets do not
// change (idle shards, shards not in the batch), so the JSON of a shard
// whose offset equals the one it had in the previous entry is copied from
// then, and the sorted shard ids are reused while the set of shards is the
// same. On a wide stream with small batches this is most of a batch's work.
// A nil *entryEncoder remembers nothing.
type entryEncoder struct {
	mu    sync.Mutex
	ids   []string // the previous entry's shard ids, sorted
	cache map[string]cachedShard
	// spare is an encoded entry's buffer handed back by release: the next
	// offsets entry, as long as the last one, is written into it rather
	// than into a new one (stores keep no slice they are given).
	spare []byte
}

// cachedShard is a shard's offset in the previous entry and its JSON: the
// member `"<id>": {...}` at the indent of the entry's shards object.
type cachedShard struct {
	off  ShardOffset
	json []byte
}

// marshal returns v (an OffsetEntry or CommitEntry) as indented JSON. The
// caller may hand the slice back with release once it is done with it.
func (c *entryEncoder) marshal(v any) ([]byte, error) {
	var (
		b  []byte
		ok bool
	)
	switch e := v.(type) {
	case OffsetEntry:
		b, ok = c.appendOffsets(c.buffer(128+160*len(e.Shards)), e)
	case CommitEntry:
		b, ok = e.appendJSON(make([]byte, 0, 128))
	}
	if ok {
		return b, nil
	}
	return json.MarshalIndent(v, "", "  ")
}

// buffer returns an empty slice with at least n bytes of capacity: the
// spare one when it is big enough.
func (c *entryEncoder) buffer(n int) []byte {
	if c != nil {
		c.mu.Lock()
		b := c.spare
		c.spare = nil
		c.mu.Unlock()
		if cap(b) >= n {
			return b[:0]
		}
	}
	return make([]byte, 0, n)
}

// release hands back a slice marshal returned, for the next entry.
func (c *entryEncoder) release(b []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if cap(b) > cap(c.spare) {
		c.spare = b
	}
	c.mu.Unlock()
}

// sortedIDs returns the shard ids of shards, sorted; with c, the previous
// call's slice when the set is the same.
func (c *entryEncoder) sortedIDs(shards map[string]ShardOffset) []string {
	if c != nil && len(c.ids) == len(shards) {
		same := true
		for _, id := range c.ids {
			if _, ok := shards[id]; !ok {
				same = false
				break
			}
		}
		if same {
			return c.ids
		}
	}
	ids := slices.Sorted(maps.Keys(shards))
	if c != nil {
		c.ids = ids
	}
	return ids
}

// sameOffset reports whether a and b encode to the same JSON. Times must
// be the same instant in the same *time.Location (the zone offset is part
// of the text); anything else is only a cache miss.
func sameOffset(a, b ShardOffset) bool {
	if a.Start.Type != b.Start.Type || a.Start.Seq != b.Start.Seq || a.Start.Sub != b.Start.Sub ||
		!a.Start.Timestamp.Equal(b.Start.Timestamp) || a.Start.Timestamp.Location() != b.Start.Timestamp.Location() ||
		a.State != b.State || !slices.Equal(a.Parents, b.Parents) || (a.End == nil) != (b.End == nil) {
		return false
	}
	return a.End == nil || *a.End == *b.End
}

func (c *entryEncoder) appendOffsets(dst []byte, e OffsetEntry) ([]byte, bool) {
	if c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
	}
	w := &jsonWriter{b: dst, ok: true}
	w.open('{')
	w.key("batchId")
	w.int(e.BatchID)
	w.key("timestamp")
	w.time(e.Timestamp)
	w.key("shards")
	if e.Shards == nil {
		w.b = append(w.b, "null"...)
		w.close('}')
		return w.b, w.ok
	}
	w.open('{')
	ids := c.sortedIDs(e.Shards)
	if c != nil && (c.cache == nil || len(c.cache) > len(ids)) {
		// Shards left the entry: drop what the cache holds for them.
		maps.DeleteFunc(c.cache, func(id string, _ cachedShard) bool { _, ok := e.Shards[id]; return !ok })
		if c.cache == nil {
			c.cache = make(map[string]cachedShard, len(ids))
		}
	}
	for _, id := range ids {
		off := e.Shards[id]
		w.elem()
		if c != nil {
			if cs, hit := c.cache[id]; hit && sameOffset(cs.off, off) {
				w.b = append(w.b, cs.json...)
				continue
			}
		}
		start := len(w.b)
		w.name(id)
		off.write(w)
		if c != nil {
			if !w.ok {
				delete(c.cache, id)
				continue
			}
			off.Parents = slices.Clone(off.Parents) // the cache must not share the caller's slice
			c.cache[id] = cachedShard{off: off, json: append(c.cache[id].json[:0], w.b[start:]...)}
		}
	}
	w.close('}')
	w.close('}')
	return w.b, w.ok
}

// jsonWriter appends indented JSON; ok turns false at the first value it
// cannot write exactly as encoding/json would.
type jsonWriter struct {
	b      []byte
	indent int
	ok     bool
	first  bool // no member written yet in the current object or array
}

func (w *jsonWriter) newline() {
	w.b = append(w.b, '\n')
	for range w.indent {
		w.b = append(w.b, ' ', ' ')
	}
}

func (w *jsonWriter) open(c byte) {
	w.b = append(w.b, c)
	w.indent++
	w.first = true
}

func (w *jsonWriter) close(c byte) {
	w.indent--
	if !w.first {
		w.newline()
	}
	w.b = append(w.b, c)
	w.first = false
}

// elem starts an array element or an object member.
func (w *jsonWriter) elem() {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.newline()
}

func (w *jsonWriter) key(k string) {
	w.elem()
	w.name(k)
}

// name writes an object member's name and the separator after it.
func (w *jsonWriter) name(k string) {
	w.str(k)
	w.b = append(w.b, ':', ' ')
}

// str writes s if it needs no escaping: printable ASCII other than the
// characters encoding/json escapes (" \ < > &).
func (w *jsonWriter) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			w.ok = false
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

func (w *jsonWriter) int(n int64) { w.b = strconv.AppendInt(w.b, n, 10) }

func (w *jsonWriter) time(t time.Time) {
	// Time.MarshalJSON refuses these; encoding/json reports the error.
	if y := t.Year(); y < 0 || y > 9999 {
		w.ok = false
		return
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		w.ok = false
		return
	}
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

func (o ShardOffset) write(w *jsonWriter) {
	w.open('{')
	w.key("start")
	w.open('{')
	w.key("type")
	w.str(string(o.Start.Type))
	if o.Start.Seq != "" {
		w.key("seq")
		w.str(o.Start.Seq)
	}
	if o.Start.Sub != 0 {
		w.key("sub")
		w.int(o.Start.Sub)
	}
	if !o.Start.Timestamp.IsZero() {
		w.key("timestamp")
		w.time(o.Start.Timestamp)
	}
	w.close('}')
	if o.End != nil {
		w.key("end")
		w.open('{')
		w.key("seq")
		w.str(o.End.Seq)
		w.key("sub")
		w.int(o.End.Sub)
		w.close('}')
	}
	w.key("state")
	w.str(string(o.State))
	if len(o.Parents) > 0 {
		w.key("parents")
		w.open('[')
		for _, p := range o.Parents {
			w.elem()
			w.str(p)
		}
		w.close(']')
	}
	w.close('}')
}

func (c CommitEntry) appendJSON(dst []byte) ([]byte, bool) {
	w := &jsonWriter{b: dst, ok: true}
	w.open('{')
	w.key("batchId")
	w.int(c.BatchID)
	w.key("committedAt")
	w.time(c.CommittedAt)
	w.key("numInputRows")
	w.int(c.NumInputRows)
	if c.Abandoned {
		w.key("abandoned")
		w.b = append(w.b, "true"...)
	}
	w.close('}')
	return w.b, w.ok
}
