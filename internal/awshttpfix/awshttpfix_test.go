package awshttpfix

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

type recordingRT struct {
	req  *http.Request
	body io.ReadCloser
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.req, r.body = req, req.Body
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok"))}, nil
}

func (r *recordingRT) CloseIdleConnections() { r.body = nil }

// TestBodiesLoseWriterTo checks the workaround itself: the body net/http
// sees must not offer io.WriterTo, but must still read the same bytes.
func TestBodiesLoseWriterTo(t *testing.T) {
	rt := &recordingRT{}
	c := &http.Client{Transport: Transport(rt)}
	body := io.NopCloser(bytes.NewReader([]byte("payload"))) // NopCloser keeps WriterTo
	if _, ok := body.(io.WriterTo); !ok {
		t.Fatal("test body should implement io.WriterTo")
	}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, ok := rt.body.(io.WriterTo); ok {
		t.Fatal("the transport saw a body with io.WriterTo")
	}
	if b, _ := io.ReadAll(rt.body); string(b) != "payload" {
		t.Fatalf("body read %q", b)
	}
	c.CloseIdleConnections()
	if rt.body != nil {
		t.Fatal("CloseIdleConnections did not reach the wrapped transport")
	}
}

// sdkRequest builds a POST as smithy-go does: the body's length is known
// but it has no GetBody and its reader is wrapped (net/http cannot see a
// *bytes.Reader to replay).
func sdkRequest(t *testing.T, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, io.NopCloser(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
	return req
}

// TestSmallBodiesReplayable: the small body of known length of a
// JSON-protocol call is read once and given a GetBody that returns the same
// bytes; the original body is closed. A body over rewindLimit, of unknown
// length or of another protocol is left to be streamed (without
// io.WriterTo); a body whose length is not its Content-Length is refused.
func TestSmallBodiesReplayable(t *testing.T) {
	closed := false
	small := []byte(`{"ShardId":"shardId-000000000001"}`)
	req := sdkRequest(t, "http://127.0.0.1/", small)
	req.Body = closeFunc{req.Body, func() { closed = true }}
	rt := &recordingRT{}
	resp, err := (&http.Client{Transport: Transport(rt)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !closed {
		t.Error("the original body was not closed")
	}
	for i := range 2 {
		var b []byte
		if i == 0 {
			b, _ = io.ReadAll(rt.body)
		} else {
			if rt.req.GetBody == nil {
				t.Fatal("the body has no GetBody")
			}
			rc, err := rt.req.GetBody()
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(rc)
		}
		if !bytes.Equal(b, small) {
			t.Fatalf("read %d: %q, want %q", i, b, small)
		}
	}

	for _, tc := range []struct {
		name   string
		size   int
		cl     int64
		target bool // an X-Amz-Target header (a JSON-protocol call)
		replay bool // want a GetBody
		err    string
	}{
		{"at the limit", rewindLimit, rewindLimit, true, true, ""},
		{"over the limit", rewindLimit + 1, rewindLimit + 1, true, false, ""},
		{"unknown length", 10, -1, true, false, ""},
		{"no X-Amz-Target (S3)", 10, 10, false, false, ""},
		{"longer than its length", 11, 10, true, false, "longer than its Content-Length (10 bytes)"},
		{"shorter than its length", 9, 10, true, false, "has 9 bytes, its Content-Length says 10"},
	} {
		req := sdkRequest(t, "http://127.0.0.1/", make([]byte, tc.size))
		req.ContentLength = tc.cl
		if !tc.target {
			req.Header.Del("X-Amz-Target")
		}
		rt := &recordingRT{}
		resp, err := (&http.Client{Transport: Transport(rt)}).Do(req)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := rt.req.GetBody != nil; got != tc.replay {
			t.Errorf("%s: GetBody set %v, want %v", tc.name, got, tc.replay)
		}
		if _, ok := rt.body.(io.WriterTo); ok && !tc.replay {
			t.Errorf("%s: the transport saw a body with io.WriterTo", tc.name)
		}
		if b, _ := io.ReadAll(rt.body); len(b) != tc.size {
			t.Errorf("%s: read %d bytes, want %d", tc.name, len(b), tc.size)
		}
	}
}

type closeFunc struct {
	io.ReadCloser
	onClose func()
}

func (c closeFunc) Close() error { c.onClose(); return c.ReadCloser.Close() }

// TestRefusedStreamReplayed: an HTTP/2 server refuses the first request
// with RST_STREAM REFUSED_STREAM (as a server does with the streams over
// its MAX_CONCURRENT_STREAMS that a client opened before its SETTINGS
// arrived). net/http alone cannot resend an SDK-built request; through
// Client it resends it, and the server gets the same body again.
func TestRefusedStreamReplayed(t *testing.T) {
	body := []byte(`{"ConsumerARN":"arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1","ShardId":"shardId-000000000001"}`)
	for _, wrapped := range []bool{false, true} {
		srv := newRefusingServer(t)
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		defer tr.CloseIdleConnections()
		var c Doer = &http.Client{Transport: tr}
		if wrapped {
			c = Client(c)
		}
		resp, err := c.Do(sdkRequest(t, "http://"+srv.addr+"/", body))
		if !wrapped {
			if err == nil {
				resp.Body.Close()
				t.Fatal("net/http resent a request without GetBody: the test server does not refuse as expected")
			}
			if !strings.Contains(err.Error(), "REFUSED_STREAM") {
				t.Fatalf("bare client: %v, want a REFUSED_STREAM error", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("through Client: %v", err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != "ok" {
			t.Fatalf("response %d %q", resp.StatusCode, got)
		}
		bodies := srv.received()
		if len(bodies) != 2 || !bytes.Equal(bodies[0], body) || !bytes.Equal(bodies[1], body) {
			t.Fatalf("the server received %q, want the body twice (refused, then served)", bodies)
		}
	}
}

// refusingServer is a minimal HTTP/2 server (prior knowledge, no TLS) that
// answers the first request it receives with RST_STREAM REFUSED_STREAM and
// every later one with 200 "ok", and keeps every request body.
type refusingServer struct {
	addr   string
	mu     sync.Mutex
	bodies [][]byte
}

// HTTP/2 frame types and flags (RFC 9113 section 6).
const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2RSTStream    = 0x3
	h2Settings     = 0x4
	h2FlagEnd      = 0x1  // END_STREAM, or ACK on SETTINGS
	h2FlagHeaders  = 0x4  // END_HEADERS
	h2RefusedCode  = 0x7  // REFUSED_STREAM
	h2Status200    = 0x88 // HPACK: static table entry 8, ":status: 200"
	h2ClientPrefix = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

func newRefusingServer(t *testing.T) *refusingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &refusingServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() { s.serve(conn) })
		}
	})
	return s
}

func (s *refusingServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

func (s *refusingServer) serve(conn net.Conn) {
	defer conn.Close()
	prefix := make([]byte, len(h2ClientPrefix))
	if _, err := io.ReadFull(conn, prefix); err != nil || string(prefix) != h2ClientPrefix {
		return
	}
	write := func(typ, flags byte, stream uint32, payload []byte) {
		f := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(f[5:], stream)
		_, _ = conn.Write(append(f, payload...))
	}
	write(h2Settings, 0, 0, nil)
	bodies := map[uint32][]byte{}
	done := func(stream uint32) {
		s.mu.Lock()
		s.bodies = append(s.bodies, bodies[stream])
		first := len(s.bodies) == 1
		s.mu.Unlock()
		if first {
			write(h2RSTStream, 0, stream, []byte{0, 0, 0, h2RefusedCode})
			return
		}
		write(h2Headers, h2FlagHeaders, stream, []byte{h2Status200})
		write(h2Data, h2FlagEnd, stream, []byte("ok"))
	}
	header := make([]byte, 9)
	for {
		if _, err := io.ReadFull(conn, header); err != nil {
			return
		}
		payload := make([]byte, int(header[0])<<16|int(header[1])<<8|int(header[2]))
		if _, err := io.ReadFull(conn, payload); err != nil {
			return
		}
		typ, flags, stream := header[3], header[4], binary.BigEndian.Uint32(header[5:])&0x7fffffff
		switch typ {
		case h2Settings:
			if flags&h2FlagEnd == 0 {
				write(h2Settings, h2FlagEnd, 0, nil)
			}
		case h2Headers:
			bodies[stream] = []byte{}
			if flags&h2FlagEnd != 0 {
				done(stream)
			}
		case h2Data:
			bodies[stream] = append(bodies[stream], payload...)
			if flags&h2FlagEnd != 0 {
				done(stream)
			}
		}
	}
}
