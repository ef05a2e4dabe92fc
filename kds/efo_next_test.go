package kds

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithyes "github.com/aws/smithy-go/eventstream"
)

// frame encodes one event-stream message with string headers (name,
// value pairs) using the SDK's encoder.
func frame(t testing.TB, payload string, kv ...string) []byte {
	t.Helper()
	var hs smithyes.Headers
	for i := 0; i < len(kv); i += 2 {
		hs.Set(kv[i], smithyes.StringValue(kv[i+1]))
	}
	var buf bytes.Buffer
	if err := smithyes.NewEncoder().Encode(&buf, smithyes.Message{Headers: hs, Payload: []byte(payload)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func eventFrame(t testing.TB, payload string) []byte {
	return frame(t, payload, ":message-type", "event", ":event-type", "SubscribeToShardEvent", ":content-type", "application/json")
}

// The read timeout counts only the time the reader waits for an event,
// although its timer is not reset per event: events that keep coming keep
// the subscription alive past the first timer, time spent away from the
// stream (a full buffer) does not count, and a silence of the timeout ends
// it with an eventTimeoutError.
func TestEFOReadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancelCause(context.Background())
		// As the HTTP/2 client does: a cancelled request fails the body's reads.
		context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
		s := newSubStream(pr)
		defer s.watch(timeout, cancel)()
		ev := eventFrame(t, `{"ContinuationSequenceNumber":"1","MillisBehindLatest":0,"Records":[]}`)
		go func() {
			for range 10 {
				time.Sleep(timeout / 4)
				pw.Write(ev)
			}
			time.Sleep(timeout / 4)
			pw.Write(ev) // read after the reader was away for 2 timeouts
		}()
		start := time.Now()
		for i := range 10 {
			if _, err := s.next(); err != nil {
				t.Fatalf("event %d after %s: %v", i, time.Since(start), err)
			}
		}
		time.Sleep(2 * timeout) // away from the stream: not waiting
		if _, err := s.next(); err != nil {
			t.Fatalf("the event after a pause: %v", err)
		}
		waiting := time.Now()
		_, err := s.next()
		if _, ok := errors.AsType[*eventTimeoutError](err); !ok {
			t.Fatalf("a stalled stream: err %v, want an eventTimeoutError", err)
		}
		if d := time.Since(waiting); d != timeout {
			t.Errorf("the stalled stream timed out after %s of silence, want %s", d, timeout)
		}
	})
}

