package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/shardflow/shardflow/internal/datagen"
	"github.com/shardflow/shardflow/kds"
)

// Progress output: a terminal gets a bar redrawn in place this often,
// anything else a log line this often.
const (
	progressTTYEvery   = 200 * time.Millisecond
	progressPlainEvery = 5 * time.Second
)

type produceFlags struct {
	stream       string
	template     string
	templateFile string
	partitionKey string
	rate         float64
	count        int64
	duration     time.Duration
	endpoint     string
	region       string
	batchSize    int
	seed         uint64
	keepNewlines bool
	dryRun       bool
}

// newProduceCmd writes generated records to a stream, like the Amazon
// Kinesis Data Generator.
func newProduceCmd(e *env) *cobra.Command {
	var f produceFlags
	cmd := &cobra.Command{
		Use:   "produce --stream NAME [--template T | --template-file FILE]",
		Short: "Write generated records to a Kinesis stream, like the Amazon Kinesis Data Generator",
		Long: `Write records rendered from a template to a Kinesis stream with PutRecords.

Templates use the Kinesis Data Generator's syntax: literal text with
placeholders such as {{random.number(100)}}, {{random.uuid}},
{{random.arrayElement(["a","b"])}}, {{date.now("YYYY-MM-DD HH:mm:ss")}},
{{name.firstName}} or {{internet.email}}. docs/produce.md lists them all.
An unknown helper or a bad argument is reported before anything is sent.
As in the KDG, line breaks in the template are dropped (--keep-newlines
keeps them). Without a template, records look like
  ` + datagen.DefaultRecordTemplate + `

Requests carry up to --batch-size records (and 5 MiB); entries Kinesis could
not write are sent again, alone, with backoff. It stops after --count
records or --duration, whichever comes first, else at Ctrl-C. SIGINT or
SIGTERM stops gracefully: the request in flight completes, the summary is
printed, and shardflow exits 0. A second signal aborts (exit 130).

On a terminal a progress bar shows records, rate and errors; otherwise a
log line every 5 seconds. Credentials come from the AWS SDK's default chain
(AWS_ACCESS_KEY_ID and friends, profiles, roles).`,
		Example: `  shardflow produce --stream orders --endpoint http://127.0.0.1:4567 --region us-east-1 --count 1000
  shardflow produce --stream events --template-file event.json --rate 100 --duration 5m
  shardflow produce --template '{"user":"{{internet.userName}}"}' --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.produce(cmd.Context(), cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stream, "stream", "", "stream to write to (required unless --dry-run)")
	fl.StringVar(&f.template, "template", "", "record template (default: a small JSON event, see above)")
	fl.StringVar(&f.templateFile, "template-file", "", "file holding the record template")
	fl.StringVar(&f.partitionKey, "partition-key", datagen.DefaultPartitionKey, "partition key template")
	fl.Float64Var(&f.rate, "rate", 0, "records per second; 0 sends as fast as Kinesis accepts")
	fl.Int64Var(&f.count, "count", 0, "stop after this many records; 0 means no limit (--dry-run: default 5)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long, e.g. 30s or 5m; 0 means no limit")
	fl.StringVar(&f.endpoint, "endpoint", "", "Kinesis endpoint URL, e.g. http://127.0.0.1:4567 for a local Kinesis (default: AWS's for the region)")
	fl.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the shared profile's)")
	fl.IntVar(&f.batchSize, "batch-size", datagen.MaxBatchRecords, "most records per PutRecords request, 1 to 500")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the random generator, for repeatable records; 0 picks one")
	fl.BoolVar(&f.keepNewlines, "keep-newlines", false, "keep the template's line breaks in the records")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print --count records (default 5) to stdout and send nothing")
	return cmd
}

// templates checks the flags and compiles the templates. Every error is a
// usage error: nothing has been sent.
func (f *produceFlags) templates(cmd *cobra.Command) (rec, pk *datagen.Template, err error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if f.stream == "" && !f.dryRun {
		bad("--stream is required")
	}
	tmplSet, fileSet := cmd.Flags().Changed("template"), cmd.Flags().Changed("template-file")
	if tmplSet && fileSet {
		bad("--template and --template-file are exclusive: give one")
	}
	if f.rate < 0 || math.IsNaN(f.rate) || math.IsInf(f.rate, 0) {
		bad("--rate %v: must be 0 (as fast as possible) or more", f.rate)
	}
	if f.count < 0 {
		bad("--count %d: must be 0 (no limit) or more", f.count)
	}
	if f.duration < 0 {
		bad("--duration %v: must be 0 (no limit) or more", f.duration)
	}
	if f.batchSize < 1 || f.batchSize > datagen.MaxBatchRecords {
		bad("--batch-size %d: must be between 1 and %d (the PutRecords limit)", f.batchSize, datagen.MaxBatchRecords)
	}

	src, what := datagen.DefaultRecordTemplate, "the default template"
	switch {
	case tmplSet:
		src, what = f.template, "--template"
	case fileSet:
		what = "--template-file " + f.templateFile
		b, readErr := os.ReadFile(f.templateFile)
		if readErr != nil {
			bad("--template-file: %v", readErr)
			what = ""
		}
		src = string(b)
	}
	if what != "" {
		if rec, err = datagen.Parse(src); err != nil {
			bad("%s: %v", what, err)
		} else if strings.TrimSpace(src) == "" {
			bad("%s is empty: Kinesis needs some data in each record", what)
		}
	}
	if pk, err = datagen.Parse(f.partitionKey); err != nil {
		bad("--partition-key: %v", err)
	}
	if len(problems) > 0 {
		return nil, nil, usage("%s", strings.Join(problems, "\n"))
	}
	if !f.keepNewlines {
		rec = rec.OneLine()
	}
	return rec, pk.OneLine(), nil
}

func (e *env) produce(ctx context.Context, cmd *cobra.Command, f produceFlags) error {
	rec, pk, err := f.templates(cmd)
	if err != nil {
		return err
	}
	seed := f.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := rand.New(rand.NewPCG(seed, seed))
	if f.dryRun {
		n := f.count
		if !cmd.Flags().Changed("count") {
			n = 5
		}
		var buf []byte
		for range n {
			buf = append(rec.Execute(buf[:0], r, time.Now()), '\n')
			if _, err := e.stdout.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}

	client, err := kds.NewClient(ctx, kds.AWSConfig{Region: f.region, EndpointURL: f.endpoint})
	if err != nil {
		return usage("%v (for produce: --region and --endpoint)", err)
	}

	log := e.logger()
	tty := isTerminal(e.stderr)
	view := &progressView{w: e.stderr, tty: tty, log: log, count: f.count, duration: f.duration, every: progressPlainEvery}
	prodLog := log
	if tty {
		// Retry warnings would break the bar; its error count shows them.
		view.every = progressTTYEvery
		if !log.Enabled(ctx, slog.LevelDebug) {
			prodLog = nil
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	stopped, aborted := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case sig := <-e.signals:
			view.interrupt("signal received: finishing the request in flight, then stopping; send it again to abort", "signal", sig.String())
			close(stopped)
			close(stop)
		case <-ctx.Done():
			return
		}
		select {
		case sig := <-e.signals:
			view.interrupt("second signal: aborting", "signal", sig.String())
			close(aborted)
			cancel()
		case <-ctx.Done():
		}
	}()

	log.Info("producing", "stream", f.stream, "rate", f.rate, "count", f.count, "duration", f.duration, "batch_size", f.batchSize, "seed", seed)
	st, err := datagen.Produce(ctx, datagen.Config{
		Client:       client,
		Stream:       f.stream,
		Record:       rec,
		PartitionKey: pk,
		Rate:         f.rate,
		Count:        f.count,
		Duration:     f.duration,
		Stop:         stop,
		BatchSize:    f.batchSize,
		Rand:         r,
		Progress:     view.update,
		Logger:       prodLog,
	})
	view.finish(st)
	select {
	case <-aborted:
		fmt.Fprintln(e.stdout, summary(f.stream, st, "aborted"))
		return errProduceAborted{}
	default:
	}
	how := "produced"
	select {
	case <-stopped:
		how = "stopped"
	default:
	}
	fmt.Fprintln(e.stdout, summary(f.stream, st, how))
	if err != nil {
		return err
	}
	if st.Failed > 0 && how != "stopped" {
		return fmt.Errorf("%d of %d records were not written (last error: %v)", st.Failed, st.Sent+st.Failed, st.LastErr)
	}
	return nil
}

// errProduceAborted is errAborted (exit 130) with produce's own message.
type errProduceAborted struct{}

func (errProduceAborted) Error() string {
	return "aborted by a second signal: the request in flight was abandoned, so some of its records may have been written"
}

func (errProduceAborted) Is(target error) bool { return target == errAborted }

// summary is the last line: what was written, how fast, what failed.
func summary(stream string, st datagen.Stats, how string) string {
	secs := st.Elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(st.Sent) / secs
	}
	s := fmt.Sprintf("%s: %d records (%s) to stream %q in %s, %.1f records/s; %d failed, %d retries, %d errors",
		how, st.Sent, byteSize(st.Bytes), stream, st.Elapsed.Round(time.Millisecond), rate, st.Failed, st.Retries, st.Errors)
	if st.LastErr != nil && (st.Failed > 0 || st.Errors > 0) {
		s += fmt.Sprintf(" (last: %v)", st.LastErr)
	}
	return s
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// isTerminal reports whether w is a terminal (a character device), without
// golang.org/x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressView shows Produce's progress: on a terminal one line redrawn
// with \r, otherwise a log line every few seconds. update runs on
// Produce's goroutine and interrupt on the signal goroutine, hence mu.
type progressView struct {
	w        io.Writer
	tty      bool
	log      *slog.Logger
	count    int64
	duration time.Duration
	every    time.Duration

	mu      sync.Mutex    // guards the fields below and writes to w
	drawn   time.Duration // Elapsed of the last draw
	samples []sample      // (elapsed, sent) of recent draws, oldest first
	width   int           // length of the line on screen
}

type sample struct {
	at   time.Duration
	sent int64
}

// rate is the records a second over about the last second (the last
// interval when draws are further apart), never over less than a second,
// so the bucket's first burst does not show as a spike.
func (p *progressView) rate(st datagen.Stats) float64 {
	if len(p.samples) == 0 {
		p.samples = append(p.samples, sample{})
	}
	p.samples = append(p.samples, sample{st.Elapsed, st.Sent})
	for len(p.samples) > 2 && st.Elapsed-p.samples[1].at >= time.Second {
		p.samples = p.samples[1:]
	}
	base := p.samples[0]
	return float64(st.Sent-base.sent) / max(st.Elapsed-base.at, time.Second).Seconds()
}

func (p *progressView) update(st datagen.Stats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn > 0 && st.Elapsed-p.drawn < p.every {
		return
	}
	p.draw(st)
}

func (p *progressView) draw(st datagen.Stats) {
	rate := p.rate(st)
	p.drawn = st.Elapsed
	if !p.tty {
		p.log.Info("progress", "sent", st.Sent, "rate", math.Round(rate), "errors", st.Errors,
			"retries", st.Retries, "failed", st.Failed, "elapsed", st.Elapsed.Round(time.Second))
		return
	}
	line := progressLine(st, rate, p.count, p.duration)
	pad := max(0, p.width-len(line))
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
}

// interrupt logs a message about a signal on a line of its own.
func (p *progressView) interrupt(msg string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
	p.log.Info(msg, args...)
}

// finish draws the final state; the summary follows on stdout.
func (p *progressView) finish(st datagen.Stats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		return
	}
	p.samples = nil // the final rate is the run's average
	p.draw(st)
	fmt.Fprintln(p.w)
}

// progressLine is the terminal's progress line: a bar when a count or a
// duration bounds the run, then records, rate, errors and elapsed time.
func progressLine(st datagen.Stats, rate float64, count int64, duration time.Duration) string {
	const width = 24
	var b strings.Builder
	frac := -1.0
	switch {
	case count > 0:
		frac = float64(st.Sent+st.Failed) / float64(count)
	case duration > 0:
		frac = st.Elapsed.Seconds() / duration.Seconds()
	}
	if frac >= 0 {
		frac = min(frac, 1)
		n := int(frac * width)
		b.WriteString("[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] ")
		fmt.Fprintf(&b, "%3.0f%%  ", frac*100)
	}
	fmt.Fprintf(&b, "%d", st.Sent)
	if count > 0 {
		fmt.Fprintf(&b, "/%d", count)
	}
	fmt.Fprintf(&b, " records  %.0f rec/s  %d errors", rate, st.Errors)
	if st.Failed > 0 {
		fmt.Fprintf(&b, "  %d failed", st.Failed)
	}
	el := st.Elapsed.Truncate(time.Second)
	fmt.Fprintf(&b, "  %02d:%02d", int(el.Minutes()), int(el.Seconds())%60)
	if duration > 0 {
		d := duration.Truncate(time.Second)
		fmt.Fprintf(&b, "/%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
	}
	return b.String()
}
