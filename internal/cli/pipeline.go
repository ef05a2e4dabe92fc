package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/sink/console"
	"github.com/shardflow/shardflow/sink/filesink"
	"github.com/shardflow/shardflow/sink/memsink"
)

// pipeline is a built source and sink.
type pipeline struct {
	source          shardflow.Source
	sink            shardflow.Sink
	sinkDescription string
	closers         []io.Closer
	done            func() // called after a successful run (memory sink summary)
}

func (p *pipeline) close(log *slog.Logger) {
	for _, c := range p.closers {
		if err := c.Close(); err != nil {
			log.Warn("closing", "err", err)
		}
	}
}

// buildPipeline validates every option of the job, then builds the source
// and the sink. Option errors are usage errors: nothing has run.
func buildPipeline(ctx context.Context, job Job, stdout io.Writer, log *slog.Logger) (*pipeline, error) {
	srcCfg, srcErr := kds.ParseSourceOptions(job.Source.Options, log)
	p := &pipeline{}
	sinkErr := p.buildSink(ctx, job.Sink, stdout, log)
	if srcErr != nil || sinkErr != nil {
		var msgs []string
		if srcErr != nil {
			msgs = append(msgs, "source options: "+srcErr.Error())
		}
		if sinkErr != nil {
			msgs = append(msgs, sinkErr.Error())
		}
		p.close(log)
		return nil, usage("%s", strings.Join(msgs, "\n"))
	}
	src, err := kds.NewSource(ctx, srcCfg, log)
	if err != nil {
		p.close(log)
		return nil, usageError{fmt.Errorf("source: %w", err)}
	}
	p.source = src
	return p, nil
}

func (p *pipeline) buildSink(ctx context.Context, f Format, stdout io.Writer, log *slog.Logger) error {
	format := strings.ToLower(strings.TrimSpace(f.Format))
	scope := map[string]shardflow.OptionScope{
		"console":     shardflow.ScopeConsoleSink,
		"file":        shardflow.ScopeFileSink,
		"aws-kinesis": shardflow.ScopeSink,
		"kinesis":     shardflow.ScopeSink,
	}
	if format == "memory" {
		if len(f.Options) > 0 {
			return fmt.Errorf("sink options: the memory sink takes no options")
		}
		s := memsink.New()
		p.sink, p.sinkDescription = s, "MemorySink"
		p.done = func() { fmt.Fprintf(stdout, "memory sink: %d batches, %d rows\n", len(s.Batches()), len(s.Rows())) }
		return nil
	}
	sc, ok := scope[format]
	if !ok {
		return fmt.Errorf("sink %q is not supported; use console, file, memory or aws-kinesis", f.Format)
	}
	if sc == shardflow.ScopeSink {
		cfg, err := kds.ParseSinkOptions(f.Options, log)
		if err != nil {
			return fmt.Errorf("sink options: %w", err)
		}
		s, err := kds.NewSink(ctx, cfg, log)
		if err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		p.sink, p.sinkDescription = s, "KinesisSink["+cfg.StreamName+"]"
		p.closers = append(p.closers, s)
		return nil
	}
	o, warns, err := shardflow.ParseOptions(sc, f.Options)
	for _, w := range warns {
		log.Warn(w)
	}
	if err != nil {
		return fmt.Errorf("sink options: %w", err)
	}
	switch sc {
	case shardflow.ScopeConsoleSink:
		s, err := console.New(stdout, console.Config{NumRows: o.Int("numRows"), NoTruncate: !o.Bool("truncate")})
		if err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		p.sink, p.sinkDescription = s, "ConsoleSink"
	default:
		s, err := filesink.New(filesink.Config{Path: o.String("path"), Format: o.String("format")})
		if err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		p.sink, p.sinkDescription = s, "FileSink["+o.String("path")+"]"
	}
	return nil
}
