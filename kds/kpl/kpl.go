// Package kpl reads and writes the Kinesis Producer Library (KPL)
// aggregated record format, which packs many user records into one
// Kinesis record:
//
//	F3 89 9A C2 | protobuf AggregatedRecord | MD5 of the protobuf bytes (16)
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag { required string key = 1; optional string value = 2; }
//
// The Deaggregator parses without copying record data: each user record's
// Data is a slice of the Kinesis record's bytes. The Aggregator builds
// aggregates that the KPL, the KCL and aws-kinesis-agg read.
//
// The protobuf wire format is parsed and written here directly; no
// protobuf module is used.
//
// # Pages are verified together
//
// Parsing costs next to nothing; checking an aggregate's MD5 is almost
// all of de-aggregation's cost (about 85 µs for 50 KB), and one MD5 cannot
// be made faster: each 64-byte block depends on the one before. But
// aggregates arrive in pages (a GetRecords response, a SubscribeToShard
// event), and the digests of different aggregates are independent, so a
// Verifier hashes up to 16 of them at once in the lanes of SIMD registers
// (github.com/minio/md5-simd): several times the throughput of
// crypto/md5. Deaggregator.ParsePage (or VerifyPage then ParseVerified)
// checks the digests of every aggregate of a page first, then parses each
// one without hashing it again. The results are those of Parse, record by
// record.
package kpl

import (
	"bytes"
	"crypto/md5"
	"strings"

	md5simd "github.com/minio/md5-simd"
)

// Magic is the prefix of every aggregated record.
const Magic = "\xf3\x89\x9a\xc2"

const (
	magicLen  = len(Magic)
	digestLen = md5.Size
)

