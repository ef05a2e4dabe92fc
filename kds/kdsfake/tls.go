package kdsfake

import (
	"crypto/tls"
	"net"
	"net/http"
)

// selfSignedCert makes a self-signed ECDSA P-256 certificate.
func selfSignedCert(hosts ...string) (tls.Certificate, []byte, error) { panic("TODO") }

// serveTLS serves h over TLS with HTTP/2 and HTTP/1.1.
func serveTLS(ln net.Listener, h http.Handler, cert tls.Certificate) *http.Server { panic("TODO") }

// serveH2C serves h over plain HTTP/1.1 and h2c prior knowledge.
func serveH2C(ln net.Listener, h http.Handler) *http.Server { panic("TODO") }
