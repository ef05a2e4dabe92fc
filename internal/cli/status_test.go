package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// copyDir copies a checkpoint fixture so the test never touches testdata.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "ckpt")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestStatusReportsUncommittedBatch inspects a checkpoint whose batch 7 is
// planned (offsets/7) but not committed: status reports it as waiting for
// replay, with each shard's resume position and pending end. The --json
// output is pinned by a golden file.
func TestStatusReportsUncommittedBatch(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "status-uncommitted"))
	var out, errOut bytes.Buffer
	if code := Run([]string{"status", "--checkpoint", dir, "--json"}, &out, &errOut, nil); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := strings.ReplaceAll(out.String(), dir, "CHECKPOINT")
	golden := filepath.Join("testdata", "status-uncommitted.golden.json")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("status --json differs from %s (-want +got):\n%s", golden, diff)
	}

	out.Reset()
	if code := Run([]string{"status", "--checkpoint", dir}, &out, &errOut, nil); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"query id:", "0b9d3a0e-6a0c-4c43-9d5e-5d3f1f3c2a11",
		"last committed batch:", "6 (at 2026-11-25T21:41:01Z, 120 rows)",
		"last planned batch:    7",
		"waiting for replay:    yes: batch 7",
		"shardId-000000000002  open      shardId-000000000001",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStatusErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	var out, errOut bytes.Buffer
	if code := Run([]string{"status", "--checkpoint", missing}, &out, &errOut, nil); code != ExitFailed || !strings.Contains(errOut.String(), "no checkpoint at") {
		t.Errorf("missing checkpoint: exit %d, %s", code, errOut.String())
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("status created the missing checkpoint directory")
	}
	errOut.Reset()
	if code := Run([]string{"status", "--checkpoint", t.TempDir()}, &out, &errOut, nil); code != ExitFailed || !strings.Contains(errOut.String(), "no metadata") {
		t.Errorf("empty directory: exit %d, %s", code, errOut.String())
	}
	if code := Run([]string{"status"}, &out, &errOut, nil); code != ExitUsage {
		t.Errorf("no --checkpoint: exit %d", code)
	}
}
