package kdsfake

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardflow/shardflow/internal/awshttpfix"
)

// Config configures a [Server]. The zero value is ready to use: an
// in-memory server for region us-east-1 and account 000000000000, with AWS's
// default lifetimes, no delays, no quotas and no signature checks.
type Config struct {
	// Region goes into ARNs. Default "us-east-1".
	Region string

	// DefaultAccount is the account of requests whose access key id is not
	// a 12-digit number. Default "000000000000".
	DefaultAccount string

	// IteratorTTL is how long a shard iterator stays valid. Default 5m,
	// as on AWS.
	IteratorTTL time.Duration

	// SubscriptionTTL is how long a SubscribeToShard event stream lasts.
	// Default 5m, as on AWS.
	SubscriptionTTL time.Duration

	// StreamDelay is how long a stream stays CREATING after CreateStream,
	// UPDATING after a reshard and DELETING after DeleteStream, measured
	// on Clock. Zero makes those changes take effect at once.
	StreamDelay time.Duration

	// ConsumerDelay is how long a stream consumer stays CREATING after
	// RegisterStreamConsumer and DELETING after DeregisterStreamConsumer,
	// measured on Clock. Zero makes those changes take effect at once.
	ConsumerDelay time.Duration

	// Clock returns the current time. It drives record arrival times,
	// retention, iterator and subscription expiry, the delays above and
	// the quotas. Default time.Now.
	Clock func() time.Time

	// Quotas switches on AWS's per-shard limits: writes of 1 MiB/s or
	// 1,000 records/s, and 5 GetRecords calls/s and 2 MiB/s of reads.
	// Exceeding them gets ProvisionedThroughputExceededException.
	Quotas bool

	// CheckSignatures makes the server verify SigV4 signatures against
	// Credentials. Without it any signature, or none, is accepted.
	CheckSignatures bool

	// Credentials maps access key ids to secret access keys, for
	// CheckSignatures.
	Credentials map[string]string

	// DataDir, if set, makes the server persistent: it loads its state
	// from DataDir at New, writes a snapshot there every SnapshotInterval
	// while anything changed, and a last one at Close. A crash loses at
	// most the changes of one interval.
	DataDir string

	// SnapshotInterval is the time between snapshots with DataDir.
	// Default 1s.
	SnapshotInterval time.Duration

	// Logger receives debug logs of every request and errors. Default:
	// discard.
	Logger *slog.Logger

	// DenyActions lists actions (such as "GetRecords") the server refuses
	// with AccessDeniedException (HTTP 400), as AWS does for a principal
	// without that permission: e.g. an enhanced fan-out consumer that must
	// never poll. Denied calls are counted by [Server.Calls].
	DenyActions []string

	// MaxConcurrentStreams is the number of HTTP/2 streams (requests, such
	// as SubscribeToShard event streams) the server allows at once on one
	// connection, announced to clients in its SETTINGS frame. Zero leaves
	// net/http's default (250 in Go 1.26). A client with more
	// subscriptions than this must open more connections.
	MaxConcurrentStreams int
}

// Server is an in-process Kinesis Data Streams server. It speaks the AWS
// JSON 1.1 protocol of Kinesis_20131202 and serves SubscribeToShard event
// streams over HTTP/2 (TLS or h2c) and HTTP/1.1.
//
// All methods are safe for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	clock func() time.Time

	mu       sync.RWMutex // guards accounts
	accounts map[string]*account

	seq        atomic.Uint64 // sequence counter, see appendSeq
	iterEpoch  atomic.Uint64 // bumped by ExpireIterators
	reqID      atomic.Uint64
	conns      atomic.Int64 // connections accepted, see Connections
	openMu     sync.Mutex
	open       map[net.Conn]bool // the connections open now, see DropConnections
	eventBytes atomic.Int64      // see EventBytes
	dirty      atomic.Bool       // state changed since the last snapshot

	faults faultSet
	subs   subRegistry

	callsMu sync.Mutex
	calls   map[string]int

	lnMu     sync.Mutex
	servers  []*http.Server
	url      string
	tlsURL   string
	cert     tls.Certificate
	certPEM  []byte
	certOnce sync.Once
	certErr  error

	clientOnce sync.Once
	client     *http.Client

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	bg        sync.WaitGroup
}

