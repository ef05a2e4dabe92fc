package fsstore

import (
	"fmt"

	"github.com/shardflow/shardflow/checkpoint"
)

// checkName is checkpoint.CheckName plus the one name fsstore keeps for
// itself: the lock file.
func checkName(name string) error {
	if name == lockName {
		return fmt.Errorf("invalid checkpoint object name %q: reserved for the lock file", name)
	}
	return checkpoint.CheckName(name)
}
