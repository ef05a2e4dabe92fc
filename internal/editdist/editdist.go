// Package editdist suggests the known name a mistyped one was meant to be,
// for "did you mean" messages (option keys, template helpers).
package editdist

// Distance is the Levenshtein edit distance between a and b, by bytes.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Likely reports whether a name at distance d from a known one is likely a
// typo of it rather than a different name: at most 2 edits, or a quarter
// of the name's length for long names.
func Likely(name string, d int) bool { return d <= max(2, len(name)/4) }
