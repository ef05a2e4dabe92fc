package awshttpfix

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

type recordingRT struct{ body io.ReadCloser }

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.body = req.Body
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
