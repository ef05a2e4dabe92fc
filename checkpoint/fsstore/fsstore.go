// Package fsstore keeps a checkpoint in a local directory.
//
// Each object is a file under the directory; the slashes of its name are
// subdirectories ("offsets/7" is the file offsets/7). Writes are crash-safe:
// an object is written to a temporary file in the same directory, fsynced,
// then put in place by a hard link (Create, which never replaces an existing
// file) or a rename (Put), and the directory is fsynced. A crash at any point
// leaves each object either whole or absent. Temporary files left by a crash
// have a '#' in their name, which no object name can have: List skips them,
// and New removes them unless a live process holds the lock (the files may
// then be its writes in progress).
//
// Lock takes an OS advisory lock (flock) on the file "lock" in the
// directory, which the kernel releases when the holding process exits, even
// by SIGKILL. The name "lock" at the top level is therefore reserved.
//
// A name cannot be both an object and a directory here ("a" and "a/b"),
// which the checkpoint layout never needs. The directory must be on a file
// system that supports hard links and flock (any local Linux or macOS file
// system does; some network and FUSE file systems do not).
package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/shardflow/shardflow/checkpoint"
)

const (
	// lockName is the file Lock locks, at the top of the directory.
	lockName = "lock"
	// tempMark ends every temporary file name. '#' is not allowed in
	// object names, so a temporary file never collides with an object.
	tempMark = "#tmp"

	dirPerm  = 0o755
	filePerm = 0o644
)

// Store is a checkpoint in a local directory. It is safe for concurrent use,
// by goroutines and by processes (though only one process should write: see
// Lock).
type Store struct {
	location string
	dir      string
	root     *os.Root

	// locks holds the lock files of the locks taken and not released. The
	// reference matters: an unreachable *os.File is closed by the garbage
	// collector, which would silently drop its lock.
	mu    sync.Mutex
	locks map[*os.File]struct{}
}

var (
	_ checkpoint.Store        = (*Store)(nil)
	_ checkpoint.BatchDeleter = (*Store)(nil)
)

// New opens the checkpoint in dir, creating the directory (and its parents)
// if absent. Unless another Store holds the checkpoint's lock, it removes
// the temporary files a crash may have left.
func New(dir string) (*Store, error) {
	return newStore(dir, dir)
}

// Open is New for a checkpointLocation: a local path or a file URL
// ("file:///var/lib/q", "file:/var/lib/q"). Location reports location as
// given.
func Open(location string) (*Store, error) {
	dir, err := dirOf(location)
	if err != nil {
		return nil, err
	}
	return newStore(location, dir)
}

func dirOf(location string) (string, error) {
	if !strings.HasPrefix(strings.ToLower(location), "file:") {
		if strings.Contains(location, "://") {
			return "", fmt.Errorf("fsstore: checkpoint location %q is not a local path or file URL", location)
		}
		return location, nil
	}
	u, err := url.Parse(location)
	if err != nil {
		return "", fmt.Errorf("fsstore: checkpoint location %q: %w", location, err)
	}
	if u.Opaque != "" || u.Path == "" {
		return "", fmt.Errorf("fsstore: checkpoint location %q: a file URL needs an absolute path (file:///dir)", location)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("fsstore: checkpoint location %q: host %q is not local", location, u.Host)
	}
	return filepath.FromSlash(u.Path), nil
}

func newStore(location, dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("fsstore: empty checkpoint directory")
	}
	if err := mkdirDurable(filepath.Clean(dir)); err != nil {
		return nil, fmt.Errorf("fsstore: creating checkpoint directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	s := &Store{location: location, dir: dir, root: root, locks: make(map[*os.File]struct{})}
	if err := s.removeTemps(); err != nil {
		root.Close()
		return nil, fmt.Errorf("fsstore: removing temporary files in %s: %w", dir, err)
	}
	return s, nil
}

// Location returns the location New or Open was given.
func (s *Store) Location() string { return s.location }

// Close releases the directory handle and any lock still held. The Store
// must not be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	for f := range s.locks {
		f.Close() // closing the last descriptor releases the flock
	}
	clear(s.locks)
	s.mu.Unlock()
	return s.root.Close()
}

