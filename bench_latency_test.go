package shardflow_test

// BenchmarkEndToEndLatency (make bench): the time from PutRecord to the
// record reaching the sink, for enhanced fan-out and for polling in the
// same run, with ProcessingTime(0), and the CPU each costs.
//
// The server (kdsfake, over TLS and HTTP/2) and the producer run in a
// child process (this test binary, run by TestMain as latencyServerChild), so that
// this process's CPU time is the query's alone. The producer writes 1000
// records/s (unless a sub-benchmark says otherwise), one PutRecord each,
// spread over 4 shards, for warm-up seconds and then the measured seconds:
// latency is measured, not throughput. Each record carries the wall-clock
// time just before its put call; the sink (ForEachBatch) stamps time.Now
// when its batch arrives. Both processes read the same clock.
//
// Reported: efo-p50-ms, efo-p99-ms, polling-p50-ms, polling-p99-ms, and
// efo-cpu-s/Mrec, polling-cpu-s/Mrec (this process's CPU seconds while the
// measured records were produced and read, per million records). Also
// efo-arrival-p99-ms and polling-arrival-p99-ms: from the record's
// ApproximateArrivalTimestamp (set by kdsfake as it stores the record,
// right before it pushes the event; millisecond precision) to the sink;
// efo-rec/batch and polling-rec/batch, the records per batch: with
// ProcessingTime(0) a batch starts as soon as data is buffered, so pushed
// records make many small batches, each with its offset and commit log
// writes.
// Polling runs with the default kinesis.getRecords.fetchIntervalMs (200).
// Also floor-cpu-s/Mrec (measureFloor): this process's CPU per record when
// it only reads, from a plain TCP connection, one event-sized chunk per
// put call on the same schedule. It is what receiving the pushes costs by
// itself on this machine, before TLS, HTTP/2, decoding or the engine: a
// lower bound for any enhanced fan-out client at that load.
//
// Four sub-benchmarks: checkpoint=memory (memstore: shardflow's own path,
// without storage), checkpoint=dir (a local directory, the default store:
// offsets/N and commits/N are written durably around every batch, so the
// disk's sync latency is on the path of every record),
// checkpoint=memory/put=50: the same 1000 records/s written by PutRecords
// calls of 50 records to one shard each, which kdsfake pushes as one event
// of 50 records (one PutRecord per record makes one event per record, the
// worst case for EFO's CPU per record: each event wakes the HTTP/2 read
// loop, the shard reader and the engine), and
// checkpoint=memory/shards=100/rate=200: a wide, mostly idle stream (2
// records/s per shard, one PutRecord each), where polling pays for
// GetRecords calls that find nothing and EFO only for the events.
// Goal (issue "Enhanced fan-out"): EFO adds at most 10 ms at p99 over the
// push, and costs no more CPU per record than polling.
//
// SHARDFLOW_LATENCY_CPUPROFILE=<dir> writes a CPU profile of each measured
// window (this process: the query) to <dir>/latency-<mode>-<n>.pprof.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint/memstore"
	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

const (
	envLatencyChild = "SHARDFLOW_LATENCY_CHILD" // the path the child writes its certificate to
	// envLatencyProfile names a directory: each measured window writes the
	// query process's CPU profile there, as latency-<mode>-<n>.pprof (-cpuprofile
	// would also cover the warm-up and the other mode).
	envLatencyProfile = "SHARDFLOW_LATENCY_CPUPROFILE"
	latencyRate       = 1000 // records/s (default)
	latencyWarmup     = 2 * time.Second
	latencyMeasure    = 4 * time.Second
	latencyShards     = 4   // (default)
	latencyPayload    = 100 // bytes per record besides the 9-byte header
	// latencyPerCall is the records per PutRecords call of the third
	// sub-benchmark: kdsfake pushes each call's records (one shard) as one
	// event, so an event carries about what one 200 ms GetRecords call
	// returns at this rate (4 shards, 250 records/s each): the two read
	// paths compared per delivery of equal size.
	latencyPerCall = 50
	// latencyManyShards and latencyLowRate make the fourth sub-benchmark: a
	// wide stream that is mostly idle (2 records/s per shard), where polling
	// pays for empty GetRecords calls and EFO only for events.
	latencyManyShards = 100
	latencyLowRate    = 200
)

