package engine

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"
)

// The offset and commit logs are written once per batch, and with
// ProcessingTime(0) a batch can be a single record: encoding/json's
// reflection, map key sorting and indent pass cost more than the rest of
// such a batch. marshalEntry writes the same bytes as
// json.MarshalIndent(v, "", "  ") for the two entry types directly, and
// falls back to MarshalIndent for anything it does not handle byte for
// byte (a string that needs escaping, a year outside 0-9999).

// marshalEntry returns v (an OffsetEntry or CommitEntry) as indented JSON.
func marshalEntry(v any) ([]byte, error) {
	var (
		b  []byte
		ok bool
	)
	switch e := v.(type) {
	case OffsetEntry:
		b, ok = e.appendJSON(make([]byte, 0, 128+160*len(e.Shards)))
	case CommitEntry:
		b, ok = e.appendJSON(make([]byte, 0, 128))
	}
	if ok {
		return b, nil
	}
	return json.MarshalIndent(v, "", "  ")
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

func (e OffsetEntry) appendJSON(dst []byte) ([]byte, bool) {
	w := &jsonWriter{b: dst, ok: true}
	w.open('{')
	w.key("batchId")
	w.int(e.BatchID)
	w.key("timestamp")
	w.time(e.Timestamp)
	w.key("shards")
	if e.Shards == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.open('{')
		for _, id := range slices.Sorted(maps.Keys(e.Shards)) {
			w.key(id)
			e.Shards[id].write(w)
		}
		w.close('}')
	}
	w.close('}')
	return w.b, w.ok
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
