// Package eventstream reads AWS event-stream messages
// (application/vnd.amazon.eventstream), the framing of Kinesis
// SubscribeToShard responses.
//
// One message on the wire is:
//
//	total length   uint32 BE  (the whole message, including this field)
//	headers length uint32 BE  (bytes of the headers section)
//	prelude CRC    uint32 BE  (CRC32/IEEE of the 8 bytes above)
//	headers        name length (1 byte), name, value type (1 byte), value
//	payload
//	message CRC    uint32 BE  (CRC32/IEEE of everything before it)
//
// The SDK's decoder (smithy-go) hands each message to a goroutine of its
// own and copies every header into a map; a shard's subscription delivers
// one message per record at low rates, so kds reads the stream with this
// Decoder in the reader's own goroutine instead, reusing one buffer.
package eventstream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Limits of the format, as aws-c-event-stream and the SDK decoders enforce
// them. Writers (kdsfake) use the same values.
const (
	PreludeLen     = 12               // total length, headers length, prelude CRC
	Overhead       = PreludeLen + 4   // prelude and message CRC
	MaxHeaderName  = 255              // a header name's length is one byte
	MaxHeaderValue = 1<<15 - 1        // string and bytes values
	MaxHeadersLen  = 128 * 1024       // the headers section
	MaxMessageLen  = 16 * 1024 * 1024 // one whole message
)

// Header value types.
const (
	TypeTrue      = 0
	TypeFalse     = 1
	TypeByte      = 2
	TypeInt16     = 3
	TypeInt32     = 4
	TypeInt64     = 5
	TypeBytes     = 6
	TypeString    = 7
	TypeTimestamp = 8
	TypeUUID      = 9
)

// fixedSize is the value size of the fixed-size header types; -1 marks the
// length-prefixed ones (bytes, string).
var fixedSize = [...]int{TypeTrue: 0, TypeFalse: 0, TypeByte: 1, TypeInt16: 2, TypeInt32: 4, TypeInt64: 8, TypeBytes: -1, TypeString: -1, TypeTimestamp: 8, TypeUUID: 16}

// Header is one message header. Name and Value alias the decoder's
// buffer; Value is the raw value (for strings, the string's bytes).
type Header struct {
	Name  []byte
	Type  byte
	Value []byte
}

// Message is one decoded message. It aliases the decoder's buffer and is
// valid until the next call of Next.
type Message struct {
	Headers []Header
	Payload []byte
}

// String returns the value of the string header name, or "" if the
// message has no such string header.
func (m *Message) String(name string) string {
	for _, h := range m.Headers {
		if h.Type == TypeString && string(h.Name) == name {
			return string(h.Value)
		}
	}
	return ""
}

// Is reports whether the string header name has the value want, without
// allocating.
func (m *Message) Is(name, want string) bool {
	for _, h := range m.Headers {
		if h.Type == TypeString && string(h.Name) == name {
			return string(h.Value) == want
		}
	}
	return false
}

// ErrFormat is wrapped by every error about malformed input.
var ErrFormat = errors.New("malformed event-stream message")

// Decoder reads messages from a stream.
type Decoder struct {
	r       *bufio.Reader
	buf     []byte
	headers []Header
}

// readBuffer is the size of the decoder's read buffer: one read takes
// several small messages at once.
const readBuffer = 32 * 1024

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, readBuffer)}
}

// Next reads the next message. It returns io.EOF at a clean end of the
// stream (between messages), io.ErrUnexpectedEOF when the stream ends
// inside a message, an error wrapping ErrFormat for a malformed message
// (bad CRC, bad lengths, unknown header type), or r's error.
func (d *Decoder) Next() (Message, error) {
	var prelude [PreludeLen]byte
	if _, err := io.ReadFull(d.r, prelude[:]); err != nil {
		return Message{}, err
	}
	total := binary.BigEndian.Uint32(prelude[0:])
	hlen := binary.BigEndian.Uint32(prelude[4:])
	if got, want := crc32.ChecksumIEEE(prelude[:8]), binary.BigEndian.Uint32(prelude[8:]); got != want {
		return Message{}, fmt.Errorf("%w: prelude CRC %08x, computed %08x", ErrFormat, want, got)
	}
	if total < Overhead || total > MaxMessageLen {
		return Message{}, fmt.Errorf("%w: message length %d, accepted %d to %d", ErrFormat, total, Overhead, MaxMessageLen)
	}
	if hlen > MaxHeadersLen || hlen > total-Overhead {
		return Message{}, fmt.Errorf("%w: headers length %d in a message of %d bytes (at most %d)", ErrFormat, hlen, total, MaxHeadersLen)
	}
	rest := int(total) - PreludeLen
	if cap(d.buf) < rest {
		d.buf = make([]byte, rest)
	}
	d.buf = d.buf[:rest]
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, err
	}
	body := d.buf[:rest-4]
	crc := crc32.Update(crc32.ChecksumIEEE(prelude[:]), crc32.IEEETable, body)
	if want := binary.BigEndian.Uint32(d.buf[rest-4:]); crc != want {
		return Message{}, fmt.Errorf("%w: message CRC %08x, computed %08x", ErrFormat, want, crc)
	}
	headers, err := parseHeaders(d.headers[:0], body[:hlen])
	if err != nil {
		return Message{}, err
	}
	d.headers = headers
	return Message{Headers: headers, Payload: body[hlen:]}, nil
}

// parseHeaders appends the headers encoded in b to dst.
func parseHeaders(dst []Header, b []byte) ([]Header, error) {
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 {
			return dst, fmt.Errorf("%w: empty header name", ErrFormat)
		}
		if len(b) < 1+n+1 {
			return dst, fmt.Errorf("%w: truncated header", ErrFormat)
		}
		h := Header{Name: b[1 : 1+n], Type: b[1+n]}
		b = b[2+n:]
		if int(h.Type) >= len(fixedSize) {
			return dst, fmt.Errorf("%w: header %q has value type %d, accepted 0 to %d", ErrFormat, h.Name, h.Type, len(fixedSize)-1)
		}
		size := fixedSize[h.Type]
		if size < 0 {
			if len(b) < 2 {
				return dst, fmt.Errorf("%w: header %q: truncated value length", ErrFormat, h.Name)
			}
			size = int(binary.BigEndian.Uint16(b))
			b = b[2:]
			if size > MaxHeaderValue {
				return dst, fmt.Errorf("%w: header %q: value of %d bytes, at most %d accepted", ErrFormat, h.Name, size, MaxHeaderValue)
			}
		}
		if len(b) < size {
			return dst, fmt.Errorf("%w: header %q: value of %d bytes, %d left", ErrFormat, h.Name, size, len(b))
		}
		h.Value = b[:size]
		b = b[size:]
		dst = append(dst, h)
	}
	return dst, nil
}