// Create writes the object only if it does not exist, and returns an error
// wrapping checkpoint.ErrExist otherwise. The object is durable when Create
// returns.
func (s *Store) Create(ctx context.Context, name string, data []byte) error {
	if err := s.check(ctx, "create", name); err != nil {
		return err
	}
	dir := parent(name)
	if err := s.mkdirs(dir); err != nil {
		return s.opErr("create", name, err)
	}
	tmp, err := s.writeTemp(name, data)
	if err != nil {
		return s.opErr("create", name, err)
	}
	// Link, unlike rename, fails when the target exists: this is the
	// create-if-absent. The temporary file was fsynced first, so the
	// linked name never refers to partial content.
	linkErr := s.root.Link(tmp, name)
	rmErr := s.root.Remove(tmp)
	// Sync the directory even when the object already existed: the caller
	// may act on ErrExist, so what it observed must survive a power loss.
	syncErr := s.syncDir(dir)
	switch {
	case errors.Is(linkErr, fs.ErrExist):
		if fi, err := s.root.Lstat(name); err == nil && fi.IsDir() {
			return s.opErr("create", name, errors.New("a directory of objects has that name"))
		}
		return fmt.Errorf("fsstore: create %q in %s: %w", name, s.location, checkpoint.ErrExist)
	case linkErr != nil:
		return s.opErr("create", name, linkErr)
	case syncErr != nil:
		return s.opErr("create", name, syncErr)
	case rmErr != nil:
		return s.opErr("create", name, rmErr)
	}
	return nil
}

// Put writes the object, replacing any existing one. Readers see the old or
// the new content, never a mix; the object is durable when Put returns.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := s.check(ctx, "put", name); err != nil {
		return err
	}
	dir := parent(name)
	if err := s.mkdirs(dir); err != nil {
		return s.opErr("put", name, err)
	}
	tmp, err := s.writeTemp(name, data)
	if err != nil {
		return s.opErr("put", name, err)
	}
	if err := s.root.Rename(tmp, name); err != nil {
		s.root.Remove(tmp)
		return s.opErr("put", name, err)
	}
	if err := s.syncDir(dir); err != nil {
		return s.opErr("put", name, err)
	}
	return nil
}

// Read returns the object's content, or an error wrapping
// checkpoint.ErrNotExist.
func (s *Store) Read(ctx context.Context, name string) ([]byte, error) {
	if err := s.check(ctx, "read", name); err != nil {
		return nil, err
	}
	data, err := s.root.ReadFile(name)
	if err != nil {
		if notObject(err) {
			return nil, s.notExist("read", name)
		}
		return nil, s.opErr("read", name, err)
	}
	return data, nil
}

// List returns the names of the objects directly under dir, sorted, without
// the dir prefix. Subdirectories, temporary files and the lock file are not
// objects. A missing dir gives an empty list; dir "" lists the top level.
func (s *Store) List(ctx context.Context, dir string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fsstore: list %q: %w", dir, err)
	}
	if err := checkpoint.CheckDir(dir); err != nil {
		return nil, fmt.Errorf("fsstore: list: %w", err)
	}
	entries, err := s.readDir(dir)
	if err != nil {
		if notObject(err) {
			return []string{}, nil
		}
		return nil, fmt.Errorf("fsstore: list %q in %s: %w", dir, s.location, err)
	}
	names := []string{}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || checkpoint.CheckName(n) != nil || dir == "" && n == lockName {
			continue
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// Delete removes the object, or returns an error wrapping
// checkpoint.ErrNotExist.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.check(ctx, "delete", name); err != nil {
		return err
	}
	fi, err := s.root.Lstat(name)
	if err != nil {
		if notObject(err) {
			return s.notExist("delete", name)
		}
		return s.opErr("delete", name, err)
	}
	if fi.IsDir() {
		return s.notExist("delete", name)
	}
	if err := s.root.Remove(name); err != nil {
		if notObject(err) {
			return s.notExist("delete", name)
		}
		return s.opErr("delete", name, err)
	}
	if err := s.syncDir(parent(name)); err != nil {
		return s.opErr("delete", name, err)
	}
	return nil
}

// DeleteMany removes the named objects; missing ones are skipped. It
// checks every name before it deletes any, and fsyncs each directory it
// removed files from once, after all its removals.
func (s *Store) DeleteMany(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := s.check(ctx, "delete", name); err != nil {
			return err
		}
	}
	var dirs []string
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fsstore: delete %q: %w", name, err)
		}
		fi, err := s.root.Lstat(name)
		if err != nil {
			if notObject(err) {
				continue
			}
			return s.opErr("delete", name, err)
		}
		if fi.IsDir() {
			continue
		}
		if err := s.root.Remove(name); err != nil {
			if notObject(err) {
				continue
			}
			return s.opErr("delete", name, err)
		}
		if d := parent(name); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if err := s.syncDir(d); err != nil {
			return fmt.Errorf("fsstore: delete in %q of %s: %w", d, s.location, err)
		}
	}
	return nil
}