// New returns a server configured by cfg. It serves nothing until
// [Server.Listen], [Server.ListenTLS] or [Server.Handler] is used. With
// cfg.DataDir it loads the saved state.
func New(cfg Config) (*Server, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.DefaultAccount == "" {
		cfg.DefaultAccount = "000000000000"
	}
	if !isAccountID(cfg.DefaultAccount) {
		return nil, fmt.Errorf("kdsfake: DefaultAccount %q is not a 12-digit account id", cfg.DefaultAccount)
	}
	if cfg.IteratorTTL <= 0 {
		cfg.IteratorTTL = 5 * time.Minute
	}
	if cfg.SubscriptionTTL <= 0 {
		cfg.SubscriptionTTL = 5 * time.Minute
	}
	if cfg.StreamDelay < 0 || cfg.ConsumerDelay < 0 {
		return nil, errors.New("kdsfake: StreamDelay and ConsumerDelay must not be negative")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		clock:    cfg.Clock,
		accounts: make(map[string]*account),
		calls:    make(map[string]int),
		closing:  make(chan struct{}),
	}
	s.subs.init()
	if cfg.DataDir != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
		s.bg.Add(1)
		go s.snapshotLoop()
	}
	return s, nil
}

// Handler returns the http.Handler that serves the Kinesis API. Use it to
// mount the server in your own http.Server; SubscribeToShard needs a server
// that flushes (any net/http server does).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Listen serves the API over plain TCP on addr ("127.0.0.1:0" picks a free
// port), accepting HTTP/1.1 and HTTP/2 with prior knowledge (h2c). It
// returns the endpoint URL, such as "http://127.0.0.1:4567", and serves in
// the background until Close.
func (s *Server) Listen(addr string) (string, error) {
	return s.listen(addr, "http://", &s.url, func(ln net.Listener) *http.Server {
		return serveH2C(ln, s.Handler(), s.serverOpts())
	})
}

// listen listens on addr and serves there with serve until Close. It
// returns the endpoint URL (scheme + address), which also becomes *first
// if that is still empty.
func (s *Server) listen(addr, scheme string, first *string, serve func(net.Listener) *http.Server) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("kdsfake: listen: %w", err)
	}
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.isClosed() {
		ln.Close()
		return "", errors.New("kdsfake: server closed")
	}
	s.servers = append(s.servers, serve(ln))
	u := scheme + ln.Addr().String()
	if *first == "" {
		*first = u
	}
	return u, nil
}

// ListenTLS serves the API over TLS on addr with a self-signed certificate
// for 127.0.0.1, ::1 and localhost (see [Server.CertPEM]), offering HTTP/2
// and HTTP/1.1. It returns the endpoint URL, such as
// "https://127.0.0.1:4568", and serves in the background until Close.
func (s *Server) ListenTLS(addr string) (string, error) {
	cert, _, err := s.certificate()
	if err != nil {
		return "", err
	}
	return s.listen(addr, "https://", &s.tlsURL, func(ln net.Listener) *http.Server {
		return serveTLS(ln, s.Handler(), cert, s.serverOpts())
	})
}

// serverOpts are the settings of the server's listeners.
func (s *Server) serverOpts() serverOpts {
	return serverOpts{log: s.log, maxStreams: s.cfg.MaxConcurrentStreams, connState: s.connState}
}

// connState counts new connections and keeps the open ones, for
// Connections and DropConnections.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	switch st {
	case http.StateNew:
		s.conns.Add(1)
		if s.open == nil {
			s.open = map[net.Conn]bool{}
		}
		s.open[c] = true
	case http.StateClosed, http.StateHijacked:
		delete(s.open, c)
	}
}

