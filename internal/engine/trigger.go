package engine

import (
	"fmt"
	"time"
)

// TriggerKind says when batches run.
type TriggerKind int

// Trigger kinds.
const (
	// KindProcessingTime runs a batch every Interval (0: as soon as the
	// previous one is committed and data is buffered).
	KindProcessingTime TriggerKind = iota
	// KindOnce runs one batch with what is available, then stops.
	KindOnce
	// KindAvailableNow reads everything up to each shard's tail at start,
	// in as many batches as the limits need, then stops.
	KindAvailableNow
)

// Trigger is when batches run. The zero value is ProcessingTime(0).
type Trigger struct {
	Kind     TriggerKind
	Interval time.Duration
}

// String returns the trigger in the CLI's syntax.
func (t Trigger) String() string {
	switch t.Kind {
	case KindOnce:
		return "once"
	case KindAvailableNow:
		return "available-now"
	}
	return fmt.Sprintf("processing-time=%s", t.Interval)
}
