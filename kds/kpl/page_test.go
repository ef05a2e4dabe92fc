package kpl

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"sync"
	"testing"
)

// lowVerifier is a Verifier that hashes every candidate with SIMD, however
// small the page or the aggregate: the lanes path on any input.
func lowVerifier(t testing.TB) *Verifier {
	v := NewVerifier()
	v.minLanes, v.minSize = 1, 0
	t.Cleanup(v.Close)
	return v
}

// checkPage runs d.ParsePage on page and checks that it returns, record by
// record, what Parse returns: the same status and the same user records,
// whose Data are the same bytes of the page.
func checkPage(t *testing.T, d *Deaggregator, page [][]byte) []Status {
	t.Helper()
	var ref Deaggregator
	var sts []Status
	next := 0
	d.ParsePage(page, func(i int, got []Record, st Status) {
		t.Helper()
		if i != next {
			t.Fatalf("fn called for record %d, want %d", i, next)
		}
		next++
		want, wst := ref.Parse(page[i])
		if st != wst {
			t.Fatalf("record %d: ParsePage %v, Parse %v", i, st, wst)
		}
		if st != Aggregated && got != nil {
			t.Fatalf("record %d: %v with %d records", i, st, len(got))
		}
		sameRecords(t, got, want)
		for j := range got {
			if len(got[j].Data) > 0 && &got[j].Data[0] != &want[j].Data[0] {
				t.Fatalf("record %d.%d: data is not the page's", i, j)
			}
		}
		sts = append(sts, st)
	})
	if next != len(page) {
		t.Fatalf("fn called %d times for %d records", next, len(page))
	}
	return sts
}

// mixedPage is a page of valid, corrupt, truncated and plain records,
// large and small, and the status each must get.
func mixedPage() ([][]byte, []Status) {
	var page [][]byte
	var want []Status
	add := func(b []byte, st Status) {
		page = append(page, b)
		want = append(want, st)
	}
	big := func(i int) []byte { return benchAggregateN(i) }
	small := aggregate(testRecords(5, 10))
	flipBody := big(100)
	flipBody[len(flipBody)/2] ^= 0x40
	flipDigest := big(101)
	flipDigest[len(flipDigest)-3] ^= 1
	flipMagic := big(102)
	flipMagic[1] ^= 1
	pb := small[magicLen : len(small)-digestLen]
	for i := range 7 {
		add(big(i), Aggregated)
	}
	add(flipBody, Corrupt)
	add(nil, Plain)
	add([]byte("plain"), Plain)
	add(bytes.Repeat([]byte("p"), 50_000), Plain)
	add(flipMagic, Plain)
	add(flipDigest, Corrupt)
	add(big(103)[:40_000], Corrupt)                        // truncated aggregate
	add(withDigest(big(104)[magicLen:40_000]), Corrupt)    // truncated protobuf, valid digest
	add(withDigest([]byte{0x0a, 1, 'k'}), Corrupt)         // no records
	add([]byte(Magic), Plain)                              // magic only
	add(append([]byte(Magic), make([]byte, 16)...), Plain) // magic and a digest
	add(small, Aggregated)
	add(withDigest(pb[:len(pb)-3]), Corrupt)
	for i := range 12 {
		add(big(10+i), Aggregated)
	}
	add(aggregate(testRecords(1980, 3)), Aggregated)
	return page, want
}

func TestParsePage(t *testing.T) {
	page, want := mixedPage()
	for _, tt := range []struct {
		name string
		v    func(t *testing.T) *Verifier
	}{
		{"no verifier", func(*testing.T) *Verifier { return nil }},
		{"verifier", func(t *testing.T) *Verifier { v := NewVerifier(); t.Cleanup(v.Close); return v }},
		{"verifier every lane", func(t *testing.T) *Verifier { return lowVerifier(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Deaggregator{Verifier: tt.v(t)}
			// Twice: the Verifier's hashers and d's scratch are reused.
			for range 2 {
				got := checkPage(t, &d, page)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("record %d: %v, want %v", i, got[i], want[i])
					}
				}
			}
			// Pages of every size up to two rounds, from the start of the
			// mixed page: a single aggregate, a few, many.
			for n := range len(page) + 1 {
				checkPage(t, &d, page[:n])
			}
		})
	}
}

