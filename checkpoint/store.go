// Package checkpoint defines the storage a query's checkpoint lives in.
//
// A checkpoint is a small set of named objects ("metadata", "offsets/7",
// "commits/7", "sinks/file/..."). Stores keep them in a local directory
// (fsstore), in memory (memstore), on S3 or in DynamoDB. Every store passes
// the conformance suite in checkpointtest.
package checkpoint

import (
	"context"
	"errors"
)

// Errors every store returns (wrapped) so callers can test with errors.Is.
var (
	// ErrExist: Create found the object already there.
	ErrExist = errors.New("checkpoint object already exists")
	// ErrNotExist: Read or Delete found no such object.
	ErrNotExist = errors.New("checkpoint object does not exist")
	// ErrLocked: another live process holds the checkpoint.
	ErrLocked = errors.New("checkpoint in use")
)

// Store holds a checkpoint's objects. Names are slash-separated relative
// paths made of [A-Za-z0-9._-] segments, none empty, "." or ".."; any other
// name is an error (that wraps neither ErrExist nor ErrNotExist). Objects
// may be empty and hold any bytes. Implementations are safe for concurrent
// use, return errors wrapping ctx.Err() for a done context, and never keep
// or modify the caller's slices.
type Store interface {
	// Create writes an object only if no object of that name exists, and
	// returns an error wrapping ErrExist otherwise. A successful Create is
	// durable when it returns; a crash leaves either the whole object or
	// none of it, never a partial one.
	Create(ctx context.Context, name string, data []byte) error
	// Put writes an object, replacing any existing one, with the same
	// durability as Create.
	Put(ctx context.Context, name string, data []byte) error
	// Read returns an object's bytes, or an error wrapping ErrNotExist.
	Read(ctx context.Context, name string) ([]byte, error)
	// List returns the names of the objects directly under dir (a name
	// prefix ending before a slash, e.g. "offsets"), sorted as strings,
	// without the dir prefix. Objects deeper down ("offsets/a/b") are not
	// listed, nor are the "directories" they imply. A missing dir gives an
	// empty list; dir "" lists the top level. What a store keeps for Lock or
	// for writes in progress is never listed.
	List(ctx context.Context, dir string) ([]string, error)
	// Delete removes an object. Deleting a missing object returns an error
	// wrapping ErrNotExist.
	Delete(ctx context.Context, name string) error
	// Lock claims the checkpoint for one live process (invariant 7). It
	// returns an error wrapping ErrLocked when another live holder has it.
	// A holder that dies (even by SIGKILL) must not block the next Lock
	// for longer than a documented lease time; fsstore uses an OS file lock
	// that the kernel releases at once. The returned func releases the lock;
	// calling it again does nothing. A refusal names the location and the
	// holder's owner string.
	Lock(ctx context.Context, owner string) (release func() error, err error)
	// Location is the checkpoint's location as the user gave it, for messages.
	Location() string
}

// BatchDeleter is implemented by a Store that can delete many objects in
// fewer calls than one Delete each (S3 DeleteObjects, DynamoDB
// BatchWriteItem). Callers that delete many objects, such as the engine's
// purge of old log entries, test for it and fall back to Delete.
type BatchDeleter interface {
	// DeleteMany removes the named objects. Unlike Delete, a name with no
	// object is not an error, and a name may appear more than once. Every
	// name is checked first: an invalid one is an error (wrapping neither
	// ErrExist nor ErrNotExist) and nothing is deleted. A nil error means
	// none of the objects exists any more; after an error, some of them
	// may remain. Like every write, it is refused with an error wrapping
	// ErrLocked once the store's Lock was lost.
	DeleteMany(ctx context.Context, names []string) error
}
