package kdsfake

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"sync"

	"github.com/shardflow/shardflow/internal/eventstream"
)

// AWS event-stream framing (application/vnd.amazon.eventstream), as used by
// Kinesis SubscribeToShard. One message on the wire is:
//
//	total length   uint32 BE  (the whole message, including this field)
//	headers length uint32 BE  (bytes of the headers section)
//	prelude CRC    uint32 BE  (CRC32/IEEE of the 8 bytes above)
//	headers        name length (1 byte), name, value type (1 byte), value;
//	               a string value (type 7) is a uint16 BE length then bytes
//	payload
//	message CRC    uint32 BE  (CRC32/IEEE of everything before it)
//
// Only string-typed headers are written: that is all SubscribeToShard needs.

// Event-stream framing constants; the limits are the format's, shared with
// the decoder kds reads subscriptions with.
const (
	esPreludeLen   = 8                      // total length + headers length
	esOverhead     = eventstream.Overhead   // prelude + prelude CRC + message CRC
	esHeaderString = eventstream.TypeString // header value type: string

	esMaxHeaderName  = eventstream.MaxHeaderName
	esMaxHeaderValue = eventstream.MaxHeaderValue
	esMaxHeadersLen  = eventstream.MaxHeadersLen
	esMaxMessageLen  = eventstream.MaxMessageLen
	esContentType    = "application/json" // :content-type of every Kinesis event
)

// eventStreamContentType is the HTTP Content-Type of an event-stream response.
const eventStreamContentType = "application/vnd.amazon.eventstream"

// header is one string-typed event-stream header.
type header struct {
	name  string
	value string
}

// errMessageTooLarge reports a message that breaks the event-stream limits.
var errMessageTooLarge = errors.New("kdsfake: event-stream message too large")

// headersLen is the encoded size of headers, assuming all are strings.
func headersLen(headers []header) int {
	n := 0
	for _, h := range headers {
		n += 1 + len(h.name) + 1 + 2 + len(h.value)
	}
	return n
}

// checkMessage validates headers and payload against the event-stream limits.
func checkMessage(headers []header, payload []byte) error {
	for _, h := range headers {
		if len(h.name) == 0 || len(h.name) > esMaxHeaderName {
			return fmt.Errorf("%w: header name %q has length %d", errMessageTooLarge, h.name, len(h.name))
		}
		if len(h.value) > esMaxHeaderValue {
			return fmt.Errorf("%w: header %q value has length %d", errMessageTooLarge, h.name, len(h.value))
		}
	}
	hl := headersLen(headers)
	if hl > esMaxHeadersLen {
		return fmt.Errorf("%w: headers are %d bytes", errMessageTooLarge, hl)
	}
	if total := esOverhead + hl + len(payload); total > esMaxMessageLen {
		return fmt.Errorf("%w: message is %d bytes, limit %d", errMessageTooLarge, total, esMaxMessageLen)
	}
	return nil
}

// appendMessage appends one event-stream message with string-typed headers
// and payload to dst and returns the extended slice. It allocates only when
// dst lacks capacity.
//
// Header names must be 1-255 bytes and values at most 32767 bytes, and the
// whole message at most 16 MiB; it panics otherwise, because silently
// truncating a frame would corrupt the stream. Use checkMessage first when
// the input is not known to be valid (writeEvent and writeException do).
func appendMessage(dst []byte, headers []header, payload []byte) []byte {
	hl := headersLen(headers)
	total := esOverhead + hl + len(payload)
	if total > esMaxMessageLen || hl > esMaxHeadersLen {
		panic(errMessageTooLarge)
	}

	start := len(dst)
	dst = grow(dst, total)
	dst = binary.BigEndian.AppendUint32(dst, uint32(total))
	dst = binary.BigEndian.AppendUint32(dst, uint32(hl))
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:start+esPreludeLen]))
	for _, h := range headers {
		if len(h.name) == 0 || len(h.name) > esMaxHeaderName || len(h.value) > esMaxHeaderValue {
			panic(fmt.Sprintf("kdsfake: invalid event-stream header %q (value length %d)", h.name, len(h.value)))
		}
		dst = append(dst, byte(len(h.name)))
		dst = append(dst, h.name...)
		dst = append(dst, esHeaderString)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.value)))
		dst = append(dst, h.value...)
	}
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

