//go:build !noasm && !appengine && gc

package kpl

import (
	"testing"
	_ "unsafe" // go:linkname
)

// md5simdAVX512 is md5-simd's choice of AVX-512 over AVX2, made when it
// is loaded. TestVerifierAVX2 clears it to run the AVX2 code (two units
// of 8 lanes, on two goroutines) on a machine with AVX-512.
//
//go:linkname md5simdAVX512 github.com/minio/md5-simd.hasAVX512
var md5simdAVX512 bool

// TestVerifierAVX2 runs the digest and page tests on md5-simd's AVX2 code
// when the CPU has AVX-512 (on a CPU with AVX2 only, the other tests run
// it already; without AVX2, md5-simd uses crypto/md5, as on arm64 and with
// the noasm build tag).
func TestVerifierAVX2(t *testing.T) {
	if !md5simdAVX512 {
		t.Skip("no AVX-512: the other tests run the AVX2 or crypto/md5 code")
	}
	// No Verifier's server is running: they were all closed, and the
	// flag is read only by the server's goroutine, started after this.
	md5simdAVX512 = false
	defer func() { md5simdAVX512 = true }()
	t.Run("digests", TestVerifierDigests)
	t.Run("page", TestParsePage)
}
