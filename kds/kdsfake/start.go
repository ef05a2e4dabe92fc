package kdsfake

import "testing"

// Start starts a server for a test: plain HTTP (and h2c) on a free port of
// 127.0.0.1, see [Server.URL], and TLS with HTTP/2, see [Server.TLSURL]. The
// server is closed when the test ends. Start fails the test if the server
// cannot start.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("kdsfake: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("kdsfake: close: %v", err)
		}
	})
	if _, err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("kdsfake: %v", err)
	}
	if _, err := s.ListenTLS("127.0.0.1:0"); err != nil {
		t.Fatalf("kdsfake: %v", err)
	}
	return s
}
