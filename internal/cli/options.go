package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shardflow/shardflow"
)

func newOptionsCmd(e *env) *cobra.Command {
	var scope string
	cmd := &cobra.Command{
		Use:   "options",
		Short: "List every option: name, default, allowed values, description, Spark-compatible or extension",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows := shardflow.OptionsTable()
			if scope != "" {
				var kept []shardflow.OptionInfo
				for _, r := range rows {
					if strings.Contains(strings.ToLower(r.Scope.String()), strings.ToLower(scope)) {
						kept = append(kept, r)
					}
				}
				if len(kept) == 0 {
					return usage("--scope %q matches no scope; use source, sink, console, file or query", scope)
				}
				rows = kept
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCOPE\tNAME\tDEFAULT\tALLOWED\tKIND\tDESCRIPTION")
			for _, r := range rows {
				kind := "spark"
				if !r.Spark {
					kind = "extension"
				}
				if r.Status != "" && r.Status != "supported" {
					kind += "/" + string(r.Status)
				}
				def := r.Default
				if def == "" {
					def = "-"
					if r.Required {
						def = "(required)"
					}
				}
				desc := r.Description
				if r.Reason != "" {
					desc += " [" + r.Reason + "]"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Scope, r.Name, def, r.Allowed, kind, oneLine(desc))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "", "only options of this scope (source, sink, console, file, query)")
	return cmd
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
