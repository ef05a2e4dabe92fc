package shardflow_test

// Enhanced fan-out (kinesis.consumerType=SubscribeToShard) in the source
// integration suite: every scenario of source_it_test.go and the SIGKILL
// crash test runs once more against kdsfake, the only server here with
// correct SubscribeToShard event streams, over TLS and HTTP/2. The server
// is shared by the package's tests (setUpEFO, from TestMain): it trusts
// nothing but its self-signed certificate, which AWS_CA_BUNDLE names (so
// the CA-bundle path of kds.NewClient is exercised), its subscriptions
// last 3 s (renewed many times per test), its consumers take 200 ms to be
// created or deleted, and it refuses GetRecords and GetShardIterator: an
// EFO query that polled would fail.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// kdsfakeEFO is the Emulator.Name of the shared kdsfake server read in
// enhanced fan-out mode.
const kdsfakeEFO = "kdsfake-efo"

// efoServer is the shared kdsfake server; set by setUpEFO.
var efoServer *kdsfake.Server

// efoSoloServer is a second server, started with efoServer, for the tests
// that read its counters (connections, event bytes): they are not
// parallel, so the counts are theirs alone. It allows only efoSoloStreams
// HTTP/2 streams per connection: a client with more subscriptions must
// spread them over several connections.
var efoSoloServer *kdsfake.Server

const (
	efoSubscriptionTTL = 3 * time.Second
	efoSoloStreams     = 4
)

// setUpEFO starts the shared servers and points AWS_CA_BUNDLE at a bundle
// holding their certificates (and the machine's bundle, if any). It
// returns a cleanup function.
func setUpEFO() (func(), error) {
	var servers []*kdsfake.Server
	cleanup := func() {
		for _, srv := range servers {
			srv.Close()
		}
	}
	var bundle []byte
	if prev := os.Getenv("AWS_CA_BUNDLE"); prev != "" {
		if b, err := os.ReadFile(prev); err == nil {
			bundle = append(b, '\n')
		}
	}
	for _, streams := range []int{0, efoSoloStreams} {
		srv, err := kdsfake.New(kdsfake.Config{
			SubscriptionTTL:      efoSubscriptionTTL,
			ConsumerDelay:        200 * time.Millisecond,
			DenyActions:          []string{"GetRecords", "GetShardIterator"},
			MaxConcurrentStreams: streams,
		})
		if err != nil {
			cleanup()
			return nil, err
		}
		servers = append(servers, srv)
		if _, err := srv.Listen("127.0.0.1:0"); err != nil {
			cleanup()
			return nil, err
		}
		if _, err := srv.ListenTLS("127.0.0.1:0"); err != nil {
			cleanup()
			return nil, err
		}
		bundle = append(append(bundle, srv.CertPEM()...), '\n')
	}
	dir, err := os.MkdirTemp("", "shardflow-efo-ca")
	if err != nil {
		cleanup()
		return nil, err
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, bundle, 0o600); err != nil {
		cleanup()
		return nil, err
	}
	os.Setenv("AWS_CA_BUNDLE", path)
	efoServer, efoSoloServer = servers[0], servers[1]
	return func() { cleanup(); os.RemoveAll(dir) }, nil
}

// forEachSource runs f per emulator in polling mode (testenv.ForEachKinesis,
// when any is configured) and then against the shared kdsfake server in
// enhanced fan-out mode.
//
// Each runs in both record formats, the Spark connector's {aggregated, not
// aggregated} dimension: subtests "plain" (one Kinesis record per value)
// and "kpl" (the env's put helpers pack values into KPL aggregates of
// itKPLRecords user records, see itEnv.putRecords). The scenarios are the
// same; rows are user records in both.
func forEachSource(t *testing.T, f func(t *testing.T, em testenv.Emulator), only ...string) {
	t.Helper()
	all := []string{itFormatPlain, itFormatKPL}
	if len(only) > 0 {
		all = only // scenarios that write their own aggregates run in the kpl format only
	}
	formats := func(t *testing.T, em testenv.Emulator) {
		t.Parallel()
		for _, format := range all {
			t.Run(format, func(t *testing.T) { f(t, em) })
		}
	}
	if os.Getenv(testenv.EnvKinesalite) != "" || os.Getenv(testenv.EnvKinesisMock) != "" || os.Getenv("CI") == "true" {
		testenv.ForEachKinesis(t, formats)
	}
	t.Run(kdsfakeEFO, func(t *testing.T) {
		if efoServer == nil {
			t.Fatal("the shared kdsfake server is not running (TestMain calls setUpEFO)")
		}
		formats(t, testenv.Emulator{Name: kdsfakeEFO, Endpoint: efoServer.URL()})
	})
}

// The record formats of forEachSource.
const (
	itFormatPlain = "plain"
	itFormatKPL   = "kpl"
	// itKPLRecords is the number of user records per aggregate in the kpl
	// format: more than the small kinesis.maxFetchRecordsPerShard of some
	// scenarios, so batches end inside aggregates.
	itKPLRecords = 4
)

// itAggregation returns the user records per KPL aggregate for a test
// under forEachSource: itKPLRecords in the kpl format (a "kpl" element in
// the test's name), else 0.
func itAggregation(t *testing.T) int {
	if slices.Contains(strings.Split(t.Name(), "/"), itFormatKPL) {
		return itKPLRecords
	}
	return 0
}

// efoOptions are the options that read the shared server with enhanced
// fan-out: the TLS endpoint, and a consumer name unique to the test.
func efoOptions() map[string]string {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return map[string]string{
		"kinesis.endpointUrl":                 efoServer.TLSURL(),
		"kinesis.consumerType":                "SubscribeToShard",
		"kinesis.consumerName":                "it-" + hex.EncodeToString(rnd[:]),
		"kinesis.subscribeToShard.maxRetries": "20",
	}
}

// skipOnEFO skips a polling-only (sub)test in enhanced fan-out mode.
func skipOnEFO(t *testing.T, em testenv.Emulator, why string) {
	t.Helper()
	if em.Name == kdsfakeEFO {
		t.Skipf("polling only: %s", why)
	}
}

// soloEnv returns a test's stream of the given shards on efoSoloServer,
// read by enhanced fan-out from TRIM_HORIZON through the client the query
// builds itself, with extra options, and the stream's shard ids.
func soloEnv(t *testing.T, shards int, extra map[string]string) (*itEnv, []string) {
	t.Helper()
	if efoSoloServer == nil {
		t.Fatal("the shared kdsfake servers are not running (TestMain calls setUpEFO)")
	}
	opts := efoOptions()
	opts["kinesis.endpointUrl"] = efoSoloServer.TLSURL()
	opts["kinesis.startingPosition"] = "TRIM_HORIZON"
	maps.Copy(opts, extra)
	e := newITEnv(t, testenv.Emulator{Name: "kdsfake-solo", Endpoint: efoSoloServer.URL()}, shards, opts)
	ids := make([]string, shards)
	for i := range ids {
		ids[i] = itShardID(i)
	}
	return e, ids
}

// TestEFOSubscriptionsSpreadOverConnections reads a stream with more shards
// than the server allows HTTP/2 streams on one connection
// (efoSoloStreams): kds's HTTP/2 client (the one the query builds, with
// AWS_CA_BUNDLE's roots) must open more connections rather than queue
// subscriptions behind the limit, and renew them all. Every record of
// every shard arrives exactly once, in order per shard, and no call failed.
// Whether a new connection's first streams are refused (REFUSED_STREAM,
// resent thanks to awshttpfix) is a race this test usually, not always,
// meets; awshttpfix's TestRefusedStreamReplayed is the deterministic check.
// The connection count is a lower bound: it also counts the dials net/http
// makes concurrently and closes unused. Not parallel: the server's counts
// are this test's alone.
func TestEFOSubscriptionsSpreadOverConnections(t *testing.T) {
	const shards = 10
	e, ids := soloEnv(t, shards, nil)
	puts := e.putSpread(ids, itValues(0, 3*shards-1)...)
	conns0, subs0 := efoSoloServer.Connections(), efoSoloServer.Calls("SubscribeToShard")
	run := e.start(shardflow.ProcessingTime(0), nil)
	e.waitRows(run, len(puts))
	// Every subscription ends after efoSubscriptionTTL and is renewed.
	waitFor(t, run, "every subscription renewed", func() bool {
		return efoSoloServer.Calls("SubscribeToShard")-subs0 >= 2*shards
	})
	puts = append(puts, e.putSpread(ids, itValues(3*shards, 6*shards-1)...)...)
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	checkShardOrder(t, e.sink.batches())
	conns := efoSoloServer.Connections() - conns0
	t.Logf("%d subscriptions over %d connections (%d SubscribeToShard calls)", shards, conns, efoSoloServer.Calls("SubscribeToShard")-subs0)
	// The streams a new connection opened before the server's SETTINGS
	// arrived are refused (REFUSED_STREAM); awshttpfix makes net/http send
	// them again itself, so no call failed.
	if n := e.metric("retries"); n > 0 {
		t.Errorf("%d calls were retried", n)
	}
	if least := (shards + efoSoloStreams - 1) / efoSoloStreams; conns < least {
		t.Errorf("the query used %d connections; %d subscriptions at %d streams per connection need at least %d", conns, shards, efoSoloStreams, least)
	}
}

