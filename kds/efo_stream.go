package kds

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/shardflow/shardflow/internal/eventstream"
)

// A SubscribeToShard call goes through the SDK (endpoint, credentials,
// signing, HTTP/2 client, errors answered before the stream starts), but
// its event stream is read here: the SDK's reader decodes every event in a
// goroutine of its own, with reflection, and passes it through two
// channels, which at one event per record (an idle-ish shard, where EFO's
// latency matters) cost several times the polling path's CPU per record.
// rawEventStream takes the response body instead and subStream decodes it
// in the shard reader's goroutine.

// rawEventStream is a deserialize middleware that replaces the SDK's event
// stream deserializer for one call and keeps the response body.
type rawEventStream struct {
	body io.ReadCloser
}

// sdkEventStreamDeserializer is the ID of the SDK middleware that starts
// the SDK's event stream reader.
const sdkEventStreamDeserializer = "OperationEventStreamDeserializer"

func (*rawEventStream) ID() string { return "shardflow.RawEventStream" }

func (m *rawEventStream) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if !ok {
		return out, md, fmt.Errorf("SubscribeToShard: unknown transport type %T", out.RawResponse)
	}
	m.body = resp.Body
	return out, md, nil
}

// option is the per-call option that installs m.
func (m *rawEventStream) option(o *kinesis.Options) {
	// Clip: appending must not write into the client's own slice, which
	// other calls share.
	o.APIOptions = append(slices.Clip(o.APIOptions), func(s *middleware.Stack) error {
		if _, err := s.Deserialize.Remove(sdkEventStreamDeserializer); err != nil {
			return fmt.Errorf("SubscribeToShard: the SDK's event stream middleware changed: %w", err)
		}
		return s.Deserialize.Insert(m, "OperationDeserializer", middleware.Before)
	})
}

// subStream reads one subscription's events.
type subStream struct {
	dec *eventstream.Decoder
	// base is the monotonic origin of waiting: wall-clock steps must not
	// fake or hide a read timeout.
	base time.Time
	// waiting is when (ns since base, plus 1) the reader began waiting for
	// the next event, 0 while it is not waiting (it is handling an event,
	// or held back by a full buffer): the read timeout counts only waiting
	// time.
	waiting atomic.Int64
	ev      eventPayload // reused: its slices keep their capacity
}

func newSubStream(body io.Reader) *subStream {
	return &subStream{dec: eventstream.NewDecoder(body), base: time.Now()}
}

// watch cancels the subscription with an eventTimeoutError once the reader
// has waited timeout for an event. It re-arms itself instead of being reset
// per event (a timer heap operation each, at one event per record). The
// returned function stops it for good: a firing that raced with it does
// not re-arm the timer.
func (s *subStream) watch(timeout time.Duration, cancel context.CancelCauseFunc) (stop func()) {
	var (
		mu      sync.Mutex
		t       *time.Timer
		stopped bool
	)
	mu.Lock() // the callback reads t: not before it is set
	defer mu.Unlock()
	t = time.AfterFunc(timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		since := s.waiting.Load()
		if since == 0 {
			t.Reset(timeout)
			return
		}
		if waited := time.Since(s.base) - time.Duration(since-1); waited < timeout {
			t.Reset(timeout - waited)
			return
		}
		cancel(&eventTimeoutError{after: timeout})
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// next returns the subscription's next SubscribeToShardEvent. It skips the
// initial response and events of other types, turns exception and error
// messages into API errors, and returns io.EOF when Kinesis ended the
// stream. The event is valid until the next call.
func (s *subStream) next() (*types.SubscribeToShardEvent, error) {
	for {
		s.waiting.Store(int64(time.Since(s.base)) + 1)
		m, err := s.dec.Next()
		s.waiting.Store(0)
		if err != nil {
			return nil, err
		}
		switch {
		case m.Is(":message-type", "event"):
			if !m.Is(":event-type", "SubscribeToShardEvent") {
				continue // initial-response, or an event type added later
			}
			ev, err := s.ev.decode(m.Payload)
			if err != nil {
				return nil, fmt.Errorf("SubscribeToShardEvent: %w", err)
			}
			return ev, nil
		case m.Is(":message-type", "exception"):
			return nil, eventException(m.String(":exception-type"), m.Payload)
		case m.Is(":message-type", "error"):
			return nil, &smithy.GenericAPIError{Code: m.String(":error-code"), Message: m.String(":error-message")}
		default:
			return nil, fmt.Errorf("SubscribeToShard: event-stream message of type %q, accepted event, exception, error", m.String(":message-type"))
		}
	}
}

// eventException is the typed SDK error for an exception the event stream
// sent (the types the SDK's reader would return), else a generic API error
// with its code.
func eventException(code string, payload []byte) error {
	var body struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(payload, &body) // a malformed body leaves the message empty
	msg := &body.Message
	switch code {
	case "ResourceNotFoundException":
		return &types.ResourceNotFoundException{Message: msg}
	case "ResourceInUseException":
		return &types.ResourceInUseException{Message: msg}
	case "InternalFailureException":
		return &types.InternalFailureException{Message: msg}
	case "KMSAccessDeniedException":
		return &types.KMSAccessDeniedException{Message: msg}
	case "KMSDisabledException":
		return &types.KMSDisabledException{Message: msg}
	case "KMSInvalidStateException":
		return &types.KMSInvalidStateException{Message: msg}
	case "KMSNotFoundException":
		return &types.KMSNotFoundException{Message: msg}
	case "KMSOptInRequired":
		return &types.KMSOptInRequired{Message: msg}
	case "KMSThrottlingException":
		return &types.KMSThrottlingException{Message: msg}
	}
	return &smithy.GenericAPIError{Code: code, Message: body.Message}
}
