package kdsfake

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/awshttpfix"
)

// decodeAll decodes every message in b with the SDK's decoder.
func decodeAll(t *testing.T, b []byte) []eventstream.Message {
	t.Helper()
	r := bytes.NewReader(b)
	dec := eventstream.NewDecoder()
	var msgs []eventstream.Message
	for r.Len() > 0 {
		m, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatalf("decode message %d: %v", len(msgs), err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// checkHeaders asserts that m has exactly the string headers want, in order.
func checkHeaders(t *testing.T, m eventstream.Message, want []header) {
	t.Helper()
	if len(m.Headers) != len(want) {
		t.Fatalf("got %d headers %v, want %d %v", len(m.Headers), m.Headers, len(want), want)
	}
	for i, h := range m.Headers {
		sv, ok := h.Value.(eventstream.StringValue)
		if !ok {
			t.Errorf("header %q: value type %T, want StringValue", h.Name, h.Value)
			continue
		}
		if h.Name != want[i].name || string(sv) != want[i].value {
			t.Errorf("header %d = %s: %q, want %s: %q", i, h.Name, sv, want[i].name, want[i].value)
		}
	}
}

func TestAppendMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		headers []header
		payload []byte
	}{
		{"empty", nil, nil},
		{"headers only", []header{{":message-type", "event"}}, nil},
		{"payload only", nil, []byte(`{"a":1}`)},
		{"typical", []header{
			{":message-type", "event"},
			{":event-type", "SubscribeToShardEvent"},
			{":content-type", "application/json"},
		}, []byte(`{"Records":[],"ContinuationSequenceNumber":"1","MillisBehindLatest":0}`)},
		{"empty value", []header{{"x", ""}}, []byte("p")},
		{"max name and value", []header{
			{strings.Repeat("n", esMaxHeaderName), strings.Repeat("v", esMaxHeaderValue)},
		}, bytes.Repeat([]byte{0xff}, 1<<20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			b := appendMessage(append([]byte(nil), prefix...), tc.headers, tc.payload)
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("prefix overwritten: %q", b[:len(prefix)])
			}
			frame := b[len(prefix):]
			if got, want := len(frame), esOverhead+headersLen(tc.headers)+len(tc.payload); got != want {
				t.Fatalf("frame length %d, want %d", got, want)
			}
			msgs := decodeAll(t, frame)
			if len(msgs) != 1 {
				t.Fatalf("decoded %d messages, want 1", len(msgs))
			}
			checkHeaders(t, msgs[0], tc.headers)
			if !bytes.Equal(msgs[0].Payload, tc.payload) {
				t.Errorf("payload %q, want %q", msgs[0].Payload, tc.payload)
			}

			// The SDK's own encoder must produce the same bytes.
			var sdkMsg eventstream.Message
			for _, h := range tc.headers {
				sdkMsg.Headers = append(sdkMsg.Headers, eventstream.Header{Name: h.name, Value: eventstream.StringValue(h.value)})
			}
			sdkMsg.Payload = tc.payload
			var want bytes.Buffer
			if err := eventstream.NewEncoder().Encode(&want, sdkMsg); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(frame, want.Bytes()) {
				t.Errorf("frame differs from the SDK encoder's:\n got %x\nwant %x", trim(frame), trim(want.Bytes()))
			}
		})
	}
}

func trim(b []byte) []byte {
	if len(b) > 128 {
		return b[:128]
	}
	return b
}

func TestAppendMessageKnownBytes(t *testing.T) {
	// A hand-checked frame: no headers, payload "{}".
	// total 18 = 0x12, headers 0, prelude CRC = crc32(00000012 00000000).
	got := appendMessage(nil, nil, []byte("{}"))
	want := []byte{0, 0, 0, 0x12, 0, 0, 0, 0}
	if !bytes.Equal(got[:8], want) {
		t.Fatalf("prelude %x, want %x", got[:8], want)
	}
	if len(got) != 18 || string(got[12:14]) != "{}" {
		t.Fatalf("frame %x", got)
	}
}

