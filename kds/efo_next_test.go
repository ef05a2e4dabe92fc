package kds

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The read timeout counts from the moment the reader waits for an event,
// although its timer is not reset per event: events that keep coming keep
// the subscription alive past the first timer, and a silence of the
// timeout ends it.
func TestEFONextEventReadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		events := make(chan types.SubscribeToShardEventStream)
		go func() {
			for range 10 {
				time.Sleep(timeout / 4)
				events <- &types.SubscribeToShardEventStreamMemberSubscribeToShardEvent{}
			}
		}()
		idle := time.NewTimer(timeout)
		defer idle.Stop()
		start := time.Now()
		for i := range 10 {
			ev, open, err := nextEvent(context.Background(), events, idle, timeout)
			if err != nil || !open || ev == nil {
				t.Fatalf("event %d after %s: %v, open %v, err %v", i, time.Since(start), ev, open, err)
			}
		}
		waiting := time.Now()
		_, _, err := nextEvent(context.Background(), events, idle, timeout)
		if _, ok := err.(*eventTimeoutError); !ok {
			t.Fatalf("a stalled stream: err %v, want an eventTimeoutError", err)
		}
		if d := time.Since(waiting); d != timeout {
			t.Errorf("the stalled stream timed out after %s of silence, want %s", d, timeout)
		}

		close(events)
		if _, open, err := nextEvent(context.Background(), events, idle, timeout); open || err != nil {
			t.Errorf("a closed stream: open %v, err %v", open, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := nextEvent(ctx, make(chan types.SubscribeToShardEventStream), idle, timeout); err != context.Canceled {
			t.Errorf("a cancelled context: err %v", err)
		}
	})
}
