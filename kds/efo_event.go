package kds

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithytime "github.com/aws/smithy-go/time"
)

// eventPayload decodes the JSON payload of SubscribeToShardEvents
// (awsJson1.1: member names as in the API reference, blobs in base64,
// timestamps in epoch seconds). A subscription sends one event per record
// at low rates, so the common shape (records and the continuation, plain
// strings) is scanned directly; anything else (child shards, escapes,
// nulls, unknown members) goes through encoding/json, which defines the
// result: FuzzEventPayload checks that both agree.
type eventPayload struct {
	out  types.SubscribeToShardEvent
	recs []types.Record // reused: Records aliases it until the next decode
}

// decode parses b into the returned event, which is valid until the next
// call; each record's Data and strings are its own.
func (p *eventPayload) decode(b []byte) (*types.SubscribeToShardEvent, error) {
	p.out = types.SubscribeToShardEvent{}
	p.recs = p.recs[:0]
	if p.scan(b) {
		p.out.Records = p.recs
		return &p.out, nil
	}
	return p.decodeJSON(b)
}

// eventJSON is the payload's shape for encoding/json.
type eventJSON struct {
	ChildShards                []types.ChildShard
	ContinuationSequenceNumber *string
	MillisBehindLatest         *int64
	Records                    []struct {
		ApproximateArrivalTimestamp *float64
		Data                        []byte
		EncryptionType              types.EncryptionType
		PartitionKey                *string
		SequenceNumber              *string
	}
}

// decodeJSON is the general decoder.
func (p *eventPayload) decodeJSON(b []byte) (*types.SubscribeToShardEvent, error) {
	var e eventJSON
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	p.recs = p.recs[:0]
	for _, r := range e.Records {
		if r.SequenceNumber == nil {
			return nil, fmt.Errorf("a record has no SequenceNumber")
		}
		rec := types.Record{Data: r.Data, PartitionKey: r.PartitionKey, SequenceNumber: r.SequenceNumber, EncryptionType: r.EncryptionType}
		if t := r.ApproximateArrivalTimestamp; t != nil {
			ts := epochSeconds(*t)
			rec.ApproximateArrivalTimestamp = &ts
		}
		p.recs = append(p.recs, rec)
	}
	p.out = types.SubscribeToShardEvent{
		ChildShards:                e.ChildShards,
		ContinuationSequenceNumber: e.ContinuationSequenceNumber,
		MillisBehindLatest:         e.MillisBehindLatest,
		Records:                    p.recs,
	}
	return &p.out, nil
}

// scanner reads the common shape of an event payload; any of its methods
// returns false for input it leaves to encoding/json.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c after optional whitespace.
func (s *scanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek returns the next byte after whitespace, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str returns a string's bytes (aliasing the input) if it has no escape,
// no control character and valid UTF-8: bytes encoding/json would copy
// unchanged.
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// number returns a JSON number's text: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() ([]byte, bool) {
	s.ws()
	start := s.i
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	lead := s.i
	if n := digits(); n == 0 || n > 1 && s.b[lead] == '0' {
		return nil, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// scan decodes b in the common shape into p.out and p.recs.
func (p *eventPayload) scan(b []byte) bool {
	s := &scanner{b: b}
	if !s.byte('{') {
		return false
	}
	if s.peek() == '}' {
		s.i++
		return s.end()
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		switch string(key) {
		case "ContinuationSequenceNumber":
			v, ok := s.str()
			if !ok {
				return false
			}
			c := string(v)
			p.out.ContinuationSequenceNumber = &c
		case "MillisBehindLatest":
			v, ok := s.number()
			if !ok {
				return false
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return false // a fraction, an exponent or an overflow
			}
			p.out.MillisBehindLatest = &n
		case "Records":
			p.recs = p.recs[:0]
			if !p.scanRecords(s) {
				return false
			}
		case "ChildShards":
			// Only an empty list: children come once, at a shard's end,
			// and are left to encoding/json.
			if !s.byte('[') || !s.byte(']') {
				return false
			}
			p.out.ChildShards = []types.ChildShard{}
		default:
			return false
		}
		switch {
		case s.byte(','):
		case s.byte('}'):
			return s.end()
		default:
			return false
		}
	}
}

func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

func (p *eventPayload) scanRecords(s *scanner) bool {
	if !s.byte('[') {
		return false
	}
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !p.scanRecord(s) {
			return false
		}
		switch {
		case s.byte(','):
		case s.byte(']'):
			return true
		default:
			return false
		}
	}
}

func (p *eventPayload) scanRecord(s *scanner) bool {
	if !s.byte('{') {
		return false
	}
	var (
		r       types.Record
		pk, seq []byte
		havePK  bool
	)
	if s.peek() != '}' {
		for {
			key, ok := s.str()
			if !ok || !s.byte(':') {
				return false
			}
			switch string(key) {
			case "ApproximateArrivalTimestamp":
				v, ok := s.number()
				if !ok {
					return false
				}
				f, err := strconv.ParseFloat(string(v), 64)
				if err != nil || math.IsInf(f, 0) {
					return false
				}
				t := epochSeconds(f)
				r.ApproximateArrivalTimestamp = &t
			case "Data":
				v, ok := s.str()
				if !ok {
					return false
				}
				data := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
				n, err := base64.StdEncoding.Decode(data, v)
				if err != nil {
					return false // encoding/json reports it
				}
				r.Data = data[:n:n]
			case "EncryptionType":
				v, ok := s.str()
				if !ok {
					return false
				}
				r.EncryptionType = types.EncryptionType(v)
			case "PartitionKey":
				if pk, havePK = s.str(); !havePK {
					return false
				}
			case "SequenceNumber":
				if seq, ok = s.str(); !ok {
					return false
				}
			default:
				return false
			}
			if s.byte(',') {
				continue
			}
			break
		}
	}
	if !s.byte('}') || seq == nil {
		return false
	}
	// One allocation for both strings and their pointers.
	strs := &[2]string{string(seq), string(pk)}
	r.SequenceNumber = &strs[0]
	if havePK {
		r.PartitionKey = &strs[1]
	}
	p.recs = append(p.recs, r)
	return true
}

// epochSeconds is smithytime.ParseEpochSeconds (the SDK's reading of an
// awsJson timestamp: milliseconds, truncated) without its big.Float, which
// allocates. The float64 product rounds as big.Float's 53-bit one does;
// beyond ±2^62 ms the SDK's own function decides.
func epochSeconds(f float64) time.Time {
	ms := f * 1e3
	if math.Abs(ms) >= 1<<62 || math.IsNaN(ms) {
		return smithytime.ParseEpochSeconds(f)
	}
	return time.Unix(0, int64(ms)*1e6).UTC()
}
