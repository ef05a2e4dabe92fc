// Package memstore keeps a checkpoint in memory, for tests and examples.
//
// It has the semantics of the other stores (it passes checkpointtest), but
// nothing survives the process, and Lock only excludes other Lock calls on
// the same Store.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/shardflow/shardflow/checkpoint"
)

// location is what Location reports.
const location = "memory"

// Store is an in-memory checkpoint. The zero value is not usable; call New.
// It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	objects map[string][]byte
	locked  bool
	owner   string // holder of the lock, for messages
	lockGen uint64 // incremented by each Lock and release: a stale release does nothing
}

var (
	_ checkpoint.Store        = (*Store)(nil)
	_ checkpoint.BatchDeleter = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{objects: make(map[string][]byte)}
}

// Location returns "memory".
func (s *Store) Location() string { return location }

// Create stores a copy of data only if no object has that name, and returns
// an error wrapping checkpoint.ErrExist otherwise.
func (s *Store) Create(ctx context.Context, name string, data []byte) error {
	if err := check(ctx, "create", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; ok {
		return fmt.Errorf("memstore: create %q: %w", name, checkpoint.ErrExist)
	}
	s.objects[name] = clone(data)
	return nil
}

// Put stores a copy of data, replacing any object of that name.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := check(ctx, "put", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[name] = clone(data)
	return nil
}

// Read returns a copy of the object, or an error wrapping
// checkpoint.ErrNotExist.
func (s *Store) Read(ctx context.Context, name string) ([]byte, error) {
	if err := check(ctx, "read", name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.objects[name]
	if !ok {
		return nil, fmt.Errorf("memstore: read %q: %w", name, checkpoint.ErrNotExist)
	}
	return clone(data), nil
}

// List returns the names of the objects directly under dir, sorted, without
// the dir prefix. Dir "" lists the top level.
func (s *Store) List(ctx context.Context, dir string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list %q: %w", dir, err)
	}
	if err := checkpoint.CheckDir(dir); err != nil {
		return nil, fmt.Errorf("memstore: list: %w", err)
	}
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := []string{}
	for name := range s.objects {
		rest, ok := strings.CutPrefix(name, prefix)
		if ok && !strings.Contains(rest, "/") {
			names = append(names, rest)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Delete removes the object, or returns an error wrapping
// checkpoint.ErrNotExist.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := check(ctx, "delete", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; !ok {
		return fmt.Errorf("memstore: delete %q: %w", name, checkpoint.ErrNotExist)
	}
	delete(s.objects, name)
	return nil
}

// DeleteMany removes the named objects; missing ones are skipped. It
// checks every name before it deletes any.
func (s *Store) DeleteMany(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := check(ctx, "delete", name); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		delete(s.objects, name)
	}
	return nil
}

// Lock claims the store for owner. While it is held, Lock returns an error
// wrapping checkpoint.ErrLocked that names the holder. The returned func
// releases it; calling it again does nothing.
func (s *Store) Lock(ctx context.Context, owner string) (release func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: lock: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked {
		return nil, fmt.Errorf("%w: %s is locked by %q", checkpoint.ErrLocked, location, s.owner)
	}
	s.locked, s.owner = true, owner
	s.lockGen++
	gen := s.lockGen
	return func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.lockGen == gen {
			s.locked, s.owner = false, ""
			s.lockGen++
		}
		return nil
	}, nil
}

func check(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s %q: %w", op, name, err)
	}
	if err := checkpoint.CheckName(name); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	return nil
}

// clone copies b, keeping a non-nil result for empty input.
func clone(b []byte) []byte {
	return append([]byte{}, b...)
}
