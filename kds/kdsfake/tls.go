package kdsfake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"slices"
	"time"
)

// certValidity is how long a self-signed certificate is valid.
const certValidity = 365 * 24 * time.Hour

// defaultCertHosts are always in a self-signed certificate.
var defaultCertHosts = []string{"127.0.0.1", "::1", "localhost"}

// selfSignedCert makes a self-signed ECDSA P-256 server certificate, valid
// for one year (from one hour ago, to absorb clock skew) for 127.0.0.1,
// ::1, localhost and any extra hosts (IP addresses or DNS names). It returns
// the certificate with its key (Leaf set) and the certificate in PEM form,
// which clients add to their trusted roots (x509.CertPool.AppendCertsFromPEM,
// AWS_CA_BUNDLE, NODE_EXTRA_CA_CERTS).
func selfSignedCert(hosts ...string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("kdsfake: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("kdsfake: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"shardflow kdsfake"}, CommonName: "kdsfake"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		// Like net/http/httptest's certificate: a self-signed CA that is also
		// the server's leaf, so it can be added to any trust store as a root.
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range slices.Concat(defaultCertHosts, hosts) {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("kdsfake: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("kdsfake: parse certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// serverOpts are the settings of the http.Servers a Server runs.
type serverOpts struct {
	log *slog.Logger // nil: discard
	// maxStreams is the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS the server
	// announces (0: net/http's default).
	maxStreams int
	// connState, if set, is the servers' http.Server.ConnState.
	connState func(net.Conn, http.ConnState)
}

// newServer returns an http.Server with settings shared by both listeners.
// There is no WriteTimeout or ReadTimeout: a SubscribeToShard response
// streams for minutes and a long-poll request must not be cut off.
func newServer(h http.Handler, o serverOpts) *http.Server {
	logger := o.log
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		Protocols:         new(http.Protocols),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: o.maxStreams},
		ConnState:         o.connState,
	}
}

// serve runs fn in a goroutine and logs an unexpected error from it.
func serve(srv *http.Server, fn func() error) {
	go func() {
		if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srv.ErrorLog.Printf("kdsfake: serve: %v", err)
		}
	}()
}

// serveTLS serves h on ln over TLS with cert, offering HTTP/2 and HTTP/1.1
// by ALPN ("h2", "http/1.1"). It starts serving in a goroutine and returns
// at once; stop it with Close or Shutdown on the returned server (which also
// closes ln). Responses are flushed promptly when the handler flushes (as
// writeEvent does), over both protocols.
func serveTLS(ln net.Listener, h http.Handler, cert tls.Certificate, o serverOpts) *http.Server {
	srv := newServer(h, o)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.TLSConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}
	serve(srv, func() error { return srv.ServeTLS(ln, "", "") })
	return srv
}

// serveH2C serves h on ln over plain TCP, accepting HTTP/1.1 and HTTP/2
// with prior knowledge (h2c without the Upgrade dance, which is what
// http.Transport with Protocols.SetUnencryptedHTTP2 and Node's
// http2.connect("http://...") speak). It starts serving in a goroutine and
// returns at once; stop it with Close or Shutdown on the returned server.
func serveH2C(ln net.Listener, h http.Handler, o serverOpts) *http.Server {
	srv := newServer(h, o)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	serve(srv, func() error { return srv.Serve(ln) })
	return srv
}