// Lock claims the checkpoint with a flock on the file "lock", and writes
// owner into that file for humans to read. When another open file holds the
// lock (another process, or another Lock in this one), Lock returns an error
// wrapping checkpoint.ErrLocked that names the location and the holder. The
// kernel releases the lock when the holding process exits, however it
// exits. The returned func releases the lock; calling it again does nothing.
func (s *Store) Lock(ctx context.Context, owner string) (release func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fsstore: lock %s: %w", s.location, err)
	}
	f, err := s.root.OpenFile(lockName, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("fsstore: lock %s: %w", s.location, err)
	}
	if err := tryLock(f); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, errHeld) {
			return nil, fmt.Errorf("%w: %s is locked by %s (lock file %s, released when that process exits)",
				checkpoint.ErrLocked, s.location, holder, filepath.Join(s.dir, lockName))
		}
		return nil, fmt.Errorf("fsstore: lock %s: %w", s.location, err)
	}
	// The owner is informational: a failure to record it does not matter.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(owner+"\n"), 0)
	}
	s.mu.Lock()
	s.locks[f] = struct{}{}
	s.mu.Unlock()
	return sync.OnceValue(func() error {
		s.mu.Lock()
		_, held := s.locks[f]
		delete(s.locks, f)
		s.mu.Unlock()
		if !held { // Close already released it
			return nil
		}
		f.Truncate(0) // clear the owner before anyone else can lock
		return f.Close()
	}), nil
}

// readHolder returns the owner recorded in a lock file, quoted, for messages.
func readHolder(f *os.File) string {
	buf := make([]byte, 512)
	n, _ := f.ReadAt(buf, 0)
	owner := strings.TrimSpace(string(buf[:n]))
	if owner == "" {
		return "an unknown owner"
	}
	return strconv.Quote(owner)
}

func (s *Store) check(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fsstore: %s %q: %w", op, name, err)
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("fsstore: %s: %w", op, err)
	}
	return nil
}

func (s *Store) opErr(op, name string, err error) error {
	return fmt.Errorf("fsstore: %s %q in %s: %w", op, name, s.location, err)
}

func (s *Store) notExist(op, name string) error {
	return fmt.Errorf("fsstore: %s %q in %s: %w", op, name, s.location, checkpoint.ErrNotExist)
}

// writeTemp writes data to a new temporary file next to name and fsyncs
// it, and returns the temporary file's name.
func (s *Store) writeTemp(name string, data []byte) (string, error) {
	dir, base := path.Split(name)
	for {
		tmp := dir + "." + base + "." + strconv.FormatUint(rand.Uint64(), 36) + tempMark
		f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, fs.ErrExist) {
			continue // 64 random bits collided with a leftover: try again
		}
		if err != nil {
			return "", err
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			s.root.Remove(tmp)
			return "", err
		}
		return tmp, nil
	}
}

// mkdirs creates dir (relative to the root) and its parents, fsyncing the
// parent of each directory it creates so that the new entry survives a
// power loss.
func (s *Store) mkdirs(dir string) error {
	if dir == "." {
		return nil
	}
	fi, err := s.root.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%q is an object, not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	up := parent(dir)
	if err := s.mkdirs(up); err != nil {
		return err
	}
	if err := s.root.Mkdir(dir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Sync even if a concurrent call created dir: it may not have synced yet.
	return s.syncDir(up)
}

// syncDir fsyncs a directory relative to the root, making the entries
// created, renamed or removed in it durable.
func (s *Store) syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there; NTFS journals metadata
	}
	f, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) readDir(dir string) ([]fs.DirEntry, error) {
	if dir == "" {
		dir = "."
	}
	f, err := s.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// removeTemps deletes the temporary files a crash left behind. It does so
// only while holding the lock, so that it never deletes the temporary file
// of a live writer in another process.
func (s *Store) removeTemps() error {
	f, err := s.root.OpenFile(lockName, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tryLock(f); err != nil {
		if errors.Is(err, errHeld) || errors.Is(err, errors.ErrUnsupported) {
			return nil // in use: leave the files, a later New removes them
		}
		return err
	}
	return fs.WalkDir(s.root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(name, tempMark) {
			if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// mkdirDurable creates dir and its missing parents, fsyncing the parent of
// each directory it creates.
func mkdirDurable(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	up := filepath.Dir(dir)
	if up != dir {
		if err := mkdirDurable(up); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(up)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// parent returns the directory part of a slash-separated name, "." for a
// top-level name.
func parent(name string) string { return path.Dir(name) }

// notObject reports whether err means that the name is not a file: it does
// not exist, a path element is a file, or it is a directory.
func notObject(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR)
}