func TestAppendMessageCorruptByte(t *testing.T) {
	hs := []header{
		{":message-type", "event"},
		{":event-type", "SubscribeToShardEvent"},
	}
	frame := appendMessage(nil, hs, []byte(`{"Records":[]}`))
	headersStart, headersEnd := 12, 12+headersLen(hs)
	for i := range frame {
		bad := append([]byte(nil), frame...)
		bad[i] ^= 0x01
		_, err := eventstream.NewDecoder().Decode(bytes.NewReader(bad), nil)
		if err == nil {
			t.Errorf("byte %d flipped: decoded without error", i)
			continue
		}
		// The SDK decoder parses the headers before it checks the message
		// CRC, so a flipped header length or type byte can fail as a header
		// or EOF error instead; any error will do there. Everywhere else
		// (prelude, prelude CRC, payload, message CRC) it must be the CRC.
		if i >= headersStart && i < headersEnd {
			continue
		}
		var ce eventstream.ChecksumError
		if !errors.As(err, &ce) {
			t.Errorf("byte %d flipped: got error %v, want a checksum error", i, err)
		}
	}
}

func TestAppendMessageNoAllocs(t *testing.T) {
	hs := []header{{":message-type", "event"}, {":event-type", "SubscribeToShardEvent"}, {":content-type", "application/json"}}
	payload := bytes.Repeat([]byte("x"), 1000)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf = appendMessage(buf[:0], hs, payload)
	})
	if allocs != 0 {
		t.Errorf("appendMessage allocated %v times per call with enough capacity, want 0", allocs)
	}
}

func TestAppendMessagePanicsOnBadHeader(t *testing.T) {
	for _, h := range []header{
		{"", "v"},
		{strings.Repeat("n", esMaxHeaderName+1), "v"},
		{"n", strings.Repeat("v", esMaxHeaderValue+1)},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("appendMessage with header name length %d value length %d did not panic", len(h.name), len(h.value))
				}
			}()
			appendMessage(nil, []header{h}, nil)
		}()
	}
}

func TestWriteHelpersFrames(t *testing.T) {
	var buf bytes.Buffer
	if err := writeInitialResponse(&buf); err != nil {
		t.Fatal(err)
	}
	ev := []byte(`{"Records":[],"ContinuationSequenceNumber":"7","MillisBehindLatest":0}`)
	if err := writeEvent(&buf, "SubscribeToShardEvent", ev); err != nil {
		t.Fatal(err)
	}
	if err := writeException(&buf, "ResourceInUseException", exceptionPayload(`busy "now"`)); err != nil {
		t.Fatal(err)
	}
	msgs := decodeAll(t, buf.Bytes())
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3", len(msgs))
	}
	checkHeaders(t, msgs[0], []header{{":message-type", "event"}, {":event-type", "initial-response"}, {":content-type", "application/json"}})
	if string(msgs[0].Payload) != "{}" {
		t.Errorf("initial-response payload %q, want {}", msgs[0].Payload)
	}
	checkHeaders(t, msgs[1], []header{{":message-type", "event"}, {":event-type", "SubscribeToShardEvent"}, {":content-type", "application/json"}})
	if !bytes.Equal(msgs[1].Payload, ev) {
		t.Errorf("event payload %q, want %q", msgs[1].Payload, ev)
	}
	checkHeaders(t, msgs[2], []header{{":message-type", "exception"}, {":exception-type", "ResourceInUseException"}, {":content-type", "application/json"}})
	var p struct{ Message string }
	if err := json.Unmarshal(msgs[2].Payload, &p); err != nil || p.Message != `busy "now"` {
		t.Errorf("exception payload %q (%v), want message busy \"now\"", msgs[2].Payload, err)
	}
}

