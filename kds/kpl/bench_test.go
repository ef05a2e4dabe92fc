package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"runtime"
	"testing"
)

// benchAggregate is a ~50 KB aggregate of 100 user records of 500 bytes,
// each with its own partition key (the KPL's default AggregationMaxSize
// is 51,200 bytes).
func benchAggregate() []byte { return benchAggregateN(0) }

// benchAggregateN is benchAggregate with data that depends on n, so that
// the aggregates of a page differ.
func benchAggregateN(n int) []byte {
	var a Aggregator
	for i := range 100 {
		a.Add(fmt.Sprintf("partition-key-%04d", i), "", bytes.Repeat([]byte{byte(i + n)}, 500))
	}
	return a.Build(nil)
}

// benchPage is a page of n different benchAggregates, as GetRecords or a
// SubscribeToShard event delivers them.
func benchPage(n int) [][]byte {
	page := make([][]byte, n)
	for i := range page {
		page[i] = benchAggregateN(i)
	}
	return page
}

// The straightforward decoder: what generated protobuf code does, an
// Unmarshal into structs that copies every string and byte slice, then
// the user records, after checking the MD5.
type pbRecord struct {
	PartitionKeyIndex    uint64
	ExplicitHashKeyIndex *uint64
	Data                 []byte
	Tags                 []*pbTag
}

type pbTag struct{ Key, Value string }

type pbAggregatedRecord struct {
	PartitionKeyTable    []string
	ExplicitHashKeyTable []string
	Records              []*pbRecord
}

var errBad = errors.New("bad aggregate")

func unmarshalRecord(b []byte) (*pbRecord, error) {
	r := &pbRecord{}
	for off := 0; off < len(b); {
		tag, n := uvarint(b[off:])
		if n <= 0 {
			return nil, errBad
		}
		off += n
		switch tag {
		case tagPartitionKeyIndex, tagExplicitHashKeyIndex:
			v, n := uvarint(b[off:])
			if n <= 0 {
				return nil, errBad
			}
			off += n
			if tag == tagPartitionKeyIndex {
				r.PartitionKeyIndex = v
			} else {
				r.ExplicitHashKeyIndex = &v
			}
		case tagData:
			l, n := uvarint(b[off:])
			if n <= 0 || l > uint64(len(b)-off-n) {
				return nil, errBad
			}
			off += n
			r.Data = append([]byte(nil), b[off:off+int(l)]...)
			off += int(l)
		default:
			n := skipField(b[off:], tag)
			if n < 0 {
				return nil, errBad
			}
			off += n
		}
	}
	return r, nil
}

func unmarshalAggregate(b []byte) (*pbAggregatedRecord, error) {
	m := &pbAggregatedRecord{}
	for off := 0; off < len(b); {
		tag, n := uvarint(b[off:])
		if n <= 0 {
			return nil, errBad
		}
		off += n
		if tag&7 != wireBytes {
			return nil, errBad
		}
		l, n := uvarint(b[off:])
		if n <= 0 || l > uint64(len(b)-off-n) {
			return nil, errBad
		}
		off += n
		v := b[off : off+int(l)]
		off += int(l)
		switch tag {
		case tagPartitionKeyTable:
			m.PartitionKeyTable = append(m.PartitionKeyTable, string(v))
		case tagExplicitHashKeyTable:
			m.ExplicitHashKeyTable = append(m.ExplicitHashKeyTable, string(v))
		case tagRecords:
			r, err := unmarshalRecord(v)
			if err != nil {
				return nil, err
			}
			m.Records = append(m.Records, r)
		}
	}
	return m, nil
}

func straightforward(b []byte) ([]Record, error) {
	if !IsAggregated(b) || len(b) <= magicLen+digestLen {
		return nil, errBad
	}
	pb := b[magicLen : len(b)-digestLen]
	h := md5.New()
	h.Write(pb)
	if !bytes.Equal(h.Sum(nil), b[len(b)-digestLen:]) {
		return nil, errBad
	}
	m, err := unmarshalAggregate(pb)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(m.Records))
	for _, r := range m.Records {
		if r.PartitionKeyIndex >= uint64(len(m.PartitionKeyTable)) {
			return nil, errBad
		}
		rec := Record{PartitionKey: m.PartitionKeyTable[r.PartitionKeyIndex], Data: r.Data}
		if r.ExplicitHashKeyIndex != nil {
			rec.ExplicitHashKey = m.ExplicitHashKeyTable[*r.ExplicitHashKeyIndex]
		}
		out = append(out, rec)
	}
	return out, nil
}

// BenchmarkDeaggregate de-aggregates 50 KB aggregates of 100×500 B user
// records with shardflow's zero-copy parser and with the straightforward
// decoder, in the same run: one aggregate at a time (Parse), and a page of
// 16 aggregates (ParsePage, with a Verifier, against the straightforward
// decoder on each aggregate). ns/record and allocs/record are per user
// record; allocs/record counts every allocation of the process during the
// loop, md5-simd's goroutine included. Goal: shardflow at least 2× faster,
// 0 allocations per record.
func BenchmarkDeaggregate(b *testing.B) {
	agg := benchAggregate()
	b.Run("shardflow", func(b *testing.B) {
		var d Deaggregator
		b.SetBytes(int64(len(agg)))
		measure(b, func() int {
			recs, st := d.Parse(agg)
			if st != Aggregated {
				b.Fatal(st)
			}
			return len(recs)
		})
	})
	b.Run("straightforward", func(b *testing.B) {
		b.SetBytes(int64(len(agg)))
		measure(b, func() int {
			recs, err := straightforward(agg)
			if err != nil {
				b.Fatal(err)
			}
			return len(recs)
		})
	})
	page := benchPage(16)
	pageBytes := 0
	for _, a := range page {
		pageBytes += len(a)
	}
	b.Run("page16/shardflow", func(b *testing.B) {
		v := NewVerifier()
		defer v.Close()
		d := Deaggregator{Verifier: v}
		b.SetBytes(int64(pageBytes))
		var n int
		fn := func(_ int, recs []Record, st Status) {
			if st != Aggregated {
				b.Fatal(st)
			}
			n += len(recs)
		}
		measure(b, func() int {
			n = 0
			d.ParsePage(page, fn)
			return n
		})
	})
	b.Run("page16/straightforward", func(b *testing.B) {
		b.SetBytes(int64(pageBytes))
		measure(b, func() int {
			n := 0
			for _, a := range page {
				recs, err := straightforward(a)
				if err != nil {
					b.Fatal(err)
				}
				n += len(recs)
			}
			return n
		})
	})
}

// measure runs op in b's loop and reports ns/record and allocs/record: op
// returns the user records it de-aggregated. Allocations are the
// process's, counted around the loop.
func measure(b *testing.B, op func() int) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	records := 0
	for b.Loop() {
		records += op()
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(records), "allocs/record")
}

func TestStraightforwardAgrees(t *testing.T) {
	agg := benchAggregate()
	want, err := straightforward(agg)
	if err != nil {
		t.Fatal(err)
	}
	var d Deaggregator
	got, _ := d.Parse(agg)
	sameRecords(t, got, want)
}
