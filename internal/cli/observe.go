package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/web"
	"github.com/shardflow/shardflow/metrics/prom"
)

// observer serves a running query's /metrics, /api/progress, /healthz,
// /readyz and dashboard (run --metrics-addr). A nil observer serves nothing.
type observer struct {
	web  *web.Server
	prom *prom.Metrics
	srv  *http.Server
	url  string
}

// listenAddr binds a port-only address (":9090") to 127.0.0.1: the
// dashboard is local unless a host is given.
func listenAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// startObserver starts the HTTP server on addr; "" returns nil (off).
func startObserver(addr string, job Job, p *pipeline, log *slog.Logger) (*observer, error) {
	if addr == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := prom.New(reg)
	if err != nil {
		return nil, err
	}
	if s, ok := p.source.(prom.SourceStatser); ok {
		m.WatchSource(s)
	}
	if s, ok := p.sink.(prom.SinkStatser); ok {
		m.WatchSink(s)
	}
	ws := web.New(web.Config{
		Info:     web.Info{Name: job.Name, Checkpoint: job.CheckpointLocation, Options: redactedOptions(job)},
		Gatherer: reg,
	})
	ln, err := net.Listen("tcp", listenAddr(addr))
	if err != nil {
		return nil, usage("--metrics-addr %s: %v", addr, err)
	}
	srv := &http.Server{Handler: ws.Handler(), ReadHeaderTimeout: 10 * time.Second}
	o := &observer{web: ws, prom: m, srv: srv, url: "http://" + ln.Addr().String() + "/"}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics and dashboard", "url", o.url)
	return o, nil
}

// listeners are the query listeners that feed the observer.
func (o *observer) listeners() []shardflow.Listener {
	if o == nil {
		return nil
	}
	return []shardflow.Listener{o.prom.Listener(), o.web.Listener()}
}

func (o *observer) close(log *slog.Logger) {
	if o == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.srv.Shutdown(ctx); err != nil {
		log.Warn("stopping metrics server", "err", err)
	}
}

// redactedOptions are the job's options for display, secrets masked. An
// option that does not parse is shown by key only.
func redactedOptions(job Job) map[string]map[string]string {
	out := map[string]map[string]string{}
	show := func(name string, scope shardflow.OptionScope, m map[string]string) {
		if len(m) == 0 {
			return
		}
		o, _, err := shardflow.ParseOptions(scope, m)
		if err == nil {
			out[name] = o.Redacted()
			return
		}
		masked := make(map[string]string, len(m))
		for k := range m {
			masked[k] = "(not shown)"
		}
		out[name] = masked
	}
	show("source", shardflow.ScopeSource, job.Source.Options)
	if sc, ok := sinkScopes[strings.ToLower(strings.TrimSpace(job.Sink.Format))]; ok {
		show(fmt.Sprintf("sink (%s)", job.Sink.Format), sc, job.Sink.Options)
	}
	return out
}

var sinkScopes = map[string]shardflow.OptionScope{
	"console":     shardflow.ScopeConsoleSink,
	"file":        shardflow.ScopeFileSink,
	"aws-kinesis": shardflow.ScopeSink,
	"kinesis":     shardflow.ScopeSink,
}
