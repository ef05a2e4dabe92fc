// Package lease implements checkpoint.Store.Lock for stores that have no
// kernel lock but have conditional writes (S3, DynamoDB).
//
// The lock is a lease record with an owner, a random token, a heartbeat
// counter and the lease time its holder promises to renew within. The
// holder takes it with a create-if-absent write and renews it every
// Time/6 with a write conditional on the version it last wrote. Another
// process that finds the record judges it only by what it sees with its own
// clock, never by a timestamp written on another machine:
//
//   - the record changes while it watches: the holder is alive, and Lock
//     fails with checkpoint.ErrLocked, naming the location and the holder;
//   - the record stays unchanged for the holder's lease time: the holder is
//     dead, and the watcher takes the lease over with a write conditional
//     on the version it watched (at most one watcher wins).
//
// A refusal therefore takes up to one heartbeat interval (Time/6), and a
// holder killed without releasing blocks the next Lock for at most its lease
// time (plus one read). A graceful release deletes the record, and the next
// Lock succeeds at once.
//
// A holder that cannot renew for a whole lease time, or finds its record
// replaced, has lost the lease: Lost reports it, and the stores then refuse
// writes with an error wrapping checkpoint.ErrLocked.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
)

// DefaultTime is the lease time when a store is given none.
const DefaultTime = 30 * time.Second

// Record is the lease as stored.
type Record struct {
	Owner   string `json:"owner"`
	Token   string `json:"token"`
	Beat    int64  `json:"beat"`
	LeaseMs int64  `json:"leaseMs"`
}

// Marshal encodes r as JSON.
func (r Record) Marshal() []byte {
	b, _ := json.Marshal(r)
	return b
}

// Unmarshal decodes a record; an unreadable one is treated as a lease with
// an unknown owner and the default time.
func Unmarshal(b []byte) Record {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || r.LeaseMs <= 0 {
		r.LeaseMs = DefaultTime.Milliseconds()
	}
	if r.Owner == "" {
		r.Owner = "unknown owner"
	}
	return r
}

// ErrConflict is what Backend.Replace and Backend.Delete return when the
// version they were given is not the current one.
var ErrConflict = errors.New("lease record changed")

// Backend stores the one lease record of a checkpoint. Versions are opaque
// (an S3 ETag, a DynamoDB counter).
type Backend interface {
	// Create writes r if there is no record; an existing record gives an
	// error wrapping checkpoint.ErrExist.
	Create(ctx context.Context, r Record) (version string, err error)
	// Read returns the record, or an error wrapping checkpoint.ErrNotExist.
	Read(ctx context.Context) (r Record, version string, err error)
	// Replace writes r if the record's version is still version, else
	// returns ErrConflict (also when the record is gone).
	Replace(ctx context.Context, version string, r Record) (newVersion string, err error)
	// Delete removes the record if its version is still version.
	Delete(ctx context.Context, version string) error
}

// Lock takes the lease for owner, holding it with a heartbeat until the
// returned Held is released. location names the checkpoint in errors.
func Lock(ctx context.Context, b Backend, location, owner string, leaseTime time.Duration) (*Held, error) {
	if leaseTime <= 0 {
		leaseTime = DefaultTime
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec := Record{Owner: owner, Token: newToken(), LeaseMs: leaseTime.Milliseconds()}
	for {
		ver, err := b.Create(ctx, rec)
		if err == nil {
			return start(b, rec, ver, leaseTime), nil
		}
		if !errors.Is(err, checkpoint.ErrExist) {
			return nil, fmt.Errorf("lock checkpoint %s: %w", location, err)
		}
		cur, seen, err := b.Read(ctx)
		if errors.Is(err, checkpoint.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("lock checkpoint %s: %w", location, err)
		}
		took, ver, err := watch(ctx, b, location, cur, seen, rec)
		if err != nil {
			return nil, err
		}
		if took {
			return start(b, rec, ver, leaseTime), nil
		}
	}
}

// watch waits while the record stays at version seen. It returns an
// ErrLocked error when the record changes (a live holder), took=true with
// the new version when the lease expired and was taken over, or took=false
// to start again (the record vanished or another watcher won).
func watch(ctx context.Context, b Backend, location string, cur Record, seen string, rec Record) (bool, string, error) {
	since := time.Now() // the local time the record was first seen as seen
	expire := time.Duration(cur.LeaseMs) * time.Millisecond
	poll := min(max(expire/12, 20*time.Millisecond), 500*time.Millisecond)
	for {
		wait := min(poll, time.Until(since.Add(expire)))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, "", fmt.Errorf("lock checkpoint %s: %w", location, ctx.Err())
			case <-t.C:
			}
		}
		now, ver, err := b.Read(ctx)
		switch {
		case errors.Is(err, checkpoint.ErrNotExist):
			return false, "", nil
		case err != nil:
			return false, "", fmt.Errorf("lock checkpoint %s: %w", location, err)
		case ver != seen:
			return false, "", fmt.Errorf("%w: %s is held by %q (a live process renews its lease; stop it first, or use another checkpointLocation)",
				checkpoint.ErrLocked, location, now.Owner)
		}
		if time.Since(since) < expire {
			continue
		}
		nv, err := b.Replace(ctx, seen, rec)
		switch {
		case err == nil:
			return true, nv, nil
		case errors.Is(err, ErrConflict):
			return false, "", nil
		default:
			return false, "", fmt.Errorf("lock checkpoint %s: taking over the expired lease of %q: %w", location, cur.Owner, err)
		}
	}
}

// Held is a lease being held.
type Held struct {
	b     Backend
	lost  atomic.Bool
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	ver   string
	rec   Record
	relEr error
}

func start(b Backend, rec Record, ver string, leaseTime time.Duration) *Held {
	h := &Held{b: b, rec: rec, ver: ver, stop: make(chan struct{}), done: make(chan struct{})}
	go h.heartbeat(leaseTime)
	return h
}

func (h *Held) heartbeat(leaseTime time.Duration) {
	defer close(h.done)
	every := max(leaseTime/6, 10*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		rec := h.rec
		rec.Beat++
		ver := h.ver
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), every)
		nv, err := h.b.Replace(ctx, ver, rec)
		cancel()
		switch {
		case err == nil:
			lastOK = time.Now()
			h.mu.Lock()
			h.rec, h.ver = rec, nv
			h.mu.Unlock()
		case errors.Is(err, ErrConflict):
			h.lost.Store(true) // taken over: never write again
			return
		default:
			if time.Since(lastOK) >= leaseTime {
				h.lost.Store(true)
				return
			}
		}
	}
}

// Lost reports whether the lease was lost (taken over, or not renewed for a
// whole lease time).
func (h *Held) Lost() bool { return h.lost.Load() }

// Release stops the heartbeat and deletes the record; calling it again does
// nothing.
func (h *Held) Release() error {
	h.once.Do(func() {
		close(h.stop)
		<-h.done
		if h.lost.Load() {
			return
		}
		h.mu.Lock()
		ver := h.ver
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.b.Delete(ctx, ver); err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, checkpoint.ErrNotExist) {
			h.relEr = fmt.Errorf("release checkpoint lease: %w", err)
		}
	})
	return h.relEr
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
