// Command cmd writes docs/options.md from the option registry:
//
//	go run ./internal/optdocs/cmd -o docs/options.md
//
// `go generate ./...` runs it (see options_gen.go at the module root).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/optdocs"
)

func main() {
	out := flag.String("o", "docs/options.md", "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, optdocs.Markdown(shardflow.OptionsTable()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "optdocs:", err)
		os.Exit(1)
	}
}
