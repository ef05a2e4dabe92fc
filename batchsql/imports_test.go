package batchsql_test

import (
	"os/exec"
	"strings"
	"testing"
)

const duckdbModule = "github.com/duckdb/duckdb-go"

// TestImportRule checks DESIGN.md's import rule: only batchsql (and the
// CLI, which embeds it) imports duckdb-go, so the library builds with
// CGO_ENABLED=0 when batchsql is not imported.
func TestImportRule(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	// Every package of the module and its direct imports.
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/shardflow/shardflow/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/shardflow/shardflow/batchsql":      true,
		"github.com/shardflow/shardflow/internal/cli":  true,
		"github.com/shardflow/shardflow/cmd/shardflow": true,
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if strings.Contains(imports, duckdbModule) && !allowed[pkg] {
			t.Errorf("%s imports duckdb-go; only batchsql may", pkg)
		}
	}
	// The library packages build without cgo.
	cmd := exec.Command("go", "list", "-deps", "github.com/shardflow/shardflow", "github.com/shardflow/shardflow/kds", "github.com/shardflow/shardflow/checkpoint/...", "github.com/shardflow/shardflow/sink/...")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps with CGO_ENABLED=0: %v\n%s", err, out)
	}
	if strings.Contains(string(out), duckdbModule) || strings.Contains(string(out), "/batchsql") {
		t.Errorf("the library depends on duckdb-go or batchsql:\n%s", out)
	}
}
