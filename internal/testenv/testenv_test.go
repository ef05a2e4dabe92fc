package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestKinesisEmulators(t *testing.T) {
	t.Setenv(EnvKinesalite, "http://127.0.0.1:1")
	t.Setenv(EnvKinesisMock, " http://127.0.0.1:2 ")
	got := KinesisEmulators(t)
	want := []Emulator{{Kinesalite, "http://127.0.0.1:1"}, {KinesisMock, "http://127.0.0.1:2"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("KinesisEmulators = %+v, want %+v", got, want)
	}
}

// TestKinesisEmulatorsMissing runs the helper test below in a child process
// with one emulator missing, with and without CI=true.
func TestKinesisEmulatorsMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		KinesisEmulators(t)
		return
	}
	for _, tt := range []struct {
		ci, mock string
		want     string
	}{
		{"", "", "--- SKIP"},
		{"true", "", "--- FAIL"},
		{"true", "http://127.0.0.1:2", "--- FAIL"}, // kinesalite still missing
		{"", "http://127.0.0.1:2", "--- PASS"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKinesisEmulatorsMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tt.ci, EnvKinesalite+"=", EnvKinesisMock+"="+tt.mock)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("CI=%q mock=%q: want %s, got:\n%s", tt.ci, tt.mock, tt.want, out)
		}
		if tt.want == "--- FAIL" && !strings.Contains(string(out), EnvKinesalite) {
			t.Errorf("CI failure does not name %s:\n%s", EnvKinesalite, out)
		}
	}
}