// Protobuf field tags (field number << 3 | wire type) of the format.
const (
	tagPartitionKeyTable    = 1<<3 | wireBytes
	tagExplicitHashKeyTable = 2<<3 | wireBytes
	tagRecords              = 3<<3 | wireBytes
	tagPartitionKeyIndex    = 1<<3 | wireVarint
	tagExplicitHashKeyIndex = 2<<3 | wireVarint
	tagData                 = 3<<3 | wireBytes
	tagTags                 = 4<<3 | wireBytes
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// Record is one user record of an aggregate.
type Record struct {
	PartitionKey string
	// ExplicitHashKey is the decimal explicit hash key; "" when the record
	// has none (the MD5 of PartitionKey then routes it).
	ExplicitHashKey string
	Data            []byte
}

// IsAggregated reports whether b starts with the KPL magic bytes. It does
// not check that b is a valid aggregate.
func IsAggregated(b []byte) bool {
	return len(b) >= magicLen && string(b[:magicLen]) == Magic
}

// Status is the outcome of Deaggregator.Parse.
type Status int

const (
	// Plain: b is not an aggregate (no magic, or too short to hold a
	// protobuf and its MD5), a plain Kinesis record.
	Plain Status = iota
	// Aggregated: b is a valid aggregate of at least one user record.
	Aggregated
	// Corrupt: b starts with the magic bytes but its MD5 does not match,
	// or its protobuf is malformed (truncated, wrong wire types, indexes
	// out of the tables, missing required fields, no records). It should
	// be handled as a plain record, whole.
	Corrupt
)

func (s Status) String() string {
	switch s {
	case Plain:
		return "plain"
	case Aggregated:
		return "aggregated"
	case Corrupt:
		return "corrupt"
	}
	return "unknown"
}

// span is b[off:off+n].
type span struct{ off, n int }

// rawRecord is a record's fields while parsing: table indexes and data.
type rawRecord struct {
	pk, ehk int // ehk is -1 when absent
	data    span
}

// Deaggregator parses aggregated records. Its zero value is ready to use;
// it keeps scratch space between calls, so that parsing allocates nothing
// per user record. A Deaggregator is not safe for concurrent use.
type Deaggregator struct {
	// Verifier, when not nil, checks the digests of a page's aggregates
	// together in VerifyPage and ParsePage. Nil checks them one by one
	// with crypto/md5, as Parse does. Many Deaggregators may share one.
	Verifier *Verifier

	cands []candidate      // VerifyPage's candidate aggregates, by index
	hs    []md5simd.Hasher // the Verifier's hashers of the current round
	sums  [lanes][digestLen]byte

	tables  []span // partition key table, then explicit hash key table
	pkCount int    // partition keys at the start of tables
	ehks    []span // scratch: explicit hash key table while scanning
	raw     []rawRecord
	keys    []string
	out     []Record
}

// Parse parses b. For Aggregated it returns the user records, in order:
// record i has sub-sequence number i. Their Data slices b (capacity
// capped), their keys share one string allocated per call; the returned
// slice itself is reused by the next call. For Plain and Corrupt it
// returns nil: the caller uses b whole.
//
// The only cost proportional to b's size is the MD5. ParsePage checks
// the digests of a page's aggregates together, several times faster.
func (d *Deaggregator) Parse(b []byte) ([]Record, Status) {
	if !isCandidate(b) {
		return nil, Plain
	}
	return d.parse(b, digestOK(b))
}

// digestOK reports whether the MD5 at the end of the candidate aggregate b
// is that of its protobuf.
func digestOK(b []byte) bool {
	sum := md5.Sum(b[magicLen : len(b)-digestLen])
	return bytes.Equal(sum[:], b[len(b)-digestLen:])
}

// isCandidate reports whether b is checked as an aggregate: the magic and
// more than a digest after it. Anything else is Plain.
func isCandidate(b []byte) bool {
	// The KCL's rule: nothing after the magic but a digest is not an
	// aggregate.
	return IsAggregated(b) && len(b) > magicLen+digestLen
}

// parse is Parse for a candidate aggregate b whose digest was checked:
// ok tells whether it matched.
func (d *Deaggregator) parse(b []byte, ok bool) ([]Record, Status) {
	if !ok {
		return nil, Corrupt
	}
	pb := b[magicLen : len(b)-digestLen]
	if !d.scan(pb) {
		return nil, Corrupt
	}
	d.buildKeys(pb)
	nPK := d.pkCount
	d.out = d.out[:0]
	for i := range d.raw {
		r := &d.raw[i]
		rec := Record{PartitionKey: d.keys[r.pk], Data: pb[r.data.off : r.data.off+r.data.n : r.data.off+r.data.n]}
		if r.ehk >= 0 {
			rec.ExplicitHashKey = d.keys[nPK+r.ehk]
		}
		d.out = append(d.out, rec)
	}
	return d.out, Aggregated
}

// scan parses the AggregatedRecord message pb into d.tables and d.raw,
// reporting whether it is well formed.
func (d *Deaggregator) scan(pb []byte) bool {
	d.tables = d.tables[:0]
	d.raw = d.raw[:0]
	d.ehks = d.ehks[:0]
	// The tables may be interleaved on the wire; partition keys first in
	// d.tables, explicit hash keys after.
	off := 0
	for off < len(pb) {
		tag, n := uvarint(pb[off:])
		if n <= 0 {
			return false
		}
		off += n
		switch tag {
		case tagPartitionKeyTable, tagExplicitHashKeyTable, tagRecords:
			l, n := uvarint(pb[off:])
			if n <= 0 || l > uint64(len(pb)-off-n) {
				return false
			}
			off += n
			s := span{off, int(l)}
			off += int(l)
			switch tag {
			case tagPartitionKeyTable:
				d.tables = append(d.tables, s)
			case tagExplicitHashKeyTable:
				d.ehks = append(d.ehks, s)
			case tagRecords:
				r, ok := parseRecord(pb, s)
				if !ok {
					return false
				}
				d.raw = append(d.raw, r)
			}
		default:
			n := skipField(pb[off:], tag)
			if n < 0 {
				return false
			}
			off += n
		}
	}
	d.pkCount = len(d.tables)
	d.tables = append(d.tables, d.ehks...)
	if len(d.raw) == 0 {
		return false
	}
	nEHK := len(d.tables) - d.pkCount
	for i := range d.raw {
		r := &d.raw[i]
		if r.pk >= d.pkCount || r.ehk >= nEHK {
			return false
		}
	}
	return true
}

// parseRecord parses one Record message at pb[s].
func parseRecord(pb []byte, s span) (rawRecord, bool) {
	r := rawRecord{pk: -1, ehk: -1, data: span{-1, 0}}
	end := s.off + s.n
	off := s.off
	for off < end {
		tag, n := uvarint(pb[off:end])
		if n <= 0 {
			return r, false
		}
		off += n
		switch tag {
		case tagPartitionKeyIndex, tagExplicitHashKeyIndex:
			v, n := uvarint(pb[off:end])
			if n <= 0 || v >= 1<<31 {
				return r, false
			}
			off += n
			if tag == tagPartitionKeyIndex {
				r.pk = int(v)
			} else {
				r.ehk = int(v)
			}
		case tagData, tagTags:
			l, n := uvarint(pb[off:end])
			if n <= 0 || l > uint64(end-off-n) {
				return r, false
			}
			off += n
			if tag == tagData {
				r.data = span{off, int(l)}
			}
			off += int(l)
		default:
			n := skipField(pb[off:end], tag)
			if n < 0 {
				return r, false
			}
			off += n
		}
	}
	// partition_key_index and data are required.
	return r, r.pk >= 0 && r.data.off >= 0
}

// skipField returns the length of the value of an unknown field with the
// given tag at the start of b, or -1 when it is malformed.
func skipField(b []byte, tag uint64) int {
	if tag>>3 == 0 {
		return -1 // field number 0 is invalid
	}
	switch tag & 7 {
	case wireVarint:
		_, n := uvarint(b)
		if n <= 0 {
			return -1
		}
		return n
	case wireFixed64:
		if len(b) < 8 {
			return -1
		}
		return 8
	case wireFixed32:
		if len(b) < 4 {
			return -1
		}
		return 4
	case wireBytes:
		l, n := uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return -1
		}
		return n + int(l)
	}
	return -1 // groups (3, 4) and reserved types are not used by the format
}

// buildKeys turns d.tables into d.keys with a single allocation: one
// string holding every key, which each key slices.
func (d *Deaggregator) buildKeys(pb []byte) {
	total := 0
	for _, s := range d.tables {
		total += s.n
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, s := range d.tables {
		sb.Write(pb[s.off : s.off+s.n])
	}
	all := sb.String()
	d.keys = d.keys[:0]
	off := 0
	for _, s := range d.tables {
		d.keys = append(d.keys, all[off:off+s.n])
		off += s.n
	}
}

// uvarint decodes a protobuf varint from b. n is the number of bytes read,
// 0 when b is too short, -1 on overflow (more than 64 bits).
func uvarint(b []byte) (v uint64, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	var s uint
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		if c < 0x80 {
			if i == 9 && c > 1 {
				return 0, -1
			}
			return v | uint64(c)<<s, i + 1
		}
		v |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}