// latencyServerChild is the server process of BenchmarkEndToEndLatency;
// TestMain runs it when envLatencyChild names the certificate file to write.
// It serves kdsfake, writes its certificate to
// the file $SHARDFLOW_LATENCY_CHILD, prints "LATENCY READY <tls url>", then
// runs the commands read from stdin until EOF, answering each on stdout:
//
//	stream <name> <shards>             creates a stream: "LATENCY OK"
//	produce <name> <seconds> <flag> <k> <rate> writes rate records/s, k per call: "LATENCY DONE <n>"
//	floor <addr> <seconds> <k> <rate>  the same schedule as bare chunks to addr (latencyFloorSend): "LATENCY DONE <n>"
func latencyServerChild(certPath string) error {
	srv, err := kdsfake.New(kdsfake.Config{})
	if err != nil {
		return err
	}
	defer srv.Close()
	if _, err := srv.Listen("127.0.0.1:0"); err != nil {
		return err
	}
	if _, err := srv.ListenTLS("127.0.0.1:0"); err != nil {
		return err
	}
	if err := os.WriteFile(certPath, srv.CertPEM(), 0o600); err != nil {
		return err
	}
	c := kinesis.New(kinesis.Options{
		Region:       testenv.Region,
		BaseEndpoint: aws.String(srv.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretKey, ""),
		HTTPClient:   srv.Client(),
	})
	fmt.Printf("LATENCY READY %s\n", srv.TLSURL())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "stream":
			shards, _ := strconv.Atoi(f[2])
			if err := srv.CreateStream(f[1], shards); err != nil {
				return err
			}
			fmt.Println("LATENCY OK")
		case len(f) == 6 && f[0] == "produce":
			secs, _ := strconv.ParseFloat(f[2], 64)
			k, _ := strconv.Atoi(f[4])
			rate, _ := strconv.Atoi(f[5])
			n, err := latencyProduce(c, f[1], time.Duration(secs*float64(time.Second)), f[3] == "1", max(k, 1), rate)
			if err != nil {
				return err
			}
			fmt.Printf("LATENCY DONE %d\n", n)
		case len(f) == 5 && f[0] == "floor":
			secs, _ := strconv.ParseFloat(f[2], 64)
			k, _ := strconv.Atoi(f[3])
			rate, _ := strconv.Atoi(f[4])
			n, err := latencyFloorSend(f[1], time.Duration(secs*float64(time.Second)), max(k, 1), rate)
			if err != nil {
				return err
			}
			fmt.Printf("LATENCY DONE %d\n", n)
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
	}
	return sc.Err()
}

// latencyWorkers is how many goroutines of the child keep the put schedule.
const latencyWorkers = 4

