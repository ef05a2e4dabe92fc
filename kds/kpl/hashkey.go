package kpl

import (
	"crypto/md5"
	"math/bits"
	"strconv"
)

// HashKey is a Kinesis hash key, an unsigned 128-bit integer.
type HashKey struct{ Hi, Lo uint64 }

// MaxHashKey is 2^128-1, the largest hash key.
var MaxHashKey = HashKey{^uint64(0), ^uint64(0)}

// Cmp returns -1, 0 or +1 as k is less than, equal to or greater than o.
func (k HashKey) Cmp(o HashKey) int {
	switch {
	case k.Hi < o.Hi:
		return -1
	case k.Hi > o.Hi:
		return 1
	case k.Lo < o.Lo:
		return -1
	case k.Lo > o.Lo:
		return 1
	}
	return 0
}

// String returns k in decimal, the form Kinesis uses.
func (k HashKey) String() string {
	if k.Hi == 0 {
		return strconv.FormatUint(k.Lo, 10)
	}
	var buf [40]byte
	i := len(buf)
	for k.Hi != 0 || k.Lo != 0 {
		// Divide by 10^19, the largest power of ten in a uint64.
		const div = 1e19
		var q HashKey
		var r uint64
		q.Hi, r = bits.Div64(0, k.Hi, div)
		q.Lo, r = bits.Div64(r, k.Lo, div)
		k = q
		for j := 0; j < 19; j++ {
			i--
			buf[i] = byte('0' + r%10)
			r /= 10
			if k.Hi == 0 && k.Lo == 0 && r == 0 {
				break
			}
		}
	}
	return string(buf[i:])
}

// ParseHashKey parses a decimal hash key between 0 and 2^128-1.
func ParseHashKey(s string) (HashKey, bool) {
	if s == "" || len(s) > 39 {
		return HashKey{}, false
	}
	var k HashKey
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return HashKey{}, false
		}
		// k = k*10 + c
		hi1, lo := bits.Mul64(k.Lo, 10)
		hi2, hi := bits.Mul64(k.Hi, 10)
		if hi2 != 0 {
			return HashKey{}, false
		}
		hi, carry := bits.Add64(hi, hi1, 0)
		if carry != 0 {
			return HashKey{}, false
		}
		lo, carry = bits.Add64(lo, uint64(c-'0'), 0)
		hi, carry = bits.Add64(hi, 0, carry)
		if carry != 0 {
			return HashKey{}, false
		}
		k = HashKey{hi, lo}
	}
	return k, true
}

// PartitionKeyHash is the hash key Kinesis gives a partition key: its MD5
// as a big-endian unsigned integer.
func PartitionKeyHash(pk string) HashKey {
	sum := md5.Sum([]byte(pk))
	return HashKey{beUint64(sum[:8]), beUint64(sum[8:])}
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// EffectiveHashKey is the hash key that routes a record: its explicit
// hash key when it has a valid one, else the MD5 of its partition key.
func EffectiveHashKey(pk, ehk string) HashKey {
	if ehk != "" {
		if k, ok := ParseHashKey(ehk); ok {
			return k
		}
	}
	return PartitionKeyHash(pk)
}

// HashRange is a shard's inclusive hash key range.
type HashRange struct{ Start, End HashKey }

// FullRange covers every hash key.
var FullRange = HashRange{End: MaxHashKey}

// ParseHashRange parses a shard's StartingHashKey and EndingHashKey.
func ParseHashRange(start, end string) (HashRange, bool) {
	s, ok1 := ParseHashKey(start)
	e, ok2 := ParseHashKey(end)
	if !ok1 || !ok2 || s.Cmp(e) > 0 {
		return HashRange{}, false
	}
	return HashRange{s, e}, true
}

// Contains reports whether k is in r.
func (r HashRange) Contains(k HashKey) bool { return r.Start.Cmp(k) <= 0 && k.Cmp(r.End) <= 0 }

// IsFull reports whether r covers every hash key.
func (r HashRange) IsFull() bool { return r == FullRange }
