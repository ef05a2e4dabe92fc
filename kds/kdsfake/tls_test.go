package kdsfake

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestSelfSignedCert(t *testing.T) {
	cert, pemCert, err := selfSignedCert("kdsfake.test", "10.1.2.3", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(pemCert)
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("bad PEM %q", pemCert)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(cert.Leaf) || len(cert.Certificate) != 1 {
		t.Error("PEM and tls.Certificate disagree")
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if _, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("private key %T", cert.PrivateKey)
	}
	if d := time.Until(leaf.NotAfter); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("valid for %v more, want about a year", d)
	}
	if leaf.NotBefore.After(time.Now()) {
		t.Errorf("NotBefore %v is in the future", leaf.NotBefore)
	}
	if !slices.Equal(leaf.DNSNames, []string{"localhost", "kdsfake.test"}) {
		t.Errorf("DNSNames %v", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 3 {
		t.Errorf("IPAddresses %v, want 127.0.0.1, ::1, 10.1.2.3", leaf.IPAddresses)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCert)
	for _, host := range []string{"127.0.0.1", "::1", "localhost", "kdsfake.test", "10.1.2.3"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); err == nil {
		t.Error("certificate verified for example.com")
	}
}

func TestSelfSignedCertUnique(t *testing.T) {
	a, _, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

// protoHandler reports the request's protocol.
var protoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, r.Proto)
})

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

func checkProto(t *testing.T, resp *http.Response, major int) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != major {
		t.Errorf("status %d, client proto %s, want 200 and HTTP/%d", resp.StatusCode, resp.Proto, major)
	}
	if want := map[int]string{1: "HTTP/1.1", 2: "HTTP/2.0"}[major]; string(body) != want {
		t.Errorf("server saw %q, want %q", body, want)
	}
}

func TestServeTLS(t *testing.T) {
	cert, pemCert, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	srv := serveTLS(ln, protoHandler, cert, serverOpts{})
	defer srv.Close()
	url := "https://" + ln.Addr().String() + "/"

	t.Run("h2 by ALPN", func(t *testing.T) {
		resp := get(t, tlsClient(t, pemCert, true), url)
		if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
			t.Errorf("TLS state %+v, want ALPN h2", resp.TLS)
		}
		checkProto(t, resp, 2)
	})
	t.Run("http/1.1 by ALPN", func(t *testing.T) {
		resp := get(t, tlsClient(t, pemCert, false), url)
		checkProto(t, resp, 1)
	})
	t.Run("localhost name", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		resp := get(t, tlsClient(t, pemCert, true), "https://localhost:"+port+"/")
		checkProto(t, resp, 2)
	})
	t.Run("untrusted client fails", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{}}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			t.Fatal("a client without the certificate connected")
		}
		var uerr x509.UnknownAuthorityError
		if !errors.As(err, &uerr) {
			t.Errorf("got %v, want x509.UnknownAuthorityError", err)
		}
	})
}

func TestServeH2C(t *testing.T) {
	ln := listen(t)
	srv := serveH2C(ln, protoHandler, serverOpts{})
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"

	t.Run("h2c prior knowledge", func(t *testing.T) {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		resp := get(t, &http.Client{Transport: &http.Transport{Protocols: p}}, url)
		checkProto(t, resp, 2)
	})
	t.Run("http/1.1", func(t *testing.T) {
		resp := get(t, &http.Client{Transport: &http.Transport{}}, url)
		checkProto(t, resp, 1)
	})
}

// TestStreamingFlush checks that a flushed chunk reaches the client while
// the handler is still running, over every listener and protocol.
func TestStreamingFlush(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", eventStreamContentType)
				_, _ = io.WriteString(w, "first\n")
				if err := flush(w); err != nil {
					t.Errorf("flush: %v", err)
				}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "second\n")
			})
			endpoint, hc := tc.start(t, h)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != tc.wantProto {
				t.Errorf("HTTP/%d, want HTTP/%d", resp.ProtoMajor, tc.wantProto)
			}
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			close(release)
			line, err = br.ReadString('\n')
			if err != nil || line != "second\n" {
				t.Fatalf("second line %q, %v", line, err)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after the body: %v, want EOF", err)
			}
		})
	}
}

func TestServeCloseClosesListener(t *testing.T) {
	cert, _, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	for name, start := range map[string]func(net.Listener) *http.Server{
		"tls": func(ln net.Listener) *http.Server { return serveTLS(ln, protoHandler, cert, serverOpts{}) },
		"h2c": func(ln net.Listener) *http.Server { return serveH2C(ln, protoHandler, serverOpts{}) },
	} {
		t.Run(name, func(t *testing.T) {
			ln := listen(t)
			srv := start(ln)
			// Wait until it serves, so Close races with nothing.
			deadline := time.Now().Add(5 * time.Second)
			for {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err == nil {
					c.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
				c.Close()
				t.Error("listener still accepts after Close")
			}
		})
	}
}