// latencySchedule calls put on a fixed schedule for d: rate/perCall calls a
// second in all, spread evenly over latencyWorkers goroutines (put gets the
// goroutine's index). It returns how many calls it made, or an error if any
// failed.
func latencySchedule(d time.Duration, perCall, rate int, put func(worker int) error) (int, error) {
	per := rate / latencyWorkers / perCall // calls/s per worker
	interval := time.Second / time.Duration(per)
	n := int(d.Seconds() * float64(per))
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var first atomic.Pointer[error]
	for w := range latencyWorkers {
		wg.Go(func() {
			for i := range n {
				next := start.Add(time.Duration(i)*interval + time.Duration(w)*interval/latencyWorkers)
				time.Sleep(time.Until(next))
				if err := put(w); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d put calls failed, the first: %w", f, *first.Load())
	}
	return latencyWorkers * n, nil
}

// latencyProduce writes rate records/s for d on latencySchedule's
// schedule, and returns how many it wrote: one PutRecord each when
// perCall is 1, else PutRecords calls of perCall records with one partition
// key (one shard), which kdsfake then pushes as one event. Each record's
// data is the send time (unix ns, 8 bytes), the measured flag (1 byte) and
// padding.
func latencyProduce(c *kinesis.Client, stream string, d time.Duration, measured bool, perCall, rate int) (int, error) {
	type worker struct {
		entries []types.PutRecordsRequestEntry
		datas   [][]byte
	}
	ws := make([]worker, latencyWorkers)
	for w := range ws {
		ws[w].entries = make([]types.PutRecordsRequestEntry, perCall)
		ws[w].datas = make([][]byte, perCall)
		for j := range ws[w].datas {
			ws[w].datas[j] = make([]byte, 9+latencyPayload)
			if measured {
				ws[w].datas[j][8] = 1
			}
		}
	}
	calls, err := latencySchedule(d, perCall, rate, func(w int) error {
		entries, datas := ws[w].entries, ws[w].datas
		pk := aws.String(strconv.FormatUint(rand.Uint64(), 36))
		sent := uint64(time.Now().UnixNano())
		if perCall == 1 {
			binary.BigEndian.PutUint64(datas[0], sent)
			_, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: pk, Data: datas[0]})
			return err
		}
		for j := range entries {
			binary.BigEndian.PutUint64(datas[j], sent)
			entries[j] = types.PutRecordsRequestEntry{PartitionKey: pk, Data: datas[j]}
		}
		out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err == nil && aws.ToInt32(out.FailedRecordCount) > 0 {
			err = fmt.Errorf("%d records failed", aws.ToInt32(out.FailedRecordCount))
		}
		return err
	})
	return calls * perCall, err
}

// latencyEventBytes is about the size of a SubscribeToShard event that
// carries k of the benchmark's records (event-stream headers, and per
// record the JSON of a 109-byte record: base64 data, sequence number,
// partition key, timestamp).
func latencyEventBytes(k int) int { return 100 + 350*k }

// latencyFloorSend dials addr and writes to that one connection, on
// latencySchedule's schedule, one chunk of latencyEventBytes(k) per put
// call: what a stream pushed by EFO puts on the wire, without TLS or
// HTTP/2. It closes the connection and returns the records the chunks
// stand for.
func latencyFloorSend(addr string, d time.Duration, k, rate int) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	chunk := make([]byte, latencyEventBytes(k))
	var mu sync.Mutex // the workers share the connection, as shards share HTTP/2's
	calls, err := latencySchedule(d, k, rate, func(int) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := conn.Write(chunk)
		return err
	})
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	return calls * k, err
}

// latencyStreams numbers the benchmark's streams.
var latencyStreams atomic.Int64

// latencyChild is the running server process.
type latencyChild struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	tls   string
	certs string // AWS_CA_BUNDLE holding the child's certificate
}

func startLatencyChild(b *testing.B) *latencyChild {
	b.Helper()
	dir := b.TempDir()
	cert := filepath.Join(dir, "child.pem")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envLatencyChild+"="+cert)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ch := &latencyChild{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	b.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	ready := ch.reply(b, "READY")
	ch.tls = ready[0]
	// The child's certificate, and whatever AWS_CA_BUNDLE trusted already.
	bundle, err := os.ReadFile(cert)
	if err != nil {
		b.Fatal(err)
	}
	if prev := os.Getenv("AWS_CA_BUNDLE"); prev != "" {
		if p, err := os.ReadFile(prev); err == nil {
			bundle = append(append(p, '\n'), bundle...)
		}
	}
	ch.certs = filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(ch.certs, bundle, 0o600); err != nil {
		b.Fatal(err)
	}
	return ch
}

// reply reads the child's output up to the line "LATENCY <word> ..." and
// returns its other fields.
func (c *latencyChild) reply(b *testing.B, word string) []string {
	b.Helper()
	for c.out.Scan() {
		f := strings.Fields(c.out.Text())
		if len(f) >= 2 && f[0] == "LATENCY" && f[1] == word {
			return f[2:]
		}
	}
	b.Fatalf("the latency server process ended before %s (%v)", word, c.out.Err())
	return nil
}

func (c *latencyChild) send(b *testing.B, format string, args ...any) {
	b.Helper()
	if _, err := fmt.Fprintf(c.in, format+"\n", args...); err != nil {
		b.Fatal(err)
	}
}

