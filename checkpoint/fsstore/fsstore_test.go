package fsstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/checkpointtest"
	"github.com/shardflow/shardflow/checkpoint/fsstore"
)

func newStore(t *testing.T, dir string) *fsstore.Store {
	t.Helper()
	s, err := fsstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
		return newStore(t, filepath.Join(t.TempDir(), "nested", "ckpt"))
	})
}

func TestFilesOnDisk(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newStore(t, dir)
	if err := s.Create(ctx, "offsets/7", []byte("seven")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "sinks/file/manifest", []byte("m")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"offsets/7": "seven", "sinks/file/manifest": "m"} {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(got) != want {
			t.Errorf("file %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if temps := tempFiles(t, dir); len(temps) != 0 {
		t.Errorf("temporary files left after successful writes: %q", temps)
	}
}

// TestTwoStoresOneDir checks that the lock excludes another Store (as it
// would another process) on the same directory, names the holder, and that
// the lock file records the owner.
func TestTwoStoresOneDir(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	a, b := newStore(t, dir), newStore(t, dir)
	release, err := a.Lock(ctx, "query 42 (pid 1)")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := os.ReadFile(filepath.Join(dir, "lock"))
	if err != nil || string(owner) != "query 42 (pid 1)\n" {
		t.Errorf("lock file = %q, %v; want the owner", owner, err)
	}
	_, err = b.Lock(ctx, "query 42 (pid 2)")
	if !errors.Is(err, checkpoint.ErrLocked) {
		t.Fatalf("Lock on a second Store = %v, want ErrLocked", err)
	}
	for _, want := range []string{"checkpoint in use", dir, `"query 42 (pid 1)"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// A New while the lock is held must not disturb the holder.
	newStore(t, dir)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	releaseB, err := b.Lock(ctx, "query 42 (pid 2)")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	if err := release(); err != nil { // a stale release does nothing
		t.Fatal(err)
	}
	if _, err := a.Lock(ctx, "x"); !errors.Is(err, checkpoint.ErrLocked) {
		t.Fatalf("stale release freed the lock: Lock = %v", err)
	}
	releaseB()
}

func TestCloseReleasesLock(t *testing.T) {
	dir := t.TempDir()
	a := newStore(t, dir)
	release, err := a.Lock(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatalf("release after Close: %v", err)
	}
	b := newStore(t, dir)
	if _, err := b.Lock(t.Context(), "b"); err != nil {
		t.Fatalf("Lock after the holder's Close: %v", err)
	}
}

func TestTempFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newStore(t, dir)
	if err := s.Create(ctx, "offsets/1", []byte("1")); err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of writes leaves behind.
	leftovers := []string{"offsets/.2.k3j4#tmp", ".metadata.zz#tmp"}
	for _, name := range leftovers {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for dir, want := range map[string][]string{"offsets": {"1"}, "": {}} {
		got, err := s.List(ctx, dir)
		if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("List(%q) = %q, %v; want %q", dir, got, err, want)
		}
	}
	// Held lock: New must leave the files alone (they may be a live
	// writer's).
	release, err := s.Lock(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	newStore(t, dir)
	if got := tempFiles(t, dir); len(got) != len(leftovers) {
		t.Errorf("New removed temporary files while the lock was held: left %q", got)
	}
	release()
	newStore(t, dir)
	if got := tempFiles(t, dir); len(got) != 0 {
		t.Errorf("New left temporary files %q", got)
	}
}

func TestNames(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newStore(t, dir)
	err := s.Put(ctx, "lock", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf(`Put("lock") = %v, want a reserved-name error`, err)
	}
	err = s.Create(ctx, "../escape", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), `"../escape"`) {
		t.Errorf(`Create("../escape") = %v, want an error naming it`, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "escape")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an invalid name wrote outside the directory: %v", err)
	}
	// An object cannot also be a directory here.
	if err := s.Create(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "a/b", []byte("x")); err == nil || errors.Is(err, checkpoint.ErrExist) {
		t.Errorf(`Create("a/b") under the object "a" = %v, want an error`, err)
	}
	if err := s.Create(ctx, "a2/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error { return s.Create(ctx, "a2", []byte("x")) },
		func() error { return s.Put(ctx, "a2", []byte("x")) },
	} {
		if err := call(); err == nil || errors.Is(err, checkpoint.ErrExist) {
			t.Errorf(`writing "a2" over the directory "a2" = %v, want an error`, err)
		}
	}
	for _, call := range []func() error{
		func() error { _, err := s.Read(ctx, "a2"); return err },
		func() error { return s.Delete(ctx, "a2") },
	} {
		if err := call(); !errors.Is(err, checkpoint.ErrNotExist) {
			t.Errorf(`reading or deleting the directory "a2" = %v, want ErrNotExist`, err)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		location string
		wantErr  bool
	}{
		{location: dir},
		{location: "file://" + filepath.ToSlash(dir)},
		{location: "file:" + filepath.ToSlash(dir)},
		{location: "file://localhost" + filepath.ToSlash(dir)},
		{location: "file://otherhost/tmp/x", wantErr: true},
		{location: "file:relative/x", wantErr: true},
		{location: "s3://bucket/prefix", wantErr: true},
		{location: "", wantErr: true},
	}
	for _, tt := range tests {
		s, err := fsstore.Open(tt.location)
		if tt.wantErr {
			if err == nil {
				s.Close()
				t.Errorf("Open(%q) succeeded, want an error", tt.location)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tt.location, err)
			continue
		}
		if s.Location() != tt.location {
			t.Errorf("Open(%q).Location() = %q", tt.location, s.Location())
		}
		if err := s.Put(t.Context(), "metadata", []byte(tt.location)); err != nil {
			t.Error(err)
		}
		s.Close()
		if got, _ := os.ReadFile(filepath.Join(dir, "metadata")); string(got) != tt.location {
			t.Errorf("Open(%q) wrote elsewhere than %s", tt.location, dir)
		}
	}
}

func TestNewOnFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fsstore.New(file); err == nil {
		t.Fatal("New on a regular file succeeded")
	}
}

// tempFiles returns the temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var temps []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "#") {
			temps = append(temps, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return temps
}
