package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/internal/engine"
)

func newStatusCmd(e *env) *cobra.Command {
	var location string
	var asJSON bool
	var opts []string
	cmd := &cobra.Command{
		Use:   "status --checkpoint LOCATION",
		Short: "Inspect a checkpoint offline: query id, last committed and planned batch, shard positions",
		Long: `Inspect a checkpoint without running the query and without changing it:
the query id, the last committed and the last planned batch, where every shard
resumes, and whether a batch was planned but not committed (the next run
replays it first, with exactly the same records).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if location == "" {
				return usage("--checkpoint LOCATION is required")
			}
			job := Job{CheckpointLocation: location, Source: Format{Options: map[string]string{}}}
			if err := parseKV("source-option", opts, job.Source.Options); err != nil {
				return err
			}
			return e.status(cmd.Context(), job, asJSON)
		},
	}
	cmd.Flags().StringVar(&location, "checkpoint", "", "checkpointLocation to inspect")
	cmd.Flags().StringArrayVar(&opts, "source-option", nil, "source option KEY=VALUE for a remote checkpoint, as given to run (kinesis.metadataCommitterType, kinesis.dynamodb.tableName, shardflow.s3.endpointUrl, credentials, ...)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the format is in docs/observability.md)")
	return cmd
}

// openCheckpointForStatus opens a checkpoint with the same opener as run
// (local directory, s3://, DynamoDB by kinesis.metadataCommitterType). A
// local directory that does not exist is an error, not created.
func openCheckpointForStatus(ctx context.Context, job Job) (checkpoint.Store, error) {
	location := job.CheckpointLocation
	if !strings.Contains(location, "://") && !strings.EqualFold(job.Source.Options["kinesis.metadataCommitterType"], "DYNAMODB") {
		if _, err := os.Stat(location); err != nil {
			return nil, fmt.Errorf("no checkpoint at %s: %w", location, err)
		}
	}
	// The stream name is required by the option registry but means
	// nothing to the store.
	if _, ok := job.Source.Options["kinesis.streamName"]; !ok {
		job.Source.Options["kinesis.streamName"] = "status"
	}
	return openCheckpoint(ctx, job)
}

func (e *env) status(ctx context.Context, job Job, asJSON bool) error {
	store, err := openCheckpointForStatus(ctx, job)
	if err != nil {
		return err
	}
	if c, ok := store.(io.Closer); ok {
		defer c.Close()
	}
	st, err := engine.Inspect(ctx, store)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(e.stdout, st)
	return nil
}

func printStatus(w io.Writer, st *engine.CheckpointStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	batch := func(b *int64) string {
		if b == nil {
			return "none"
		}
		return fmt.Sprint(*b)
	}
	fmt.Fprintf(tw, "checkpoint:\t%s\n", st.Location)
	fmt.Fprintf(tw, "query id:\t%s\n", st.ID)
	if st.Name != "" {
		fmt.Fprintf(tw, "name:\t%s\n", st.Name)
	}
	fmt.Fprintf(tw, "stream:\t%s\n", st.Stream)
	fmt.Fprintf(tw, "created:\t%s\n", st.CreatedAt.UTC().Format(time.RFC3339))
	committed := batch(st.LastCommittedBatch)
	if st.CommittedAt != nil {
		committed += fmt.Sprintf(" (at %s, %d rows)", st.CommittedAt.UTC().Format(time.RFC3339), st.CommittedRows)
	}
	fmt.Fprintf(tw, "last committed batch:\t%s\n", committed)
	fmt.Fprintf(tw, "last planned batch:\t%s\n", batch(st.LastPlannedBatch))
	if st.PendingReplay {
		fmt.Fprintf(tw, "waiting for replay:\tyes: batch %d was planned but not committed; the next run replays it first\n", *st.PendingBatch)
	} else {
		fmt.Fprintf(tw, "waiting for replay:\tno\n")
	}
	_ = tw.Flush()
	if len(st.Shards) == 0 {
		fmt.Fprintln(w, "shards: none yet")
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tSTATE\tPARENTS\tRESUMES AT\tPENDING BATCH ENDS AT")
	for _, s := range st.Shards {
		parents := strings.Join(s.Parents, ",")
		if parents == "" {
			parents = "-"
		}
		end := "-"
		if s.PendingEnd != nil {
			end = fmt.Sprintf("%s/%d", s.PendingEnd.Seq, s.PendingEnd.Sub)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, parents, describeStart(s.Next), end)
	}
	_ = tw.Flush()
}

func describeStart(s engine.Start) string {
	switch s.Type {
	case engine.AtTimestamp:
		return "AT_TIMESTAMP " + s.Timestamp.UTC().Format(time.RFC3339Nano)
	case engine.AtSequenceNumber, engine.AfterSequenceNumber:
		return fmt.Sprintf("%s %s/%d", s.Type, s.Seq, s.Sub)
	}
	return string(s.Type)
}
