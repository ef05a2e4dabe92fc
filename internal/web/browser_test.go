package web_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/internal/web"
)

// chromiumPath returns Debian's chromium, which scripts/install-deps.sh
// installs; without it the test fails with CI=true and skips otherwise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("SHARDFLOW_TEST_CHROMIUM"), "/usr/bin/chromium"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (CI=true): scripts/install-deps.sh chromium installs it")
	}
	t.Skip("chromium not found: run scripts/install-deps.sh chromium")
	return ""
}

// TestDashboardInBrowser opens the dashboard of a running query on kdsfake
// in headless chromium: it loads with no console error, its charts get data
// points after a few batches, the batch table grows, and the secret option
// values appear nowhere in the page.
//
// The screenshot it keeps (dashboard.png in the test's temp dir, and in
// $SHARDFLOW_TEST_ARTIFACTS when set) shows the header with the query name
// and a green "running" badge, the query card (id, run id, source
// KinesisSource[orders], sink, trigger, uptime), three line charts (input
// against processed rows/s, batch duration by phase, lag per shard with one
// line per shard), the two shards as open, and the table of recent batches
// with their start and end sequence numbers.
func TestDashboardInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	h := newHarness(t, 2, shardflow.ProcessingTime(250*time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// A steady, bounded workload while the dashboard is open.
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 400 {
			h.put(t, 20)
			select {
			case <-ctx.Done():
				return
			case <-time.After(150 * time.Millisecond):
			}
		}
	})
	go func() {
		for range h.rows { // drain the sink's channel
		}
	}()
	runErr := make(chan error, 1)
	go func() { runErr <- h.query.Run(ctx) }()
	defer func() {
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer stopCancel()
		if err := h.query.Stop(stopCtx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := <-runErr; err != nil {
			t.Errorf("run: %v", err)
		}
		cancel()
		wg.Wait()
	}()

	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1500),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	var mu sync.Mutex
	var consoleErrs []string
	err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				consoleErrs = append(consoleErrs, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			consoleErrs = append(consoleErrs, "exception: "+msg)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				consoleErrs = append(consoleErrs, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	if err := chromedp.Do(bctx, chromedp.Navigate(h.http.URL+"/"), chromedp.WaitVisible(chromedp.ID("chart-rate"))); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}

	// count evaluates a JS expression that yields a number.
	count := func(expr string) int {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return n
	}
	points := func(id string) int {
		return count(`Number(document.getElementById("` + id + `").getAttribute("data-points") || 0)`)
	}
	rows := func() int { return count(`document.querySelectorAll("#batches tbody tr").length`) }
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	waitUntil("the charts have points after a few batches", func() bool {
		return points("chart-rate") >= 6 && points("chart-phase") >= 6 && points("chart-lag") >= 2
	})
	first := rows()
	if first == 0 {
		t.Fatal("the batch table is empty")
	}
	waitUntil("the batch table grows", func() bool { return rows() > first })
	if n := count(`document.querySelectorAll("#lineage .shard.open").length`); n != 2 {
		t.Errorf("lineage shows %d open shards, want 2", n)
	}
	status, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("q-status")))
	if err != nil || status != "running" {
		t.Errorf("status badge %q (%v), want running", status, err)
	}

	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector("details").open = true`)); err != nil {
		t.Fatal(err)
	}
	html, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{secretKey, secretKeyID} {
		if strings.Contains(html, secret) {
			t.Errorf("the page shows the secret option value %q", secret)
		}
	}
	if !strings.Contains(html, "kinesis.awsSecretKey") || !strings.Contains(html, "kinesis.streamName") {
		t.Error("the page does not list the options")
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("SHARDFLOW_TEST_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), png, 0o644)
		}
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(consoleErrs, "\n"))
	}
}

// TestDashboardShowsWorker: in worker mode the query card shows the
// worker's id and its leases held, taken and lost.
func TestDashboardShowsWorker(t *testing.T) {
	chromium := chromiumPath(t)
	s := web.New(web.Config{Info: web.Info{Name: "orders-etl"}})
	l := s.Listener()
	l.QueryStarted(shardflow.QueryStarted{ID: "id-1", RunID: "run-1", Name: "orders-etl"})
	l.QueryProgress(shardflow.Progress{BatchID: 1, Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
		Sources: []engine.SourceProgress{{Metrics: map[string]string{
			"leasesHeld": "4", "leasesTaken": "2", "leasesLost": "1", "leasesHandedOff": "3", "leasesReceived": "0", "workerId": "worker-a",
		}}}})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()))
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("query"))); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		text, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("query")))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, "worker-a") && strings.Contains(text, "4 held · 2 taken · 1 lost") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the query card does not show the worker and its leases:\n%s", text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