func TestWriteEventTooLarge(t *testing.T) {
	err := writeEvent(io.Discard, "SubscribeToShardEvent", make([]byte, esMaxMessageLen))
	if !errors.Is(err, errMessageTooLarge) {
		t.Errorf("16 MiB payload: got %v, want errMessageTooLarge", err)
	}
	err = writeEvent(io.Discard, strings.Repeat("e", esMaxHeaderValue+1), nil)
	if !errors.Is(err, errMessageTooLarge) {
		t.Errorf("long event type: got %v, want errMessageTooLarge", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteEventReturnsWriteError(t *testing.T) {
	boom := errors.New("boom")
	if err := writeEvent(errWriter{boom}, "SubscribeToShardEvent", []byte("{}")); !errors.Is(err, boom) {
		t.Errorf("got %v, want %v", err, boom)
	}
}

// countFlusher is an io.Writer and http.Flusher that is not a ResponseWriter.
type countFlusher struct {
	bytes.Buffer
	flushes int
}

func (f *countFlusher) Flush() { f.flushes++ }

// wrappedRW hides the Flusher of its ResponseWriter but has Unwrap, as
// middleware wrappers do.
type wrappedRW struct{ rw http.ResponseWriter }

func (w wrappedRW) Header() http.Header         { return w.rw.Header() }
func (w wrappedRW) Write(b []byte) (int, error) { return w.rw.Write(b) }
func (w wrappedRW) WriteHeader(code int)        { w.rw.WriteHeader(code) }
func (w wrappedRW) Unwrap() http.ResponseWriter { return w.rw }

func TestWriteFlushes(t *testing.T) {
	cf := &countFlusher{}
	if err := writeEvent(cf, "E", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if cf.flushes != 1 {
		t.Errorf("plain Flusher flushed %d times, want 1", cf.flushes)
	}

	rec := httptest.NewRecorder()
	if err := startEventStream(wrappedRW{rec}); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Error("wrapped ResponseWriter was not flushed")
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != eventStreamContentType {
		t.Errorf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	msgs := decodeAll(t, rec.Body.Bytes())
	if len(msgs) != 1 || msgs[0].Headers.Get(":event-type").String() != "initial-response" {
		t.Errorf("got %v, want one initial-response", msgs)
	}
}

func BenchmarkWriteEvent(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if err := writeEvent(io.Discard, "SubscribeToShardEvent", payload); err != nil {
			b.Fatal(err)
		}
	}
}

// ---- End to end with the real aws-sdk-go-v2 Kinesis client ----

const (
	testConsumerARN = "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1"
	testShardID     = "shardId-000000000000"
)

// eventJSON is a SubscribeToShardEvent payload with one record.
func eventJSON(seq string, data []byte) []byte {
	b, err := json.Marshal(map[string]any{
		"Records": []map[string]any{{
			"Data":                        data, // []byte marshals as base64
			"PartitionKey":                "k",
			"SequenceNumber":              seq,
			"ApproximateArrivalTimestamp": 1.7e9,
		}},
		"ContinuationSequenceNumber": seq,
		"MillisBehindLatest":         0,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// subscribeHandler is a minimal SubscribeToShard server. It writes the
// initial-response and the first event, waits for release (so the test can
// prove that events are delivered promptly, one at a time), writes the
// second event, then either ends the stream or writes an exception.
type subscribeHandler struct {
	t         *testing.T
	release   chan struct{}
	exception bool
	protos    chan int
}

func (h *subscribeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.protos <- r.ProtoMajor
	if got := r.Header.Get("X-Amz-Target"); got != "Kinesis_20131202.SubscribeToShard" {
		h.t.Errorf("X-Amz-Target %q", got)
		http.Error(w, "bad target", http.StatusBadRequest)
		return
	}
	var in struct {
		ConsumerARN, ShardId string
		StartingPosition     struct{ Type string }
	}
	body, err := io.ReadAll(r.Body) // to EOF, as the server's own handler reads it
	if err != nil {
		h.t.Errorf("read request: %v", err)
	}
	if err := json.Unmarshal(body, &in); err != nil {
		h.t.Errorf("decode request: %v", err)
	}
	if in.ConsumerARN != testConsumerARN || in.ShardId != testShardID || in.StartingPosition.Type != "TRIM_HORIZON" {
		h.t.Errorf("request %+v", in)
	}
	w.Header().Set("x-amzn-RequestId", "req-1")
	if err := startEventStream(w); err != nil {
		h.t.Errorf("startEventStream: %v", err)
		return
	}
	if err := writeEvent(w, "SubscribeToShardEvent", eventJSON("1", []byte("hello"))); err != nil {
		h.t.Errorf("writeEvent 1: %v", err)
		return
	}
	select {
	case <-h.release:
	case <-r.Context().Done():
		return
	}
	if err := writeEvent(w, "SubscribeToShardEvent", eventJSON("2", []byte{0, 1, 2, 0xff})); err != nil {
		h.t.Errorf("writeEvent 2: %v", err)
		return
	}
	if h.exception {
		if err := writeException(w, "ResourceInUseException", exceptionPayload("Another active subscription exists")); err != nil {
			h.t.Errorf("writeException: %v", err)
		}
	}
}

// transportCase is one way to reach the test server.
type transportCase struct {
	name      string
	start     func(t *testing.T, h http.Handler) (endpoint string, client *http.Client)
	wantProto int
}

func transportCases() []transportCase {
	return []transportCase{
		{"h2c prior knowledge", func(t *testing.T, h http.Handler) (string, *http.Client) {
			ln := listen(t)
			srv := serveH2C(ln, h, serverOpts{})
			t.Cleanup(func() { srv.Close() })
			p := new(http.Protocols)
			p.SetUnencryptedHTTP2(true)
			return "http://" + ln.Addr().String(), &http.Client{Transport: &http.Transport{Protocols: p}}
		}, 2},
		{"http1.1 plain", func(t *testing.T, h http.Handler) (string, *http.Client) {
			ln := listen(t)
			srv := serveH2C(ln, h, serverOpts{})
			t.Cleanup(func() { srv.Close() })
			return "http://" + ln.Addr().String(), &http.Client{Transport: &http.Transport{}}
		}, 1},
		{"tls h2", func(t *testing.T, h http.Handler) (string, *http.Client) {
			ln := listen(t)
			cert, pemCert, err := selfSignedCert()
			if err != nil {
				t.Fatal(err)
			}
			srv := serveTLS(ln, h, cert, serverOpts{})
			t.Cleanup(func() { srv.Close() })
			return "https://" + ln.Addr().String(), tlsClient(t, pemCert, true)
		}, 2},
		{"tls http1.1", func(t *testing.T, h http.Handler) (string, *http.Client) {
			ln := listen(t)
			cert, pemCert, err := selfSignedCert()
			if err != nil {
				t.Fatal(err)
			}
			srv := serveTLS(ln, h, cert, serverOpts{})
			t.Cleanup(func() { srv.Close() })
			return "https://" + ln.Addr().String(), tlsClient(t, pemCert, false)
		}, 1},
	}
}

// tlsClient returns a client that trusts pemCert and, if h2, offers HTTP/2.
func tlsClient(t *testing.T, pemCert []byte, h2 bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCert) {
		t.Fatal("bad PEM")
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(h2)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		Protocols:       p,
	}}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func newKinesis(endpoint string, hc *http.Client) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint:     aws.String(endpoint),
		HTTPClient:       awshttpfix.Client(hc), // aws-sdk-go-v2 issue 2737, as every client shardflow builds
		RetryMaxAttempts: 1,
	})
}

func subscribe(ctx context.Context, kc *kinesis.Client) (*kinesis.SubscribeToShardOutput, error) {
	return kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String(testConsumerARN),
		ShardId:          aws.String(testShardID),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon},
	})
}