// latencySink collects each measured record's latencies.
type latencySink struct {
	mu       sync.Mutex
	lat      []time.Duration // from the send time
	arrival  []time.Duration // from ApproximateArrivalTimestamp
	measured int
	all      int
	batches  int
}

func (s *latencySink) add(_ context.Context, b *shardflow.Batch) error {
	now := time.Now()
	di, ai := b.Schema.Index("data"), b.Schema.Index("approximateArrivalTimestamp")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	for _, r := range b.Rows {
		s.all++
		data, _ := r[di].([]byte)
		if len(data) < 9 || data[8] != 1 {
			continue
		}
		s.measured++
		s.lat = append(s.lat, now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(data)))))
		if at, ok := r[ai].(time.Time); ok {
			s.arrival = append(s.arrival, now.Sub(at))
		}
	}
	return nil
}

func (s *latencySink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.measured
}

// latencyResult is one mode's measurements over the benchmark's runs.
type latencyResult struct {
	lat, arrival []time.Duration
	cpu          time.Duration
	records      int
	batches      int // batches that held the measured records, about
}

// latencyPercentile returns the p-th percentile of ds in milliseconds.
func latencyPercentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return float64(s[max(i, 0)]) / float64(time.Millisecond)
}

// measureLatency runs one mode against a fresh stream on the child, with
// the checkpoint in memory or in a local directory (dir).
func measureLatency(b *testing.B, child *latencyChild, mode string, c latencyCase) latencyResult {
	b.Helper()
	// -count repeats a sub-benchmark within one run of its parent (one
	// child process): every stream gets a new name.
	stream := fmt.Sprintf("latency-%s-%d", mode, latencyStreams.Add(1))
	child.send(b, "stream %s %d", stream, c.shards)
	child.reply(b, "OK")
	opts := map[string]string{
		"kinesis.streamName":       stream,
		"kinesis.endpointUrl":      child.tls,
		"kinesis.region":           testenv.Region,
		"kinesis.awsAccessKeyId":   testenv.AccessKeyID,
		"kinesis.awsSecretKey":     testenv.SecretKey,
		"kinesis.startingPosition": "TRIM_HORIZON",
	}
	if mode == "efo" {
		opts["kinesis.consumerType"] = "SubscribeToShard"
		opts["kinesis.consumerName"] = "latency"
	}
	cfg, err := kds.ParseSourceOptions(opts, nil)
	if err != nil {
		b.Fatal(err)
	}
	src, err := kds.NewSource(b.Context(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	sink := &latencySink{}
	qc := shardflow.QueryConfig{
		Name: "latency-" + mode, Checkpoint: memstore.New(), Trigger: shardflow.ProcessingTime(0),
		Source: src, Sink: shardflow.ForEachBatch(sink.add),
	}
	if c.dir {
		qc.Checkpoint, qc.CheckpointLocation = nil, filepath.Join(b.TempDir(), "checkpoint")
	}
	q, err := shardflow.NewQuery(qc)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Run(b.Context()) }()

	child.send(b, "produce %s %g 0 %d %d", stream, latencyWarmup.Seconds(), c.perCall, c.rate)
	child.reply(b, "DONE")
	stopProfile := startLatencyProfile(b, stream)
	cpu0 := cpuTime()
	sink.mu.Lock()
	batches0 := sink.batches
	sink.mu.Unlock()
	child.send(b, "produce %s %g 1 %d %d", stream, latencyMeasure.Seconds(), c.perCall, c.rate)
	n, _ := strconv.Atoi(child.reply(b, "DONE")[0])
	deadline := time.Now().Add(time.Minute)
	for sink.count() < n {
		select {
		case err := <-done:
			b.Fatalf("%s query ended: %v", mode, err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d of %d records reached the sink", mode, sink.count(), n)
		}
		time.Sleep(time.Millisecond)
	}
	cpu := cpuTime() - cpu0
	stopProfile()
	if err := q.Stop(b.Context()); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatalf("%s query: %v", mode, err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.measured != n {
		b.Fatalf("%s: %d records reached the sink, %d were sent", mode, sink.measured, n)
	}
	return latencyResult{lat: sink.lat, arrival: sink.arrival, cpu: cpu, records: n, batches: sink.batches - batches0}
}

// measureFloor measures the least CPU any enhanced fan-out client pays
// per record at c's load, on this machine: the child writes, on the put
// schedule, one event-sized chunk per put call to a plain TCP connection
// (latencyFloorSend), and this process only reads them, in one goroutine,
// without TLS, HTTP/2 or decoding. Each chunk that finds the reader idle
// costs it a wake-up from epoll, the cost EFO pays per event and polling
// only per GetRecords call.
func measureFloor(b *testing.B, child *latencyChild, c latencyCase) latencyResult {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	// A child that fails to dial exits: do not wait for it forever.
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	child.send(b, "floor %s %g %d %d", ln.Addr(), latencyMeasure.Seconds(), c.perCall, c.rate)
	conn, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// Not the garbage of the query measured before.
	runtime.GC()
	cpu0 := cpuTime()
	got, err := io.Copy(io.Discard, conn)
	cpu := cpuTime() - cpu0
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.Atoi(child.reply(b, "DONE")[0])
	if want := int64(n / c.perCall * latencyEventBytes(c.perCall)); n == 0 || got != want {
		b.Fatalf("floor: read %d bytes for %d records, want %d", got, n, want)
	}
	return latencyResult{cpu: cpu, records: n}
}

// startLatencyProfile starts a CPU profile of this process into
// $SHARDFLOW_LATENCY_CPUPROFILE/<stream>.pprof when that variable is set,
// and returns the function that stops it.
func startLatencyProfile(b *testing.B, stream string) func() {
	b.Helper()
	dir := os.Getenv(envLatencyProfile)
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, stream+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// latencyCase is one sub-benchmark's setting.
type latencyCase struct {
	dir     bool // checkpoint in a local directory, else in memory
	perCall int  // records per put call
	shards  int
	rate    int // records/s
}

func (c latencyCase) name() string {
	name := "checkpoint=memory"
	if c.dir {
		name = "checkpoint=dir"
	}
	if c.perCall > 1 {
		name += fmt.Sprintf("/put=%d", c.perCall)
	}
	if c.shards != latencyShards || c.rate != latencyRate {
		name += fmt.Sprintf("/shards=%d/rate=%d", c.shards, c.rate)
	}
	return name
}

func BenchmarkEndToEndLatency(b *testing.B) {
	child := startLatencyChild(b)
	b.Setenv("AWS_CA_BUNDLE", child.certs)
	for _, c := range []latencyCase{
		{false, 1, latencyShards, latencyRate},
		{true, 1, latencyShards, latencyRate},
		{false, latencyPerCall, latencyShards, latencyRate},
		{false, 1, latencyManyShards, latencyLowRate},
	} {
		name := c.name()
		b.Run(name, func(b *testing.B) {
			results := map[string]*latencyResult{"efo": {}, "polling": {}, "floor": {}}
			for range b.N {
				f := measureFloor(b, child, c)
				results["floor"].cpu += f.cpu
				results["floor"].records += f.records
				for _, mode := range []string{"efo", "polling"} {
					r := measureLatency(b, child, mode, c)
					acc := results[mode]
					acc.lat = append(acc.lat, r.lat...)
					acc.arrival = append(acc.arrival, r.arrival...)
					acc.cpu += r.cpu
					acc.records += r.records
					acc.batches += r.batches
				}
			}
			b.ReportMetric(0, "ns/op")
			for _, mode := range []string{"efo", "polling"} {
				r := results[mode]
				b.ReportMetric(latencyPercentile(r.lat, 50), mode+"-p50-ms")
				b.ReportMetric(latencyPercentile(r.lat, 99), mode+"-p99-ms")
				b.ReportMetric(latencyPercentile(r.arrival, 99), mode+"-arrival-p99-ms")
				b.ReportMetric(r.cpu.Seconds()/float64(r.records)*1e6, mode+"-cpu-s/Mrec")
				b.ReportMetric(float64(r.records)/float64(max(r.batches, 1)), mode+"-rec/batch")
			}
			f := results["floor"]
			b.ReportMetric(f.cpu.Seconds()/float64(f.records)*1e6, "floor-cpu-s/Mrec")
		})
	}
}
