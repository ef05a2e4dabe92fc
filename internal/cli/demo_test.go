package cli

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `shardflow demo --duration 20s`: it exits 0, and the
// per-country counts it printed for every batch sum to the number of events
// it produced.
func TestDemo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Run([]string{"demo", "--duration", "20s", "--trigger", "1s"}, &stdout, &stderr, nil)
	if code != ExitOK {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	done := regexp.MustCompile(`Done: produced (\d+) events; the query read (\d+) and forwarded (\d+)`).FindStringSubmatch(out)
	if done == nil {
		t.Fatalf("no summary line in:\n%s", out)
	}
	produced, _ := strconv.Atoi(done[1])
	if produced == 0 || done[2] != done[1] || done[3] != done[1] {
		t.Fatalf("summary: %s", done[0])
	}
	// Sum the per-country rows of every batch table.
	row := regexp.MustCompile(`^  ([A-Za-z()]+)\s+(\d+)$`)
	sum, batches := 0, 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Batch ") {
			batches++
		}
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[2])
			sum += n
		}
	}
	if sum != produced {
		t.Fatalf("per-country counts of %d batches sum to %d, produced %d", batches, sum, produced)
	}
	if batches < 5 {
		t.Errorf("only %d batches in 20s with a 1s trigger", batches)
	}
}

// TestLocalServesAndStopsOnSignal runs `shardflow local` and checks that it
// listens, creates the requested streams and exits 0 on SIGTERM.
func TestLocalServesAndStopsOnSignal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	sigs := make(chan os.Signal, 1)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run([]string{"local", "--port", strconv.Itoa(port), "--tls-port", "0", "--streams", "orders:3,clicks:1"}, &stdout, &stderr, sigs)
	}()
	waitFor(t, "the endpoints to be printed", 30*time.Second, func() bool { return strings.Contains(stdout.String(), "Ctrl-C stops it") })
	out := stdout.String()
	for _, want := range []string{"http://127.0.0.1:" + strconv.Itoa(port), "stream orders: 3 shards", "stream clicks: 1 shards", "AWS_ENDPOINT_URL_KINESIS=", "AWS_CA_BUNDLE="} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("local did not stop on SIGTERM")
	}
}

func TestLocalRejectsBadStreams(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"local", "--streams", "orders:zero"}, &stdout, &stderr, nil); code != ExitUsage || !strings.Contains(stderr.String(), "name:shards") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