// nextEvent receives one SubscribeToShardEvent, failing on timeout.
func nextEvent(t *testing.T, ch <-chan types.SubscribeToShardEventStream) (types.SubscribeToShardEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			return types.SubscribeToShardEvent{}, false
		}
		e, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			t.Fatalf("event type %T", ev)
		}
		return e.Value, true
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for an event")
		return types.SubscribeToShardEvent{}, false
	}
}

func checkRecordEvent(t *testing.T, ev types.SubscribeToShardEvent, seq string, data []byte) {
	t.Helper()
	if len(ev.Records) != 1 {
		t.Fatalf("event has %d records, want 1", len(ev.Records))
	}
	r := ev.Records[0]
	if !bytes.Equal(r.Data, data) || aws.ToString(r.PartitionKey) != "k" || aws.ToString(r.SequenceNumber) != seq {
		t.Errorf("record Data %q PartitionKey %q SequenceNumber %q, want %q k %s",
			r.Data, aws.ToString(r.PartitionKey), aws.ToString(r.SequenceNumber), data, seq)
	}
	if r.ApproximateArrivalTimestamp == nil || !r.ApproximateArrivalTimestamp.Equal(time.Unix(1_700_000_000, 0)) {
		t.Errorf("ApproximateArrivalTimestamp %v, want %v", r.ApproximateArrivalTimestamp, time.Unix(1_700_000_000, 0))
	}
	if aws.ToString(ev.ContinuationSequenceNumber) != seq || aws.ToInt64(ev.MillisBehindLatest) != 0 {
		t.Errorf("ContinuationSequenceNumber %q MillisBehindLatest %v", aws.ToString(ev.ContinuationSequenceNumber), aws.ToInt64(ev.MillisBehindLatest))
	}
}

