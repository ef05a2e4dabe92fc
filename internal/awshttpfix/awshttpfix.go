// Package awshttpfix holds the workaround for aws-sdk-go-v2 issue 2737
// ("use of closed network connection" on a 200 response), shared by every
// Kinesis client shardflow builds: the source and sink, the test helpers and
// kdsfake's client.
//
// The SDK closes a request body as soon as the response is read, while
// net/http may still be probing the body, through io.WriterTo, for bytes
// past its Content-Length; the closed body then answers with an error and
// net/http drops the connection under the response being read. Fast local
// servers hit it every few hundred calls, and an SDK retry of a PutRecords
// that in fact succeeded writes its records twice. Hiding io.WriterTo from
// request bodies makes net/http read the body instead.
package awshttpfix

import (
	"io"
	"net/http"
)

// Doer is an HTTP client as the AWS SDK uses it (aws.HTTPClient).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client wraps an SDK HTTP client with the workaround.
func Client(c Doer) Doer { return client{c} }

// Transport wraps a RoundTripper with the workaround.
func Transport(rt http.RoundTripper) http.RoundTripper { return transport{rt} }

type client struct{ c Doer }

func (c client) Do(r *http.Request) (*http.Response, error) { return c.c.Do(shield(r)) }

// Unwrap returns the wrapped client.
func (c client) Unwrap() Doer { return c.c }

type transport struct{ rt http.RoundTripper }

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(shield(r))
}

// readOnlyBody exposes only Read and Close of a request body.
type readOnlyBody struct{ io.ReadCloser }

func shield(r *http.Request) *http.Request {
	if _, ok := r.Body.(io.WriterTo); !ok || r.Body == http.NoBody {
		return r
	}
	r2 := *r
	r2.Body = readOnlyBody{r.Body}
	return &r2
}

// CloseIdleConnections passes on to the wrapped transport, so that
// http.Client.CloseIdleConnections keeps working.
func (t transport) CloseIdleConnections() {
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