// TestVerifierDigests compares the digests the Verifier's lanes compute
// with crypto/md5's, for lengths around MD5's block and padding edges and
// md5-simd's 32 KB internal blocks, in rounds of every width.
func TestVerifierDigests(t *testing.T) {
	v := lowVerifier(t)
	var lens []int
	for _, base := range []int{0, 64, 32 << 10, 64 << 10} {
		for delta := -9; delta <= 9; delta++ {
			if n := base + delta; n >= 0 {
				lens = append(lens, n)
			}
		}
	}
	lens = append(lens, 55, 56, 57, 119, 120, 121, 1000, 50_700, 100_001, 1<<20)
	bufs := make([][]byte, len(lens))
	for i, n := range lens {
		bufs[i] = make([]byte, n)
		for j := range bufs[i] {
			bufs[i][j] = byte(i*31 + j*7 + j>>9)
		}
	}
	var sums [lanes][digestLen]byte
	for width := 1; width <= lanes; width++ {
		for start := 0; start < len(bufs); start += width {
			hs := v.acquire(nil, width, width)
			round := bufs[start:min(start+width, len(bufs))]
			for j, b := range round {
				hs[j].Write(b)
			}
			for j, b := range round {
				got := hs[j].Sum(sums[j][:0])
				if want := md5.Sum(b); !bytes.Equal(got, want[:]) {
					t.Fatalf("width %d: MD5 of %d bytes = %x, crypto/md5 %x", width, len(b), got, want)
				}
			}
			for _, h := range hs {
				h.Reset()
			}
			v.release(hs)
		}
	}
}

// TestParseVerified checks that ParseVerified gives Parse's result when
// it has no digest check for its record: another record at the index (by
// length or digest), an index out of the page, no VerifyPage at all.
func TestParseVerified(t *testing.T) {
	page, _ := mixedPage()
	var ref Deaggregator
	for _, v := range []*Verifier{nil, lowVerifier(t)} {
		d := Deaggregator{Verifier: v}
		check := func(i int, b []byte) {
			t.Helper()
			got, st := d.ParseVerified(i, b)
			want, wst := ref.Parse(b)
			if st != wst {
				t.Fatalf("ParseVerified(%d): %v, Parse %v", i, st, wst)
			}
			sameRecords(t, got, want)
		}
		for i, b := range page {
			check(i, b) // no VerifyPage
		}
		d.VerifyPage(page)
		flipped := bytes.Clone(page[0])
		flipped[len(flipped)-1] ^= 1
		check(0, flipped)                  // another digest at the index
		check(0, page[1])                  // another record at the index
		check(7, page[0])                  // a corrupt record's index
		check(len(page), page[0])          // out of the page
		check(-1, page[0])                 // out of the page
		check(0, page[0][:len(page[0])-1]) // another length
	}
}

// TestVerifierConcurrent runs Deaggregators on goroutines that share one
// Verifier, so that their aggregates share the lanes, and closes it while
// they run: each gets Parse's results throughout (go test -race).
func TestVerifierConcurrent(t *testing.T) {
	page, _ := mixedPage()
	for _, every := range []bool{false, true} {
		for _, closeEarly := range []bool{false, true} {
			t.Run(fmt.Sprintf("every lane %v, close early %v", every, closeEarly), func(t *testing.T) {
				v := NewVerifier()
				if every {
					v.minLanes, v.minSize = 1, 0
				}
				if !closeEarly {
					defer v.Close()
				}
				var wg sync.WaitGroup
				for g := range 4 {
					wg.Go(func() {
						d := Deaggregator{Verifier: v}
						for range 4 {
							checkPage(t, &d, page[g:])
						}
					})
				}
				if closeEarly {
					v.Close()
					v.Close()
				}
				wg.Wait()
			})
		}
	}
}

// TestParsePageAllocs: after the first page, a page of 16 aggregates
// allocates one string per aggregate (its keys, as Parse does) and
// nothing per user record.
func TestParsePageAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	page := benchPage(16)
	v := NewVerifier()
	defer v.Close()
	d := Deaggregator{Verifier: v}
	fn := func(int, []Record, Status) {}
	d.ParsePage(page, fn)
	allocs := testing.AllocsPerRun(100, func() { d.ParsePage(page, fn) })
	if allocs > float64(len(page)) {
		t.Fatalf("%v allocations per page of %d aggregates, want at most %d (their keys)", allocs, len(page), len(page))
	}
}

// FuzzParsePage: a page made of the input's pieces, each also with a valid
// digest, gives record by record what Parse gives, through the lanes.
func FuzzParsePage(f *testing.F) {
	f.Add([]byte("plain"))
	f.Add(aggregate(testRecords(3, 5)))
	f.Add(bytes.Join([][]byte{aggregate(testRecords(3, 5)), []byte("x"), []byte(Magic), withDigest([]byte{0x0a, 1, 'k', 0x1a, 4, 0x08, 0, 0x1a, 0})}, []byte(pageSep)))
	v := lowVerifier(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var page [][]byte
		for _, p := range bytes.Split(b, []byte(pageSep)) {
			page = append(page, p, withDigest(p))
			if IsAggregated(p) {
				page = append(page, withDigest(p[magicLen:]))
			}
		}
		d := Deaggregator{Verifier: v}
		checkPage(t, &d, page)
	})
}

// pageSep separates the records of FuzzParsePage's page in its input.
const pageSep = "\x00|\x00"
