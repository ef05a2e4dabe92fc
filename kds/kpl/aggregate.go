package kpl

import (
	"crypto/md5"
)

// Aggregator packs user records into one aggregated record. Its zero
// value is empty and ready to use. It is not safe for concurrent use.
//
// Partition keys and explicit hash keys are stored once each in the
// aggregate's tables. Tables come first on the wire, then the records, as
// the KPL writes them.
type Aggregator struct {
	pks, ehks     []string
	pkIdx, ehkIdx map[string]uint64
	recs          []byte // encoded records (field 3 entries)
	tableBytes    int    // encoded size of both tables
	n             int
}

// Len is the number of user records added.
func (a *Aggregator) Len() int { return a.n }

// Size is the size of the aggregated record Build would return now.
func (a *Aggregator) Size() int {
	return magicLen + a.tableBytes + len(a.recs) + digestLen
}

// SizeWith is the size of the aggregated record after adding a record
// with these keys and data length.
func (a *Aggregator) SizeWith(pk, ehk string, dataLen int) int {
	sz := a.Size()
	pki, havePK := a.pkIdx[pk]
	if !havePK {
		pki = uint64(len(a.pks))
		sz += fieldLen(len(pk))
	}
	var ehki uint64
	if ehk != "" {
		var ok bool
		ehki, ok = a.ehkIdx[ehk]
		if !ok {
			ehki = uint64(len(a.ehks))
			sz += fieldLen(len(ehk))
		}
	}
	return sz + fieldLen(recordLen(pki, ehk != "", ehki, dataLen))
}

// Add adds a user record; ehk is "" for none. Data is copied.
func (a *Aggregator) Add(pk, ehk string, data []byte) {
	if a.pkIdx == nil {
		a.pkIdx = map[string]uint64{}
		a.ehkIdx = map[string]uint64{}
	}
	pki, ok := a.pkIdx[pk]
	if !ok {
		pki = uint64(len(a.pks))
		a.pkIdx[pk] = pki
		a.pks = append(a.pks, pk)
		a.tableBytes += fieldLen(len(pk))
	}
	var ehki uint64
	if ehk != "" {
		ehki, ok = a.ehkIdx[ehk]
		if !ok {
			ehki = uint64(len(a.ehks))
			a.ehkIdx[ehk] = ehki
			a.ehks = append(a.ehks, ehk)
			a.tableBytes += fieldLen(len(ehk))
		}
	}
	b := a.recs
	b = append(b, tagRecords)
	b = appendUvarint(b, uint64(recordLen(pki, ehk != "", ehki, len(data))))
	b = append(b, tagPartitionKeyIndex)
	b = appendUvarint(b, pki)
	if ehk != "" {
		b = append(b, tagExplicitHashKeyIndex)
		b = appendUvarint(b, ehki)
	}
	b = append(b, tagData)
	b = appendUvarint(b, uint64(len(data)))
	b = append(b, data...)
	a.recs = b
	a.n++
}

// Build appends the aggregated record to dst and returns it.
func (a *Aggregator) Build(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, Magic...)
	for _, k := range a.pks {
		dst = append(dst, tagPartitionKeyTable)
		dst = appendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
	}
	for _, k := range a.ehks {
		dst = append(dst, tagExplicitHashKeyTable)
		dst = appendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
	}
	dst = append(dst, a.recs...)
	sum := md5.Sum(dst[start+magicLen:])
	return append(dst, sum[:]...)
}

// Reset empties the aggregator, keeping its memory.
func (a *Aggregator) Reset() {
	clear(a.pkIdx)
	clear(a.ehkIdx)
	a.pks = a.pks[:0]
	a.ehks = a.ehks[:0]
	a.recs = a.recs[:0]
	a.tableBytes, a.n = 0, 0
}

// recordLen is the encoded size of a Record message.
func recordLen(pki uint64, hasEHK bool, ehki uint64, dataLen int) int {
	n := 1 + uvarintLen(pki) + fieldLen(dataLen)
	if hasEHK {
		n += 1 + uvarintLen(ehki)
	}
	return n
}

// fieldLen is the encoded size of a length-delimited field with a
// one-byte tag and n bytes of value.
func fieldLen(n int) int { return 1 + uvarintLen(uint64(n)) + n }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
