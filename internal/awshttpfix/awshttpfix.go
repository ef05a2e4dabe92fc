// Package awshttpfix holds two workarounds for how the AWS SDK for Go v2
// hands requests to net/http, shared by every Kinesis client shardflow
// builds: the source and sink, the test helpers and kdsfake's client.
//
// aws-sdk-go-v2 issue 2737 ("use of closed network connection" on a 200
// response): the SDK closes a request body as soon as the response is read,
// while net/http may still be probing the body, through io.WriterTo, for
// bytes past its Content-Length; the closed body then answers with an error
// and net/http drops the connection under the response being read. Fast
// local servers hit it every few hundred calls, and an SDK retry of a
// PutRecords that in fact succeeded writes its records twice. Hiding
// io.WriterTo from request bodies makes net/http read the body instead.
//
// Requests net/http cannot replay: smithy-go builds requests without
// Request.GetBody, so net/http cannot resend a request that the server
// refused without processing it. The common case is HTTP/2's
// REFUSED_STREAM: on a new connection the client may open more streams than
// the server allows before the server's SETTINGS frame arrives (an
// enhanced fan-out source opening many subscriptions at once), and the
// server refuses the extra ones; net/http then fails them with "cannot retry
// ... define Request.GetBody" instead of resending them. The bodies of
// JSON-protocol calls (an X-Amz-Target header: Kinesis, DynamoDB) of at most
// rewindLimit bytes (every call but large PutRecord(s)) are therefore read
// into memory and given a GetBody. net/http resends with it, inside one
// call (kds's retry count does not see it), after REFUSED_STREAM, a GOAWAY
// that names an earlier stream, an HTTP/1.1 connection that failed before
// anything was written, and an HTTP/2 PROTOCOL_ERROR reset by the server
// (golang/go#47635: servers that refuse that way) — the last may follow a
// request the server did process, which for PutRecord(s) is a duplicate of
// the kind the Kinesis sink's at-least-once delivery already allows. GetBody
// also lets net/http follow a 307 or 308 redirect with the body; AWS
// answers JSON-protocol calls with none, and S3 (REST, no X-Amz-Target,
// where a 307 to a bucket's region exists) is left as it was.
package awshttpfix

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// rewindLimit is the largest request body kept in memory for replay.
const rewindLimit = 64 << 10

// Doer is an HTTP client as the AWS SDK uses it (aws.HTTPClient).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client wraps an SDK HTTP client with the workaround.
func Client(c Doer) Doer { return client{c} }

// Transport wraps a RoundTripper with the workaround.
func Transport(rt http.RoundTripper) http.RoundTripper { return transport{rt} }

type client struct{ c Doer }

func (c client) Do(r *http.Request) (*http.Response, error) {
	r, err := prepare(r)
	if err != nil {
		return nil, err
	}
	return c.c.Do(r)
}

// Unwrap returns the wrapped client.
func (c client) Unwrap() Doer { return c.c }

type transport struct{ rt http.RoundTripper }

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	r, err := prepare(r)
	if err != nil {
		return nil, err
	}
	return t.rt.RoundTrip(r)
}

// readOnlyBody exposes only Read and Close of a request body.
type readOnlyBody struct{ io.ReadCloser }

// prepare returns r with a body net/http can replay (a small one with a
// known length) or, failing that, one without io.WriterTo.
func prepare(r *http.Request) (*http.Request, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, nil
	}
	if r.GetBody == nil && r.ContentLength > 0 && r.ContentLength <= rewindLimit && r.Header.Get("X-Amz-Target") != "" {
		b := make([]byte, r.ContentLength+1)
		n, err := io.ReadFull(r.Body, b)
		// As net/http would, whatever happened: the body is ours to close.
		r.Body.Close()
		switch {
		case int64(n) > r.ContentLength:
			// net/http refuses a body longer than its Content-Length too.
			return nil, fmt.Errorf("the request body is longer than its Content-Length (%d bytes)", r.ContentLength)
		case err != io.ErrUnexpectedEOF && err != io.EOF:
			return nil, fmt.Errorf("reading the request body (%d bytes): %w", r.ContentLength, err)
		case int64(n) < r.ContentLength:
			return nil, fmt.Errorf("the request body has %d bytes, its Content-Length says %d", n, r.ContentLength)
		}
		b = b[:n]
		r2 := *r
		// Nobody else holds this body, so it may keep io.WriterTo.
		r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		r2.Body, _ = r2.GetBody()
		return &r2, nil
	}
	if _, ok := r.Body.(io.WriterTo); !ok {
		return r, nil
	}
	r2 := *r
	r2.Body = readOnlyBody{r.Body}
	return &r2, nil
}

// CloseIdleConnections passes on to the wrapped transport, so that
// http.Client.CloseIdleConnections keeps working.
func (t transport) CloseIdleConnections() {
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