// DropConnections closes every client connection the server has open, at
// once and without a GOAWAY, as a failing load balancer or network would:
// every request and SubscribeToShard event stream on them ends with a
// connection error. The listeners stay open. It returns how many
// connections it closed.
func (s *Server) DropConnections() int {
	s.openMu.Lock()
	conns := make([]net.Conn, 0, len(s.open))
	for c := range s.open {
		conns = append(conns, c)
	}
	s.openMu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

// Connections returns how many client connections the server has accepted
// on all its listeners (HTTP/1.1 and HTTP/2 alike): with HTTP/2 it shows
// how many connections a client's subscriptions were spread over.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// EventBytes returns the JSON payload bytes of the SubscribeToShardEvent
// messages the server has written, to all subscriptions. An event counts
// once written whole: over HTTP/2, once the client's flow-control window
// has taken all of it, so a stalled client's window shows as a count that
// stops growing.
func (s *Server) EventBytes() int64 { return s.eventBytes.Load() }

// certificate returns the server's self-signed certificate, made once.
func (s *Server) certificate() (tls.Certificate, []byte, error) {
	s.certOnce.Do(func() {
		s.cert, s.certPEM, s.certErr = selfSignedCert()
	})
	return s.cert, s.certPEM, s.certErr
}

// URL returns the endpoint of the first [Server.Listen], or "".
func (s *Server) URL() string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	return s.url
}

// TLSURL returns the endpoint of the first [Server.ListenTLS], or "".
func (s *Server) TLSURL() string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	return s.tlsURL
}

// CertPEM returns the PEM-encoded self-signed certificate of the TLS
// endpoint, for a client's trusted roots (AWS_CA_BUNDLE,
// NODE_EXTRA_CA_CERTS, x509.CertPool). It returns nil if it could not be made.
func (s *Server) CertPEM() []byte {
	_, pem, err := s.certificate()
	if err != nil {
		return nil
	}
	return pem
}

// Client returns the server's HTTP client for both endpoints (the same one
// on every call): it trusts the TLS endpoint's certificate and speaks
// HTTP/2 over TLS and HTTP/1.1 over plain TCP. Set it as the HTTPClient of
// an AWS config after loading it.
//
// It carries the workaround for aws-sdk-go-v2 issue 2737 ("use of closed
// network connection" on HTTP/1.1), which a server as fast as this one
// triggers every few hundred calls; see package internal/awshttpfix.
func (s *Server) Client() *http.Client {
	s.clientOnce.Do(func() { s.client = s.newClient() })
	return s.client
}

func (s *Server) newClient() *http.Client {
	pool := x509.NewCertPool()
	if pem := s.CertPEM(); pem != nil {
		pool.AppendCertsFromPEM(pem)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: awshttpfix.Transport(tr)}
}

// Close ends every subscription, stops the listeners, and with DataDir
// writes a last snapshot. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.lnMu.Lock()
		servers := s.servers
		s.servers = nil
		s.lnMu.Unlock()
		for _, hs := range servers {
			// Subscriptions return when closing is closed; Close then cuts
			// whatever is left.
			hs.Close()
		}
		s.bg.Wait()
		s.clientOnce.Do(func() {}) // orders the read of s.client below
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
		if s.cfg.DataDir != "" {
			s.closeErr = s.save()
		}
	})
	return s.closeErr
}

func (s *Server) isClosed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Calls returns how many requests for action (such as "GetRecords") the
// server has received, including those failed by injected faults.
func (s *Server) Calls(action string) int {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	return s.calls[action]
}

func (s *Server) countCall(action string) {
	s.callsMu.Lock()
	s.calls[action]++
	s.callsMu.Unlock()
}

// now returns the current time on the configured clock.
func (s *Server) now() time.Time { return s.clock() }

// isAccountID reports whether id is a 12-digit number.
func isAccountID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}
