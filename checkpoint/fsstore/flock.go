//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package fsstore

import (
	"errors"
	"os"
	"syscall"
)

// errHeld: another open file holds the lock.
var errHeld = errors.New("lock held")

// tryLock takes an exclusive flock on f without waiting. It returns errHeld
// when another open file description holds it. A flock belongs to the open
// file description, so the kernel drops it when the last descriptor closes,
// including when the process dies; and two opens of the same file in one
// process exclude each other, unlike fcntl locks.
func tryLock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lockErr error
	err = rc.Control(func(fd uintptr) {
		for {
			lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if lockErr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if errors.Is(lockErr, syscall.EWOULDBLOCK) {
		return errHeld
	}
	if lockErr != nil {
		return &os.PathError{Op: "flock", Path: f.Name(), Err: lockErr}
	}
	return nil
}