// grow makes room for n more bytes in b, growing it at most once.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// bufPool holds frame buffers for the write helpers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledBuf is the largest buffer returned to bufPool; a rare huge frame's
// buffer is left to the GC rather than pinned in the pool.
const maxPooledBuf = 1 << 20

// writeMessage encodes one message into a pooled buffer, writes it to w in a
// single Write, and flushes w if it can be flushed.
func writeMessage(w io.Writer, headers []header, payload []byte) error {
	if err := checkMessage(headers, payload); err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	buf := appendMessage((*bp)[:0], headers, payload)
	_, err := w.Write(buf)
	if cap(buf) <= maxPooledBuf {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	if err != nil {
		return err
	}
	return flush(w)
}

// flush pushes buffered response bytes to the client so that each event is
// delivered promptly. A ResponseWriter is flushed through
// http.ResponseController, which also sees through wrappers with Unwrap;
// any other http.Flusher is flushed directly.
func flush(w io.Writer) error {
	switch w := w.(type) {
	case http.ResponseWriter:
		err := http.NewResponseController(w).Flush()
		if errors.Is(err, http.ErrNotSupported) {
			return nil
		}
		return err
	case http.Flusher:
		w.Flush()
	}
	return nil
}

// writeInitialResponse writes the initial-response event that must be the
// first message of a SubscribeToShard response: the aws-sdk-go-v2 client
// (awsJson1.1, HasInitialEventMessage) fails the call without it. The
// payload is the JSON object "{}" (SubscribeToShardOutput has no members
// outside the event stream).
func writeInitialResponse(w io.Writer) error {
	hs := [...]header{
		{":message-type", "event"},
		{":event-type", "initial-response"},
		{":content-type", esContentType},
	}
	return writeMessage(w, hs[:], []byte("{}"))
}

// writeEvent writes one event message (":message-type" event) with the
// given ":event-type", such as "SubscribeToShardEvent", and a JSON payload.
func writeEvent(w io.Writer, eventType string, payload []byte) error {
	hs := [...]header{
		{":message-type", "event"},
		{":event-type", eventType},
		{":content-type", esContentType},
	}
	return writeMessage(w, hs[:], payload)
}

// writeException writes one exception message (":message-type" exception)
// with the given ":exception-type", such as "ResourceInUseException", and a
// JSON payload of the form {"message":"..."} (see exceptionPayload). The
// SDK turns it into the typed error, e.g. *types.ResourceInUseException,
// returned by the event stream's Err. An exception ends the stream: the
// caller should write nothing after it.
func writeException(w io.Writer, exceptionType string, payload []byte) error {
	hs := [...]header{
		{":message-type", "exception"},
		{":exception-type", exceptionType},
		{":content-type", esContentType},
	}
	return writeMessage(w, hs[:], payload)
}

// exceptionPayload returns the JSON payload {"message":msg} for
// writeException.
func exceptionPayload(msg string) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	return b
}

// startEventStream begins a successful SubscribeToShard response: it sets
// Content-Type: application/vnd.amazon.eventstream, sends status 200 and
// writes the initial-response event. Other headers (x-amzn-RequestId, ...)
// must be set on w before calling it. Errors that happen before the stream
// starts (ResourceNotFoundException, ResourceInUseException, ...) can still
// be sent as ordinary awsJson error responses (non-2xx) instead; errors after
// it must be sent with writeException.
func startEventStream(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", eventStreamContentType)
	w.WriteHeader(http.StatusOK)
	return writeInitialResponse(w)
}
