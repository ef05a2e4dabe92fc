package kdsfake

import (
	"encoding/base64"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Hand-written JSON appending for the hot paths (GetRecords, PutRecords,
// SubscribeToShard events): no reflection, one pooled buffer per response.

// respPool holds response buffers.
var respPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledResp is the largest response buffer kept in respPool.
const maxPooledResp = 16 << 20

func getBuf() *[]byte { return respPool.Get().(*[]byte) }

func putBuf(bp *[]byte, b []byte) {
	if cap(b) <= maxPooledResp {
		*bp = b[:0]
		respPool.Put(bp)
	}
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendBase64 appends data as a base64 JSON string.
func appendBase64(b []byte, data []byte) []byte {
	b = append(b, '"')
	n := base64.StdEncoding.EncodedLen(len(data))
	b = slices.Grow(b, n+1)
	l := len(b)
	b = b[:l+n]
	base64.StdEncoding.Encode(b[l:], data)
	return append(b, '"')
}

// appendRecord appends one Record object of GetRecords and SubscribeToShard.
func appendRecord(b []byte, rec *record, shardIdx int) []byte {
	b = append(b, `{"SequenceNumber":"`...)
	b = appendSeq(b, rec.counter, shardIdx)
	b = append(b, `","ApproximateArrivalTimestamp":`...)
	b = appendEpoch(b, rec.arrival)
	b = append(b, `,"Data":`...)
	b = appendBase64(b, rec.data)
	b = append(b, `,"PartitionKey":`...)
	b = appendString(b, rec.pk)
	return append(b, '}')
}

// appendChildShards appends a ChildShards array for the children of sh.
// Caller holds st.mu.
func appendChildShards(b []byte, st *stream, sh *shard) []byte {
	b = append(b, '[')
	for i, c := range st.children(sh) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ShardId":`...)
		b = appendString(b, c.id)
		b = append(b, `,"ParentShards":[`...)
		b = appendString(b, c.parent)
		if c.adjParent != "" {
			b = append(b, ',')
			b = appendString(b, c.adjParent)
		}
		b = append(b, `],"HashKeyRange":{"StartingHashKey":"`...)
		b = append(b, c.hashStartStr...)
		b = append(b, `","EndingHashKey":"`...)
		b = append(b, c.hashEndStr...)
		b = append(b, `"}}`...)
	}
	return append(b, ']')
}

// appendInt appends n.
func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }
