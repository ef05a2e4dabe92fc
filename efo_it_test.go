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
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// kdsfakeEFO is the Emulator.Name of the shared kdsfake server read in
// enhanced fan-out mode.
const kdsfakeEFO = "kdsfake-efo"

// efoServer is the shared kdsfake server; set by setUpEFO.
var efoServer *kdsfake.Server

const efoSubscriptionTTL = 3 * time.Second

// setUpEFO starts the shared server and points AWS_CA_BUNDLE at a bundle
// holding its certificate (and the machine's bundle, if any). It returns
// a cleanup function.
func setUpEFO() (func(), error) {
	srv, err := kdsfake.New(kdsfake.Config{
		SubscriptionTTL: efoSubscriptionTTL,
		ConsumerDelay:   200 * time.Millisecond,
		DenyActions:     []string{"GetRecords", "GetShardIterator"},
	})
	if err != nil {
		return nil, err
	}
	if _, err := srv.Listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	if _, err := srv.ListenTLS("127.0.0.1:0"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "shardflow-efo-ca")
	if err != nil {
		return nil, err
	}
	bundle := srv.CertPEM()
	if prev := os.Getenv("AWS_CA_BUNDLE"); prev != "" {
		if b, err := os.ReadFile(prev); err == nil {
			bundle = append(append(b, '\n'), bundle...)
		}
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, bundle, 0o600); err != nil {
		return nil, err
	}
	os.Setenv("AWS_CA_BUNDLE", path)
	efoServer = srv
	return func() { srv.Close(); os.RemoveAll(dir) }, nil
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
