// Package cli implements the shardflow command's subcommands.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, documented in the README.
const (
	ExitOK      = 0   // success, or a graceful stop after SIGINT/SIGTERM
	ExitFailed  = 1   // the query failed (the error is printed)
	ExitUsage   = 2   // bad flags, job file or options; nothing ran
	ExitAborted = 130 // a second signal aborted the running batch
)

// usageError marks errors in what the user asked for, before anything ran.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usage(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errAborted is returned when a second signal cancelled the running batch.
var errAborted = errors.New("aborted by a second signal; the running batch was not committed and is replayed on restart")

// env is what a command runs with: output streams and the signals it obeys.
type env struct {
	stdout, stderr io.Writer
	signals        <-chan os.Signal
	logLevel       string
	logFormat      string
}

func (e *env) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if strings.EqualFold(e.logFormat, "json") {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// Run runs the shardflow command with args (without the program name) and
// returns the process exit code. signals delivers SIGINT/SIGTERM: the first
// stops the query gracefully, the second aborts it.
func Run(args []string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	e := &env{stdout: stdout, stderr: stderr, signals: signals}
	root := &cobra.Command{
		Use:           "shardflow",
		Short:         "Spark-style micro-batch streaming for Amazon Kinesis Data Streams",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&e.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&e.logFormat, "log-format", "text", "log format: text or json")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(newRunCmd(e), newOptionsCmd(e), newDemoCmd(e), newLocalCmd(e), newProduceCmd(e), newStatusCmd(e))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	err := root.ExecuteContext(context.Background())
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "shardflow: %v\n", err)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return ExitUsage
	case errors.Is(err, errAborted):
		return ExitAborted
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		return ExitUsage
	}
	return ExitFailed
}