// TestEFOStalledSinkBoundsTransportMemory (invariant 8, bounded memory,
// for what the HTTP/2 transport holds): while the sink is stalled, a
// subscription's reader stops taking events once its shard's buffer is
// full, and Kinesis may then push only one HTTP/2 stream window more, which
// follows shardflow.buffer.maxBytesPerShard (efoStreamWindow), not Go's
// 4 MiB default. The server's count of event bytes its client took stops
// within that bound; once the sink goes on, every record arrives exactly
// once.
func TestEFOStalledSinkBoundsTransportMemory(t *testing.T) {
	if efoSoloServer == nil {
		t.Fatal("the shared kdsfake servers are not running (TestMain calls setUpEFO)")
	}
	const (
		bufferBytes = 1 << 20 // the smallest maxBytesPerShard
		recordBytes = 8 << 10
		records     = 1500 // 12 MiB, far more than the buffer and any window
		// An event of kdsfake carries at most 1 MiB of record data, which
		// its JSON (base64, sequence numbers) makes at most 1.5 MB.
		maxEvent  = 1500 << 10
		window    = 256 << 10 // efoStreamWindow(bufferBytes), against Go's 4 MiB
		readAhead = 64 << 10
	)
	e, _ := soloEnv(t, 1, map[string]string{"shardflow.buffer.maxBytesPerShard": strconv.Itoa(bufferBytes)})
	gate := make(chan struct{})
	e.out = shardflow.ForEachBatch(func(ctx context.Context, b *shardflow.Batch) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		return e.sink.AddBatch(ctx, b)
	})
	recs := make([]testenv.Record, records)
	for i := range recs {
		data := make([]byte, recordBytes)
		copy(data, fmt.Sprintf("v%05d", i))
		recs[i] = testenv.Record{PartitionKey: strconv.Itoa(i), Data: data}
	}
	puts := e.putRecords(recs)
	sent0 := efoSoloServer.EventBytes()
	run := e.start(shardflow.ProcessingTime(0), nil)
	// The transport stops taking events when the window is full: wait until
	// the server's count has not moved for a second.
	var sent int64
	still := 0
	waitFor(t, run, "the event stream to stall", func() bool {
		n := efoSoloServer.EventBytes() - sent0
		if n > 0 && n == sent {
			still++
		} else {
			still = 0
		}
		sent = n
		return still >= 50 // polled every 20 ms
	})
	// Taken by the reader: the buffer's bound (of record data, which the
	// events' JSON makes about 1.4 times larger) and the event that crossed
	// it (it reads no event while the buffer is full; the batch the stalled
	// sink has is still in the buffer), and what its decoder read ahead;
	// in the transport: one window (an event counts once written whole).
	bound := int64(bufferBytes*3/2 + maxEvent + readAhead + window)
	t.Logf("stalled after %d event bytes (bound %d; %d of record data were written)", sent, bound, records*recordBytes)
	if sent > bound {
		t.Errorf("the client took %d bytes of events with a stalled sink, more than %d: the transport buffers more than one %d-byte window", sent, bound, window)
	}
	close(gate)
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
}

// TestEFOConnectionsDropped: while records are written without pause, the
// server drops every connection at once, twice (as a failing load balancer
// would): the subscriptions on them (10 shards over several connections,
// efoSoloStreams each) all end with a connection error together, and the
// query, through the client it builds itself, subscribes again from each
// shard's last position (no sooner than 5 s after the last subscribe call).
// Every record arrives exactly once and in order, and no call fails for
// good. Parallel: the other tests on this server are not, so they are done
// before it starts.
func TestEFOConnectionsDropped(t *testing.T) {
	t.Parallel()
	const shards = 10
	e, ids := soloEnv(t, shards, nil)
	subs0 := efoSoloServer.Calls("SubscribeToShard")
	run := e.start(shardflow.ProcessingTime(0), nil)
	e.waitStarted(run)
	// Drop when every shard is subscribed: at 2 s, and at 8 s, after the
	// renewals the 5-second spacing holds back to about 5 s.
	drops := []time.Duration{2 * time.Second, 8 * time.Second}
	puts := e.produceSteadily(run, ids, 10*time.Second, func(since time.Duration) {
		if len(drops) > 0 && since >= drops[0] {
			efoSoloServer.DropConnections()
			drops = drops[1:]
		}
	})
	e.waitRows(run, len(puts))
	run.stop(t)
	checkExactlyOnce(t, e.sink.rows(), puts)
	checkShardOrder(t, e.sink.batches())
	subs := efoSoloServer.Calls("SubscribeToShard") - subs0
	t.Logf("%d records; %d SubscribeToShard calls; metrics retries=%d", len(puts), subs, e.metric("retries"))
	if n := e.metric("failures"); n != 0 {
		t.Errorf("failures metric %d, want 0", n)
	}
	if subs < 3*shards {
		t.Errorf("%d SubscribeToShard calls, want >= %d: the drops did not break every subscription twice", subs, 3*shards)
	}
}
