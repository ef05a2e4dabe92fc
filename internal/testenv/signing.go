package testenv

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Signed is what one request was signed with: the access key id (the
// Credential=AKID/ part of its Authorization header) and the session token.
type Signed struct{ Key, Token string }

// SigningRecorder is an AWS endpoint on 127.0.0.1 that records what each
// request was signed with before handing it on.
type SigningRecorder struct {
	URL  string
	mu   sync.Mutex
	reqs []Signed
}

// RecordSigning serves next on 127.0.0.1 behind a SigningRecorder, until
// the test ends.
func RecordSigning(t testing.TB, next http.Handler) *SigningRecorder {
	t.Helper()
	r := &SigningRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, Signed{Key: SigningKey(req.Header.Get("Authorization")), Token: req.Header.Get("X-Amz-Security-Token")})
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Signed returns what every request so far was signed with, in order.
func (r *SigningRecorder) Signed() []Signed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Signed(nil), r.reqs...)
}

// Last returns what the last request was signed with, and fails the test
// if none came.
func (r *SigningRecorder) Last(t testing.TB) Signed {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("no request reached the endpoint")
	}
	return r.reqs[len(r.reqs)-1]
}

// SigningKey returns the access key id AKID of a SigV4 Authorization
// header, "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ...".
func SigningKey(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}
