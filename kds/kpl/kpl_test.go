package kpl

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
)

// aggregate builds an aggregate of recs with an Aggregator.
func aggregate(recs []Record) []byte {
	var a Aggregator
	for _, r := range recs {
		a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data)
	}
	return a.Build(nil)
}

func testRecords(n, size int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		data := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		recs[i] = Record{PartitionKey: fmt.Sprintf("pk-%d", i%7), Data: data}
		if i%3 == 0 {
			recs[i].ExplicitHashKey = fmt.Sprint(uint64(i) * 1e15)
		}
	}
	return recs
}

func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("record %d = %q/%q/%q, want %q/%q/%q", i, g.PartitionKey, g.ExplicitHashKey, g.Data, w.PartitionKey, w.ExplicitHashKey, w.Data)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 100, 1980} {
		want := testRecords(n, 17)
		b := aggregate(want)
		var d Deaggregator
		got, st := d.Parse(b)
		if st != Aggregated {
			t.Fatalf("n=%d: status %v", n, st)
		}
		sameRecords(t, got, want)
		// Data slices the aggregate, capacity capped.
		if n > 1 && cap(got[0].Data) != len(got[0].Data) {
			t.Fatalf("data capacity %d > length %d", cap(got[0].Data), len(got[0].Data))
		}
		var a Aggregator
		for _, r := range want {
			a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data)
		}
		if a.Size() != len(b) {
			t.Fatalf("Size() = %d, built %d bytes", a.Size(), len(b))
		}
	}
}

func TestSizeWith(t *testing.T) {
	var a Aggregator
	for _, r := range testRecords(300, 130) {
		want := a.SizeWith(r.PartitionKey, r.ExplicitHashKey, len(r.Data))
		a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data)
		if got := len(a.Build(nil)); got != want || a.Size() != want {
			t.Fatalf("SizeWith = %d, Size = %d, built %d", want, a.Size(), got)
		}
	}
	a.Reset()
	if a.Len() != 0 || a.Size() != magicLen+digestLen {
		t.Fatalf("after Reset: Len %d Size %d", a.Len(), a.Size())
	}
}

// withDigest returns magic + pb + MD5(pb).
func withDigest(pb []byte) []byte {
	sum := md5.Sum(pb)
	return append(append([]byte(Magic), pb...), sum[:]...)
}

func TestParseStatus(t *testing.T) {
	good := aggregate(testRecords(5, 10))
	pb := good[magicLen : len(good)-digestLen]
	badMD5 := bytes.Clone(good)
	badMD5[len(badMD5)-1] ^= 1
	tests := []struct {
		name string
		b    []byte
		want Status
	}{
		{"empty", nil, Plain},
		{"plain", []byte("hello"), Plain},
		{"magic only", []byte(Magic), Plain},
		{"magic and 16 bytes", append([]byte(Magic), make([]byte, 16)...), Plain},
		{"good", good, Aggregated},
		{"bad md5", badMD5, Corrupt},
		{"truncated protobuf", withDigest(pb[:len(pb)-3]), Corrupt},
		{"truncated aggregate", good[:len(good)-5], Corrupt},
		{"no records", withDigest([]byte{0x0a, 1, 'k'}), Corrupt},
		{"pk index out of table", withDigest([]byte{0x0a, 1, 'k', 0x1a, 4, 0x08, 1, 0x1a, 0}), Corrupt},
		{"ehk index without table", withDigest([]byte{0x0a, 1, 'k', 0x1a, 6, 0x08, 0, 0x10, 0, 0x1a, 0}), Corrupt},
		{"no data", withDigest([]byte{0x0a, 1, 'k', 0x1a, 2, 0x08, 0}), Corrupt},
		{"no pk index", withDigest([]byte{0x0a, 1, 'k', 0x1a, 2, 0x1a, 0}), Corrupt},
		{"field 0", withDigest([]byte{0x0a, 1, 'k', 0x1a, 4, 0x08, 0, 0x1a, 0, 0x00, 0}), Corrupt},
		{"group wire type", withDigest([]byte{0x0a, 1, 'k', 0x1a, 4, 0x08, 0, 0x1a, 0, 0x23}), Corrupt},
		{"varint overflow", withDigest([]byte{0x0a, 1, 'k', 0x1a, 4, 0x08, 0, 0x1a, 0, 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), Corrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Deaggregator
			recs, st := d.Parse(tt.b)
			if st != tt.want {
				t.Fatalf("status %v, want %v", st, tt.want)
			}
			if st != Aggregated && recs != nil {
				t.Fatalf("%v with %d records", st, len(recs))
			}
		})
	}
}

