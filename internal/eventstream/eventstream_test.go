package eventstream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	smithyes "github.com/aws/smithy-go/eventstream"
)

// encode writes msg with the SDK's encoder, an implementation independent
// of this package.
func encode(t testing.TB, msgs ...smithyes.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := smithyes.NewEncoder()
	for _, m := range msgs {
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestDecodeEveryHeaderType(t *testing.T) {
	var hs smithyes.Headers
	hs.Set(":message-type", smithyes.StringValue("event"))
	hs.Set(":event-type", smithyes.StringValue("SubscribeToShardEvent"))
	hs.Set("t", smithyes.BoolValue(true))
	hs.Set("f", smithyes.BoolValue(false))
	hs.Set("i8", smithyes.Int8Value(-3))
	hs.Set("i16", smithyes.Int16Value(-300))
	hs.Set("i32", smithyes.Int32Value(1<<20))
	hs.Set("i64", smithyes.Int64Value(1<<40))
	hs.Set("bytes", smithyes.BytesValue([]byte{1, 2, 3}))
	hs.Set("ts", smithyes.TimestampValue(time.UnixMilli(1700000000123)))
	hs.Set("uuid", smithyes.UUIDValue{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	payload := []byte(`{"Records":[]}`)
	stream := encode(t, smithyes.Message{Headers: hs, Payload: payload}, smithyes.Message{Payload: []byte("second")})

	d := NewDecoder(bytes.NewReader(stream))
	m, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Payload, payload) {
		t.Errorf("payload %q, want %q", m.Payload, payload)
	}
	if len(m.Headers) != len(hs) {
		t.Fatalf("%d headers, want %d", len(m.Headers), len(hs))
	}
	wantTypes := map[string]byte{":message-type": TypeString, ":event-type": TypeString, "t": TypeTrue, "f": TypeFalse,
		"i8": TypeByte, "i16": TypeInt16, "i32": TypeInt32, "i64": TypeInt64, "bytes": TypeBytes, "ts": TypeTimestamp, "uuid": TypeUUID}
	for _, h := range m.Headers {
		if wantTypes[string(h.Name)] != h.Type {
			t.Errorf("header %s: type %d, want %d", h.Name, h.Type, wantTypes[string(h.Name)])
		}
	}
	if got := m.String(":event-type"); got != "SubscribeToShardEvent" {
		t.Errorf(":event-type %q", got)
	}
	if !m.Is(":message-type", "event") || m.Is(":message-type", "exception") || m.Is("i8", "x") {
		t.Error("Is answered wrong")
	}
	if m.String("bytes") != "" || m.String("missing") != "" {
		t.Error("String returned a value for a non-string or missing header")
	}
	m, err = d.Next()
	if err != nil || string(m.Payload) != "second" || len(m.Headers) != 0 {
		t.Fatalf("second message: %q %v %v", m.Payload, m.Headers, err)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("after the last message: %v, want io.EOF", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	var hs smithyes.Headers
	hs.Set(":message-type", smithyes.StringValue("event"))
	good := encode(t, smithyes.Message{Headers: hs, Payload: []byte("payload")})
	corrupt := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	for name, tc := range map[string]struct {
		in   []byte
		want error
		msg  string
	}{
		"prelude CRC":        {corrupt(2), ErrFormat, "prelude CRC"},
		"message CRC":        {corrupt(len(good) - 6), ErrFormat, "message CRC"},
		"truncated prelude":  {good[:7], io.ErrUnexpectedEOF, ""},
		"truncated message":  {good[:len(good)-1], io.ErrUnexpectedEOF, ""},
		"too short":          {withPrelude(8, 0), ErrFormat, "message length 8"},
		"too long":           {withPrelude(MaxMessageLen+1, 0), ErrFormat, "message length"},
		"headers too long":   {withPrelude(100, 90), ErrFormat, "headers length 90"},
		"header type":        {withHeaders([]byte{1, 'x', 10}), ErrFormat, "value type 10"},
		"empty header name":  {withHeaders([]byte{0, 7, 0, 0}), ErrFormat, "empty header name"},
		"header value short": {withHeaders([]byte{1, 'x', 7, 0, 5, 'a'}), ErrFormat, "value of 5 bytes, 1 left"},
		"header value long":  {withHeaders(append([]byte{1, 'x', 6, 0x80, 0}, make([]byte, 1<<15)...)), ErrFormat, "at most 32767"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewDecoder(bytes.NewReader(tc.in)).Next()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

// withPrelude returns a prelude with valid CRC and the given lengths,
// followed by zeros up to total (at most 200 bytes).
func withPrelude(total, hlen uint32) []byte {
	b := appendPrelude(nil, total, hlen)
	return append(b, make([]byte, min(int(total), 200))...)
}

// withHeaders returns a whole message with valid CRCs whose headers
// section is raw.
func withHeaders(raw []byte) []byte {
	total := uint32(Overhead + len(raw))
	b := appendPrelude(nil, total, uint32(len(raw)))
	b = append(b, raw...)
	return appendCRC(b)
}

// FuzzDecode checks the decoder against the SDK's: whatever this one
// accepts, the SDK's decodes to the same payload and header names, and
// nothing panics.
func FuzzDecode(f *testing.F) {
	var hs smithyes.Headers
	hs.Set(":message-type", smithyes.StringValue("event"))
	hs.Set(":event-type", smithyes.StringValue("SubscribeToShardEvent"))
	hs.Set("n", smithyes.Int64Value(7))
	f.Add(encode(f, smithyes.Message{Headers: hs, Payload: []byte(`{"Records":[]}`)}))
	f.Add(encode(f, smithyes.Message{}))
	f.Add(withHeaders([]byte{1, 'x', 6, 0, 2, 'a', 'b'}))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := NewDecoder(bytes.NewReader(in)).Next()
		if err != nil {
			return
		}
		ref, rerr := smithyes.NewDecoder().Decode(bytes.NewReader(in), nil)
		if rerr != nil {
			t.Fatalf("accepted a message the SDK refuses (%v)", rerr)
		}
		if !bytes.Equal(m.Payload, ref.Payload) {
			t.Fatalf("payload %q, SDK %q", m.Payload, ref.Payload)
		}
		for _, h := range m.Headers {
			if ref.Headers.Get(string(h.Name)) == nil {
				t.Fatalf("header %q unknown to the SDK's decoding", h.Name)
			}
		}
	})
}
