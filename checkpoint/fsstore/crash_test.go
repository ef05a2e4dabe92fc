//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package fsstore_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/fsstore"
)

// The tests below re-execute the test binary as a child process that runs
// TestChildProcess with these variables set, and SIGKILL it.
const (
	envMode = "FSSTORE_TEST_CHILD"     // "write" or "lock"
	envDir  = "FSSTORE_TEST_CHILD_DIR" // the checkpoint directory
)

// TestChildProcess is the child's body; it does nothing in a normal run.
func TestChildProcess(t *testing.T) {
	mode, dir := os.Getenv(envMode), os.Getenv(envDir)
	if mode == "" {
		return
	}
	ctx := context.Background()
	s, err := fsstore.New(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	switch mode {
	case "write":
		// Write until killed: Create a new object and Put over one, each
		// large enough that the kill likely lands inside a write.
		names, err := s.List(ctx, "objs")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(os.Getpid()))
		rng := rand.NewChaCha8(seed)
		for i := len(names); ; i++ {
			if err := s.Create(ctx, objName(i), sealed(rng)); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
			if err := s.Put(ctx, "put/latest", sealed(rng)); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
			fmt.Println("wrote", i)
		}
	case "lock":
		if _, err := s.Lock(ctx, "child pid "+strconv.Itoa(os.Getpid())); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // hold the lock until killed
		os.Exit(0)
	}
}

func objName(i int) string { return fmt.Sprintf("objs/%08d", i) }

// sealed returns random content of 64 KiB to 1 MiB preceded by its SHA-256,
// so that a reader can tell a whole object from a partial one.
func sealed(rng *rand.ChaCha8) []byte {
	payload := make([]byte, 64<<10+rng.Uint64()%(960<<10))
	rng.Read(payload)
	sum := sha256.Sum256(payload)
	return append([]byte(hex.EncodeToString(sum[:])+"\n"), payload...)
}

func checkSealed(data []byte) error {
	head, payload, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return fmt.Errorf("no checksum line in %d bytes", len(data))
	}
	sum := sha256.Sum256(payload)
	if hex.EncodeToString(sum[:]) != string(head) {
		return fmt.Errorf("checksum mismatch over %d bytes: partial or corrupt", len(payload))
	}
	return nil
}

// startChild starts the child in mode on dir and returns it with a reader
// of its output lines.
func startChild(t *testing.T, mode, dir string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envMode+"="+mode, envDir+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(stdout)
}

// nextLine returns the child's next output line, failing on an error line.
func nextLine(t *testing.T, out *bufio.Scanner) string {
	t.Helper()
	if !out.Scan() {
		t.Fatalf("child exited early: %v", out.Err())
	}
	line := out.Text()
	if strings.HasPrefix(line, "error:") {
		t.Fatalf("child: %s", line)
	}
	return line
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	// Wait returns once the process is gone; the kernel has then closed its
	// files, and released its flocks.
	if err := cmd.Wait(); err == nil {
		t.Fatal("child exited normally, want killed")
	}
}

// TestCrashLeavesWholeObjects SIGKILLs a process in the middle of its
// writes, several times, and checks that every object is whole: Create and
// Put never leave a partial object, and what was acknowledged is there.
func TestCrashLeavesWholeObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("writes tens of MiB with fsyncs")
	}
	ctx := t.Context()
	dir := t.TempDir()
	acked, midWrite := 0, 0
	// Kill at least 10 times, and more (up to 30) until a kill has landed in
	// the middle of a write, which leaves a temporary file.
	for round := 0; round < 10 || midWrite == 0 && round < 30; round++ {
		cmd, out := startChild(t, "write", dir)
		for range 3 {
			line := nextLine(t, out)
			i, err := strconv.Atoi(strings.TrimPrefix(line, "wrote "))
			if err != nil {
				t.Fatalf("child wrote %q", line)
			}
			acked = i + 1
		}
		// A random delay (about one write) places the kill anywhere in the
		// child's loop, not always just after the child printed.
		time.Sleep(time.Duration(rand.Int64N(int64(4 * time.Millisecond))))
		kill(t, cmd)
		if len(tempFiles(t, dir)) > 0 {
			midWrite++
		}

		s := newStore(t, dir)
		names, err := s.List(ctx, "objs")
		if err != nil {
			t.Fatal(err)
		}
		// Creates are sequential: the objects are 0..n-1, with n at least
		// the acknowledged count (one more if the kill came after a Create
		// and before its acknowledgement).
		if len(names) < acked {
			t.Fatalf("round %d: %d objects, but the child acknowledged %d", round, len(names), acked)
		}
		want := make([]string, len(names))
		for i := range want {
			want[i] = strings.TrimPrefix(objName(i), "objs/")
		}
		if !slices.Equal(names, want) {
			t.Fatalf("round %d: objects %q, want %q", round, names, want)
		}
		for _, name := range append(slices.Clone(names), "put/latest") {
			if name != "put/latest" {
				name = "objs/" + name
			}
			data, err := s.Read(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkSealed(data); err != nil {
				t.Fatalf("round %d: %s: %v", round, name, err)
			}
		}
		if temps := tempFiles(t, dir); len(temps) != 0 {
			t.Fatalf("round %d: New left temporary files %q", round, temps)
		}
	}
	t.Logf("%d objects written; %d kills landed in the middle of a write", acked, midWrite)
}

// TestKilledHolderFreesLock checks that SIGKILLing the lock holder frees
// the lock at once: no lease to wait out, no stale lock file to remove.
func TestKilledHolderFreesLock(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	cmd, out := startChild(t, "lock", dir)
	if line := nextLine(t, out); line != "locked" {
		t.Fatalf("child said %q, want locked", line)
	}
	s := newStore(t, dir)
	_, err := s.Lock(ctx, "parent")
	if !errors.Is(err, checkpoint.ErrLocked) {
		t.Fatalf("Lock while the child holds it = %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("child pid %d", cmd.Process.Pid)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "checkpoint in use") {
		t.Errorf("error %q does not say %q is using the checkpoint", err, want)
	}
	kill(t, cmd)
	release, err := s.Lock(ctx, "parent")
	if err != nil {
		t.Fatalf("Lock right after the holder was killed: %v", err)
	}
	release()
}
