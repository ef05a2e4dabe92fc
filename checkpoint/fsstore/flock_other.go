//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package fsstore

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errHeld: another open file holds the lock.
var errHeld = errors.New("lock held")

// tryLock is not implemented on this platform: Lock fails rather than
// pretend to exclude other processes.
func tryLock(*os.File) error {
	return fmt.Errorf("file locking on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
