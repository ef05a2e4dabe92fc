package editdist

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3},
		{"kinesis.client.numretries", "kinesis.clientnumretries", 1},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if !Likely("kinesis.client.numretries", 1) || Likely("abc", 3) {
		t.Error("Likely thresholds wrong")
	}
}