func TestParseUnknownFieldsAndTags(t *testing.T) {
	// An aggregate with unknown fields (varint, fixed64, fixed32) at both
	// levels and a tag: they are skipped.
	pb := []byte{
		0x0a, 1, 'k', // pk table: "k"
		0x28, 5, // field 5 varint
		0x31, 1, 2, 3, 4, 5, 6, 7, 8, // field 6 fixed64
		0x1a, 16, // record
		0x08, 0, // pk index 0
		0x1a, 1, 'x', // data "x"
		0x25, 1, 2, 3, 4, // field 4 fixed32
		0x22, 4, 0x0a, 2, 't', 'g', // tags {key: "tg"}
		0x38, 1, // field 7 varint
	}
	var d Deaggregator
	recs, st := d.Parse(withDigest(pb))
	if st != Aggregated || len(recs) != 1 || recs[0].PartitionKey != "k" || string(recs[0].Data) != "x" {
		t.Fatalf("got %v %+v", st, recs)
	}
}

func TestHashKey(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	r := rand.New(rand.NewPCG(1, 2))
	vals := []*big.Int{big.NewInt(0), big.NewInt(9), big.NewInt(10), max, new(big.Int).Lsh(big.NewInt(1), 64), new(big.Int).Exp(big.NewInt(10), big.NewInt(19), nil)}
	for range 1000 {
		v := new(big.Int).Lsh(new(big.Int).SetUint64(r.Uint64()), uint(r.IntN(65)))
		vals = append(vals, v.Or(v, new(big.Int).SetUint64(r.Uint64())))
	}
	for _, v := range vals {
		s := v.String()
		k, ok := ParseHashKey(s)
		if !ok {
			t.Fatalf("ParseHashKey(%s) failed", s)
		}
		if k.String() != s {
			t.Fatalf("round trip %s -> %s", s, k.String())
		}
	}
	for _, bad := range []string{"", "-1", "+1", "1a", new(big.Int).Add(max, big.NewInt(1)).String(), "1000000000000000000000000000000000000000"} {
		if _, ok := ParseHashKey(bad); ok {
			t.Fatalf("ParseHashKey(%q) accepted", bad)
		}
	}
	// MD5 of the partition key, big-endian: the Kinesis routing rule.
	sum := md5.Sum([]byte("pk-1"))
	if want := new(big.Int).SetBytes(sum[:]).String(); PartitionKeyHash("pk-1").String() != want {
		t.Fatalf("PartitionKeyHash = %s, want %s", PartitionKeyHash("pk-1"), want)
	}
	rg, ok := ParseHashRange("100", "200")
	if !ok || !rg.Contains(HashKey{0, 100}) || !rg.Contains(HashKey{0, 200}) || rg.Contains(HashKey{0, 201}) || rg.Contains(HashKey{0, 99}) {
		t.Fatal("HashRange.Contains")
	}
	if _, ok := ParseHashRange("2", "1"); ok {
		t.Fatal("inverted range accepted")
	}
}

func TestParseAllocs(t *testing.T) {
	b := aggregate(testRecords(100, 500))
	var d Deaggregator
	d.Parse(b)
	allocs := testing.AllocsPerRun(100, func() { d.Parse(b) })
	if allocs > 1 {
		t.Fatalf("%v allocations per aggregate of 100 records, want at most 1 (the keys)", allocs)
	}
}

// FuzzDeaggregate: any bytes give an aggregate's records or a plain
// record, never a panic or part of an aggregate. Aggregated records
// survive a round trip through the Aggregator.
func FuzzDeaggregate(f *testing.F) {
	f.Add([]byte("plain"))
	f.Add(aggregate(testRecords(3, 5)))
	f.Add(aggregate([]Record{{PartitionKey: "a", ExplicitHashKey: "340282366920938463463374607431768211455", Data: nil}}))
	f.Add(withDigest([]byte{0x0a, 1, 'k', 0x1a, 4, 0x08, 0, 0x1a, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Deaggregator
		recs, st := d.Parse(b)
		if st != Aggregated {
			if recs != nil {
				t.Fatalf("%v with records", st)
			}
			if st == Corrupt && !IsAggregated(b) {
				t.Fatal("corrupt without the magic")
			}
			// Any bytes with a valid digest are at least scanned; the
			// digest-fixed form exercises the protobuf parser.
			if IsAggregated(b) && len(b) > magicLen {
				d.Parse(withDigest(b[magicLen:]))
			}
			return
		}
		if len(recs) == 0 {
			t.Fatal("aggregate with no records")
		}
		for _, r := range recs {
			if len(r.Data) > 0 && !within(b, r.Data) {
				t.Fatal("data outside the aggregate")
			}
		}
		want := append([]Record(nil), recs...)
		var d2 Deaggregator
		got, st := d2.Parse(aggregate(want))
		if st != Aggregated {
			t.Fatalf("re-aggregated: %v", st)
		}
		sameRecords(t, got, want)
	})
}

func within(b, s []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i := range b {
		if &b[i] == &s[0] {
			return i+len(s) <= len(b)
		}
	}
	return false
}