func TestEFOStreamMessages(t *testing.T) {
	var in bytes.Buffer
	in.Write(frame(t, "{}", ":message-type", "event", ":event-type", "initial-response", ":content-type", "application/json"))
	in.Write(frame(t, `{}`, ":message-type", "event", ":event-type", "SomeFutureEvent"))
	in.Write(eventFrame(t, `{"ContinuationSequenceNumber":"49","MillisBehindLatest":12,"Records":[`+
		`{"ApproximateArrivalTimestamp":1.764123456789E9,"Data":"aGVsbG8=","PartitionKey":"k\u00e9","SequenceNumber":"45"},`+
		`{"Data":"","EncryptionType":"KMS","PartitionKey":"","SequenceNumber":"46","Unknown":[1,{"a":null}]}]}`))
	in.Write(eventFrame(t, `{"ChildShards":[{"ShardId":"shardId-2","ParentShards":["shardId-0","shardId-1"],"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"9"}}],"MillisBehindLatest":0,"Records":[]}`))
	s := newSubStream(&in)
	e, err := s.next()
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(e.ContinuationSequenceNumber) != "49" || aws.ToInt64(e.MillisBehindLatest) != 12 || len(e.Records) != 2 {
		t.Fatalf("event %+v", e)
	}
	r0, r1 := e.Records[0], e.Records[1]
	if string(r0.Data) != "hello" || aws.ToString(r0.PartitionKey) != "ké" || aws.ToString(r0.SequenceNumber) != "45" ||
		!aws.ToTime(r0.ApproximateArrivalTimestamp).Equal(time.UnixMilli(1764123456789)) {
		t.Errorf("record 0: %q %q %q %v", r0.Data, aws.ToString(r0.PartitionKey), aws.ToString(r0.SequenceNumber), r0.ApproximateArrivalTimestamp)
	}
	if len(r1.Data) != 0 || r1.EncryptionType != types.EncryptionTypeKms || r1.ApproximateArrivalTimestamp != nil || aws.ToString(r1.SequenceNumber) != "46" {
		t.Errorf("record 1: %+v", r1)
	}
	data0 := r0.Data
	e, err = s.next()
	if err != nil {
		t.Fatal(err)
	}
	if e.ContinuationSequenceNumber != nil || len(e.Records) != 0 || len(e.ChildShards) != 1 {
		t.Fatalf("shard end event %+v", e)
	}
	c := e.ChildShards[0]
	if aws.ToString(c.ShardId) != "shardId-2" || strings.Join(c.ParentShards, ",") != "shardId-0,shardId-1" || aws.ToString(c.HashKeyRange.EndingHashKey) != "9" {
		t.Errorf("child %+v", c)
	}
	if string(data0) != "hello" {
		t.Errorf("a record's data changed after the next event: %q", data0)
	}
	if _, err := s.next(); err != io.EOF {
		t.Errorf("end of stream: %v, want io.EOF", err)
	}

	for name, tc := range map[string]struct {
		frame []byte
		check func(error) bool
		msg   string
	}{
		"in use": {frame(t, `{"message":"Another active subscription"}`, ":message-type", "exception", ":exception-type", "ResourceInUseException"),
			func(err error) bool {
				_, ok := errors.AsType[*types.ResourceInUseException](err)
				return ok && isInUse(err)
			}, "Another active subscription"},
		"not found": {frame(t, `{"message":"gone"}`, ":message-type", "exception", ":exception-type", "ResourceNotFoundException"),
			func(err error) bool { return isNotFound(err) }, "gone"},
		"internal": {frame(t, `{"message":"x"}`, ":message-type", "exception", ":exception-type", "InternalFailureException"),
			subscribeRetryable, "InternalFailure"},
		"other exception": {frame(t, `not json`, ":message-type", "exception", ":exception-type", "NewException"),
			func(err error) bool { return errorCode(err) == "NewException" }, "NewException"},
		"error message": {frame(t, ``, ":message-type", "error", ":error-code", "InternalError", ":error-message", "boom"),
			func(err error) bool { return errorCode(err) == "InternalError" }, "boom"},
		"unknown message type": {frame(t, ``, ":message-type", "gossip"),
			func(err error) bool { return err != nil }, `"gossip", accepted event, exception, error`},
		"bad payload": {eventFrame(t, `{"Records":[{"Data":"%%%","SequenceNumber":"1"}]}`),
			func(err error) bool { return err != nil }, "SubscribeToShardEvent: illegal base64"},
		"no sequence number": {eventFrame(t, `{"Records":[{"Data":""}]}`),
			func(err error) bool { return err != nil }, "no SequenceNumber"},
		"corrupt frame": {append(eventFrame(t, `{}`)[:20], 0, 0, 0, 0),
			func(err error) bool { return err != nil }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newSubStream(bytes.NewReader(tc.frame)).next()
			if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v (%T), want one containing %q", err, err, tc.msg)
			}
		})
	}
}

// A stopped watchdog never fires, even while the reader is marked as
// waiting, and does not keep re-arming itself.
func TestEFOReadTimeoutStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 30 * time.Second
		ctx, cancel := context.WithCancelCause(context.Background())
		s := newSubStream(bytes.NewReader(nil))
		s.waiting.Store(1) // waiting since the stream opened
		stop := s.watch(timeout, cancel)
		time.Sleep(timeout / 2)
		stop()
		time.Sleep(3 * timeout)
		if ctx.Err() != nil {
			t.Fatalf("a stopped watchdog cancelled the subscription: %v", context.Cause(ctx))
		}
		// And one that is not stopped does, after exactly the timeout.
		s = newSubStream(bytes.NewReader(nil))
		s.waiting.Store(1)
		start := time.Now()
		defer s.watch(timeout, cancel)()
		<-ctx.Done()
		if _, ok := errors.AsType[*eventTimeoutError](context.Cause(ctx)); !ok || time.Since(start) != timeout {
			t.Fatalf("cause %v after %s", context.Cause(ctx), time.Since(start))
		}
	})
}