func TestSubscribeToShardSDK(t *testing.T) {
	for _, tc := range transportCases() {
		for _, exception := range []bool{false, true} {
			name := tc.name
			if exception {
				name += "/exception"
			}
			t.Run(name, func(t *testing.T) {
				h := &subscribeHandler{t: t, release: make(chan struct{}), exception: exception, protos: make(chan int, 1)}
				endpoint, hc := tc.start(t, h)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()

				out, err := subscribe(ctx, newKinesis(endpoint, hc))
				if err != nil {
					t.Fatalf("SubscribeToShard: %v", err)
				}
				if proto := <-h.protos; proto != tc.wantProto {
					t.Errorf("server saw HTTP/%d, want HTTP/%d", proto, tc.wantProto)
				}
				stream := out.GetStream()
				defer stream.Close()

				// Event 1 arrives while the handler is still blocked: proof
				// that frames are flushed as they are written.
				ev, ok := nextEvent(t, stream.Events())
				if !ok {
					t.Fatalf("stream ended before event 1: %v", stream.Err())
				}
				checkRecordEvent(t, ev, "1", []byte("hello"))
				close(h.release)
				ev, ok = nextEvent(t, stream.Events())
				if !ok {
					t.Fatalf("stream ended before event 2: %v", stream.Err())
				}
				checkRecordEvent(t, ev, "2", []byte{0, 1, 2, 0xff})

				if _, ok := nextEvent(t, stream.Events()); ok {
					t.Fatal("got a third event")
				}
				err = stream.Err()
				if !exception {
					if err != nil {
						t.Errorf("stream.Err() = %v after a clean end, want nil", err)
					}
					return
				}
				var riu *types.ResourceInUseException
				if !errors.As(err, &riu) || riu.ErrorMessage() != "Another active subscription exists" {
					t.Errorf("stream.Err() = %v (%T), want ResourceInUseException with its message", err, err)
				}
			})
		}
	}
}

// TestSubscribeToShardSDKRequirements pins down what the SDK client
// requires of the response, so that kdsfake's handler meets it.
func TestSubscribeToShardSDKRequirements(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string // substring; "" means SubscribeToShard succeeds
	}{
		{
			// Without initial-response the call fails (kinesis-mock's bug).
			name: "no initial-response",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", eventStreamContentType)
				_ = writeEvent(w, "SubscribeToShardEvent", eventJSON("1", []byte("x")))
			},
			wantErr: "expected initial-response",
		},
		{
			// The SDK does not check the response Content-Type; kdsfake sends
			// application/vnd.amazon.eventstream anyway, as Kinesis does.
			name: "no content type",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil // stop net/http sniffing one
				_ = writeInitialResponse(w)
			},
		},
		{
			// Any 2xx starts the stream.
			name: "startEventStream only",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_ = startEventStream(w)
			},
		},
		{
			// A non-2xx status is an ordinary awsJson error: body with
			// __type and message, no event stream.
			name: "error before the stream",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"__type":"ResourceInUseException","message":"in use"}`)
			},
			wantErr: "ResourceInUseException: in use",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t)
			srv := serveH2C(ln, tc.handler, serverOpts{})
			t.Cleanup(func() { srv.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := subscribe(ctx, newKinesis("http://"+ln.Addr().String(), &http.Client{}))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("SubscribeToShard: %v", err)
				}
				stream := out.GetStream()
				if _, ok := nextEvent(t, stream.Events()); ok {
					t.Error("unexpected event")
				}
				if err := stream.Err(); err != nil {
					t.Errorf("stream.Err() = %v", err)
				}
				stream.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("SubscribeToShard error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
